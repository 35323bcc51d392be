//! The command line (clap derive).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// Exit codes, for `--help`.
const AFTER_HELP: &str = "\
Exit codes: 0 ok; 1 other failure (output, --output file); 2 bad command line;
3 unknown (or ambiguous) domain; 4 unknown key; 5 value refused by the
guest's parser (nothing written); 6 no xenstore (no socket or device,
permission denied, connection lost); 7 xenstored answered with an error;
8 malformed or missing reply from xenstored; 9 `get`: no value anywhere.";

/// Watch and steer selfballoon guests from dom0, over xenstore.
#[derive(Debug, Parser)]
#[command(name = "selfballoonctl", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// xenstored's socket or device (default: $XENSTORED_PATH, else
    /// /run/xenstored/socket, /var/run/xenstored/socket, /dev/xen/xenbus).
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Seconds one xenstore request may take (socket only).
    #[arg(long, global = true, default_value = "5", value_parser = parse_seconds, value_name = "S")]
    pub timeout: Duration,
    /// Machine-readable output (JSON) for status, top, get and set.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand, PartialEq)]
pub enum Command {
    /// Every domain's self-balloon status as a table (sizes in MiB; `-`:
    /// not published, `?`: not a number).
    Status,
    /// The status table, refreshed in place.
    Top {
        /// Seconds between refreshes.
        #[arg(long, default_value = "2", value_parser = parse_seconds, value_name = "S")]
        interval: Duration,
        /// Stop after this many refreshes (default: until interrupted).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        iterations: Option<u64>,
    },
    /// A tunable's value: the one in force as the guest publishes it, else
    /// the one dom0 wrote. Keys: the tunables (selfballoon_interval, mode,
    /// ...), memory/target, memory/workload.
    Get {
        /// Domain name or id.
        domain: String,
        /// Key name.
        key: String,
    },
    /// Writes a tunable (or memory/target, memory/workload) after checking
    /// the value with the guest's own parser.
    Set {
        /// Domain name or id.
        domain: String,
        /// Key name.
        key: String,
        /// The value, as the guest's parser accepts it.
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// The status in the Prometheus text format (node_exporter textfile
    /// collector).
    Export {
        /// Write here (atomically: a temporary file renamed) instead of
        /// standard output.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// Seconds, decimals allowed, above 0 and at most a day.
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(v > 0.0 && v <= 86_400.0) {
        return Err(format!("'{s}': seconds must be above 0 and at most 86400"));
    }
    Ok(Duration::from_secs_f64(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("selfballoonctl").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn commands() {
        let c = parse(&["status"]).unwrap();
        assert_eq!(c.command, Command::Status);
        assert!(!c.json && c.socket.is_none());
        assert_eq!(c.timeout, Duration::from_secs(5));

        let c = parse(&["--json", "status", "--socket", "/tmp/s"]).unwrap();
        assert!(c.json);
        assert_eq!(c.socket, Some(PathBuf::from("/tmp/s")));

        let c = parse(&["top", "--interval", "0.5", "--iterations", "3"]).unwrap();
        assert_eq!(
            c.command,
            Command::Top {
                interval: Duration::from_millis(500),
                iterations: Some(3)
            }
        );
        assert_eq!(
            parse(&["top"]).unwrap().command,
            Command::Top {
                interval: Duration::from_secs(2),
                iterations: None
            }
        );

        assert_eq!(
            parse(&["get", "sb", "mode"]).unwrap().command,
            Command::Get {
                domain: "sb".into(),
                key: "mode".into()
            }
        );
        // A value may start with '-' (the guest's parser refuses it, not clap).
        assert_eq!(
            parse(&["set", "3", "selfballoon_interval", "-1"])
                .unwrap()
                .command,
            Command::Set {
                domain: "3".into(),
                key: "selfballoon_interval".into(),
                value: "-1".into()
            }
        );
        assert_eq!(
            parse(&["export", "-o", "/x/sb.prom"]).unwrap().command,
            Command::Export {
                output: Some("/x/sb.prom".into())
            }
        );
        let c = parse(&["--timeout", "0.25", "export"]).unwrap();
        assert_eq!(c.timeout, Duration::from_millis(250));
    }

    #[test]
    fn bad_command_lines() {
        for bad in [
            &[][..],
            &["frobnicate"],
            &["get", "sb"],
            &["set", "sb", "mode"],
            &["set", "sb", "mode", "linux", "extra"],
            &["top", "--interval", "0"],
            &["top", "--interval", "-1"],
            &["top", "--interval", "nan"],
            &["top", "--interval", "1e9"],
            &["top", "--iterations", "0"],
            &["top", "--iterations", "x"],
            &["status", "--timeout", "inf"],
            &["status", "--bogus"],
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
        }
        assert_eq!(parse(&["--help"]).unwrap_err().exit_code(), 0);
        assert_eq!(parse(&["--version"]).unwrap_err().exit_code(), 0);
    }

    #[test]
    fn help_lists_exit_codes() {
        let h = Cli::command().render_long_help().to_string();
        assert!(h.contains("Exit codes: 0 ok;"), "{h}");
        assert!(h.contains("5 value refused by the"), "{h}");
    }
}
