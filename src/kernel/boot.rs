//! Boot-time setup of memory: read the start info and memory map, build
//! the frame allocator over RAM (its metadata carved from RAM that nothing
//! else uses), reserve what boot left in memory, and grow the heap.

use alloc::string::String;
use alloc::vec::Vec;

use crate::mm::frame::{FrameAllocator, FrameMeta};
use crate::mm::heap::KernelHeap;
use crate::mm::{Pfn, PfnRange, PAGE_SIZE};
use crate::xen::start_info::{self, IdentityMapped, MemRange, StartInfo};

use super::Image;

/// Byte ranges boot code and loaders left in RAM that must survive.
#[derive(Debug, Default)]
pub struct BootData {
    pub ranges: Vec<(u64, u64)>,
}

impl BootData {
    fn add(&mut self, start: u64, len: u64) {
        if len > 0 {
            self.ranges.push((start, start.saturating_add(len)));
        }
    }
}

/// Everything known after reading the start info.
#[derive(Debug)]
pub struct BootInfo {
    pub start_info: StartInfo,
    pub memmap: Vec<MemRange>,
    pub memmap_from_xen: bool,
    pub ram: Vec<PfnRange>,
    pub boot_data: BootData,
}

/// Pages of the boot page tables (`boot/entry.S`: one PML4, one PDPT,
/// four page directories and two page tables for the first 4 MiB),
/// counted as committed kernel memory.
pub const BOOT_PAGE_TABLE_PAGES: u64 = 8;

/// Identity map of the boot page tables: the first 4 GiB.
const IDENTITY_LIMIT: u64 = 4 << 30;

fn identity() -> IdentityMapped {
    // SAFETY: boot/entry.S maps [0, 4 GiB) one-to-one and nothing writes
    // the boot data we read while we read it.
    unsafe { IdentityMapped::new(IDENTITY_LIMIT) }
}

/// Reads the start info at `paddr` and the memory map (from the start info,
/// or from XENMEM_memory_map when it carries none and Xen is there).
pub fn read_boot_info(paddr: u64, image: Image, have_xen: bool) -> Result<BootInfo, String> {
    let mem = identity();
    let si = start_info::parse(&mem, paddr).map_err(|e| alloc::format!("start info: {e:?}"))?;

    // Record where the loader put things, to keep them out of the
    // allocator.
    let mut boot_data = BootData::default();
    boot_data.add(0, 1 << 20); // real-mode area, BIOS data, QEMU's tables
    boot_data.add(image.start, image.end - image.start);
    for &(start, len) in &si.boot_data {
        boot_data.add(start, len);
    }

    let (memmap, from_xen) = if !si.memmap.is_empty() {
        (si.memmap.clone(), false)
    } else if have_xen {
        let entries = crate::xen::calls::memory_map(128)
            .map_err(|e| alloc::format!("XENMEM_memory_map: {e}"))?;
        (entries.into_iter().map(MemRange::from).collect(), true)
    } else {
        return Err(String::from(
            "no memory map (start info v0 and no hypervisor)",
        ));
    };
    let ram = start_info::ram_pfn_ranges(&memmap);
    if ram.is_empty() {
        return Err(String::from("memory map has no RAM"));
    }
    Ok(BootInfo {
        start_info: si,
        memmap,
        memmap_from_xen: from_xen,
        ram,
        boot_data,
    })
}

/// Finds `bytes` of RAM below the identity limit that overlap no boot
/// data: page-aligned start.
fn find_free_run(ram: &[PfnRange], boot: &BootData, bytes: u64) -> Option<u64> {
    let pages = bytes.div_ceil(PAGE_SIZE);
    for r in ram {
        let mut pfn = r.start;
        while pfn.checked_add(pages)? <= r.end() {
            let start = pfn * PAGE_SIZE;
            let end = start + pages * PAGE_SIZE;
            if end > IDENTITY_LIMIT {
                break;
            }
            match boot.ranges.iter().find(|&&(s, e)| s < end && start < e) {
                None => return Some(start),
                Some(&(_, e)) => pfn = e.div_ceil(PAGE_SIZE),
            }
        }
    }
    None
}

/// Builds the frame allocator over `info.ram` with its metadata in RAM,
/// reserving boot data and the metadata itself.
pub fn init_frames(info: &mut BootInfo) -> Result<FrameAllocator<'static>, String> {
    // Only RAM the boot page tables map is managed.
    let ram: Vec<PfnRange> = info
        .ram
        .iter()
        .filter_map(|r| {
            let limit = IDENTITY_LIMIT / PAGE_SIZE;
            let end = r.end().min(limit);
            (end > r.start).then(|| PfnRange {
                start: r.start,
                count: end - r.start,
            })
        })
        .collect();
    let (base, frames) = FrameAllocator::window_for(&ram);
    let meta_bytes = frames * core::mem::size_of::<FrameMeta>() as u64;
    let meta_paddr = find_free_run(&ram, &info.boot_data, meta_bytes)
        .ok_or_else(|| alloc::format!("no room for {meta_bytes} bytes of frame metadata"))?;
    info.boot_data.add(meta_paddr, meta_bytes);
    // SAFETY: [meta_paddr, +meta_bytes) is RAM, identity mapped, overlaps
    // no boot data, the kernel image or anything else in use (checked by
    // find_free_run), and is reserved in the allocator below so nothing
    // will ever reuse it; FrameMeta is plain data, and the slice is
    // initialised by FrameAllocator::new before any read.
    let meta: &'static mut [FrameMeta] = unsafe {
        let p = meta_paddr as *mut FrameMeta;
        for i in 0..frames as usize {
            p.add(i).write(FrameMeta::ABSENT);
        }
        core::slice::from_raw_parts_mut(p, frames as usize)
    };
    let mut fa =
        FrameAllocator::new(meta, base, &ram).map_err(|e| alloc::format!("frames: {e}"))?;
    for &(s, e) in &info.boot_data.ranges {
        let first: Pfn = s / PAGE_SIZE;
        let last = e.div_ceil(PAGE_SIZE);
        // Ranges outside RAM (e.g. the low MiB's holes) are fine to skip.
        let _ = fa.reserve_range(first, last - first);
    }
    Ok(fa)
}

/// Takes `pages` contiguous frames for the heap.
pub fn grow_heap(
    frames: &mut FrameAllocator<'static>,
    heap: &KernelHeap,
    pages: u64,
) -> Result<(), String> {
    let pfn = frames
        .alloc_contiguous(pages, 1)
        .ok_or_else(|| alloc::format!("no {pages} contiguous frames for the heap"))?;
    // SAFETY: the frames were just allocated for us alone, are identity
    // mapped RAM, and are never freed (the heap keeps them for good).
    unsafe {
        heap.add_region((pfn * PAGE_SIZE) as *mut u8, (pages * PAGE_SIZE) as usize)
            .map_err(|e| alloc::format!("heap region: {e:?}"))
    }
}
