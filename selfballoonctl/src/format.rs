//! Output: the status table, JSON for scripts, and the Prometheus text
//! exposition format (version 0.0.4) for node_exporter's textfile
//! collector.

use std::fmt::Write as _;

use selfballoon::parse::sanitize;
use serde::Serialize;

use crate::status::{DomainStatus, Num, NUM_FIELDS};

/// Longest name the table shows, bytes (longer ones are cut).
pub const TABLE_NAME_MAX: usize = 32;
/// Longest mode or backend the table shows, bytes.
pub const TABLE_TEXT_MAX: usize = 16;

/// The table's header.
pub const COLUMNS: [&str; 9] = [
    "NAME",
    "DOMID",
    "CURRENT",
    "TARGET",
    "GOAL",
    "COMMITTED",
    "FRONTSWAP",
    "MODE",
    "BACKEND",
];

/// KiB as MiB with one decimal and an `M`: `262144` → `256.0M`.
pub fn mib(kib: u64) -> String {
    let tenths = (u128::from(kib) * 10 + 512) / 1024;
    format!("{}.{}M", tenths / 10, tenths % 10)
}

fn cell(n: &Num) -> String {
    match n {
        Num::Missing => "-".into(),
        Num::Value(v) => mib(*v),
        Num::Malformed(_) => "?".into(),
    }
}

fn text_cell(t: &Option<String>, max: usize) -> String {
    match t {
        None => "-".into(),
        Some(s) if s.is_empty() => "\"\"".into(),
        Some(s) => sanitize(s, max).replace(' ', "_"),
    }
}

/// The status table: one row per domain, sizes in MiB (`-`: not
/// published, `?`: not a number), names cut to [`TABLE_NAME_MAX`] bytes
/// with control characters shown as `?`. Every line ends with `\n`.
pub fn table(rows: &[DomainStatus]) -> String {
    let mut cells: Vec<[String; 9]> = vec![COLUMNS.map(String::from)];
    for r in rows {
        let name = match &r.domain.name {
            Some(n) => sanitize(n, TABLE_NAME_MAX).replace(' ', "_"),
            None => "-".into(),
        };
        cells.push([
            name,
            r.domain.domid.to_string(),
            cell(&r.current_kib),
            cell(&r.target_kib),
            cell(&r.goal_kib),
            cell(&r.committed_kib),
            cell(&r.frontswap_kib),
            text_cell(&r.mode, TABLE_TEXT_MAX),
            text_cell(&r.backend, TABLE_TEXT_MAX),
        ]);
    }
    let mut width = [0usize; 9];
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let left = |i: usize| i == 0 || i >= 7;
    let mut out = String::new();
    for row in &cells {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = width[i].saturating_sub(c.chars().count());
            if left(i) {
                line.push_str(c);
                line.extend(std::iter::repeat_n(' ', pad));
            } else {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(c);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[derive(Serialize)]
struct JsonDomain<'a> {
    name: Option<&'a str>,
    domid: u16,
    current_kib: Option<u64>,
    target_kib: Option<u64>,
    balloon_target_kib: Option<u64>,
    goal_kib: Option<u64>,
    committed_kib: Option<u64>,
    frontswap_kib: Option<u64>,
    mode: Option<&'a str>,
    backend: Option<&'a str>,
    /// Values that are there but not numbers, as published.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    malformed: Vec<JsonMalformed<'a>>,
}

#[derive(Serialize)]
struct JsonMalformed<'a> {
    key: &'static str,
    value: &'a str,
}

#[derive(Serialize)]
struct JsonStatus<'a> {
    domains: Vec<JsonDomain<'a>>,
}

/// `status --json`: `{"domains":[{...}]}` on one line, sizes in KiB,
/// `null` where the guest publishes nothing (or something that is not a
/// number: then also in the domain's `malformed` list).
pub fn json(rows: &[DomainStatus]) -> String {
    let domains = rows
        .iter()
        .map(|r| JsonDomain {
            name: r.domain.name.as_deref(),
            domid: r.domain.domid,
            current_kib: r.current_kib.value(),
            target_kib: r.target_kib.value(),
            balloon_target_kib: r.balloon_target_kib.value(),
            goal_kib: r.goal_kib.value(),
            committed_kib: r.committed_kib.value(),
            frontswap_kib: r.frontswap_kib.value(),
            mode: r.mode.as_deref(),
            backend: r.backend.as_deref(),
            malformed: NUM_FIELDS
                .iter()
                .filter_map(|(key, _, get)| match get(r) {
                    Num::Malformed(v) => Some(JsonMalformed { key, value: v }),
                    _ => None,
                })
                .collect(),
        })
        .collect();
    let mut s = serde_json::to_string(&JsonStatus { domains }).unwrap_or_else(|e| {
        // Serializing these types cannot fail (no maps with non-string
        // keys, no custom serializers); keep the output valid anyway.
        format!("{{\"error\":{:?}}}", e.to_string())
    });
    s.push('\n');
    s
}

/// Escapes a label value for the text exposition format: backslash,
/// double quote and line feed.
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// What each numeric metric is.
fn help(name: &str) -> &'static str {
    match name {
        "current_kib" => "RAM the guest holds (data/selfballoon/current), KiB.",
        "target_kib" => "The toolstack's target (memory/target), KiB.",
        "balloon_target_kib" => {
            "The guest balloon driver's effective target (data/selfballoon/target), KiB."
        }
        "goal_kib" => "The self-balloon controller's goal (data/selfballoon/goal_kib), KiB.",
        "committed_kib" => "Memory the guest has committed (data/selfballoon/committed_kib), KiB.",
        "frontswap_kib" => {
            "Memory held in the guest's swap tier (data/selfballoon/frontswap_kib), KiB."
        }
        _ => "",
    }
}

/// `export`: every metric family with HELP and TYPE lines, one sample
/// per domain that publishes the value, labels `domain` (the name, empty
/// when it has none) and `domid`; `selfballoon_info` carries mode and
/// backend; `selfballoon_domains` counts the domains.
pub fn prometheus(rows: &[DomainStatus]) -> String {
    let mut out = String::new();
    let labels = |r: &DomainStatus| {
        format!(
            "domain=\"{}\",domid=\"{}\"",
            escape_label(r.domain.name.as_deref().unwrap_or("")),
            r.domain.domid
        )
    };
    for (name, _, get) in NUM_FIELDS {
        let _ = writeln!(out, "# HELP selfballoon_{name} {}", help(name));
        let _ = writeln!(out, "# TYPE selfballoon_{name} gauge");
        for r in rows {
            if let Some(v) = get(r).value() {
                let _ = writeln!(out, "selfballoon_{name}{{{}}} {v}", labels(r));
            }
        }
    }
    out.push_str(
        "# HELP selfballoon_info The guest's controller mode and swap backend \
         (data/selfballoon/mode, backend); 1 for every domain that publishes a mode.\n",
    );
    out.push_str("# TYPE selfballoon_info gauge\n");
    for r in rows {
        if let Some(mode) = &r.mode {
            let _ = writeln!(
                out,
                "selfballoon_info{{{},mode=\"{}\",backend=\"{}\"}} 1",
                labels(r),
                escape_label(mode),
                escape_label(r.backend.as_deref().unwrap_or(""))
            );
        }
    }
    out.push_str("# HELP selfballoon_domains Domains listed under /local/domain.\n");
    out.push_str("# TYPE selfballoon_domains gauge\n");
    let _ = writeln!(out, "selfballoon_domains {}", rows.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Domain;

    fn rows() -> Vec<DomainStatus> {
        let dom0 = DomainStatus {
            domain: Domain {
                domid: 0,
                name: Some("Domain-0".into()),
            },
            current_kib: Num::Missing,
            target_kib: Num::Value(524288),
            balloon_target_kib: Num::Missing,
            goal_kib: Num::Missing,
            committed_kib: Num::Missing,
            frontswap_kib: Num::Missing,
            mode: None,
            backend: None,
        };
        let sb = DomainStatus {
            domain: Domain {
                domid: 3,
                name: Some("sb".into()),
            },
            current_kib: Num::Value(117_760),
            target_kib: Num::Value(524_288),
            balloon_target_kib: Num::Value(117_000),
            goal_kib: Num::Value(20_480),
            committed_kib: Num::Value(10_000),
            frontswap_kib: Num::Missing,
            mode: Some("linux".into()),
            backend: None,
        };
        let odd = DomainStatus {
            domain: Domain {
                domid: 12,
                name: Some("we\"ird\\na\nme".into()),
            },
            current_kib: Num::Malformed("12k".into()),
            target_kib: Num::Value(1),
            balloon_target_kib: Num::Missing,
            goal_kib: Num::Missing,
            committed_kib: Num::Missing,
            frontswap_kib: Num::Value(2048),
            mode: Some("2011".into()),
            backend: Some("zpool lz4".into()),
        };
        let nameless = DomainStatus {
            domain: Domain {
                domid: 40,
                name: None,
            },
            ..dom0.clone()
        };
        vec![dom0, sb, odd, nameless]
    }

    #[test]
    fn mib_rounding() {
        assert_eq!(mib(0), "0.0M");
        assert_eq!(mib(262_144), "256.0M");
        assert_eq!(mib(117_760), "115.0M");
        assert_eq!(mib(1_536), "1.5M");
        assert_eq!(mib(51), "0.0M");
        assert_eq!(mib(52), "0.1M");
        assert_eq!(mib(u64::MAX), "18014398509481984.0M");
    }

    #[test]
    fn table_golden() {
        let want = "\
NAME          DOMID  CURRENT  TARGET   GOAL  COMMITTED  FRONTSWAP  MODE   BACKEND
Domain-0          0        -  512.0M      -          -          -  -      -
sb                3   115.0M  512.0M  20.0M       9.8M          -  linux  -
we\"ird\\na?me     12        ?    0.0M      -          -       2.0M  2011   zpool_lz4
-                40        -  512.0M      -          -          -  -      -
";
        assert_eq!(table(&rows()), want);
        assert_eq!(
            table(&[]),
            "NAME  DOMID  CURRENT  TARGET  GOAL  COMMITTED  FRONTSWAP  MODE  BACKEND\n"
        );
    }

    #[test]
    fn table_cuts_long_and_hostile_names() {
        let mut r = rows().remove(1);
        r.domain.name = Some(format!("\u{1b}[2J{}", "x".repeat(100)));
        let t = table(&[r]);
        let line = t.lines().nth(1).unwrap();
        assert!(
            line.starts_with("?[2Jxxxxxxxxxxxxxxxxxxxxxxxxxxxx  "),
            "{line}"
        );
        assert!(!t.contains('\u{1b}'));
    }

    #[test]
    fn json_golden() {
        let want = concat!(
            r#"{"domains":["#,
            r#"{"name":"Domain-0","domid":0,"current_kib":null,"target_kib":524288,"balloon_target_kib":null,"goal_kib":null,"committed_kib":null,"frontswap_kib":null,"mode":null,"backend":null},"#,
            r#"{"name":"sb","domid":3,"current_kib":117760,"target_kib":524288,"balloon_target_kib":117000,"goal_kib":20480,"committed_kib":10000,"frontswap_kib":null,"mode":"linux","backend":null},"#,
            r#"{"name":"we\"ird\\na\nme","domid":12,"current_kib":null,"target_kib":1,"balloon_target_kib":null,"goal_kib":null,"committed_kib":null,"frontswap_kib":2048,"mode":"2011","backend":"zpool lz4","malformed":[{"key":"current_kib","value":"12k"}]},"#,
            r#"{"name":null,"domid":40,"current_kib":null,"target_kib":524288,"balloon_target_kib":null,"goal_kib":null,"committed_kib":null,"frontswap_kib":null,"mode":null,"backend":null}"#,
            "]}\n"
        );
        let got = json(&rows());
        assert_eq!(got, want);
        let v: serde_json::Value = serde_json::from_str(&got).unwrap();
        assert_eq!(v["domains"][2]["name"], "we\"ird\\na\nme");
    }

    #[test]
    fn prometheus_golden() {
        let want = r#"# HELP selfballoon_current_kib RAM the guest holds (data/selfballoon/current), KiB.
# TYPE selfballoon_current_kib gauge
selfballoon_current_kib{domain="sb",domid="3"} 117760
# HELP selfballoon_target_kib The toolstack's target (memory/target), KiB.
# TYPE selfballoon_target_kib gauge
selfballoon_target_kib{domain="Domain-0",domid="0"} 524288
selfballoon_target_kib{domain="sb",domid="3"} 524288
selfballoon_target_kib{domain="we\"ird\\na\nme",domid="12"} 1
selfballoon_target_kib{domain="",domid="40"} 524288
# HELP selfballoon_balloon_target_kib The guest balloon driver's effective target (data/selfballoon/target), KiB.
# TYPE selfballoon_balloon_target_kib gauge
selfballoon_balloon_target_kib{domain="sb",domid="3"} 117000
# HELP selfballoon_goal_kib The self-balloon controller's goal (data/selfballoon/goal_kib), KiB.
# TYPE selfballoon_goal_kib gauge
selfballoon_goal_kib{domain="sb",domid="3"} 20480
# HELP selfballoon_committed_kib Memory the guest has committed (data/selfballoon/committed_kib), KiB.
# TYPE selfballoon_committed_kib gauge
selfballoon_committed_kib{domain="sb",domid="3"} 10000
# HELP selfballoon_frontswap_kib Memory held in the guest's swap tier (data/selfballoon/frontswap_kib), KiB.
# TYPE selfballoon_frontswap_kib gauge
selfballoon_frontswap_kib{domain="we\"ird\\na\nme",domid="12"} 2048
# HELP selfballoon_info The guest's controller mode and swap backend (data/selfballoon/mode, backend); 1 for every domain that publishes a mode.
# TYPE selfballoon_info gauge
selfballoon_info{domain="sb",domid="3",mode="linux",backend=""} 1
selfballoon_info{domain="we\"ird\\na\nme",domid="12",mode="2011",backend="zpool lz4"} 1
# HELP selfballoon_domains Domains listed under /local/domain.
# TYPE selfballoon_domains gauge
selfballoon_domains 4
"#;
        assert_eq!(prometheus(&rows()), want);
    }

    #[test]
    fn label_escaping() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("a\nb"), "a\\nb");
        assert_eq!(escape_label("é\t"), "é\t");
    }
}
