//! The kernel's side of the PV console and xenstore: finding their pages
//! and event channels through HVM params, and the [`Waiter`] that blocks
//! on the store's event channel.

use alloc::string::String;

use crate::mm::frame::{FrameAllocator, FrameState};
use crate::xen::abi::{self, xencons_interface, xenstore_domain_interface};
use crate::xen::calls;
use crate::xen::console::PvConsole;
use crate::xen::events::{self, Port};
use crate::xen::ops::Clock;
use crate::xen::time;
use crate::xen::xenstore::client::{Waiter, XenstoreClient};
use crate::xen::xenstore::ring::VolatilePage;
use crate::xen::xenstore::XsError;

use super::platform::{self, Events, Wake};

/// Highest pfn we accept from Xen for a special page: the boot page
/// tables identity-map 4 GiB.
const MAX_SPECIAL_PFN: u64 = (4u64 << 30) >> 12;

fn special_page(pfn_param: u32, evtchn_param: u32) -> Result<(u64, Port), String> {
    let pfn = calls::hvm_get_param(pfn_param).map_err(|e| alloc::format!("pfn param: {e}"))?;
    let port =
        calls::hvm_get_param(evtchn_param).map_err(|e| alloc::format!("evtchn param: {e}"))?;
    if pfn == 0 || pfn >= MAX_SPECIAL_PFN {
        return Err(alloc::format!("page pfn {pfn:#x} not usable"));
    }
    let port = events::valid_port(port).map_err(|_| alloc::format!("bad port {port}"))?;
    Ok((pfn << 12, port))
}

/// Keeps a special page out of the frame allocator's hands: a toolstack
/// or memory map that shows it as RAM must not let the balloon release it
/// or the workload overwrite it.
fn reserve(frames: &mut FrameAllocator<'_>, paddr: u64) -> Result<(), String> {
    let pfn = paddr >> 12;
    match frames.state(pfn) {
        None | Some(FrameState::Absent | FrameState::Reserved) => Ok(()),
        Some(FrameState::Free) => frames
            .reserve_range(pfn, 1)
            .map(|_| ())
            .map_err(|e| alloc::format!("reserve special page {pfn:#x}: {e}")),
        Some(s) => Err(alloc::format!("special page {pfn:#x} is {s:?}")),
    }
}

/// Attaches the PV console ring as a console sink.
pub fn init_console(frames: &mut FrameAllocator<'_>) -> Result<(), String> {
    let (paddr, port) = special_page(abi::HVM_PARAM_CONSOLE_PFN, abi::HVM_PARAM_CONSOLE_EVTCHN)?;
    reserve(frames, paddr)?;
    // SAFETY: the page is the console page Xen gave this domain, identity
    // mapped below 4 GiB (checked), and only this PvConsole touches it.
    let c = unsafe { PvConsole::new(paddr as *mut xencons_interface, port) };
    // The console lives for the rest of the kernel's life.
    let console: &'static mut PvConsole = alloc::boxed::Box::leak(alloc::boxed::Box::new(c));
    super::console::add_sink(console);
    Ok(())
}

/// Blocks on the xenstore event channel.
#[derive(Debug)]
pub struct StoreWaiter {
    events: Events,
    port: Port,
}

impl Clock for StoreWaiter {
    fn now_ns(&self) -> u64 {
        time::now_ns()
    }
}

impl Waiter for StoreWaiter {
    fn notify(&mut self) {
        let _ = calls::evtchn_send(self.port);
    }

    fn wait(&mut self, deadline_ns: u64) -> Result<(), XsError> {
        match platform::wait(&self.events, &[self.port], deadline_ns) {
            Wake::Port(_) => Ok(()),
            Wake::Deadline => Err(XsError::Timeout),
        }
    }
}

/// The kernel's xenstore client.
pub type XenStore = XenstoreClient<VolatilePage, StoreWaiter>;

/// The store's event channel port of a client.
pub fn store_port(s: &mut XenStore) -> Port {
    s.waiter().port
}

/// Connects to xenstore through HVM_PARAM_STORE_PFN/EVTCHN.
pub fn connect(ev: Events, frames: &mut FrameAllocator<'_>) -> Result<XenStore, String> {
    let (paddr, port) = special_page(abi::HVM_PARAM_STORE_PFN, abi::HVM_PARAM_STORE_EVTCHN)?;
    reserve(frames, paddr)?;
    // SAFETY: the page is the xenstore ring page Xen gave this domain,
    // identity mapped (checked below 4 GiB), and only this client uses it.
    let page = unsafe { VolatilePage::new(paddr as *mut xenstore_domain_interface) };
    let _ = calls::evtchn_unmask(port);
    Ok(XenstoreClient::new(page, StoreWaiter { events: ev, port }))
}
