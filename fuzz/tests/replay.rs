//! Replays every seed and every kept crash input through its target's
//! checks (no libFuzzer needed), so a crash once found stays fixed.
//!
//! Layout: `fuzz/seeds/<target>/*` (starting points for the fuzzer) and
//! `fuzz/regressions/<target>/*` (inputs that once failed; each one's
//! fix has a unit test next to the parser too).

use std::path::Path;

use selfballoon_fuzz::TARGETS;

fn replay(kind: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(kind);
    let mut n = 0;
    for (name, check) in TARGETS {
        let dir = root.join(name);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files {
            let data = std::fs::read(&f).unwrap();
            eprintln!("{kind}: {}", f.display());
            check(&data);
            n += 1;
        }
    }
    n
}

#[test]
fn seeds_pass() {
    assert!(replay("seeds") > 0, "no seeds found");
}

#[test]
fn regressions_pass() {
    replay("regressions");
}

#[test]
fn every_target_has_seeds_and_a_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, _) in TARGETS {
        assert!(
            root.join("seeds").join(name).is_dir(),
            "no seeds for {name}"
        );
        assert!(
            root.join("fuzz_targets")
                .join(format!("{name}.rs"))
                .is_file(),
            "no binary for {name}"
        );
    }
}

/// A fixed pseudo-random sweep per target, so plain `cargo test` also
/// exercises inputs beyond the seeds (deterministic; the coverage-guided
/// runs are `cargo xtask fuzz`).
#[test]
fn deterministic_sweep() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for (_, check) in TARGETS {
        for len in 0..300usize {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            check(&data);
        }
    }
}
