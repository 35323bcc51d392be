//! `selfballoonctl`: the dom0 tool for selfballoon guests.
//!
//! It reads what the guests publish in xenstore (`data/selfballoon/*`)
//! and writes their tunables (`memory/selfballoon/*`), speaking xenstore's
//! wire protocol to xenstored with the guest's own code
//! ([`selfballoon::xen::xenstore::wire`], through [`transport`]) and
//! checking every value with the guest's own parsers ([`keys`]) before it
//! is written. Everything but [`transport::connect`] works on the guest's
//! [`Store`] trait, so tests run it against any store.
//!
//! - [`cli`]: the command line;
//! - [`transport`]: xenstore over xenstored's socket or `/dev/xen/xenbus`;
//! - [`domain`]: domains by id or name;
//! - [`status`]: what each guest publishes;
//! - [`keys`]: `get`/`set` keys and their validation;
//! - [`format`]: table, JSON, Prometheus;
//! - [`error`]: errors and exit codes.

#![forbid(unsafe_code)]

pub mod cli;
pub mod domain;
pub mod error;
pub mod format;
pub mod keys;
pub mod status;
pub mod transport;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use selfballoon::xen::xenstore::{Store, XsError};
use serde::Serialize;

use cli::{Cli, Command};
use error::Error;
use keys::CtlKey;

/// Where output goes.
#[derive(Debug)]
pub struct Io<O: Write, E: Write> {
    pub out: O,
    pub err: E,
    /// Standard output is a terminal: `top` redraws in place.
    pub tty: bool,
}

/// Checks what can be checked without xenstore: `get`/`set` keys and the
/// value of `set` (with the guest's parser). Run before connecting, so a
/// refused value is refused even where there is no xenstore.
pub fn check(cmd: &Command) -> Result<(), Error> {
    match cmd {
        Command::Get { key, .. } => keys::parse(key).map(|_| ()),
        Command::Set { key, value, .. } => keys::parse(key)?.validate(value).map(|_| ()),
        _ => Ok(()),
    }
}

/// Runs a command against `store`.
pub fn run<S: Store + ?Sized, O: Write, E: Write>(
    cli: &Cli,
    store: &mut S,
    io: &mut Io<O, E>,
) -> Result<(), Error> {
    check(&cli.command)?;
    match &cli.command {
        Command::Status => {
            let rows = status::collect(store)?;
            let text = if cli.json {
                format::json(&rows)
            } else {
                format::table(&rows)
            };
            io.out.write_all(text.as_bytes())?;
        }
        Command::Top {
            interval,
            iterations,
        } => top(store, io, cli.json, *interval, *iterations)?,
        Command::Get { domain, key } => get(store, io, cli.json, domain, key)?,
        Command::Set { domain, key, value } => set(store, io, cli.json, domain, key, value)?,
        Command::Export { output } => {
            let text = format::prometheus(&status::collect(store)?);
            match output {
                None => io.out.write_all(text.as_bytes())?,
                Some(path) => write_atomically(path, &text)?,
            }
        }
    }
    io.out.flush()?;
    Ok(())
}

/// Clears the screen and homes the cursor (ANSI).
pub const CLEAR: &str = "\x1b[H\x1b[2J";

fn clock() -> String {
    let s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        % 86_400;
    format!("{:02}:{:02}:{:02} UTC", s / 3600, s / 60 % 60, s % 60)
}

/// `top`: the table (or a JSON line) every `interval`, redrawn in place
/// on a terminal, frames separated by a blank line otherwise.
fn top<S: Store + ?Sized, O: Write, E: Write>(
    store: &mut S,
    io: &mut Io<O, E>,
    json: bool,
    interval: Duration,
    iterations: Option<u64>,
) -> Result<(), Error> {
    let mut n: u64 = 0;
    loop {
        let rows = status::collect(store)?;
        n = n.saturating_add(1);
        if json {
            io.out.write_all(format::json(&rows).as_bytes())?;
        } else {
            let mut frame = String::new();
            if io.tty {
                frame.push_str(CLEAR);
            } else if n > 1 {
                frame.push('\n');
            }
            frame.push_str(&format!(
                "selfballoonctl top: {} domains, {}, every {:.1}s{}\n\n",
                rows.len(),
                clock(),
                interval.as_secs_f64(),
                if io.tty { " (Ctrl-C quits)" } else { "" }
            ));
            frame.push_str(&format::table(&rows));
            io.out.write_all(frame.as_bytes())?;
        }
        io.out.flush()?;
        if iterations.is_some_and(|max| n >= max) {
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}

#[derive(Serialize)]
struct GetJson<'a> {
    domain: Option<&'a str>,
    domid: u16,
    key: &'a str,
    /// What the guest publishes as in force.
    in_force: Option<&'a str>,
    /// What dom0 wrote.
    requested: Option<&'a str>,
}

fn get<S: Store + ?Sized, O: Write, E: Write>(
    store: &mut S,
    io: &mut Io<O, E>,
    json: bool,
    domain: &str,
    key: &str,
) -> Result<(), Error> {
    let key = keys::parse(key)?;
    let dom = domain::resolve(store, domain)?;
    let home = dom.home();
    let in_force = match key.status_path() {
        Some(p) => domain::read_opt(store, &format!("{home}/{p}"))?,
        None => None,
    };
    let requested = domain::read_opt(store, &format!("{home}/{}", key.write_path()))?;
    if json {
        let j = GetJson {
            domain: dom.name.as_deref(),
            domid: dom.domid,
            key: key.name(),
            in_force: in_force.as_deref(),
            requested: requested.as_deref(),
        };
        io.out.write_all(to_json_line(&j).as_bytes())?;
        return Ok(());
    }
    match in_force.or(requested) {
        Some(v) => writeln!(io.out, "{v}")?,
        None => {
            return Err(Error::NoValue {
                domain: dom.label(),
                key: key.name().to_string(),
            })
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct SetJson<'a> {
    domain: Option<&'a str>,
    domid: u16,
    key: &'a str,
    path: &'a str,
    value: &'a str,
    /// How the guest will publish it once applied (tunables).
    in_force_expected: Option<&'a str>,
}

fn set<S: Store + ?Sized, O: Write, E: Write>(
    store: &mut S,
    io: &mut Io<O, E>,
    json: bool,
    domain: &str,
    key: &str,
    value: &str,
) -> Result<(), Error> {
    let key: CtlKey = keys::parse(key)?;
    let expected = key.validate(value)?;
    let dom = domain::resolve(store, domain)?;
    let home = dom.home();
    if key != CtlKey::Target {
        let status_dir = format!("{home}/{}", keys::STATUS_DIR);
        match store.directory(&status_dir) {
            Ok(_) => {}
            Err(XsError::Remote(_)) => writeln!(
                io.err,
                "selfballoonctl: note: {} publishes no {}/: not a selfballoon guest, or not up yet",
                dom.label(),
                keys::STATUS_DIR
            )?,
            Err(e) => return Err(Error::xs(format!("listing {status_dir}"), e)),
        }
    }
    let path = format!("{home}/{}", key.write_path());
    store
        .write(&path, value)
        .map_err(|e| Error::xs(format!("writing {path}"), e))?;
    if json {
        let j = SetJson {
            domain: dom.name.as_deref(),
            domid: dom.domid,
            key: key.name(),
            path: &path,
            value,
            in_force_expected: expected.as_deref(),
        };
        io.out.write_all(to_json_line(&j).as_bytes())?;
    } else {
        writeln!(io.out, "{path} = {value}")?;
    }
    Ok(())
}

fn to_json_line<T: Serialize>(v: &T) -> String {
    let mut s =
        serde_json::to_string(v).unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()));
    s.push('\n');
    s
}

/// Writes `text` to `path` through a temporary file in the same directory
/// and a rename, so node_exporter never reads half a file.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), Error> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::Other(format!("--output {}: not a file name", path.display())))?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let fail =
        |what: &str, e: std::io::Error| Error::Other(format!("{what} {}: {e}", path.display()));
    std::fs::write(&tmp, text).map_err(|e| fail("cannot write", e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail("cannot rename into", e)
    })
}
