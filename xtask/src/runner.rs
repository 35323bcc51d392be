//! Runs QEMU (or any child) with a timeout, tees its output into a log
//! file line by line and lets the caller react to each line.

use anyhow::{Context, Result};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// What the caller wants after seeing a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    /// The run has told us all we need: let it exit by itself for `grace`,
    /// then kill it (e.g. Xen sitting in `noreboot` after dom0 shut down).
    Stop {
        grace: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The child exited; `None` if it died by a signal.
    Exit(Option<i32>),
    /// The deadline passed and the child was killed.
    Timeout,
    /// A line asked to stop and the child was killed after the grace time.
    Stopped,
}

#[derive(Debug)]
pub struct Finished {
    pub end: End,
    pub elapsed: Duration,
    /// The last lines of output, for error messages.
    pub tail: VecDeque<String>,
}

impl Finished {
    pub fn tail_text(&self, n: usize) -> String {
        let skip = self.tail.len().saturating_sub(n);
        let mut s = String::new();
        for l in self.tail.iter().skip(skip) {
            s.push_str("    | ");
            s.push_str(l);
            s.push('\n');
        }
        s
    }
}

const TAIL_LINES: usize = 200;

enum Msg {
    Line(String),
    Eof,
}

fn pump(src: impl Read + Send + 'static, tx: mpsc::Sender<Msg>) {
    thread::spawn(move || {
        let mut r = BufReader::new(src);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let s = String::from_utf8_lossy(&buf);
                    let s = s.trim_end_matches(['\n', '\r']).replace('\r', "");
                    if tx.send(Msg::Line(s)).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = tx.send(Msg::Eof);
    });
}

/// Spawns `cmd` (stdin closed, stdout and stderr captured), writes every
/// line to `log`, calls `on_line(line, elapsed)` for each, and returns when
/// the child has exited, the timeout passed, or a line asked to stop.
pub fn run(
    mut cmd: Command,
    timeout: Duration,
    log: &Path,
    mut on_line: impl FnMut(&str, Duration) -> Verdict,
) -> Result<Finished> {
    let mut logf =
        File::create(log).with_context(|| format!("cannot create log {}", log.display()))?;
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!(
                "cannot start {program} (is it installed? see tests/nested/install-host-deps.sh)"
            )
        })?;
    let start = Instant::now();
    let (tx, rx) = mpsc::channel();
    if let Some(o) = child.stdout.take() {
        pump(o, tx.clone());
    }
    if let Some(e) = child.stderr.take() {
        pump(e, tx.clone());
    }
    drop(tx);

    let deadline = start + timeout;
    let mut stop_at: Option<Instant> = None;
    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    let mut open_streams = 2;
    let mut exited: Option<std::process::ExitStatus> = None;
    let end = loop {
        if exited.is_none() {
            exited = child.try_wait().context("waiting for the child")?;
        }
        if let Some(st) = exited {
            if open_streams == 0 {
                break End::Exit(st.code());
            }
        }
        let now = Instant::now();
        if now >= deadline {
            break End::Timeout;
        }
        if let Some(t) = stop_at {
            if now >= t {
                break End::Stopped;
            }
        }
        let wait = Duration::from_millis(100).min(deadline - now);
        match rx.recv_timeout(wait) {
            Ok(Msg::Line(l)) => {
                // The log is best effort: a full disk must not hide the result.
                let _ = writeln!(logf, "{l}");
                let v = on_line(&l, start.elapsed());
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(l);
                if let (Verdict::Stop { grace }, None) = (v, stop_at) {
                    stop_at = Some(Instant::now() + grace);
                }
            }
            Ok(Msg::Eof) => open_streams -= 1,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => open_streams = 0,
        }
    };
    if !matches!(end, End::Exit(_)) {
        let _ = child.kill();
        let _ = child.wait();
        // Drain whatever the readers still hold.
        while let Ok(Msg::Line(l)) = rx.recv_timeout(Duration::from_millis(50)) {
            let _ = writeln!(logf, "{l}");
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(l);
        }
    }
    let _ = logf.flush();
    Ok(Finished {
        end,
        elapsed: start.elapsed(),
        tail,
    })
}
