//! `protocol.sh` read back by real shells: every variable holds exactly
//! the crate's value.

use std::process::Command;

use selfballoon_protocol::console::MARKERS;
use selfballoon_protocol::shell::{Script, Value, MARK_PREFIX, METRICS_VARIABLE, VARIABLES};

fn expected() -> Vec<(String, String)> {
    VARIABLES
        .iter()
        .chain([&METRICS_VARIABLE])
        .map(|(n, v)| {
            let v = match v {
                Value::Str(s) => s.to_string(),
                Value::Num(n) => n.to_string(),
            };
            (n.to_string(), v)
        })
        .chain(
            MARKERS
                .iter()
                .map(|(n, v)| (format!("{MARK_PREFIX}{n}"), v.to_string())),
        )
        .collect()
}

/// Sources the script in `shell` and prints each variable between
/// delimiters; None if the shell is not installed.
fn read_back(shell: &str) -> Option<String> {
    let mut prog = Script.to_string();
    for (n, _) in expected() {
        prog.push_str(&format!("printf '%s=<%s>\\n' {n} \"${n}\"\n"));
    }
    let out = Command::new(shell).arg("-c").arg(&prog).output().ok()?;
    assert!(
        out.status.success(),
        "{shell} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).expect("shell output is UTF-8"))
}

#[test]
fn shells_read_the_crates_values() {
    let want: String = expected()
        .iter()
        .map(|(n, v)| format!("{n}=<{v}>\n"))
        .collect();
    let mut tried = 0;
    for shell in ["bash", "sh", "dash"] {
        if let Some(got) = read_back(shell) {
            assert_eq!(got, want, "as read by {shell}");
            tried += 1;
        }
    }
    assert!(tried > 0, "no shell found to read protocol.sh");
}
