//! The PVH start info and its memory map (`src/xen/start_info.rs`): the
//! loader (or a hostile toolstack) decides every byte the guest finds at
//! `%ebx`, every pointer in it and the memory map.
//!
//! The input is a guest memory image placed at [`BASE`]; its first byte
//! is a set of knobs that, when set, fix up the header so the parser gets
//! past its first checks (the right magic, version 1, tables pointing
//! into the image), the rest of the header stays fuzzed. Reads outside
//! the image fail, and one knob makes the image end mid-page.
//!
//! Properties: tables and strings stay within their limits; every boot
//! data range the parser read is non-empty and does not wrap; and
//! `ram_pfn_ranges` of the map (and of a map taken raw from the input)
//! gives sorted, disjoint, non-touching, non-empty ranges below
//! `MAX_PFN`, each frame of which is whole-page RAM in the map and
//! touched by no other entry (checked at every range edge against a
//! direct reading of the map).

use selfballoon::mm::PAGE_SIZE;
use selfballoon::xen::start_info::{
    memmap_anomalies, parse, ram_pfn_ranges, MemKind, MemRange, PhysRead, PhysReadError,
    HVM_START_MAGIC, MAX_CMDLINE_BYTES, MAX_MEMMAP_ENTRIES, MAX_MODULES, MAX_PFN,
};

/// Where the image sits in guest-physical memory.
pub const BASE: u64 = 0x1000;

struct Image {
    bytes: Vec<u8>,
}

impl PhysRead for Image {
    fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), PhysReadError> {
        let src = paddr
            .checked_sub(BASE)
            .and_then(|o| usize::try_from(o).ok())
            .and_then(|off| self.bytes.get(off..off.checked_add(buf.len())?))
            .ok_or(PhysReadError { paddr })?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

fn put32(b: &mut [u8], off: usize, v: u32) {
    if let Some(s) = b.get_mut(off..off + 4) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

fn put64(b: &mut [u8], off: usize, v: u64) {
    if let Some(s) = b.get_mut(off..off + 8) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

fn get32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map_or(0, |s| u32::from_le_bytes(s.try_into().unwrap()))
}

pub fn check(data: &[u8]) {
    let (&knobs, rest) = data.split_first().unwrap_or((&0, &[]));
    let mut bytes = rest.to_vec();
    if knobs & 1 != 0 {
        put32(&mut bytes, 0, HVM_START_MAGIC);
    }
    if knobs & 2 != 0 {
        put32(&mut bytes, 4, 1);
    }
    // Tables where the fuzzed header's low bits say, inside the image.
    let len = bytes.len() as u64;
    let inside = |v: u32| BASE + u64::from(v) % len.max(1);
    if knobs & 4 != 0 {
        let entries = get32(&bytes, 48) % (MAX_MEMMAP_ENTRIES + 2);
        put32(&mut bytes, 48, entries);
        put64(&mut bytes, 40, BASE + 56);
    }
    if knobs & 8 != 0 {
        let n = get32(&bytes, 12) % (MAX_MODULES + 2);
        put32(&mut bytes, 12, n);
        let at = inside(get32(&bytes, 16));
        put64(&mut bytes, 16, at);
    }
    if knobs & 16 != 0 {
        let at = inside(get32(&bytes, 24));
        put64(&mut bytes, 24, at);
    }
    if knobs & 32 != 0 {
        // Long strings: the image grows to past a command line's limit.
        bytes.resize(bytes.len().max(MAX_CMDLINE_BYTES + 200), b'x');
    }
    let image = Image { bytes };

    if let Ok(si) = parse(&image, BASE) {
        assert!(si.memmap.len() <= MAX_MEMMAP_ENTRIES as usize);
        assert!(si.modules.len() <= MAX_MODULES as usize);
        if let Some(c) = &si.cmdline {
            assert!(c.len() <= MAX_CMDLINE_BYTES);
        }
        for m in &si.modules {
            if let Some(c) = &m.cmdline {
                assert!(c.len() <= MAX_CMDLINE_BYTES);
            }
        }
        assert_eq!(si.boot_data.first().map(|r| r.0), Some(BASE));
        for &(start, n) in &si.boot_data {
            assert!(n > 0, "empty boot data range");
            // Modules are where the loader says (the kernel saturates
            // those); everything else was read, so it exists.
            let module = si.modules.iter().any(|m| (m.paddr, m.size) == (start, n));
            if !module {
                let end = start.checked_add(n).expect("a boot data range wraps");
                assert!(start >= BASE && end <= BASE + image.bytes.len() as u64 + 1);
            }
        }
        check_map(&si.memmap);
    }

    // The map alone, straight from the input (17-byte entries: addr,
    // size, a type byte).
    let map: Vec<MemRange> = rest
        .chunks_exact(17)
        .take(MAX_MEMMAP_ENTRIES as usize)
        .map(|e| MemRange {
            addr: u64::from_le_bytes(e[0..8].try_into().unwrap()),
            size: u64::from_le_bytes(e[8..16].try_into().unwrap()),
            kind: MemKind::from_raw(u32::from(e[16] % 9)),
        })
        .collect();
    check_map(&map);
}

/// Is frame `pfn` usable RAM according to `map`, read directly.
fn oracle(map: &[MemRange], pfn: u64) -> bool {
    if pfn >= MAX_PFN {
        return false;
    }
    let (lo, hi) = (pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE);
    let mut ram = false;
    for e in map {
        let end = e.addr.checked_add(e.size);
        if e.kind == MemKind::Ram {
            if let Some(end) = end {
                ram |= e.addr <= lo && hi <= end;
            }
        } else if e.size > 0 {
            // Touches the page at all (a wrapping end reaches the top).
            let end = end.unwrap_or(u64::MAX);
            if e.addr < hi && end > lo {
                return false;
            }
        }
    }
    ram
}

fn check_map(map: &[MemRange]) {
    let _ = memmap_anomalies(map);
    let ranges = ram_pfn_ranges(map);
    let mut prev_end: Option<u64> = None;
    for r in &ranges {
        assert!(r.count > 0, "empty range");
        let end = r.start.checked_add(r.count).expect("a range wraps");
        assert!(end <= MAX_PFN, "a range reaches past MAX_PFN");
        if let Some(p) = prev_end {
            assert!(r.start > p, "ranges overlap, touch or are unsorted");
        }
        prev_end = Some(end);
        for pfn in [r.start, end - 1, r.start + r.count / 2] {
            assert!(oracle(map, pfn), "frame {pfn:#x} is not RAM");
        }
        if r.start > 0 {
            assert!(
                !oracle(map, r.start - 1),
                "RAM left out before {:#x}",
                r.start
            );
        }
        assert!(!oracle(map, end), "RAM left out at {end:#x}");
    }
    // Every RAM entry's first whole page is either in a range or not RAM.
    for e in map.iter().filter(|e| e.kind == MemKind::Ram) {
        let pfn = e.addr.div_ceil(PAGE_SIZE);
        let in_ranges = ranges.iter().any(|r| r.contains(pfn));
        assert_eq!(in_ranges, oracle(map, pfn), "frame {pfn:#x}");
    }
}
