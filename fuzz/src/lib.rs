//! Fuzz harness for the parsers of selfballoon that read what another
//! domain wrote: xenstore wire messages, ring indices and a hostile
//! xenstored, tunable values (alone and as the watch handler reads
//! them), strict decimals (`memory/target`), the
//! workload grammar, the kernel command line, and the PVH start info
//! with its memory map.
//!
//! Each target is a module with `check(data: &[u8])`, which feeds the
//! bytes to the parser and panics when a property fails: not only "does
//! not panic", but round trips (a parsed value rendered again parses to
//! the same value), bounds (the ring never touches bytes outside its
//! arrays, never returns more than was there) and consistency with a
//! simple reference model. The same functions serve:
//!
//! - `cargo xtask fuzz`: coverage-guided runs with libFuzzer (the
//!   binaries in `fuzz_targets/`, built with SanitizerCoverage flags on
//!   stable Rust; see `xtask/src/fuzz.rs`);
//! - `cargo test`: every file under `seeds/<target>/` and
//!   `regressions/<target>/` is replayed (`tests/replay.rs`), so a crash
//!   once found stays fixed.
//!
//! Inputs are structure-aware where the raw bytes would rarely get past
//! the first check: [`Input`] turns them into choices and numbers.
#![forbid(unsafe_code)]

pub mod cmdline;
pub mod decimal;
pub mod start_info;
pub mod tunables;
pub mod workload;
pub mod xs_client;
pub mod xs_ring;
pub mod xs_tunables;
pub mod xs_wire;

/// A target's checking function: panics when a property fails.
pub type Check = fn(&[u8]);

/// Every target: its name (the binary, and the folder of its seeds and
/// regressions) and its checking function.
pub const TARGETS: &[(&str, Check)] = &[
    ("xs_wire", xs_wire::check),
    ("xs_ring", xs_ring::check),
    ("xs_client", xs_client::check),
    ("tunables", tunables::check),
    ("xs_tunables", xs_tunables::check),
    ("decimal", decimal::check),
    ("workload", workload::check),
    ("cmdline", cmdline::check),
    ("start_info", start_info::check),
];

/// A cursor over the fuzz input that hands out choices and numbers;
/// once the bytes run out every read gives 0 (so every input is valid).
#[derive(Debug)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// Up to `n` bytes (fewer when the input runs out).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    /// A length-prefixed (one byte) string, lossy UTF-8.
    pub fn string(&mut self) -> String {
        let n = usize::from(self.u8());
        String::from_utf8_lossy(self.bytes(n)).into_owned()
    }

    /// Whatever is left.
    pub fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.data)
    }
}

/// The input as text: valid UTF-8 as is, anything else lossily.
pub fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}
