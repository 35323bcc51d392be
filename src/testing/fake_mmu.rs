//! `FakeMmu`: the pageable region's page tables and memory for host
//! tests, behaving like the CPU: an access to a page that is not mapped
//! is handed to the lent fault handler (`mm::fault::deliver`) and retried
//! once; accesses set the accessed bit, writes the dirty bit.
//!
//! One shared state, two handles: the [`Mmu`] the pager drives and the
//! [`RegionAccess`] the workload uses ([`FakeMmu::access`]). Frame bytes
//! live here (the "physical memory" of mapped frames); a frame's bytes
//! outlive its mapping, as RAM does, until it is mapped again.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use core::cell::RefCell;

use crate::mm::direct::{Page, PAGE_BYTES};
use crate::mm::fault::{self, Fault, Resolution};
use crate::mm::vm::{vpn_address, Mmu, MmuError, RegionAccess, Unmapped, Vpn};
use crate::mm::Pfn;

#[derive(Debug, Default)]
struct Entry {
    pfn: Pfn,
    accessed: bool,
    dirty: bool,
}

#[derive(Debug, Default)]
struct State {
    pages: u64,
    entries: BTreeMap<Vpn, Entry>,
    /// Which page maps each frame (a frame is never mapped twice).
    mapped_frames: BTreeMap<Pfn, Vpn>,
    ram: BTreeMap<Pfn, Box<Page>>,
    faults: u64,
    invalidations: u64,
}

impl State {
    fn ram(&mut self, pfn: Pfn) -> &mut Page {
        self.ram
            .entry(pfn)
            .or_insert_with(|| Box::new([0xcc; PAGE_BYTES]))
    }

    fn check(&self, vpn: Vpn) -> Result<(), MmuError> {
        if vpn < self.pages {
            Ok(())
        } else {
            Err(MmuError::OutOfRegion(vpn))
        }
    }
}

/// The pager's handle.
#[derive(Debug, Clone)]
pub struct FakeMmu(Rc<RefCell<State>>);

/// The workload's handle.
#[derive(Debug, Clone)]
pub struct FakeAccess(Rc<RefCell<State>>);

impl FakeMmu {
    /// A region of `pages` pages, nothing mapped.
    pub fn new(pages: u64) -> Self {
        FakeMmu(Rc::new(RefCell::new(State {
            pages,
            ..State::default()
        })))
    }

    /// The workload's handle on the same state.
    pub fn access(&self) -> FakeAccess {
        FakeAccess(self.0.clone())
    }

    /// Pages mapped now.
    pub fn mapped(&self) -> u64 {
        self.0.borrow().entries.len() as u64
    }

    /// Faults delivered so far.
    pub fn faults(&self) -> u64 {
        self.0.borrow().faults
    }

    /// TLB invalidations so far (one per entry change).
    pub fn invalidations(&self) -> u64 {
        self.0.borrow().invalidations
    }

    /// Sets the accessed bit of a mapped page, as a CPU access would.
    pub fn touch(&self, vpn: Vpn) {
        if let Some(e) = self.0.borrow_mut().entries.get_mut(&vpn) {
            e.accessed = true;
        }
    }

    /// Every (vpn, pfn) mapped.
    pub fn mappings(&self) -> alloc::vec::Vec<(Vpn, Pfn)> {
        self.0
            .borrow()
            .entries
            .iter()
            .map(|(v, e)| (*v, e.pfn))
            .collect()
    }
}

impl Mmu for FakeMmu {
    fn pages(&self) -> u64 {
        self.0.borrow().pages
    }

    fn map(&mut self, vpn: Vpn, pfn: Pfn) -> Result<(), MmuError> {
        let mut s = self.0.borrow_mut();
        s.check(vpn)?;
        if s.entries.contains_key(&vpn) {
            return Err(MmuError::AlreadyMapped(vpn));
        }
        if let Some(other) = s.mapped_frames.insert(pfn, vpn) {
            panic!("frame {pfn:#x} mapped twice (at {other:#x} and {vpn:#x})");
        }
        s.entries.insert(
            vpn,
            Entry {
                pfn,
                accessed: false,
                dirty: false,
            },
        );
        s.invalidations += 1;
        Ok(())
    }

    fn unmap(&mut self, vpn: Vpn) -> Result<Unmapped, MmuError> {
        let mut s = self.0.borrow_mut();
        s.check(vpn)?;
        let e = s.entries.remove(&vpn).ok_or(MmuError::NotMapped(vpn))?;
        s.mapped_frames.remove(&e.pfn);
        s.invalidations += 1;
        Ok(Unmapped {
            pfn: e.pfn,
            dirty: e.dirty,
            accessed: e.accessed,
        })
    }

    fn test_and_clear_accessed(&mut self, vpn: Vpn) -> Result<bool, MmuError> {
        let mut s = self.0.borrow_mut();
        s.check(vpn)?;
        let e = s.entries.get_mut(&vpn).ok_or(MmuError::NotMapped(vpn))?;
        let was = core::mem::replace(&mut e.accessed, false);
        if was {
            s.invalidations += 1;
        }
        Ok(was)
    }

    fn test_and_clear_dirty(&mut self, vpn: Vpn) -> Result<bool, MmuError> {
        let mut s = self.0.borrow_mut();
        s.check(vpn)?;
        let e = s.entries.get_mut(&vpn).ok_or(MmuError::NotMapped(vpn))?;
        let was = core::mem::replace(&mut e.dirty, false);
        if was {
            s.invalidations += 1;
        }
        Ok(was)
    }

    fn peek(&self, vpn: Vpn) -> Option<Unmapped> {
        self.0.borrow().entries.get(&vpn).map(|e| Unmapped {
            pfn: e.pfn,
            dirty: e.dirty,
            accessed: e.accessed,
        })
    }

    fn read(&mut self, vpn: Vpn, out: &mut Page) -> Result<(), MmuError> {
        let mut s = self.0.borrow_mut();
        let pfn = s.entries.get(&vpn).ok_or(MmuError::NotMapped(vpn))?.pfn;
        out.copy_from_slice(s.ram(pfn));
        Ok(())
    }

    fn write(&mut self, vpn: Vpn, data: &Page) -> Result<(), MmuError> {
        let mut s = self.0.borrow_mut();
        let pfn = s.entries.get(&vpn).ok_or(MmuError::NotMapped(vpn))?.pfn;
        s.ram(pfn).copy_from_slice(data);
        Ok(())
    }

    fn zero(&mut self, vpn: Vpn) -> Result<(), MmuError> {
        let mut s = self.0.borrow_mut();
        let pfn = s.entries.get(&vpn).ok_or(MmuError::NotMapped(vpn))?.pfn;
        s.ram(pfn).fill(0);
        Ok(())
    }
}

impl FakeAccess {
    /// The frame behind `vpn`, faulting it in (once) if it is not mapped.
    fn resolve(&self, vpn: Vpn, write: bool) -> Result<Pfn, MmuError> {
        self.0.borrow().check(vpn)?;
        for attempt in 0..2 {
            {
                let mut s = self.0.borrow_mut();
                if let Some(e) = s.entries.get_mut(&vpn) {
                    e.accessed = true;
                    e.dirty |= write;
                    return Ok(e.pfn);
                }
                if attempt == 1 {
                    break;
                }
                s.faults += 1;
            }
            // The borrow is released: the handler drives the MMU.
            let f = Fault {
                addr: vpn_address(vpn),
                error_code: if write { Fault::WRITE } else { 0 },
            };
            match fault::deliver(f) {
                Resolution::Resolved => {}
                // On the machine this is fatal; here the access fails.
                _ => return Err(MmuError::NotMapped(vpn)),
            }
        }
        panic!("fault at vpn {vpn:#x} resolved but still not mapped")
    }
}

impl RegionAccess for FakeAccess {
    fn load(&mut self, vpn: Vpn, out: &mut Page) -> Result<(), MmuError> {
        let pfn = self.resolve(vpn, false)?;
        out.copy_from_slice(self.0.borrow_mut().ram(pfn));
        Ok(())
    }

    fn store(&mut self, vpn: Vpn, data: &Page) -> Result<(), MmuError> {
        let pfn = self.resolve(vpn, true)?;
        self.0.borrow_mut().ram(pfn).copy_from_slice(data);
        Ok(())
    }
}
