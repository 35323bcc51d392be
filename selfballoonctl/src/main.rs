//! `selfballoonctl`: see the library crate and `selfballoonctl --help`.

#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use selfballoonctl::cli::Cli;
use selfballoonctl::error::Error;
use selfballoonctl::{check, run, transport, Io};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help and --version are "errors" that exit 0.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match execute(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("selfballoonctl: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn execute(cli: &Cli) -> Result<(), Error> {
    check(&cli.command)?;
    let env = std::env::var(transport::SOCKET_ENV).ok();
    let endpoints = transport::endpoints(cli.socket.as_deref(), env.as_deref());
    let mut conn = transport::connect(&endpoints, cli.timeout)?;
    let stdout = std::io::stdout();
    let mut io = Io {
        tty: stdout.is_terminal(),
        out: stdout.lock(),
        err: std::io::stderr(),
    };
    run(cli, &mut conn, &mut io).map_err(|e| match e {
        Error::Xenstore { what, err, detail } => Error::Xenstore {
            what,
            err,
            detail: detail.or_else(|| conn.take_detail()),
        },
        e => e,
    })
}
