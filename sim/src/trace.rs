//! Memory-demand traces: the CSV format of `../shared/traces/README.md`
//! (`vm,timestamp_s,mem_provisioned_kb,mem_usage_kb`, optionally gzip'd),
//! read into one [`Series`] of held samples per VM.
//!
//! Cleaning, all counted in [`Notes`]:
//! - rows of one VM are sorted by time; rows with the same timestamp are
//!   merged (the largest provisioned and usage values win: in the shared
//!   file VM 20 has such triplicates, one real sample beside two zeros);
//! - a sample with `mem_provisioned_kb` 0 means the VM was not running:
//!   no segment, the VM is absent for that time;
//! - each sample is held until the next one (step interpolation), but at
//!   most `max_hold_s`: a longer gap in the trace is time the VM is absent;
//! - usage above provisioned is clamped to provisioned.

use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// One held sample: from `start_s` (inclusive) to `end_s` (exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seg {
    /// Start, seconds (trace clock).
    pub start_s: u64,
    /// End, seconds; `> start_s`.
    pub end_s: u64,
    /// The VM's RAM (static-max), KiB.
    pub ram_kib: u64,
    /// The sampled memory usage, KiB (`<= ram_kib`).
    pub usage_kib: u64,
}

/// One VM's samples, in time order, not overlapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Series {
    /// The VM's name in the trace.
    pub name: String,
    /// Its held samples.
    pub segs: Vec<Seg>,
}

/// What the reader cleaned up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Notes {
    /// Data rows read.
    pub rows: u64,
    /// Rows merged into another with the same VM and timestamp.
    pub duplicate_rows: u64,
    /// Samples with provisioned memory 0 (VM not running).
    pub off_samples: u64,
    /// Samples whose usage exceeded provisioned (clamped).
    pub clamped_samples: u64,
    /// Gaps longer than `max_hold_s` (VM absent for the rest).
    pub long_gaps: u64,
}

/// A whole trace file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    /// One series per VM with at least one segment, in order of the VMs'
    /// names (numerically when they are numbers).
    pub series: Vec<Series>,
    /// What was cleaned.
    pub notes: Notes,
}

/// What is wrong with a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceErrorKind {
    /// The file could not be opened or read.
    Io(std::io::ErrorKind),
    /// Not valid gzip data.
    Gzip,
    /// The header lacks one of the four columns.
    Header,
    /// A row has fewer fields than the header names.
    FieldCount,
    /// A number field is not decimal digits (or overflows u64).
    NotNumber,
    /// The VM name is empty.
    EmptyName,
    /// No data row at all.
    Empty,
}

/// A trace error with the 1-based line it was found on (0: not a line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceError {
    /// What.
    pub kind: TraceErrorKind,
    /// Where.
    pub line: u64,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            TraceErrorKind::Io(k) => return write!(f, "cannot read the trace: {k}"),
            TraceErrorKind::Gzip => "not valid gzip data",
            TraceErrorKind::Header => {
                "the header must name vm, timestamp_s, mem_provisioned_kb and mem_usage_kb"
            }
            TraceErrorKind::FieldCount => "too few fields",
            TraceErrorKind::NotNumber => "a number field is not unsigned decimal digits",
            TraceErrorKind::EmptyName => "empty vm name",
            TraceErrorKind::Empty => "no data rows",
        };
        write!(f, "line {}: {what}", self.line)
    }
}

impl std::error::Error for TraceError {}

/// The column names a trace must have (any order, more allowed).
pub const COLUMNS: [&str; 4] = ["vm", "timestamp_s", "mem_provisioned_kb", "mem_usage_kb"];

/// Reads a trace file, gzip'd (detected by its magic bytes) or plain.
pub fn read_file(path: &Path, max_hold_s: u64) -> Result<Trace, TraceError> {
    let io = |e: std::io::Error| TraceError {
        kind: TraceErrorKind::Io(e.kind()),
        line: 0,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic).map_err(io)?;
    let f = std::fs::File::open(path).map_err(io)?;
    if n == 2 && magic == [0x1f, 0x8b] {
        read(BufReader::new(flate2::read::GzDecoder::new(f)), max_hold_s)
    } else {
        read(BufReader::new(f), max_hold_s)
    }
}

fn number(s: &str, line: u64) -> Result<u64, TraceError> {
    let bad = TraceError {
        kind: TraceErrorKind::NotNumber,
        line,
    };
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    s.parse().map_err(|_| bad)
}

#[derive(Clone, Copy)]
struct Row {
    t_s: u64,
    ram_kib: u64,
    usage_kib: u64,
}

/// Reads a trace from CSV text.
pub fn read<R: BufRead>(r: R, max_hold_s: u64) -> Result<Trace, TraceError> {
    let mut lines = r.lines();
    let io = |e: std::io::Error, line| TraceError {
        // A plain file does not fail these ways; a gzip stream does when
        // it is corrupt or cut short.
        kind: if matches!(
            e.kind(),
            std::io::ErrorKind::InvalidData
                | std::io::ErrorKind::InvalidInput
                | std::io::ErrorKind::UnexpectedEof
        ) {
            TraceErrorKind::Gzip
        } else {
            TraceErrorKind::Io(e.kind())
        },
        line,
    };
    let header = match lines.next() {
        Some(h) => h.map_err(|e| io(e, 1))?,
        None => {
            return Err(TraceError {
                kind: TraceErrorKind::Empty,
                line: 1,
            })
        }
    };
    let names: Vec<&str> = header.trim_end_matches('\r').split(',').collect();
    let mut idx = [0usize; 4];
    for (i, c) in COLUMNS.iter().enumerate() {
        idx[i] = names
            .iter()
            .position(|n| n.trim() == *c)
            .ok_or(TraceError {
                kind: TraceErrorKind::Header,
                line: 1,
            })?;
    }
    let need = idx.iter().copied().max().unwrap_or(0) + 1;
    let mut order: Vec<String> = Vec::new();
    let mut rows: HashMap<String, Vec<Row>> = HashMap::new();
    let mut notes = Notes::default();
    let mut line_no = 1u64;
    for l in lines {
        line_no += 1;
        let l = l.map_err(|e| io(e, line_no))?;
        let l = l.trim_end_matches('\r');
        if l.is_empty() {
            continue;
        }
        let f: Vec<&str> = l.split(',').collect();
        if f.len() < need {
            return Err(TraceError {
                kind: TraceErrorKind::FieldCount,
                line: line_no,
            });
        }
        let vm = f[idx[0]].trim();
        if vm.is_empty() {
            return Err(TraceError {
                kind: TraceErrorKind::EmptyName,
                line: line_no,
            });
        }
        let row = Row {
            t_s: number(f[idx[1]].trim(), line_no)?,
            ram_kib: number(f[idx[2]].trim(), line_no)?,
            usage_kib: number(f[idx[3]].trim(), line_no)?,
        };
        notes.rows += 1;
        match rows.get_mut(vm) {
            Some(v) => v.push(row),
            None => {
                order.push(vm.to_string());
                rows.insert(vm.to_string(), vec![row]);
            }
        }
    }
    if notes.rows == 0 {
        return Err(TraceError {
            kind: TraceErrorKind::Empty,
            line: line_no,
        });
    }
    let numeric = order.iter().all(|n| n.parse::<u64>().is_ok());
    if numeric {
        order.sort_by_key(|n| n.parse::<u64>().unwrap_or(u64::MAX));
    }
    let mut series = Vec::with_capacity(order.len());
    for name in order {
        let mut v = rows.remove(&name).unwrap_or_default();
        v.sort_by_key(|r| r.t_s);
        let merged = merge_duplicates(&v, &mut notes);
        let segs = to_segments(&merged, max_hold_s, &mut notes);
        if !segs.is_empty() {
            series.push(Series { name, segs });
        }
    }
    Ok(Trace { series, notes })
}

fn merge_duplicates(v: &[Row], notes: &mut Notes) -> Vec<Row> {
    let mut out: Vec<Row> = Vec::with_capacity(v.len());
    for r in v {
        match out.last_mut() {
            Some(last) if last.t_s == r.t_s => {
                last.ram_kib = last.ram_kib.max(r.ram_kib);
                last.usage_kib = last.usage_kib.max(r.usage_kib);
                notes.duplicate_rows += 1;
            }
            _ => out.push(*r),
        }
    }
    out
}

fn to_segments(v: &[Row], max_hold_s: u64, notes: &mut Notes) -> Vec<Seg> {
    let mut segs = Vec::with_capacity(v.len());
    for (i, r) in v.iter().enumerate() {
        if r.ram_kib == 0 {
            notes.off_samples += 1;
            continue;
        }
        let next = v.get(i + 1).map(|n| n.t_s);
        let hold = match next {
            Some(n) if n - r.t_s > max_hold_s => {
                notes.long_gaps += 1;
                max_hold_s
            }
            Some(n) => n - r.t_s,
            // The last sample is held for the usual step.
            None => max_hold_s.min(typical_step_s(v)),
        };
        let usage_kib = if r.usage_kib > r.ram_kib {
            notes.clamped_samples += 1;
            r.ram_kib
        } else {
            r.usage_kib
        };
        if hold > 0 {
            segs.push(Seg {
                start_s: r.t_s,
                end_s: r.t_s + hold,
                ram_kib: r.ram_kib,
                usage_kib,
            });
        }
    }
    segs
}

/// The most common gap between samples (300 s in the shared file); 300
/// for a single sample.
fn typical_step_s(v: &[Row]) -> u64 {
    let mut counts: HashMap<u64, u64> = HashMap::new();
    for w in v.windows(2) {
        let d = w[1].t_s - w[0].t_s;
        if d > 0 {
            *counts.entry(d).or_insert(0) += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|&(d, n)| (n, std::cmp::Reverse(d)))
        .map_or(300, |(d, _)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Trace, TraceError> {
        read(s.as_bytes(), 900)
    }

    #[test]
    fn holds_samples_until_the_next() {
        let t = parse(
            "vm,timestamp_s,mem_provisioned_kb,mem_usage_kb\n\
             1,1000,4096,100\n1,1300,4096,200\n1,1600,4096,300\n",
        )
        .unwrap();
        assert_eq!(t.series.len(), 1);
        let s = &t.series[0].segs;
        assert_eq!(s.len(), 3);
        assert_eq!(
            (s[0].start_s, s[0].end_s, s[0].usage_kib),
            (1000, 1300, 100)
        );
        assert_eq!((s[2].start_s, s[2].end_s), (1600, 1900));
    }

    #[test]
    fn cleans_duplicates_zeros_gaps_and_overuse() {
        let t = parse(
            "mem_usage_kb,vm,mem_provisioned_kb,timestamp_s\r\n\
             50,2,100,0\n0,2,0,300\n70,2,100,300\n0,2,0,600\n0,2,0,900\n\
             500,2,100,5000\n10,10,100,0\n",
        )
        .unwrap();
        assert_eq!(t.series.len(), 2);
        assert_eq!(t.series[0].name, "2");
        assert_eq!(t.series[1].name, "10");
        let s = &t.series[0].segs;
        // 0..300 (50), 300..600 (70, merged with the zero row), the two
        // zero samples dropped, 5000 clamped to 100.
        assert_eq!(s.len(), 3);
        assert_eq!((s[1].start_s, s[1].end_s, s[1].usage_kib), (300, 600, 70));
        assert_eq!((s[2].start_s, s[2].usage_kib), (5000, 100));
        assert_eq!(t.notes.duplicate_rows, 1);
        assert_eq!(t.notes.off_samples, 2);
        assert_eq!(t.notes.clamped_samples, 1);
        // The off samples end the one at 300; no long gap.
        assert_eq!(t.notes.long_gaps, 0);
        let t = parse("vm,timestamp_s,mem_provisioned_kb,mem_usage_kb\n1,0,100,5\n1,5000,100,5\n")
            .unwrap();
        assert_eq!(t.notes.long_gaps, 1);
        assert_eq!(t.series[0].segs[0].end_s, 900);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("vm,timestamp_s,mem_provisioned_kb\n").unwrap_err();
        assert_eq!((e.kind, e.line), (TraceErrorKind::Header, 1));
        let h = "vm,timestamp_s,mem_provisioned_kb,mem_usage_kb\n";
        let e = parse(&format!("{h}1,0,10,5\n1,x,10,5\n")).unwrap_err();
        assert_eq!((e.kind, e.line), (TraceErrorKind::NotNumber, 3));
        let e = parse(&format!("{h}1,-5,10,5\n")).unwrap_err();
        assert_eq!(e.kind, TraceErrorKind::NotNumber);
        let e = parse(&format!("{h}1,5,10\n")).unwrap_err();
        assert_eq!((e.kind, e.line), (TraceErrorKind::FieldCount, 2));
        let e = parse(&format!("{h},5,10,1\n")).unwrap_err();
        assert_eq!(e.kind, TraceErrorKind::EmptyName);
        let e = parse(h).unwrap_err();
        assert_eq!(e.kind, TraceErrorKind::Empty);
        let e = parse(&format!("{h}1,99999999999999999999999,1,1\n")).unwrap_err();
        assert_eq!(e.kind, TraceErrorKind::NotNumber);
        assert_eq!(
            format!("{e}"),
            "line 2: a number field is not unsigned decimal digits"
        );
    }

    #[test]
    fn gzip_and_missing_files() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("sim-trace-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t.csv.gz");
        let mut gz =
            flate2::write::GzEncoder::new(std::fs::File::create(&p).unwrap(), Default::default());
        gz.write_all(b"vm,timestamp_s,mem_provisioned_kb,mem_usage_kb\na,0,8,4\n")
            .unwrap();
        gz.finish().unwrap();
        let t = read_file(&p, 900).unwrap();
        assert_eq!(t.series[0].name, "a");
        let bad = dir.join("bad.gz");
        std::fs::write(&bad, [0x1f, 0x8b, 0, 1, 2, 3]).unwrap();
        assert_eq!(read_file(&bad, 900).unwrap_err().kind, TraceErrorKind::Gzip);
        let e = read_file(&dir.join("none"), 900).unwrap_err();
        assert_eq!(e.kind, TraceErrorKind::Io(std::io::ErrorKind::NotFound));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
