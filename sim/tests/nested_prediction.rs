//! The nested scenario `adaptive` (tests/nested/adaptive.sh) compares the
//! guest with a prediction it carries (EXPECT). This reruns the command
//! that made it and fails when the prediction is stale.

use std::process::Command;

fn shell_value<'a>(script: &'a str, name: &str) -> &'a str {
    let start = format!("{name}='");
    let i = script
        .find(&start)
        .unwrap_or_else(|| panic!("{name}= not in the scenario"))
        + start.len();
    let len = script[i..]
        .find('\'')
        .unwrap_or_else(|| panic!("{name}= is not closed"));
    &script[i..i + len]
}

#[test]
fn scenario_prediction_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/nested/adaptive.sh");
    let script = std::fs::read_to_string(path).expect("read tests/nested/adaptive.sh");
    let program = shell_value(&script, "PROGRAM");
    let args = shell_value(&script, "SIM_ARGS");
    let expect = shell_value(&script, "EXPECT");
    let out = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["--phases", program, "--policies", "adaptive"])
        .args(args.split_whitespace())
        .output()
        .expect("run the simulator");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let got: Vec<String> = text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let name = *f.get(3)?;
            let held = *f.get(8)?;
            (name == "hold" || name == "idle").then(|| format!("{name} {held}"))
        })
        .collect();
    let want: Vec<&str> = expect.lines().collect();
    assert_eq!(
        got,
        want,
        "EXPECT in tests/nested/adaptive.sh is stale; the simulator now says:\n{}",
        got.join("\n")
    );
}
