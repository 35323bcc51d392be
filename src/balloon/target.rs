//! Target arithmetic: the toolstack bound, the controller's request and
//! the safety floor, in the driver's frames.

use super::status::{parse_target_kib, TargetParseError};
use super::Balloon;
use crate::mm::kib_to_pages;

impl Balloon {
    /// Records `memory/static-max` (KiB): the toolstack's targets are then
    /// reduced by the pages it counts beyond our RAM frames.
    pub fn set_static_max_kib(&mut self, kib: Option<u64>) {
        self.static_max_kib = kib;
    }

    /// Sets the toolstack target (`memory/target`, KiB), or `None` when
    /// unknown.
    pub fn set_toolstack_target_kib(&mut self, kib: Option<u64>) {
        self.toolstack_target_kib = kib;
    }

    /// Parses a `memory/target` value and applies it. On error nothing
    /// changes.
    pub fn apply_toolstack_target(&mut self, value: &str) -> Result<u64, TargetParseError> {
        let kib = parse_target_kib(value)?;
        self.set_toolstack_target_kib(Some(kib));
        Ok(kib)
    }

    /// Sets the self-balloon controller's target, or `None` for none.
    pub fn set_requested_target_pages(&mut self, pages: Option<u64>) {
        self.requested_target_pages = pages;
    }

    /// The self-balloon controller's target in force, if any.
    pub fn requested_target_pages(&self) -> Option<u64> {
        self.requested_target_pages
    }

    /// Pages Xen counts beyond our RAM frames.
    pub(super) fn offset_pages(&self) -> u64 {
        self.static_max_kib
            .map_or(0, |kib| kib_to_pages(kib).saturating_sub(self.total_pages))
    }

    /// Tracks Xen's `max_pages` (in our frames: `maximum_reservation`
    /// less the pages Xen counts beyond our frames), for a domain whose
    /// hypervisor-held pages count against it; `None` stops tracking.
    pub fn set_hypervisor_max_pages(&mut self, pages: Option<u64>) {
        self.hypervisor_max_pages = pages;
    }

    /// Records the pages the hypervisor holds for us and charges to the
    /// domain (Xen 4.12's persistent tmem pages).
    pub fn set_hypervisor_held_pages(&mut self, pages: u64) {
        self.hypervisor_held_pages = pages;
    }

    /// Pages the hypervisor holds for us and charges to the domain.
    pub fn hypervisor_held_pages(&self) -> u64 {
        self.hypervisor_held_pages
    }

    /// Room under Xen's `max_pages` with `populated_pages` frames and the
    /// held pages: how many more pages Xen would accept, as frames or as
    /// tmem pages. `None` when `max_pages` is not tracked.
    pub fn hypervisor_room_pages(&self, populated_pages: u64) -> Option<u64> {
        self.hypervisor_max_pages.map(|m| {
            m.saturating_sub(self.hypervisor_held_pages)
                .saturating_sub(populated_pages)
        })
    }

    /// The toolstack bound in our frames (never above the memory map), and
    /// never above what Xen's `max_pages` leaves beside the pages the
    /// hypervisor holds for us: Xen 4.12 charges persistent tmem pages to
    /// the domain, so a frame populated over that would be refused.
    pub fn upper_pages(&self) -> u64 {
        let toolstack = match self.toolstack_target_kib {
            Some(kib) => kib_to_pages(kib).saturating_sub(self.offset_pages()),
            None => self.start_pages,
        };
        let hypervisor = self
            .hypervisor_max_pages
            .map_or(u64::MAX, |m| m.saturating_sub(self.hypervisor_held_pages));
        toolstack.min(hypervisor).min(self.total_pages)
    }

    /// min(toolstack bound, requested target) before the floor.
    pub(super) fn wanted_pages(&self) -> u64 {
        self.upper_pages()
            .min(self.requested_target_pages.unwrap_or(u64::MAX))
    }

    /// The effective target: the wanted size clamped up to the floor.
    pub fn target_pages(&self) -> u64 {
        self.wanted_pages().max(self.floor_pages)
    }

    /// The safety floor in pages.
    pub fn floor_pages(&self) -> u64 {
        self.floor_pages
    }

    /// Whether the floor clamps the target.
    pub fn clamped(&self) -> bool {
        self.wanted_pages() < self.floor_pages
    }
}
