//! Host tests that keep the protocol written down once: the kernel still
//! prints the markers the rig waits for, the shell side takes every
//! protocol constant from the generated protocol.sh, and dom0's /init
//! (part of the cached image) knows the bootstrap names.

use std::path::{Path, PathBuf};

use selfballoon_protocol::rig::{DOM0_RUN_DIR, JOB_SCRIPT, PROTOCOL_SCRIPT, SHARE_TAG};
use selfballoon_protocol::{console, rig, EMULATOR_FAULT_FILE, RESULT_PREFIX, VERDICT_FILE};
use selfballoon_protocol::{VERDICT_FAIL, VERDICT_PASS};

use crate::common;

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(|e| e.ok()) {
        let p = e.path();
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// Lines that are not comments (shell `#`, Rust `//`).
fn code_lines(text: &str, comment: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with(comment))
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect()
}

/// Whether `needle` occurs in `hay` as a whole word (not inside a longer
/// identifier such as `FAILURE` or `results`).
fn has_word(hay: &str, needle: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    // A boundary only matters where the needle itself is a word character
    // (`/result` may follow any path).
    let check_before = needle.chars().next().is_some_and(ident);
    let check_after = needle.chars().next_back().is_some_and(ident);
    hay.match_indices(needle).any(|(i, _)| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + needle.len()..].chars().next();
        let joined_before = check_before && before.is_some_and(ident);
        let joined_after = check_after && after.is_some_and(ident);
        !joined_before && !joined_after
    })
}

#[test]
fn kernel_prints_the_markers_the_rig_waits_for() {
    let mut srcs = Vec::new();
    files(&common::root().join("src"), "rs", &mut srcs);
    assert!(!srcs.is_empty(), "no kernel sources found");
    let all: String = srcs.iter().map(|p| read(p)).collect();
    for (name, marker) in console::MARKERS {
        assert!(
            all.contains(marker),
            "the kernel no longer prints the {name} marker {marker:?} (selfballoon_protocol::console)"
        );
    }
}

#[test]
fn kernel_writes_isa_debug_exit_at_the_protocols_port() {
    // The port write itself lives in the arch layer
    // (src/arch/x86_64/cpu.rs: qemu_debug_exit) and names the crate's port.
    let mut srcs = Vec::new();
    files(&common::root().join("src/arch"), "rs", &mut srcs);
    let all: String = srcs.iter().map(|p| read(p)).collect();
    let write = "outl(selfballoon_protocol::DEBUG_EXIT_PORT, value)";
    assert!(
        all.contains(write),
        "src/arch no longer writes isa-debug-exit as `{write}`"
    );
    let literal = format!("outl({:#x}", selfballoon_protocol::DEBUG_EXIT_PORT);
    assert!(
        !all.contains(&literal),
        "src/arch spells the port out (`{literal}`): use the protocol's constant"
    );
}

#[test]
fn kernel_prints_result_lines_only_through_the_protocol() {
    let mut srcs = Vec::new();
    files(&common::root().join("src"), "rs", &mut srcs);
    let literal = format!("\"{}", RESULT_PREFIX.trim_end());
    for p in &srcs {
        for (n, l) in code_lines(&read(p), "//") {
            assert!(
                !l.contains(&literal),
                "{}:{n} spells out the result line; use selfballoon_protocol::ResultLine: {l}",
                p.display()
            );
        }
    }
}

#[test]
fn shell_side_takes_the_protocol_from_protocol_sh() {
    let mut scripts = Vec::new();
    files(&common::root().join("tests/nested"), "sh", &mut scripts);
    assert!(scripts.len() > 5, "no rig scripts found");
    let result_prefix = RESULT_PREFIX.trim_end();
    let log_prefix = rig::LOG_PREFIX.trim_end();
    let verdict_path = format!("/{VERDICT_FILE}");
    // (what, found in a line?)
    type Check = (String, Box<dyn Fn(&str) -> bool>);
    let checks: Vec<Check> = vec![
        (
            result_prefix.to_string(),
            Box::new(move |l: &str| l.contains(result_prefix)),
        ),
        (
            EMULATOR_FAULT_FILE.to_string(),
            Box::new(|l: &str| l.contains(EMULATOR_FAULT_FILE)),
        ),
        (
            log_prefix.to_string(),
            Box::new(move |l: &str| l.contains(log_prefix)),
        ),
        (
            rig::METRICS_FILE.to_string(),
            Box::new(|l: &str| l.contains(rig::METRICS_FILE)),
        ),
        (
            verdict_path.clone(),
            Box::new(move |l: &str| has_word(l, &verdict_path)),
        ),
        (
            VERDICT_PASS.to_string(),
            Box::new(|l: &str| has_word(l, VERDICT_PASS)),
        ),
        (
            VERDICT_FAIL.to_string(),
            Box::new(|l: &str| has_word(l, VERDICT_FAIL)),
        ),
        (
            "qemu_exit <number>".to_string(),
            Box::new(|l: &str| {
                l.split("qemu_exit ")
                    .skip(1)
                    .any(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            }),
        ),
        (
            console::RUNTIME_BANNER.to_string(),
            Box::new(|l: &str| l.contains(console::RUNTIME_BANNER)),
        ),
        (
            console::POD_RELEASED.to_string(),
            Box::new(|l: &str| l.contains(console::POD_RELEASED)),
        ),
    ];
    let mut found = Vec::new();
    for p in &scripts {
        for (n, l) in code_lines(&read(p), "#") {
            for (what, hit) in &checks {
                if hit(&l) {
                    found.push(format!("{}:{n}: {what:?} in: {}", p.display(), l.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "rig scripts spell out protocol constants; use protocol.sh's RIG_* variables:\n{}",
        found.join("\n")
    );
}

#[test]
fn dom0_init_knows_the_bootstrap() {
    let init = read(&common::root().join("tests/nested/image/dom0-init.sh"));
    for needed in [
        format!("{DOM0_RUN_DIR}/{PROTOCOL_SCRIPT}"),
        format!("{DOM0_RUN_DIR}/{JOB_SCRIPT}"),
        format!(" {SHARE_TAG} {DOM0_RUN_DIR}"),
    ] {
        assert!(
            init.contains(&needed),
            "dom0-init.sh (in the cached image) no longer knows {needed:?}"
        );
    }
    let lib = read(&common::root().join("tests/nested/lib.sh"));
    assert!(lib.contains(&format!("$RIG_DIR/{PROTOCOL_SCRIPT}")));
}

#[test]
fn whole_words() {
    assert!(has_word("echo PASS", "PASS"));
    assert!(has_word("\"PASS: x\"", "PASS"));
    assert!(!has_word("PASSED", "PASS"));
    assert!(!has_word("FAILURE", "FAIL"));
    assert!(!has_word("$RIG_VERDICT_FAIL", "FAIL"));
    assert!(has_word("> /rig/result", "/result"));
    assert!(!has_word("/results/x", "/result"));
}
