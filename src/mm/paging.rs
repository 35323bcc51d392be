//! Kernel-owned x86-64 page tables with a pageable region.
//!
//! The boot tables of `boot/entry.S` map the first 4 GiB one to one and
//! stay as they are: the kernel runs on them. At boot the kernel builds
//! its own top-level table ([`RegionTables::new`]): a copy of the boot
//! PML4, whose entries keep pointing at the boot PDPT, plus slot 1
//! ([`REGION_BASE`], 512 GiB) for the pageable region, and switches CR3 to
//! it ([`RegionTables::activate`]).
//!
//! ```text
//!  PML4 (ours) ──[0]──► boot PDPT ─► boot PDs ─► 2 MiB identity pages
//!              └─[1]──► region PDPT ─► region PDs ─► region PTs ─► 4 KiB pages
//! ```
//!
//! Every table of the region is made at boot, for the whole region, from
//! one contiguous claim of frames: the PTs are then one linear array of
//! entries, entry `vpn` at `pts + 8 * vpn`, and nothing on the fault path
//! ever allocates a table. The region's tables cost 1/512 of the region
//! (plus one PD per GiB), counted as page-table pages.
//!
//! A region entry is either 0 (not present: the page is free, not yet
//! touched, or paged out; the pager knows which) or `pfn << 12 | P | W |
//! NX` plus the accessed and dirty bits the CPU sets. Every change is
//! followed by `invlpg` of the page, so it is in effect on return (one
//! CPU: no shootdown).
//!
//! # Safety
//!
//! The region's frames are in state `Paged` in the frame allocator, so the
//! direct map's page access refuses them. Their bytes are reached two
//! ways, both raw copies, never Rust references: by the workload through
//! the region's virtual addresses ([`VirtAccess`]), which may fault into
//! the pager, and by the pager through the identity map ([`Mmu::read`],
//! [`Mmu::write`]). Both run on the one CPU and neither interrupts the
//! other in the middle of a copy (the pager's copies run in fault context
//! or in the loop, the workload's only in the loop), so no copy ever
//! races another.

use core::ptr;
use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::instructions::tlb;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::PhysFrame;
use x86_64::{PhysAddr, VirtAddr};

use super::direct::{ClaimedFrames, DirectMap, DirectMapError, Page, PAGE_BYTES};
use super::frame::FrameAllocator;
use super::vm::{vpn_address, Mmu, MmuError, RegionAccess, Unmapped, Vpn, REGION_MAX_PAGES};
use super::{Pfn, PAGE_SIZE};

/// Entry bits.
pub mod pte {
    /// Present.
    pub const PRESENT: u64 = 1 << 0;
    /// Writable.
    pub const WRITABLE: u64 = 1 << 1;
    /// Set by the CPU on any access.
    pub const ACCESSED: u64 = 1 << 5;
    /// Set by the CPU on a write (last-level entries).
    pub const DIRTY: u64 = 1 << 6;
    /// The frame address bits of an entry.
    pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

    /// A present, writable leaf for `pfn`.
    pub const fn leaf(pfn: u64) -> u64 {
        (pfn << 12) & ADDR_MASK | PRESENT | WRITABLE
    }

    /// A table entry pointing at the table in frame `pfn`.
    pub const fn table(pfn: u64) -> u64 {
        (pfn << 12) & ADDR_MASK | PRESENT | WRITABLE
    }

    /// The frame an entry points at.
    pub const fn pfn(entry: u64) -> u64 {
        (entry & ADDR_MASK) >> 12
    }
}

/// Entries per table.
const ENTRIES: u64 = 512;
/// The PML4 slot of the region.
const REGION_SLOT: usize = 1;

/// Why the tables could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagingError {
    /// No contiguous run of frames for the tables.
    Claim(DirectMapError),
    /// The region is empty or larger than one PML4 slot.
    BadSize(u64),
    /// The boot PML4 already uses the region's slot.
    SlotInUse,
}

/// Frames of page tables for a region of `pages` pages: one PML4, one
/// PDPT, the PDs and the PTs.
pub const fn table_frames(pages: u64) -> u64 {
    let pts = pages.div_ceil(ENTRIES);
    let pds = pts.div_ceil(ENTRIES);
    2 + pds + pts
}

/// The kernel's page tables and the region's entries.
#[derive(Debug)]
pub struct RegionTables {
    tables: ClaimedFrames,
    pages: u64,
    /// First frame of the PTs inside `tables`.
    pt_pfn: Pfn,
    /// Frames of RAM that may be mapped (the allocator's window).
    frame_end: Pfn,
    active: bool,
}

impl RegionTables {
    /// Builds tables for a region of `pages` pages from frames claimed for
    /// good. The tables are not in use until [`activate`](Self::activate).
    pub fn new(
        direct: &mut DirectMap,
        frames: &mut FrameAllocator<'_>,
        pages: u64,
    ) -> Result<RegionTables, PagingError> {
        if pages == 0 || pages > REGION_MAX_PAGES {
            return Err(PagingError::BadSize(pages));
        }
        let n = table_frames(pages);
        let tables = direct.claim(frames, n, 1).map_err(PagingError::Claim)?;
        let pml4 = tables.pfn();
        let pdpt = pml4 + 1;
        let pts = pages.div_ceil(ENTRIES);
        let pds = pts.div_ceil(ENTRIES);
        let pd0 = pdpt + 1;
        let pt0 = pd0 + pds;
        let base: *mut u64 = tables.as_mut_ptr();
        let boot_pml4 = Cr3::read().0.start_address().as_u64() as *const u64;
        // SAFETY: `tables` is a fresh claim of `n` identity-mapped frames
        // that only this token reaches; every write below stays inside its
        // `n * 512` entries. The boot PML4 is identity-mapped (it lies in
        // the kernel image's .bss) and only read here.
        unsafe {
            ptr::write_bytes(base, 0, (n * ENTRIES) as usize);
            for i in 0..ENTRIES as usize {
                let e = boot_pml4.add(i).read_volatile();
                if i == REGION_SLOT && e != 0 {
                    return Err(PagingError::SlotInUse);
                }
                base.add(i).write(e);
            }
            base.add(REGION_SLOT).write(pte::table(pdpt));
            let pdpt_entries = base.add(ENTRIES as usize);
            for d in 0..pds {
                pdpt_entries.add(d as usize).write(pte::table(pd0 + d));
            }
            let pd_entries = base.add(2 * ENTRIES as usize);
            for t in 0..pts {
                pd_entries.add(t as usize).write(pte::table(pt0 + t));
            }
        }
        Ok(RegionTables {
            tables,
            pages,
            pt_pfn: pt0,
            frame_end: frames.end_pfn(),
            active: false,
        })
    }

    /// Frames the tables use.
    pub fn table_pages(&self) -> u64 {
        self.tables.count()
    }

    /// Switches the CPU to these tables.
    ///
    /// # Safety
    /// Nothing may hold a pointer into the region (there is nothing there
    /// yet), and the boot tables the copy points at must stay as they are
    /// for the rest of the kernel's life (they do: nothing writes them
    /// after `boot/entry.S`).
    pub unsafe fn activate(&mut self) {
        let pml4 = PhysFrame::containing_address(PhysAddr::new(self.tables.pfn() * PAGE_SIZE));
        // SAFETY: our PML4 holds the boot PML4's entries unchanged (built
        // in `new`), so every address the kernel uses maps as before; slot
        // 1 adds the region, all of it not present. The caller's promise
        // covers the rest.
        unsafe { Cr3::write(pml4, Cr3Flags::empty()) };
        self.active = true;
    }

    /// The workload's access to the region. Only meaningful once active.
    pub fn access(&self) -> VirtAccess {
        VirtAccess {
            pages: self.pages,
            _private: (),
        }
    }

    fn entry(&self, vpn: Vpn) -> Result<*mut u64, MmuError> {
        if vpn >= self.pages {
            return Err(MmuError::OutOfRegion(vpn));
        }
        let pts = (self.pt_pfn * PAGE_SIZE) as *mut u64;
        // SAFETY (of the pointer arithmetic): `vpn < pages`, and the PTs
        // hold `pages.div_ceil(512) * 512` entries from `pt_pfn` on.
        Ok(pts.wrapping_add(vpn as usize))
    }

    fn read_entry(&self, vpn: Vpn) -> Result<u64, MmuError> {
        let e = self.entry(vpn)?;
        // SAFETY: `e` is an entry of our claimed PTs (see `entry`); the
        // CPU may set A/D bits concurrently only while executing the
        // workload, which is not running during this read.
        Ok(unsafe { e.read_volatile() })
    }

    fn write_entry(&mut self, vpn: Vpn, value: u64) -> Result<(), MmuError> {
        let e = self.entry(vpn)?;
        // SAFETY: as in `read_entry`; `&mut self` makes this the only
        // writer of the tables.
        unsafe { e.write_volatile(value) };
        if self.active {
            tlb::flush(VirtAddr::new(vpn_address(vpn)));
        }
        Ok(())
    }

    /// Whether `bit` (accessed or dirty) is set in a mapped page's entry,
    /// clearing it.
    fn test_and_clear(&mut self, vpn: Vpn, bit: u64) -> Result<bool, MmuError> {
        let e = self.read_entry(vpn)?;
        if e & pte::PRESENT == 0 {
            return Err(MmuError::NotMapped(vpn));
        }
        if e & bit == 0 {
            return Ok(false);
        }
        self.write_entry(vpn, e & !bit)?;
        Ok(true)
    }

    fn mapped_frame(&self, vpn: Vpn) -> Result<Pfn, MmuError> {
        let e = self.read_entry(vpn)?;
        if e & pte::PRESENT == 0 {
            return Err(MmuError::NotMapped(vpn));
        }
        Ok(pte::pfn(e))
    }
}

impl Mmu for RegionTables {
    fn pages(&self) -> u64 {
        self.pages
    }

    fn map(&mut self, vpn: Vpn, pfn: Pfn) -> Result<(), MmuError> {
        if pfn >= self.frame_end || pfn >= super::direct::IDENTITY_END_PFN {
            return Err(MmuError::BadFrame(pfn));
        }
        if self.read_entry(vpn)? & pte::PRESENT != 0 {
            return Err(MmuError::AlreadyMapped(vpn));
        }
        self.write_entry(vpn, pte::leaf(pfn))
    }

    fn unmap(&mut self, vpn: Vpn) -> Result<Unmapped, MmuError> {
        let e = self.read_entry(vpn)?;
        if e & pte::PRESENT == 0 {
            return Err(MmuError::NotMapped(vpn));
        }
        self.write_entry(vpn, 0)?;
        Ok(Unmapped {
            pfn: pte::pfn(e),
            dirty: e & pte::DIRTY != 0,
            accessed: e & pte::ACCESSED != 0,
        })
    }

    fn test_and_clear_accessed(&mut self, vpn: Vpn) -> Result<bool, MmuError> {
        self.test_and_clear(vpn, pte::ACCESSED)
    }

    fn test_and_clear_dirty(&mut self, vpn: Vpn) -> Result<bool, MmuError> {
        self.test_and_clear(vpn, pte::DIRTY)
    }

    fn peek(&self, vpn: Vpn) -> Option<Unmapped> {
        let e = self.read_entry(vpn).ok()?;
        (e & pte::PRESENT != 0).then(|| Unmapped {
            pfn: pte::pfn(e),
            dirty: e & pte::DIRTY != 0,
            accessed: e & pte::ACCESSED != 0,
        })
    }

    fn read(&mut self, vpn: Vpn, out: &mut Page) -> Result<(), MmuError> {
        let pfn = self.mapped_frame(vpn)?;
        let src = (pfn * PAGE_SIZE) as *const u8;
        // SAFETY: `pfn` is mapped in the region, so it is a `Paged` frame
        // (only the pager maps frames, and only those), inside the identity
        // map (checked by `map`); no reference to its bytes exists (module
        // documentation), and `out` is a distinct buffer.
        unsafe { ptr::copy_nonoverlapping(src, out.as_mut_ptr(), PAGE_BYTES) };
        Ok(())
    }

    fn write(&mut self, vpn: Vpn, data: &Page) -> Result<(), MmuError> {
        let pfn = self.mapped_frame(vpn)?;
        let dst = (pfn * PAGE_SIZE) as *mut u8;
        // SAFETY: as in `read`.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), dst, PAGE_BYTES) };
        Ok(())
    }

    fn zero(&mut self, vpn: Vpn) -> Result<(), MmuError> {
        let pfn = self.mapped_frame(vpn)?;
        let dst = (pfn * PAGE_SIZE) as *mut u8;
        // SAFETY: as in `read`.
        unsafe { ptr::write_bytes(dst, 0, PAGE_BYTES) };
        Ok(())
    }
}

/// The page of the region a [`VirtAccess`] copy is touching now (its
/// address), 0 when none.
///
/// Under QEMU's emulation of nested SVM our guest's `#PF` arrives with
/// CR2 = 0 (measured with QEMU 10.0 TCG and Xen 4.17: `crash=pf` reading
/// 8 GiB reports cr2=0x200000000 on bare QEMU, cr2=0x0 as Xen's dom0). A
/// fault that reports CR2 = 0 while a copy into or out of the region is in
/// progress is that copy's fault: the copy touches only its region page
/// and a heap buffer, which is always mapped. The `#PF` hook uses this to
/// find the page ([`fault_address`]); a real access to page 0 elsewhere
/// stays fatal.
static ACCESS_IN_PROGRESS: AtomicU64 = AtomicU64::new(0);

/// Faults whose address came from [`ACCESS_IN_PROGRESS`] because CR2 read
/// 0 (the emulator's defect), for the status.
pub static CR2_FIXUPS: AtomicU64 = AtomicU64::new(0);

/// The address a fault is for: CR2, unless it reads 0 while a region copy
/// is in progress (see [`ACCESS_IN_PROGRESS`]).
pub fn fault_address(cr2: u64) -> u64 {
    if cr2 != 0 {
        return cr2;
    }
    match ACCESS_IN_PROGRESS.load(Ordering::Acquire) {
        0 => 0,
        a => {
            CR2_FIXUPS.fetch_add(1, Ordering::Relaxed);
            a
        }
    }
}

/// Marks a region copy in progress for as long as it lives.
struct InProgress;

impl InProgress {
    fn new(vpn: Vpn) -> Self {
        ACCESS_IN_PROGRESS.store(vpn_address(vpn), Ordering::Release);
        InProgress
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        ACCESS_IN_PROGRESS.store(0, Ordering::Release);
    }
}

/// The workload's access to the region through its virtual addresses.
/// A copy from or to a page that is not mapped takes a page fault, which
/// the pager lent by `mm::fault::with_fault_handler` resolves before the
/// copy goes on; a fault it cannot resolve is fatal, so these never
/// return an error for a page inside the region.
#[derive(Debug)]
pub struct VirtAccess {
    pages: u64,
    _private: (),
}

impl RegionAccess for VirtAccess {
    fn load(&mut self, vpn: Vpn, out: &mut Page) -> Result<(), MmuError> {
        if vpn >= self.pages {
            return Err(MmuError::OutOfRegion(vpn));
        }
        let src = vpn_address(vpn) as *const u8;
        let _marked = InProgress::new(vpn);
        // SAFETY: the address lies in the region, which is mapped by our
        // active tables: either present (a `Paged` frame) or not present,
        // in which case the CPU faults and the pager maps the page with its
        // content before the copy resumes, or the fault is fatal. No
        // reference to region memory exists (module documentation).
        unsafe { ptr::copy_nonoverlapping(src, out.as_mut_ptr(), PAGE_BYTES) };
        Ok(())
    }

    fn store(&mut self, vpn: Vpn, data: &Page) -> Result<(), MmuError> {
        if vpn >= self.pages {
            return Err(MmuError::OutOfRegion(vpn));
        }
        let dst = vpn_address(vpn) as *mut u8;
        let _marked = InProgress::new(vpn);
        // SAFETY: as in `load`.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), dst, PAGE_BYTES) };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_sizes() {
        assert_eq!(pte::pfn(pte::leaf(0x1234)), 0x1234);
        assert_eq!(pte::leaf(1), 0x1003);
        assert_eq!(pte::pfn(pte::leaf(5) | pte::ACCESSED | pte::DIRTY), 5);
        // 512 MiB: 256 PTs, one PD, a PDPT, a PML4.
        assert_eq!(table_frames(131_072), 259);
        assert_eq!(table_frames(1), 4);
        assert_eq!(table_frames(REGION_MAX_PAGES), 2 + 512 + 512 * 512);
    }
}
