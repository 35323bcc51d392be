//! The kernel's side of the PV console and xenstore: finding their pages
//! and event channels through HVM params, and the [`Waiter`] that blocks
//! on the store's event channel.

use alloc::string::String;

use crate::mm::direct::{ClaimedFrames, DirectMap};
use crate::mm::frame::FrameAllocator;
use crate::xen::abi;
use crate::xen::calls;
use crate::xen::console::PvConsole;
use crate::xen::events::{self, Port};
use crate::xen::ops::Clock;
use crate::xen::time;
use crate::xen::xenstore::client::{Waiter, XenstoreClient};
use crate::xen::xenstore::ring::VolatilePage;
use crate::xen::xenstore::XsError;

use super::platform::{self, Events, Wake};

/// The frame and event channel of a special page, from its HVM params.
fn special_page(pfn_param: u32, evtchn_param: u32) -> Result<(u64, Port), String> {
    let pfn = calls::hvm_get_param(pfn_param).map_err(|e| alloc::format!("pfn param: {e}"))?;
    let port =
        calls::hvm_get_param(evtchn_param).map_err(|e| alloc::format!("evtchn param: {e}"))?;
    let port = events::valid_port(port).map_err(|_| alloc::format!("bad port {port}"))?;
    Ok((pfn, port))
}

/// Claims a special page: a toolstack or memory map that shows it as RAM
/// must not let the balloon release it or the workload overwrite it, and
/// it must lie in the direct map (see [`DirectMap::claim_xen_page`]).
fn claim(
    direct: &mut DirectMap,
    frames: &mut FrameAllocator<'_>,
    pfn: u64,
) -> Result<ClaimedFrames, String> {
    direct
        .claim_xen_page(frames, pfn)
        .map_err(|e| alloc::format!("special page: {e}"))
}

/// Attaches the PV console ring as a console sink.
pub fn init_console(direct: &mut DirectMap, frames: &mut FrameAllocator<'_>) -> Result<(), String> {
    let (pfn, port) = special_page(abi::HVM_PARAM_CONSOLE_PFN, abi::HVM_PARAM_CONSOLE_EVTCHN)?;
    let c = PvConsole::new(claim(direct, frames, pfn)?, port);
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
pub fn connect(
    ev: Events,
    direct: &mut DirectMap,
    frames: &mut FrameAllocator<'_>,
) -> Result<XenStore, String> {
    let (pfn, port) = special_page(abi::HVM_PARAM_STORE_PFN, abi::HVM_PARAM_STORE_EVTCHN)?;
    let page = VolatilePage::from_claimed(claim(direct, frames, pfn)?);
    let _ = calls::evtchn_unmask(port);
    Ok(XenstoreClient::new(page, StoreWaiter { events: ev, port }))
}
