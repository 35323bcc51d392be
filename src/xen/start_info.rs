//! Parsing of `struct hvm_start_info` (xen/include/public/arch-x86/hvm/
//! start_info.h), which a PVH guest finds at `%ebx` on entry, and turning a
//! memory map into the RAM frame ranges the frame allocator covers.
//!
//! The structure is read from bytes at the documented offsets through
//! [`PhysRead`], so host tests feed hand-built images and the kernel reads
//! identity-mapped memory ([`IdentityMapped`]). Layout (little endian):
//!
//! ```text
//!  0 magic u32   4 version u32   8 flags u32   12 nr_modules u32
//! 16 modlist_paddr u64   24 cmdline_paddr u64   32 rsdp_paddr u64
//! -- version 1 --
//! 40 memmap_paddr u64   48 memmap_entries u32   52 reserved u32   (56)
//! memmap entry (24): addr u64, size u64, type u32, reserved u32
//! module entry (32): paddr u64, size u64, cmdline_paddr u64, reserved u64
//! ```
//!
//! A 0 address means "not present".

use alloc::string::String;
use alloc::vec::Vec;

use crate::mm::{Pfn, PfnRange, PAGE_SHIFT, PAGE_SIZE};

/// `XEN_HVM_START_MAGIC_VALUE`.
pub const HVM_START_MAGIC: u32 = 0x336e_c578;
/// `SIF_PRIVILEGED`: the domain has control-domain privileges.
pub const SIF_PRIVILEGED: u32 = 1 << 0;
/// `SIF_INITDOMAIN`: the domain is dom0.
pub const SIF_INITDOMAIN: u32 = 1 << 1;

/// Most memory map entries accepted.
pub const MAX_MEMMAP_ENTRIES: u32 = 128;
/// Most modules accepted.
pub const MAX_MODULES: u32 = 16;
/// Longest command line kept, in bytes (the rest is dropped): both the
/// bytes taken from guest memory and the UTF-8 text they become. At most
/// one byte more is read per string, to find its NUL.
pub const MAX_CMDLINE_BYTES: usize = 4096;
/// The highest frame number considered (52-bit physical addresses).
pub const MAX_PFN: Pfn = 1 << (52 - PAGE_SHIFT);

const V0_SIZE: usize = 40;
const V1_SIZE: usize = 56;
const MEMMAP_ENTRY_SIZE: usize = 24;
const MODLIST_ENTRY_SIZE: usize = 32;

/// Reading guest-physical memory failed (address not readable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysReadError {
    /// The first address of the failed read.
    pub paddr: u64,
}

/// Read access to guest-physical memory.
pub trait PhysRead {
    /// Fills `buf` with the bytes at `paddr..paddr + buf.len()`.
    fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), PhysReadError>;
}

/// Guest-physical memory identity-mapped below a limit (the kernel's boot
/// page tables).
#[derive(Clone, Copy, Debug)]
pub struct IdentityMapped {
    limit_paddr: u64,
}

impl IdentityMapped {
    /// Physical memory `[0, limit_paddr)` readable at the same virtual
    /// addresses.
    ///
    /// # Safety
    /// Every address below `limit_paddr` must be mapped and readable for
    /// as long as the value is used, and nothing may write the bytes read
    /// concurrently.
    pub unsafe fn new(limit_paddr: u64) -> Self {
        IdentityMapped { limit_paddr }
    }
}

impl PhysRead for IdentityMapped {
    fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), PhysReadError> {
        let end = paddr
            .checked_add(buf.len() as u64)
            .ok_or(PhysReadError { paddr })?;
        if paddr == 0 || end > self.limit_paddr || usize::try_from(end).is_err() {
            return Err(PhysReadError { paddr });
        }
        // SAFETY: `[paddr, end)` is below the limit, so by the contract of
        // `new` it is mapped, readable and not written concurrently; `buf`
        // is a distinct Rust allocation, so the ranges do not overlap; and
        // `paddr` fits in a usize (checked above).
        unsafe {
            core::ptr::copy_nonoverlapping(
                paddr as usize as *const u8,
                buf.as_mut_ptr(),
                buf.len(),
            );
        }
        Ok(())
    }
}

/// Why the start info was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartInfoError {
    /// The magic is not [`HVM_START_MAGIC`].
    BadMagic(u32),
    /// More memory map entries than [`MAX_MEMMAP_ENTRIES`].
    TooManyEntries(u32),
    /// More modules than [`MAX_MODULES`].
    TooManyModules(u32),
    /// A table's address range wraps or is 0 while it has entries.
    BadAddress(u64),
    /// Reading a structure failed.
    Read(PhysReadError),
}

impl From<PhysReadError> for StartInfoError {
    fn from(e: PhysReadError) -> Self {
        StartInfoError::Read(e)
    }
}

/// The type of a memory map entry (`XEN_HVM_MEMMAP_TYPE_*`, same numbers
/// as e820).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MemKind {
    /// Usable RAM (1).
    Ram,
    /// Reserved (2).
    Reserved,
    /// ACPI reclaimable (3).
    Acpi,
    /// ACPI NVS (4).
    Nvs,
    /// Unusable (5).
    Unusable,
    /// Disabled (6).
    Disabled,
    /// Persistent memory (7).
    Pmem,
    /// Anything else.
    Other(u32),
}

impl MemKind {
    /// From the raw type number.
    pub fn from_raw(raw: u32) -> Self {
        match raw {
            1 => MemKind::Ram,
            2 => MemKind::Reserved,
            3 => MemKind::Acpi,
            4 => MemKind::Nvs,
            5 => MemKind::Unusable,
            6 => MemKind::Disabled,
            7 => MemKind::Pmem,
            n => MemKind::Other(n),
        }
    }
}

/// One memory map entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemRange {
    /// Start physical address.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// What is there.
    pub kind: MemKind,
}

/// One boot module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    /// Physical address of the module.
    pub paddr: u64,
    /// Size in bytes.
    pub size: u64,
    /// Its command line, if any.
    pub cmdline: Option<String>,
}

/// What the start info says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartInfo {
    /// Structure version (values above 1 are parsed as version 1).
    pub version: u32,
    /// `SIF_*` flags.
    pub flags: u32,
    /// The command line (lossy UTF-8, at most [`MAX_CMDLINE_BYTES`]).
    pub cmdline: Option<String>,
    /// The command line was cut at [`MAX_CMDLINE_BYTES`]: it had no NUL
    /// within that many bytes, or its lossy UTF-8 form was longer.
    pub cmdline_truncated: bool,
    /// The memory map (empty for version 0 or no map: ask
    /// XENMEM_memory_map).
    pub memmap: Vec<MemRange>,
    /// Boot modules.
    pub modules: Vec<Module>,
    /// Physical address of the ACPI RSDP, if given.
    pub rsdp_paddr: Option<u64>,
    /// `(paddr, bytes)` of everything the loader left in memory that was
    /// read here: this structure, the memory map, the module list, the
    /// modules and every command line (raw length with its NUL). The
    /// kernel keeps these out of the frame allocator.
    pub boot_data: Vec<(u64, u64)>,
}

impl StartInfo {
    /// `SIF_INITDOMAIN`: we are dom0.
    pub fn is_initial_domain(&self) -> bool {
        self.flags & SIF_INITDOMAIN != 0
    }

    /// `SIF_PRIVILEGED`.
    pub fn is_privileged(&self) -> bool {
        self.flags & SIF_PRIVILEGED != 0
    }
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

fn nonzero(v: u64) -> Option<u64> {
    (v != 0).then_some(v)
}

/// Checks that a table of `count` entries of `size` bytes at `paddr` does
/// not wrap and is not at 0.
fn table_bytes(paddr: u64, count: u32, size: usize) -> Result<usize, StartInfoError> {
    let bytes = (count as usize).saturating_mul(size);
    if count > 0 && (paddr == 0 || paddr.checked_add(bytes as u64).is_none()) {
        return Err(StartInfoError::BadAddress(paddr));
    }
    Ok(bytes)
}

/// A string read from guest memory.
struct CString {
    /// At most [`MAX_CMDLINE_BYTES`] bytes of UTF-8.
    text: String,
    /// Something was dropped: the string had no NUL within
    /// [`MAX_CMDLINE_BYTES`] bytes, or replacing invalid UTF-8 made it
    /// longer than that and its tail was cut.
    cut: bool,
    /// Bytes of guest memory it occupies that were looked at (including
    /// the NUL when it was found), at most `MAX_CMDLINE_BYTES + 1`.
    span: u64,
}

/// Reads a NUL-terminated string, bounded exactly:
///
/// - guest memory read: at most `MAX_CMDLINE_BYTES + 1` bytes from
///   `paddr` (the longest string kept, plus its NUL), in reads that never
///   cross a page boundary;
/// - a string of up to [`MAX_CMDLINE_BYTES`] bytes with its NUL is kept
///   whole; a longer one (no NUL in the first `MAX_CMDLINE_BYTES + 1`
///   bytes) is cut to its first `MAX_CMDLINE_BYTES` bytes and marked
///   `cut`; if memory stops being readable right after those bytes the
///   result is the same (cut, not an error), anywhere earlier it is a
///   [`StartInfoError::Read`];
/// - the text is lossy UTF-8 of at most [`MAX_CMDLINE_BYTES`] bytes:
///   each invalid sequence becomes U+FFFD (3 bytes), and when that makes
///   it longer it is cut at the last whole character that fits (`cut`).
fn read_c_string<R: PhysRead>(mem: &R, paddr: u64) -> Result<CString, StartInfoError> {
    // One more than is kept, to tell "exactly the limit" from "longer".
    const WINDOW: usize = MAX_CMDLINE_BYTES + 1;
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 64];
    let mut addr = paddr;
    let (found_nul, span) = loop {
        if bytes.len() >= WINDOW {
            break (false, bytes.len());
        }
        // Read up to the end of the page so a short string at the end of
        // mapped memory does not fail, and never past the window.
        let to_page_end = (PAGE_SIZE - addr % PAGE_SIZE) as usize;
        let n = chunk.len().min(to_page_end).min(WINDOW - bytes.len());
        if let Err(e) = mem.read(addr, &mut chunk[..n]) {
            if bytes.len() == MAX_CMDLINE_BYTES {
                break (false, bytes.len());
            }
            return Err(e.into());
        }
        if let Some(nul) = chunk[..n].iter().position(|&c| c == 0) {
            bytes.extend_from_slice(&chunk[..nul]);
            break (true, bytes.len() + 1);
        }
        bytes.extend_from_slice(&chunk[..n]);
        addr = addr
            .checked_add(n as u64)
            .ok_or(StartInfoError::BadAddress(paddr))?;
    };
    let mut cut = !found_nul;
    bytes.truncate(MAX_CMDLINE_BYTES);
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if text.len() > MAX_CMDLINE_BYTES {
        let mut end = MAX_CMDLINE_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        cut = true;
    }
    Ok(CString {
        text,
        cut,
        span: span as u64,
    })
}

fn read_cmdline<R: PhysRead>(mem: &R, paddr: u64) -> Result<Option<CString>, StartInfoError> {
    nonzero(paddr).map(|p| read_c_string(mem, p)).transpose()
}

/// Parses the start info at `paddr`.
pub fn parse<R: PhysRead>(mem: &R, paddr: u64) -> Result<StartInfo, StartInfoError> {
    let mut hdr = [0u8; V1_SIZE];
    mem.read(paddr, &mut hdr[..V0_SIZE])?;
    let magic = u32_at(&hdr, 0);
    if magic != HVM_START_MAGIC {
        return Err(StartInfoError::BadMagic(magic));
    }
    let version = u32_at(&hdr, 4);
    if version >= 1 {
        let rest_paddr = paddr
            .checked_add(V0_SIZE as u64)
            .ok_or(StartInfoError::BadAddress(paddr))?;
        mem.read(rest_paddr, &mut hdr[V0_SIZE..])?;
    }
    let flags = u32_at(&hdr, 8);
    let nr_modules = u32_at(&hdr, 12);
    let modlist_paddr = u64_at(&hdr, 16);
    let cmdline_paddr = u64_at(&hdr, 24);
    let rsdp_paddr = u64_at(&hdr, 32);
    let memmap_paddr = u64_at(&hdr, 40);
    let memmap_entries = u32_at(&hdr, 48);

    let memmap = if version >= 1 && memmap_entries > 0 {
        if memmap_entries > MAX_MEMMAP_ENTRIES {
            return Err(StartInfoError::TooManyEntries(memmap_entries));
        }
        let mut buf = vec_zeroed(table_bytes(
            memmap_paddr,
            memmap_entries,
            MEMMAP_ENTRY_SIZE,
        )?);
        mem.read(memmap_paddr, &mut buf)?;
        buf.chunks_exact(MEMMAP_ENTRY_SIZE)
            .map(|e| MemRange {
                addr: u64_at(e, 0),
                size: u64_at(e, 8),
                kind: MemKind::from_raw(u32_at(e, 16)),
            })
            .collect()
    } else {
        Vec::new()
    };

    // Where the loader put what we read, for the kernel to keep.
    let header_bytes = if version >= 1 { V1_SIZE } else { V0_SIZE };
    let mut boot_data = alloc::vec![(paddr, header_bytes as u64)];
    if !memmap.is_empty() {
        boot_data.push((memmap_paddr, (memmap.len() * MEMMAP_ENTRY_SIZE) as u64));
    }

    let mut modules = Vec::new();
    if nr_modules > 0 && modlist_paddr != 0 {
        if nr_modules > MAX_MODULES {
            return Err(StartInfoError::TooManyModules(nr_modules));
        }
        let mut buf = vec_zeroed(table_bytes(modlist_paddr, nr_modules, MODLIST_ENTRY_SIZE)?);
        mem.read(modlist_paddr, &mut buf)?;
        boot_data.push((modlist_paddr, buf.len() as u64));
        for e in buf.chunks_exact(MODLIST_ENTRY_SIZE) {
            let module_cmdline_paddr = u64_at(e, 16);
            let module_cmdline = read_cmdline(mem, module_cmdline_paddr)?;
            if let Some(c) = &module_cmdline {
                boot_data.push((module_cmdline_paddr, c.span));
            }
            let m = Module {
                paddr: u64_at(e, 0),
                size: u64_at(e, 8),
                cmdline: module_cmdline.map(|c| c.text),
            };
            boot_data.push((m.paddr, m.size));
            modules.push(m);
        }
    }

    let cmdline = read_cmdline(mem, cmdline_paddr)?;
    if let Some(c) = &cmdline {
        boot_data.push((cmdline_paddr, c.span));
    }
    let cmdline_truncated = cmdline.as_ref().is_some_and(|c| c.cut);
    let cmdline = cmdline.map(|c| c.text);
    boot_data.retain(|&(_, len)| len > 0);
    Ok(StartInfo {
        version,
        flags,
        cmdline,
        cmdline_truncated,
        memmap,
        modules,
        rsdp_paddr: nonzero(rsdp_paddr),
        boot_data,
    })
}

fn vec_zeroed(len: usize) -> Vec<u8> {
    alloc::vec![0u8; len]
}

impl From<crate::xen::abi::e820entry> for MemRange {
    /// One entry of the map XENMEM_memory_map fills in.
    fn from(e: crate::xen::abi::e820entry) -> Self {
        // Copies out of the packed struct before use.
        let (addr, size, kind) = (e.addr, e.size, e.type_);
        MemRange {
            addr,
            size,
            kind: MemKind::from_raw(kind),
        }
    }
}

/// Turns a memory map into sorted, merged RAM frame ranges: only whole
/// pages of RAM entries count (partial pages trimmed), anything any
/// non-RAM entry touches is removed (a page is RAM only if nothing says
/// otherwise), and frames at or above [`MAX_PFN`] are dropped.
///
/// Entries that make no sense are never trusted as RAM: a RAM entry whose
/// end wraps (`addr + size` overflows u64, including ending exactly at
/// 2^64) is ignored, as are zero-sized entries and RAM entries that cover
/// no whole page. A non-RAM entry whose end wraps removes everything from
/// its start up (what it claims cannot be said more safely). Never
/// panics. [`memmap_anomalies`] counts such entries, for the caller to
/// report.
pub fn ram_pfn_ranges(map: &[MemRange]) -> Vec<PfnRange> {
    // Half-open pfn intervals.
    let mut ram: Vec<(Pfn, Pfn)> = Vec::new();
    let mut holes: Vec<(Pfn, Pfn)> = Vec::new();
    for e in map {
        let end_addr = e.addr.checked_add(e.size);
        if e.kind == MemKind::Ram {
            let Some(end_addr) = end_addr else { continue };
            let start = e.addr.div_ceil(PAGE_SIZE);
            let end = (end_addr / PAGE_SIZE).min(MAX_PFN);
            if start < end {
                ram.push((start, end));
            }
        } else if e.size > 0 {
            // A zero-sized entry claims nothing, wherever it starts (at an
            // unaligned address it would otherwise cover its page).
            let start = e.addr / PAGE_SIZE;
            let end = end_addr.unwrap_or(u64::MAX).div_ceil(PAGE_SIZE);
            if start < end {
                holes.push((start, end));
            }
        }
    }
    let merged = merge(ram);
    let holes = merge(holes);
    let mut out = Vec::new();
    for (mut start, end) in merged {
        for &(hs, he) in &holes {
            if he <= start || hs >= end {
                continue;
            }
            if hs > start {
                out.push(PfnRange {
                    start,
                    count: hs - start,
                });
            }
            start = start.max(he);
        }
        if start < end {
            out.push(PfnRange {
                start,
                count: end - start,
            });
        }
    }
    out
}

/// Memory map entries [`ram_pfn_ranges`] did not take as written. All
/// counts saturate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemMapAnomalies {
    /// RAM entries whose end wraps past 2^64: ignored.
    pub wrapping_ram: u32,
    /// Non-RAM entries whose end wraps: taken to reach the top of the
    /// address space.
    pub wrapping_other: u32,
    /// Zero-sized entries (of any kind): ignored.
    pub empty: u32,
    /// Non-empty, non-wrapping RAM entries without one whole page:
    /// nothing usable.
    pub no_whole_page: u32,
    /// Non-wrapping RAM entries reaching at or above [`MAX_PFN`]: cut
    /// there (or dropped).
    pub above_max_pfn: u32,
}

impl MemMapAnomalies {
    /// Anything to report.
    pub fn any(&self) -> bool {
        *self != MemMapAnomalies::default()
    }
}

/// Counts the entries of `map` that [`ram_pfn_ranges`] ignores, clamps or
/// widens. The map comes from the loader or the hypervisor, so nothing
/// here is fatal; a boot path should log the counts (once, as a
/// warning) when [`MemMapAnomalies::any`] is true.
pub fn memmap_anomalies(map: &[MemRange]) -> MemMapAnomalies {
    let mut a = MemMapAnomalies::default();
    let bump = |n: &mut u32| *n = n.saturating_add(1);
    for e in map {
        let is_ram = e.kind == MemKind::Ram;
        if e.size == 0 {
            bump(&mut a.empty);
            continue;
        }
        let Some(end_addr) = e.addr.checked_add(e.size) else {
            bump(if is_ram {
                &mut a.wrapping_ram
            } else {
                &mut a.wrapping_other
            });
            continue;
        };
        if !is_ram {
            continue;
        }
        if e.addr.div_ceil(PAGE_SIZE) >= end_addr / PAGE_SIZE {
            bump(&mut a.no_whole_page);
        } else if end_addr / PAGE_SIZE > MAX_PFN {
            bump(&mut a.above_max_pfn);
        }
    }
    a
}

/// Sorts and merges overlapping or touching intervals.
fn merge(mut v: Vec<(Pfn, Pfn)>) -> Vec<(Pfn, Pfn)> {
    v.sort_unstable();
    let mut out: Vec<(Pfn, Pfn)> = Vec::with_capacity(v.len());
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    /// Guest memory: a byte image at `base`.
    struct Image {
        base: u64,
        bytes: Vec<u8>,
    }

    impl PhysRead for Image {
        fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), PhysReadError> {
            let off = paddr
                .checked_sub(self.base)
                .and_then(|o| usize::try_from(o).ok())
                .ok_or(PhysReadError { paddr })?;
            let src = off
                .checked_add(buf.len())
                .and_then(|end| self.bytes.get(off..end))
                .ok_or(PhysReadError { paddr })?;
            buf.copy_from_slice(src);
            Ok(())
        }
    }

    const BASE: u64 = 0x1000;

    fn put32(b: &mut [u8], off: usize, v: u32) {
        b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn put64(b: &mut [u8], off: usize, v: u64) {
        b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// start info at BASE, cmdline at BASE+0x100, memmap at BASE+0x200,
    /// modlist at BASE+0x400.
    fn image(version: u32, cmdline: &[u8], map: &[(u64, u64, u32)]) -> Image {
        let mut b = vec![0u8; 0x1000];
        put32(&mut b, 0, HVM_START_MAGIC);
        put32(&mut b, 4, version);
        put32(&mut b, 8, SIF_PRIVILEGED | SIF_INITDOMAIN);
        put64(&mut b, 24, BASE + 0x100);
        put64(&mut b, 32, 0xe0000);
        b[0x100..0x100 + cmdline.len()].copy_from_slice(cmdline);
        put64(&mut b, 40, BASE + 0x200);
        put32(&mut b, 48, map.len() as u32);
        for (i, &(addr, size, ty)) in map.iter().enumerate() {
            let o = 0x200 + i * 24;
            put64(&mut b, o, addr);
            put64(&mut b, o + 8, size);
            put32(&mut b, o + 16, ty);
        }
        Image {
            base: BASE,
            bytes: b,
        }
    }

    const MAP: &[(u64, u64, u32)] = &[
        (0, 0x9f000, 1),
        (0xf0000, 0x10000, 2),
        (0x100000, 0xff00000, 1),
        (0xfc000000, 0x1000000, 2),
    ];

    #[test]
    fn parses_v1() {
        let img = image(1, b"selftest loglevel=debug\0junk", MAP);
        let si = parse(&img, BASE).unwrap();
        assert_eq!(si.version, 1);
        assert!(si.is_initial_domain() && si.is_privileged());
        assert_eq!(si.cmdline.as_deref(), Some("selftest loglevel=debug"));
        assert!(!si.cmdline_truncated);
        assert_eq!(si.rsdp_paddr, Some(0xe0000));
        assert_eq!(si.memmap.len(), 4);
        // What the kernel must keep: the structure, the map, and the
        // command line's raw bytes with its NUL (not the junk after it).
        assert_eq!(
            si.boot_data,
            vec![(BASE, 56), (BASE + 0x200, 4 * 24), (BASE + 0x100, 24)]
        );
        assert_eq!(
            si.memmap[1],
            MemRange {
                addr: 0xf0000,
                size: 0x10000,
                kind: MemKind::Reserved
            }
        );
        assert_eq!(
            ram_pfn_ranges(&si.memmap),
            vec![
                PfnRange {
                    start: 0,
                    count: 0x9f
                },
                PfnRange {
                    start: 0x100,
                    count: 0xff00
                }
            ]
        );
    }

    #[test]
    fn v0_ignores_memmap_fields_and_later_versions_parse_v1_prefix() {
        let mut img = image(0, b"\0", MAP);
        // A v0 structure may be followed by anything, even unreadable memory.
        img.bytes.truncate(0x200);
        put64(&mut img.bytes, 40, 0xdead_beef);
        let si = parse(&img, BASE).unwrap();
        assert_eq!(si.version, 0);
        assert!(si.memmap.is_empty());
        assert_eq!(si.cmdline.as_deref(), Some(""));
        let img = image(7, b"x\0", MAP);
        let si = parse(&img, BASE).unwrap();
        assert_eq!((si.version, si.memmap.len()), (7, 4));
    }

    #[test]
    fn rejects_bad_headers() {
        let mut img = image(1, b"\0", MAP);
        put32(&mut img.bytes, 0, 0x1234);
        assert_eq!(parse(&img, BASE), Err(StartInfoError::BadMagic(0x1234)));
        let mut img = image(1, b"\0", MAP);
        put32(&mut img.bytes, 48, 129);
        assert_eq!(parse(&img, BASE), Err(StartInfoError::TooManyEntries(129)));
        let mut img = image(1, b"\0", MAP);
        put64(&mut img.bytes, 40, u64::MAX - 8);
        assert_eq!(
            parse(&img, BASE),
            Err(StartInfoError::BadAddress(u64::MAX - 8))
        );
        let mut img = image(1, b"\0", MAP);
        put64(&mut img.bytes, 40, 0);
        assert_eq!(parse(&img, BASE), Err(StartInfoError::BadAddress(0)));
        let mut img = image(1, b"\0", MAP);
        put64(&mut img.bytes, 24, 0x9000_0000);
        assert!(matches!(parse(&img, BASE), Err(StartInfoError::Read(_))));
        assert!(matches!(parse(&img, 0x10), Err(StartInfoError::Read(_))));
        assert!(matches!(
            parse(&img, u64::MAX - 3),
            Err(StartInfoError::Read(_))
        ));
    }

    #[test]
    fn cmdline_bounded_lossy_and_optional() {
        let mut long = vec![b'a'; MAX_CMDLINE_BYTES + 100];
        long.push(0);
        let mut img = image(1, b"\0", MAP);
        img.bytes.resize(0x10000, 0);
        img.bytes[0x100..0x100 + long.len()].copy_from_slice(&long);
        let si = parse(&img, BASE).unwrap();
        assert!(si.cmdline_truncated);
        assert_eq!(si.cmdline.unwrap().len(), MAX_CMDLINE_BYTES);
        let img = image(1, b"a\xffb\0", MAP);
        assert_eq!(
            parse(&img, BASE).unwrap().cmdline.as_deref(),
            Some("a\u{fffd}b")
        );
        let mut img = image(1, b"x\0", MAP);
        put64(&mut img.bytes, 24, 0);
        assert_eq!(parse(&img, BASE).unwrap().cmdline, None);
        // No NUL before the end of memory: an error, not a hang or panic.
        let mut img = image(1, b"\0", MAP);
        img.bytes[0x100..].fill(b'z');
        assert!(matches!(parse(&img, BASE), Err(StartInfoError::Read(_))));
    }

    /// Guest memory that records how far reads went.
    struct Watched<'a> {
        img: &'a Image,
        /// Highest end address of a read, successful or not.
        end: core::cell::Cell<u64>,
    }

    impl PhysRead for Watched<'_> {
        fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), PhysReadError> {
            self.end.set(self.end.get().max(paddr + buf.len() as u64));
            self.img.read(paddr, buf)
        }
    }

    /// `text` at `BASE + off` in two pages of 'junk' memory (plus `extra`
    /// readable bytes after them), read with [`read_c_string`]; returns the
    /// string and how many bytes from `BASE + off` were looked at.
    fn c_string_at(
        off: usize,
        text: &[u8],
        extra: usize,
    ) -> (Result<CString, StartInfoError>, u64) {
        let len = (off + text.len()).max(2 * PAGE_SIZE as usize) + extra;
        let mut bytes = vec![b'j'; len];
        bytes[off..off + text.len()].copy_from_slice(text);
        let img = Image { base: BASE, bytes };
        let mem = Watched {
            img: &img,
            end: core::cell::Cell::new(0),
        };
        let r = read_c_string(&mem, BASE + off as u64);
        let looked = mem.end.get().saturating_sub(BASE + off as u64);
        (r, looked)
    }

    #[test]
    fn cmdline_bound_is_exact_at_every_alignment() {
        const MAX: usize = MAX_CMDLINE_BYTES;
        // Offsets around chunk and page boundaries, so the string starts
        // aligned, unaligned, and just before a page end.
        for off in [0, 1, 7, 63, 64, 65, 100, 4031, 4032, 4095] {
            for len in [0, 1, MAX - 1, MAX, MAX + 1, MAX + 63, MAX + 64, MAX + 500] {
                let mut text = vec![b'a'; len];
                text.push(0);
                let (r, looked) = c_string_at(off, &text, 0);
                let c = r.unwrap();
                let what = alloc::format!("off {off} len {len}");
                assert!(looked <= MAX as u64 + 1, "{what}: looked at {looked}");
                if len <= MAX {
                    // The whole string and its NUL (reads may go a chunk
                    // beyond the NUL, but not beyond the bound above).
                    assert!(!c.cut, "{what}");
                    assert_eq!(c.text.len(), len, "{what}");
                    assert_eq!(c.span, len as u64 + 1, "{what}");
                    assert!(looked > len as u64, "{what}");
                } else {
                    assert!(c.cut, "{what}");
                    assert_eq!(c.text.len(), MAX, "{what}");
                    assert_eq!(c.span, MAX as u64 + 1, "{what}");
                }
            }
        }
    }

    #[test]
    fn cmdline_of_max_bytes_at_a_page_boundary_is_whole() {
        // 4096 bytes filling a page exactly, NUL first on the next one.
        let mut text = vec![b'x'; MAX_CMDLINE_BYTES];
        text.push(0);
        let (r, _) = c_string_at(0, &text, 0);
        let c = r.unwrap();
        assert!(!c.cut);
        assert_eq!(c.text.len(), MAX_CMDLINE_BYTES);
        // Unterminated in readable memory that ends right after the
        // limit: cut, not an error.
        let img = Image {
            base: BASE,
            bytes: vec![b'x'; MAX_CMDLINE_BYTES],
        };
        let c = read_c_string(&img, BASE).unwrap();
        assert!(c.cut);
        assert_eq!(
            (c.text.len(), c.span),
            (MAX_CMDLINE_BYTES, MAX_CMDLINE_BYTES as u64)
        );
    }

    #[test]
    fn lossy_cmdline_stays_within_the_byte_bound() {
        for len in [
            1365,
            1366,
            MAX_CMDLINE_BYTES - 1,
            MAX_CMDLINE_BYTES,
            MAX_CMDLINE_BYTES + 9,
        ] {
            let mut text = vec![0xff; len];
            text.push(0);
            let (r, looked) = c_string_at(3, &text, 0);
            let c = r.unwrap();
            assert!(c.text.len() <= MAX_CMDLINE_BYTES, "{len}: {}", c.text.len());
            assert!(looked <= MAX_CMDLINE_BYTES as u64 + 1);
            // Every byte became U+FFFD (3 bytes); cut when they do not fit.
            let kept = len.min(MAX_CMDLINE_BYTES / 3);
            assert_eq!(c.text, "\u{fffd}".repeat(kept), "{len}");
            assert_eq!(c.cut, kept < len, "{len}");
        }
        // A multi-byte character straddling the limit is dropped whole.
        let mut text = vec![b'a'; MAX_CMDLINE_BYTES - 1];
        text.extend_from_slice("é".as_bytes());
        text.push(0);
        let (r, _) = c_string_at(0, &text, 0);
        let c = r.unwrap();
        assert!(c.cut);
        assert_eq!(c.text.len(), MAX_CMDLINE_BYTES - 1);
        assert!(c.text.bytes().all(|b| b == b'a'));
    }

    #[test]
    fn modules_are_parsed_and_capped() {
        let mut img = image(1, b"\0", MAP);
        put32(&mut img.bytes, 12, 2);
        put64(&mut img.bytes, 16, BASE + 0x400);
        put64(&mut img.bytes, 0x400, 0x200000);
        put64(&mut img.bytes, 0x408, 4096);
        put64(&mut img.bytes, 0x410, BASE + 0x800);
        img.bytes[0x800..0x804].copy_from_slice(b"mod\0");
        let si = parse(&img, BASE).unwrap();
        assert_eq!(si.modules.len(), 2);
        assert_eq!(
            si.modules[0],
            Module {
                paddr: 0x200000,
                size: 4096,
                cmdline: Some("mod".into())
            }
        );
        assert_eq!(si.modules[1].cmdline, None);
        put32(&mut img.bytes, 12, 1000);
        assert_eq!(parse(&img, BASE), Err(StartInfoError::TooManyModules(1000)));
    }

    #[test]
    fn identity_mapped_reads_host_memory() {
        let img = image(1, b"hello\0", MAP);
        let base = img.bytes.as_ptr() as u64;
        // SAFETY: on the host, the image's bytes are mapped at their own
        // address and nothing writes them during the test.
        let mem = unsafe { IdentityMapped::new(base + img.bytes.len() as u64) };
        // The table addresses inside the image are not host addresses; read
        // just the header and check the magic.
        let mut b = [0u8; 4];
        mem.read(base, &mut b).unwrap();
        assert_eq!(u32::from_le_bytes(b), HVM_START_MAGIC);
        assert!(mem.read(base + img.bytes.len() as u64 - 2, &mut b).is_err());
        assert!(mem.read(0, &mut b).is_err());
    }

    #[test]
    fn e820_and_ram_ranges_handle_garbage() {
        let map: Vec<MemRange> = [
            (0x1800u64, 0x3000u64, 1u32),
            (0x2000, 0x1000, 2),
            (u64::MAX - 10, 100, 1),
        ]
        .into_iter()
        .map(|(addr, size, type_)| crate::xen::abi::e820entry { addr, size, type_ }.into())
        .collect();
        assert_eq!(map.len(), 3);
        assert_eq!(map[2].kind, MemKind::Ram);
        // RAM 0x1800..0x4800 → whole pages 2..4, minus reserved page 2.
        assert_eq!(ram_pfn_ranges(&map), vec![PfnRange { start: 3, count: 1 }]);
        // Overlapping and touching RAM merges; above 52 bits is dropped.
        let map = [
            MemRange {
                addr: 0x10000,
                size: 0x10000,
                kind: MemKind::Ram,
            },
            MemRange {
                addr: 0,
                size: 0x18000,
                kind: MemKind::Ram,
            },
            MemRange {
                addr: 0x20000,
                size: 0x1000,
                kind: MemKind::Ram,
            },
            MemRange {
                addr: 1 << 52,
                size: 1 << 20,
                kind: MemKind::Ram,
            },
            MemRange {
                addr: 0x5000,
                size: 0,
                kind: MemKind::Reserved,
            },
        ];
        assert_eq!(
            ram_pfn_ranges(&map),
            vec![PfnRange {
                start: 0,
                count: 0x21
            }]
        );
    }

    fn ram(addr: u64, size: u64) -> MemRange {
        MemRange {
            addr,
            size,
            kind: MemKind::Ram,
        }
    }

    fn reserved(addr: u64, size: u64) -> MemRange {
        MemRange {
            addr,
            size,
            kind: MemKind::Reserved,
        }
    }

    #[test]
    fn wrapping_ram_entries_are_ignored() {
        const LOW: MemRange = MemRange {
            addr: 0,
            size: 0x9f000,
            kind: MemKind::Ram,
        };
        let low = vec![PfnRange {
            start: 0,
            count: 0x9f,
        }];
        // The fuzz case: RAM {1 MiB, u64::MAX} claimed RAM up to MAX_PFN.
        assert_eq!(ram_pfn_ranges(&[ram(1 << 20, u64::MAX)]), vec![]);
        assert_eq!(ram_pfn_ranges(&[LOW, ram(1 << 20, u64::MAX)]), low);
        for (addr, size) in [
            (0x1000, u64::MAX - 0xfff), // ends exactly at 2^64
            (0x1000, u64::MAX),
            (u64::MAX, 1),
            (u64::MAX, u64::MAX),
            (1 << 51, u64::MAX - (1 << 50)),
        ] {
            assert_eq!(
                ram_pfn_ranges(&[LOW, ram(addr, size)]),
                low,
                "{addr:#x}+{size:#x}"
            );
        }
        // The largest entry that does not wrap still counts (clamped).
        assert_eq!(
            ram_pfn_ranges(&[ram(1 << 20, u64::MAX - (1 << 20))]),
            vec![PfnRange {
                start: 0x100,
                count: MAX_PFN - 0x100
            }]
        );
        // A wrapping non-RAM entry still takes away everything from its
        // start up: nothing above it is known to be RAM.
        assert_eq!(
            ram_pfn_ranges(&[ram(0, 0x10_0000), reserved(0x8_0800, u64::MAX)]),
            vec![PfnRange {
                start: 0,
                count: 0x80
            }]
        );
    }

    #[test]
    fn empty_and_sub_page_entries() {
        // Zero-sized, sub-page and page-straddling RAM without a whole
        // page give nothing.
        for e in [
            ram(0x5000, 0),
            ram(0, 0),
            ram(u64::MAX, 0),
            ram(0x5000, 0xfff),
            ram(0x5001, 0xfff),
            ram(0x5800, 0x1000),
            ram(0x5fff, 0x1000),
        ] {
            assert_eq!(ram_pfn_ranges(&[e]), vec![], "{e:?}");
        }
        // Exactly one page, however it is written.
        for e in [
            ram(0x5000, 0x1000),
            ram(0x4fff, 0x1001),
            ram(0x4001, 0x2ffe),
        ] {
            assert_eq!(
                ram_pfn_ranges(&[e]),
                vec![PfnRange { start: 5, count: 1 }],
                "{e:?}"
            );
        }
        // A zero-sized hole takes nothing away; a one-byte hole takes its
        // page.
        let r = ram(0x4000, 0x3000);
        assert_eq!(
            ram_pfn_ranges(&[r, reserved(0x5000, 0)]),
            vec![PfnRange { start: 4, count: 3 }]
        );
        assert_eq!(
            ram_pfn_ranges(&[r, reserved(0x5fff, 1)]),
            vec![
                PfnRange { start: 4, count: 1 },
                PfnRange { start: 6, count: 1 }
            ]
        );
    }

    /// Found by the `start_info` fuzz target (fuzz/regressions/
    /// start_info/): a zero-sized non-RAM entry at an address that is not
    /// page-aligned took its whole page out of RAM, although zero-sized
    /// entries are ignored (and counted as such by `memmap_anomalies`).
    #[test]
    fn zero_sized_unaligned_hole_takes_nothing_away() {
        let r = ram(0x4000, 0x3000);
        for addr in [0x5010, 0x5fff, 0x4001, 0x6fff] {
            assert_eq!(
                ram_pfn_ranges(&[r, reserved(addr, 0)]),
                vec![PfnRange { start: 4, count: 3 }],
                "{addr:#x}"
            );
        }
        assert_eq!(
            ram_pfn_ranges(&[ram(0, 1 << 20), reserved(0x10, 0)]),
            vec![PfnRange {
                start: 0,
                count: 256
            }]
        );
    }

    #[test]
    fn anomalies_are_counted_for_the_caller() {
        assert_eq!(memmap_anomalies(&[]), MemMapAnomalies::default());
        assert!(!memmap_anomalies(&[ram(0, 0x9f000), reserved(0xf0000, 0x10000)]).any());
        let a = memmap_anomalies(&[
            ram(1 << 20, u64::MAX),
            ram(u64::MAX, 1),
            reserved(0x1000, u64::MAX),
            ram(0x5000, 0),
            reserved(0x5000, 0),
            ram(0x5800, 0x1000),
            ram(1 << 52, 1 << 20),
            ram((1 << 52) - 0x1000, 0x2000),
            ram(0, 0x9f000),
        ]);
        assert_eq!(
            a,
            MemMapAnomalies {
                wrapping_ram: 2,
                wrapping_other: 1,
                empty: 2,
                no_whole_page: 1,
                above_max_pfn: 2,
            }
        );
        assert!(a.any());
    }

    fn kind() -> impl Strategy<Value = MemKind> {
        (0u32..9).prop_map(MemKind::from_raw)
    }

    proptest! {
        #[test]
        fn ram_ranges_sorted_disjoint_and_truly_ram(
            map in proptest::collection::vec((0u64..1 << 24, 0u64..1 << 20, kind()), 0..20),
            big in proptest::collection::vec((any::<u64>(), any::<u64>(), kind()), 0..4),
        ) {
            let map: Vec<MemRange> = map.into_iter().chain(big)
                .map(|(addr, size, kind)| MemRange { addr, size, kind })
                .collect();
            let out = ram_pfn_ranges(&map);
            for w in out.windows(2) {
                prop_assert!(w[0].end() < w[1].start);
            }
            for r in &out {
                prop_assert!(r.count > 0 && r.end() <= MAX_PFN);
                for pfn in [r.start, r.end() - 1] {
                    let (lo, hi) = (pfn * PAGE_SIZE, pfn * PAGE_SIZE + PAGE_SIZE);
                    prop_assert!(map.iter().any(|e| e.kind == MemKind::Ram
                        && e.addr <= lo && e.addr.saturating_add(e.size) >= hi));
                    prop_assert!(!map.iter().any(|e| e.kind != MemKind::Ram
                        && e.addr < hi && e.addr.saturating_add(e.size) > lo));
                }
            }
        }
    }
}
