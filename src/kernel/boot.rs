//! Boot-time setup of memory: read the start info and memory map, build
//! the frame allocator over RAM (its metadata carved from RAM that nothing
//! else uses), reserve what boot left in memory, and grow the heap.

use alloc::string::String;
use alloc::vec::Vec;

use crate::mm::direct::{DirectMap, IDENTITY_END_PFN};
use crate::mm::frame::FrameAllocator;
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

fn identity() -> IdentityMapped {
    // SAFETY: boot/entry.S maps [0, 4 GiB) one-to-one and nothing writes
    // the boot data we read while we read it.
    unsafe { IdentityMapped::new(IDENTITY_END_PFN * PAGE_SIZE) }
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
    let anomalies = start_info::memmap_anomalies(&memmap);
    if anomalies.any() {
        log::warn!("memory map: entries ignored or clamped: {anomalies:?}");
    }
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

/// Makes the direct map and builds the frame allocator over `info.ram`
/// (up to the end of the identity map) with its metadata carved from RAM
/// nothing uses, reserving boot data and the metadata itself.
pub fn init_frames(info: &mut BootInfo) -> Result<(DirectMap, FrameAllocator<'static>), String> {
    // SAFETY: boot/entry.S maps [0, 4 GiB) one to one, writable, for good;
    // `boot_data` lists the real-mode area, the kernel image (with its
    // stacks and .bss) and every range the start info names (modules,
    // command line, the start info itself, the memory map); this is the
    // only DirectMap the kernel makes (init_frames runs once, from main).
    let mut direct = unsafe { DirectMap::new(IDENTITY_END_PFN, &info.boot_data.ranges) };
    // Only RAM the boot page tables map is managed.
    let ram: Vec<PfnRange> = info
        .ram
        .iter()
        .filter_map(|r| {
            let end = r.end().min(direct.end_pfn());
            (end > r.start).then(|| PfnRange {
                start: r.start,
                count: end - r.start,
            })
        })
        .collect();
    let (base, frames) = FrameAllocator::window_for(&ram);
    let (meta, (meta_start, meta_end)) = direct
        .carve_frame_meta(&ram, frames)
        .ok_or_else(|| alloc::format!("no room for the metadata of {frames} frames"))?;
    info.boot_data.add(meta_start, meta_end - meta_start);
    let mut fa =
        FrameAllocator::new(meta, base, &ram).map_err(|e| alloc::format!("frames: {e}"))?;
    for &(s, e) in &info.boot_data.ranges {
        let first: Pfn = s / PAGE_SIZE;
        let last = e.div_ceil(PAGE_SIZE);
        // Ranges outside RAM (e.g. the low MiB's holes) are fine to skip.
        let _ = fa.reserve_range(first, last - first);
    }
    Ok((direct, fa))
}

/// Claims `pages` contiguous frames for the heap, for good.
pub fn grow_heap(
    direct: &mut DirectMap,
    frames: &mut FrameAllocator<'static>,
    heap: &KernelHeap,
    pages: u64,
) -> Result<(), String> {
    let claimed = direct
        .claim(frames, pages, 1)
        .map_err(|e| alloc::format!("{pages} frames for the heap: {e}"))?;
    heap.add_frames(claimed)
        .map_err(|e| alloc::format!("heap region: {e:?}"))
}

/// Pages of the pageable region for a guest of `ram_pages` frames: twice
/// its RAM (a workload may commit more than RAM when frontswap can hold
/// the rest), whole page tables, at least 16 MiB.
pub fn region_pages_for(ram_pages: u64) -> u64 {
    ram_pages
        .saturating_mul(2)
        .next_multiple_of(512)
        .clamp(4096, crate::mm::vm::REGION_MAX_PAGES)
}

/// Builds the kernel's page tables with the pageable region, switches to
/// them, and sends page faults to the pager lent by the loop.
pub fn init_paging(
    direct: &mut DirectMap,
    frames: &mut FrameAllocator<'static>,
) -> Result<crate::mm::paging::RegionTables, String> {
    let pages = region_pages_for(frames.total_pages());
    let mut tables = crate::mm::paging::RegionTables::new(direct, frames, pages)
        .map_err(|e| alloc::format!("page tables for {pages} pages: {e:?}"))?;
    // SAFETY: nothing points into the region yet (it is new), and the boot
    // tables stay as boot/entry.S made them for good.
    unsafe { tables.activate() };
    crate::arch::x86_64::trap::set_page_fault_handler(page_fault);
    Ok(tables)
}

/// The `#PF` hook: a fault in the pageable region goes to the pager lent
/// to the fault path; anything else stays fatal (reported by the trap
/// code).
fn page_fault(frame: &crate::arch::x86_64::trap::TrapFrame, cr2: u64) -> bool {
    use crate::mm::fault::{deliver, Fault, Resolution};
    let addr = crate::mm::paging::fault_address(cr2);
    match deliver(Fault {
        addr,
        error_code: frame.error_code,
    }) {
        Resolution::Resolved => true,
        Resolution::NotOurs => false,
        r => {
            // Fatal next; the region is never touched with the console
            // lock held, so logging here cannot deadlock.
            log::error!("page fault at {addr:#x} (cr2 {cr2:#x}) not resolved: {r:?}");
            false
        }
    }
}

/// The in-guest pool's frame access.
pub fn pooled_frames(frames: &FrameAllocator<'static>) -> crate::mm::held::PooledFrames {
    // SAFETY: the direct map covers [0, end_pfn) (boot/entry.S, clamped to
    // 4 GiB inside), and `frames` is the kernel's one allocator, whose
    // Pooled frames nothing else reaches.
    unsafe { crate::mm::held::PooledFrames::new(frames.end_pfn()) }
}
