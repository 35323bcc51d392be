//! The second-chance ("clock") list of resident pages.
//!
//! Resident pages sit on a ring; the hand sweeps it. A page whose accessed
//! bit is set has been used since the hand last passed: the bit is
//! cleared and the page skipped (its second chance). The first page found
//! with the bit clear is the victim. Insert and remove are O(1) (`pos` maps a page to its ring slot; removal moves the last entry
//! into the hole).

use alloc::vec;
use alloc::vec::Vec;

use crate::mm::vm::Vpn;

const NONE: u32 = u32::MAX;

/// The ring and its hand.
#[derive(Debug)]
pub struct SecondChance {
    ring: Vec<u32>,
    /// Ring slot of each page, `NONE` when not on the ring.
    pos: Vec<u32>,
    hand: usize,
}

impl SecondChance {
    /// An empty ring for pages `0..pages` (`pages` < 2^32).
    pub fn new(pages: u64) -> Self {
        let pages = usize::try_from(pages.min(u64::from(NONE))).unwrap_or(0);
        SecondChance {
            ring: Vec::new(),
            pos: vec![NONE; pages],
            hand: 0,
        }
    }

    /// Pages on the ring.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Whether `vpn` is on the ring.
    pub fn contains(&self, vpn: Vpn) -> bool {
        self.slot(vpn).is_some()
    }

    fn slot(&self, vpn: Vpn) -> Option<usize> {
        let p = *self.pos.get(usize::try_from(vpn).ok()?)?;
        (p != NONE).then_some(p as usize)
    }

    /// Puts `vpn` on the ring (at its end). `false` if it is on it
    /// already or out of range. A page is mapped with its accessed bit
    /// clear and the access that faulted it in sets it, so a new page
    /// gets its second chance like any other.
    pub fn insert(&mut self, vpn: Vpn) -> bool {
        let Some(i) = usize::try_from(vpn).ok().filter(|&i| i < self.pos.len()) else {
            return false;
        };
        if self.pos[i] != NONE {
            return false;
        }
        self.pos[i] = self.ring.len() as u32;
        self.ring.push(vpn as u32);
        true
    }

    /// Takes `vpn` off the ring. `false` if it was not on it.
    pub fn remove(&mut self, vpn: Vpn) -> bool {
        let Some(at) = self.slot(vpn) else {
            return false;
        };
        self.ring.swap_remove(at);
        if let Some(&moved) = self.ring.get(at) {
            self.pos[moved as usize] = at as u32;
        }
        self.pos[vpn as usize] = NONE;
        if self.hand >= self.ring.len() {
            self.hand = 0;
        }
        true
    }

    /// Sweeps for a victim: `chosen(vpn)` looks at a page (testing and
    /// clearing its accessed bit) and says whether it goes. At most two
    /// sweeps (after one, every accessed bit the sweep met is clear). The
    /// victim stays on the ring; the caller removes it once it is out.
    pub fn next_victim(&mut self, mut chosen: impl FnMut(Vpn) -> bool) -> Option<Vpn> {
        let n = self.ring.len();
        for _ in 0..n.saturating_mul(2) {
            if self.hand >= self.ring.len() {
                self.hand = 0;
            }
            let vpn = Vpn::from(self.ring[self.hand]);
            self.hand += 1;
            if chosen(vpn) {
                return Some(vpn);
            }
        }
        None
    }

    /// Checks the ring and the positions agree (tests).
    pub fn check(&self) -> bool {
        self.ring
            .iter()
            .enumerate()
            .all(|(i, &v)| self.pos[v as usize] == i as u32)
            && self.pos.iter().filter(|&&p| p != NONE).count() == self.ring.len()
    }
}
