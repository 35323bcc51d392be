//! Normal operation: the event loop that runs the balloon driver, the
//! self-balloon controller's timer, the workload and the xenstore watches.
//!
//! Everything is driven from one loop on the boot CPU. Interrupts only
//! record which event channels fired; the loop computes the earliest
//! deadline among its parts, blocks until then or until the xenstore
//! channel fires, and does the work that is due.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::num::NonZeroU32;
use core::sync::atomic::Ordering;

use crate::arch::x86_64::trap;
use crate::balloon::{self, Balloon, BalloonConfig, Progress, Scrubber};
use crate::mm::frame::{FrameAllocator, FrameState};
use crate::mm::{pages_to_kib, Pfn, PAGE_SIZE};
use crate::selfballoon::controller::Controller;
use crate::selfballoon::policy::TickInput;
use crate::selfballoon::tunables::{TimerAction, Tunables};
use crate::selfballoon::xs::XsGlue;
use crate::workload::engine::{Engine, MapError, PageSource, StepOutcome};
use crate::workload::pattern::PAGE_BYTES;
use crate::workload::spec::Spec;
use crate::workload::Committed;
use crate::xen::abi;
use crate::xen::calls::{self, XenMemory};
use crate::xen::events::{self, Port};
use crate::xen::ops::MemoryOps;
use crate::xen::time;
use crate::xen::xenstore::{Store, XsError};

use super::platform::{self, Wake};
use super::store::{store_port, XenStore};
use super::{Kernel, Role};

const NS_PER_S: u64 = 1_000_000_000;
const TOKEN_TARGET: &str = "target";
const TOKEN_TUNABLES: &str = "tunables";
const TOKEN_WORKLOAD: &str = "workload";
/// Status is republished at least this often even when nothing ticks.
const STATUS_PERIOD_NS: u64 = 2 * NS_PER_S;
/// `memory/target` is read this often even without a watch event:
/// xenstored may drop events (an unread event times out after 20 s in
/// Xen >= 4.17; a live-updated or restarted xenstored loses them), and a
/// guest that missed one would hold the wrong size for good.
const TARGET_RECHECK_NS: u64 = 10 * NS_PER_S;

/// Zeroes frames through the identity map before they leave the domain.
struct IdentityScrubber;

impl Scrubber for IdentityScrubber {
    fn scrub(&mut self, pfn: Pfn) {
        // SAFETY: the balloon only scrubs frames it has taken from the
        // allocator (populated RAM, identity mapped, owned by nobody else).
        unsafe { core::ptr::write_bytes((pfn * PAGE_SIZE) as *mut u8, 0, PAGE_SIZE as usize) };
    }
}

/// The workload's frames: the allocator and the identity map.
struct Frames<'a, 'm> {
    frames: &'a mut FrameAllocator<'m>,
}

impl Frames<'_, '_> {
    /// The identity-mapped bytes of `pfn`, if the frame is allocated (to
    /// the workload: it is the only user of `alloc` at run time).
    fn page(&self, pfn: Pfn) -> Result<*mut [u8; PAGE_BYTES], MapError> {
        match self.frames.state(pfn) {
            Some(FrameState::Allocated) => Ok((pfn * PAGE_SIZE) as *mut [u8; PAGE_BYTES]),
            _ => Err(MapError),
        }
    }
}

impl PageSource for Frames<'_, '_> {
    fn alloc_frame(&mut self) -> Option<Pfn> {
        self.frames.alloc()
    }

    fn write_frame(
        &mut self,
        pfn: Pfn,
        f: &mut dyn FnMut(&mut [u8; PAGE_BYTES]),
    ) -> Result<(), MapError> {
        let page = self.page(pfn)?;
        // SAFETY: the frame is allocated (checked by `page`): populated,
        // identity-mapped RAM that only the workload uses; no other
        // reference to it exists during the call.
        f(unsafe { &mut *page });
        Ok(())
    }

    fn read_frame(
        &mut self,
        pfn: Pfn,
        f: &mut dyn FnMut(&[u8; PAGE_BYTES]),
    ) -> Result<(), MapError> {
        let page = self.page(pfn)?;
        // SAFETY: as in write_frame.
        f(unsafe { &*page });
        Ok(())
    }

    fn free_frame(&mut self, pfn: Pfn) {
        if let Err(e) = self.frames.free(pfn) {
            log::error!("workload freed frame {pfn:#x}: {e}");
        }
    }
}

/// Measures the time spent inside reservation hypercalls, to compare with
/// the guest-side time of a whole balloon step.
struct Timed<'a, M: MemoryOps> {
    inner: &'a mut M,
    hypercall_ns: u64,
    hypercalls: u64,
}

impl<M: MemoryOps> Timed<'_, M> {
    fn time<T>(&mut self, f: impl FnOnce(&mut M) -> T) -> T {
        let t0 = time::now_ns();
        let r = f(self.inner);
        self.hypercall_ns += time::now_ns().saturating_sub(t0);
        self.hypercalls += 1;
        r
    }
}

impl<M: MemoryOps> MemoryOps for Timed<'_, M> {
    fn decrease_reservation(
        &mut self,
        extent_order: u32,
        extents: &[Pfn],
    ) -> Result<usize, crate::xen::errno::Errno> {
        self.time(|m| m.decrease_reservation(extent_order, extents))
    }
    fn populate_physmap(
        &mut self,
        extent_order: u32,
        extents: &[Pfn],
    ) -> Result<usize, crate::xen::errno::Errno> {
        self.time(|m| m.populate_physmap(extent_order, extents))
    }
    fn current_reservation(&mut self) -> Result<u64, crate::xen::errno::Errno> {
        self.inner.current_reservation()
    }
    fn maximum_reservation(&mut self) -> Result<u64, crate::xen::errno::Errno> {
        self.inner.maximum_reservation()
    }
}

/// Balloon timing totals: whole steps (guest side, including scrubbing
/// and bookkeeping) against the hypercalls inside them.
#[derive(Clone, Copy, Debug, Default)]
struct BalloonTiming {
    steps: u64,
    step_ns: u64,
    hypercalls: u64,
    hypercall_ns: u64,
    pages: u64,
}

/// A [`Store`] that skips writes of the value it last wrote to a path, so
/// that publishing unchanged status costs no round trip.
struct Dedup<'a, S: Store> {
    inner: &'a mut S,
    written: &'a mut BTreeMap<String, String>,
}

impl<S: Store> Store for Dedup<'_, S> {
    fn read(&mut self, path: &str) -> Result<String, XsError> {
        self.inner.read(path)
    }
    fn write(&mut self, path: &str, value: &str) -> Result<(), XsError> {
        if self.written.get(path).is_some_and(|v| v == value) {
            return Ok(());
        }
        self.inner.write(path, value)?;
        self.written.insert(path.to_string(), value.to_string());
        Ok(())
    }
    fn directory(&mut self, path: &str) -> Result<Vec<String>, XsError> {
        self.inner.directory(path)
    }
    fn rm(&mut self, path: &str) -> Result<(), XsError> {
        self.written.remove(path);
        self.inner.rm(path)
    }
    fn watch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        self.inner.watch(path, token)
    }
    fn unwatch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        self.inner.unwatch(path, token)
    }
}

/// The runtime state of normal operation.
struct Runtime {
    mem: XenMemory,
    balloon: Balloon,
    balloon_next_ns: Option<u64>,
    controller: Controller,
    glue: Option<XsGlue>,
    tick_next_ns: Option<u64>,
    engine: Option<Engine>,
    engine_next_ns: Option<u64>,
    written: BTreeMap<String, String>,
    status_next_ns: u64,
    kernel_pages: u64,
    boot_totalram_pages: u64,
    max_pfn: u64,
    timing: BalloonTiming,
    /// VIRQ_DEBUG (`xl debug-keys q`): logs [`Runtime::dump`].
    debug_port: Option<Port>,
    /// Main-loop iterations and watch events handled, for the dump.
    loops: u64,
    target_events: u64,
    /// The `memory/target` value last applied, and when to re-read it.
    target_seen: Option<String>,
    target_check_next_ns: u64,
    /// Changes found by the re-read rather than by a watch event.
    target_missed_events: u64,
}

fn parse_workload(spec: &str) -> Option<Engine> {
    match Spec::parse(spec) {
        Ok(s) => Some(Engine::new(
            s,
            NonZeroU32::new(crate::workload::engine::DEFAULT_BUDGET_PAGES)
                .unwrap_or(NonZeroU32::MIN),
        )),
        Err(e) => {
            log::error!("workload '{spec}' rejected: {e}");
            None
        }
    }
}

/// Normal operation. Never returns.
pub fn run(k: &mut Kernel) -> ! {
    let Some(ev) = k.events else {
        log::info!("no hypervisor: nothing to balloon; idling");
        loop {
            trap::halt_until_interrupt();
        }
    };
    let mut rt = Runtime::new(k);
    log::info!(
        "runtime: {} frames, floor {} KiB, selfballooning {}, mode {}",
        k.frames.counts().total_pages,
        pages_to_kib(rt.balloon.floor_pages()),
        rt.controller.tunables().selfballooning,
        rt.controller.tunables().mode.name()
    );
    loop {
        let now = time::now_ns();
        rt.poll_store(k, now);
        rt.recheck_target(k, now);
        rt.run_engine(k, now);
        rt.run_tick(k, now);
        rt.run_balloon(k, now);
        if now >= rt.status_next_ns {
            rt.publish(k);
            rt.status_next_ns = now + STATUS_PERIOD_NS;
        }
        let deadline = [
            rt.tick_next_ns,
            rt.balloon_next_ns,
            rt.engine_next_ns,
            Some(rt.status_next_ns),
        ]
        .into_iter()
        .flatten()
        .chain(rt.glue.is_some().then_some(rt.target_check_next_ns))
        .min()
        .unwrap_or(now + 60 * NS_PER_S);
        let mut ports: Vec<_> = k.store.as_mut().map(store_port).into_iter().collect();
        ports.extend(rt.debug_port);
        rt.loops += 1;
        let woke = if deadline > time::now_ns() {
            platform::wait(&ev, &ports, deadline)
        } else {
            Wake::Deadline
        };
        // `wait` consumes the port it returns; otherwise look for it here.
        let debug = match (woke, rt.debug_port) {
            (Wake::Port(p), Some(d)) if p == d => true,
            (_, Some(d)) => events::take(d),
            (_, None) => false,
        };
        if debug {
            rt.dump(k, deadline);
        }
    }
}

impl Runtime {
    fn new(k: &mut Kernel) -> Runtime {
        let mut config = BalloonConfig::default();
        if let Some(f) = k.args.balloon_floor_pages() {
            config.floor_pages = f;
        }
        if let Some(s) = k.args.scrub {
            config.scrub = s;
        }
        let counts = k.frames.counts();
        let mut balloon = Balloon::new(config, counts);
        let mut mem = XenMemory::new();
        // A guest started with memory < maxmem holds fewer pages than its
        // memory map shows (populate-on-demand): give those back before
        // anything touches them.
        match mem.current_reservation() {
            Ok(cur) => {
                match balloon.init_pod(&mut mem, &mut k.frames, &mut IdentityScrubber, cur) {
                    Ok(0) => {}
                    Ok(n) => {
                        log::info!("pod: released {n} pages not backed at boot (reservation {cur})")
                    }
                    Err(e) => log::warn!("pod: release incomplete: {e:?}"),
                }
            }
            Err(e) => log::warn!("current_reservation: {e}"),
        }
        let kernel_pages = counts.reserved_pages;
        let boot_totalram_pages = k
            .frames
            .counts()
            .populated_pages()
            .saturating_sub(kernel_pages);
        let max_pfn = k.boot.ram.iter().map(|r| r.end()).max().unwrap_or(0);

        let mut tunables = Tunables::new(k.args.selfballooning.unwrap_or(true));
        if let Some(m) = k.args.selfballoon_mode {
            tunables.mode = m;
        }
        let controller = Controller::new(tunables);
        let engine = k.args.workload.as_deref().and_then(parse_workload);
        if let (Some(spec), Some(_)) = (k.args.workload.as_deref(), engine.as_ref()) {
            log::info!("workload: {spec}");
        }
        let mut rt = Runtime {
            mem,
            balloon,
            balloon_next_ns: Some(0),
            tick_next_ns: None,
            controller,
            glue: None,
            engine,
            engine_next_ns: Some(0),
            written: BTreeMap::new(),
            status_next_ns: 0,
            kernel_pages,
            boot_totalram_pages,
            max_pfn,
            timing: BalloonTiming::default(),
            debug_port: None,
            loops: 0,
            target_events: 0,
            target_seen: None,
            target_check_next_ns: 0,
            target_missed_events: 0,
        };
        // Xen raises VIRQ_DEBUG in every domain on the 'q' debug key; the
        // nested rig presses it when a scenario fails.
        match calls::bind_virq(abi::VIRQ_DEBUG, 0) {
            Ok(p) => rt.debug_port = Some(p),
            Err(e) => log::warn!("bind VIRQ_DEBUG: {e}"),
        }
        if rt.controller.tunables().selfballooning {
            rt.tick_next_ns = Some(time::now_ns() + rt.interval_ns());
        }
        if k.role == Role::DomU {
            rt.init_store(k);
        }
        rt
    }

    fn interval_ns(&self) -> u64 {
        u64::from(self.controller.tunables().interval_s.get()).saturating_mul(NS_PER_S)
    }

    fn init_store(&mut self, k: &mut Kernel) {
        let Some(xs) = k.store.as_mut() else { return };
        let home = match xs.home_path() {
            Ok(h) => h,
            Err(e) => {
                log::warn!("xenstore: no home path: {e}");
                return;
            }
        };
        match xs.read_u64("memory/static-max") {
            Ok(kib) => self.balloon.set_static_max_kib(Some(kib)),
            Err(e) => log::warn!("memory/static-max: {e}"),
        }
        self.apply_target(xs);
        if let Err(e) = xs.watch(&format!("{home}/memory/target"), TOKEN_TARGET) {
            log::warn!("watch memory/target: {e}");
        }
        let glue = XsGlue::new(
            &format!("{home}/memory/selfballoon"),
            &format!("{home}/data/selfballoon"),
        );
        if let Err(e) = glue.watch(xs, TOKEN_TUNABLES) {
            log::warn!("watch tunables: {e}");
        }
        if let Err(e) = xs.watch(&format!("{home}/memory/workload"), TOKEN_WORKLOAD) {
            log::warn!("watch workload: {e}");
        }
        self.glue = Some(glue);
    }

    fn apply_target(&mut self, xs: &mut XenStore) {
        match xs.read("memory/target") {
            Ok(v) => self.apply_target_value(v),
            Err(e) => log::warn!("memory/target: {e}"),
        }
    }

    fn apply_target_value(&mut self, v: String) {
        match self.balloon.apply_toolstack_target(&v) {
            Ok(kib) => {
                log::info!("toolstack target {kib} KiB");
                self.balloon_next_ns = Some(0);
            }
            Err(e) => log::warn!("memory/target '{v}' rejected: {e}"),
        }
        // A rejected value is remembered too: it is re-applied (and
        // re-reported) only when it changes.
        self.target_seen = Some(v);
    }

    /// Reads `memory/target` without a watch event (see
    /// [`TARGET_RECHECK_NS`]) and applies it if it changed.
    fn recheck_target(&mut self, k: &mut Kernel, now: u64) {
        if now < self.target_check_next_ns || self.glue.is_none() {
            return;
        }
        self.target_check_next_ns = now.saturating_add(TARGET_RECHECK_NS);
        let Some(xs) = k.store.as_mut() else { return };
        match xs.read("memory/target") {
            Ok(v) if self.target_seen.as_deref() != Some(v.as_str()) => {
                self.target_missed_events += 1;
                log::warn!(
                    "memory/target is '{v}' but no watch event said so ({} times); applying it",
                    self.target_missed_events
                );
                self.apply_target_value(v);
            }
            Ok(_) => {}
            Err(e) => log::debug!("memory/target re-read: {e}"),
        }
    }

    fn poll_store(&mut self, k: &mut Kernel, now: u64) {
        let Some(xs) = k.store.as_mut() else { return };
        if let Err(e) = xs.poll() {
            log::warn!("xenstore poll: {e}");
        }
        if xs
            .take_watch_events(TOKEN_TARGET)
            .is_ok_and(|v| !v.is_empty())
        {
            self.target_events += 1;
            self.apply_target(xs);
        }
        if xs
            .take_watch_events(TOKEN_TUNABLES)
            .is_ok_and(|v| !v.is_empty())
        {
            if let Some(glue) = self.glue.as_mut() {
                let r = glue.on_watch(xs, &mut self.controller);
                if r.applied + r.rejected > 0 {
                    log::info!("tunables: {} applied, {} rejected", r.applied, r.rejected);
                }
                if let Some(rej) = self.controller.last_rejection() {
                    if r.rejected > 0 {
                        log::warn!(
                            "tunable {} = '{}' rejected: {:?}",
                            rej.key,
                            rej.value,
                            rej.reason
                        );
                    }
                }
                match r.timer {
                    TimerAction::Start => self.tick_next_ns = Some(now + self.interval_ns()),
                    TimerAction::Stop => self.tick_next_ns = None,
                    TimerAction::Keep if r.interval_changed && self.tick_next_ns.is_some() => {
                        self.tick_next_ns = Some(now + self.interval_ns());
                    }
                    TimerAction::Keep => {}
                }
                self.status_next_ns = 0;
            }
        }
        if xs
            .take_watch_events(TOKEN_WORKLOAD)
            .is_ok_and(|v| !v.is_empty())
        {
            if let Ok(spec) = xs.read("memory/workload") {
                if !spec.is_empty() {
                    if let Some(e) = parse_workload(&spec) {
                        log::info!("workload from xenstore: {spec}");
                        self.replace_engine(e);
                    }
                }
            }
        }
    }

    fn replace_engine(&mut self, new: Engine) {
        if let Some(old) = self.engine.take() {
            let s = old.status();
            if s.reserved_pages > 0 {
                // Keep the old program's frames: an engine owns what it
                // reserved; dropping it would leak them. Run the new one
                // only once the old has released everything.
                log::warn!(
                    "workload: previous program still holds {} pages; keeping it",
                    s.reserved_pages
                );
                self.engine = Some(old);
                return;
            }
        }
        self.engine = Some(new);
        self.engine_next_ns = Some(0);
    }

    fn run_engine(&mut self, k: &mut Kernel, now: u64) {
        if self.engine_next_ns.is_none_or(|t| now < t) {
            return;
        }
        let Some(engine) = self.engine.as_mut() else {
            self.engine_next_ns = None;
            return;
        };
        // A few rounds per loop so a starving allocation grows the balloon
        // and continues at once.
        for _ in 0..64 {
            let out = engine.step(
                now,
                &mut Frames {
                    frames: &mut k.frames,
                },
            );
            log::trace!("workload step: {out:?} {:?}", engine.status());
            match out {
                StepOutcome::Busy => {
                    self.engine_next_ns = Some(now);
                }
                StepOutcome::NeedFrames { pages } => {
                    // Balloon up now, within the toolstack target.
                    match self
                        .balloon
                        .ensure_free(&mut self.mem, &mut k.frames, pages)
                    {
                        Ok(()) => continue,
                        Err(e) => {
                            log::debug!("workload needs {pages} frames: {e:?}");
                            self.engine_next_ns = Some(now + NS_PER_S / 10);
                            return;
                        }
                    }
                }
                StepOutcome::Sleep { until_ns } => {
                    self.engine_next_ns = Some(until_ns);
                    return;
                }
                StepOutcome::OutOfHeap => {
                    self.engine_next_ns = Some(now + NS_PER_S);
                    return;
                }
                StepOutcome::Done => {
                    self.engine_next_ns = None;
                    return;
                }
            }
        }
    }

    fn committed(&self, k: &Kernel) -> u64 {
        let heap = k.heap.stats();
        Committed {
            workload_reserved_pages: self.engine.as_ref().map_or(0, |e| e.committed_pages()),
            kernel_heap_pages: (heap.size_bytes as u64).div_ceil(PAGE_SIZE),
            page_table_pages: super::boot::BOOT_PAGE_TABLE_PAGES,
        }
        .total_pages()
    }

    fn run_tick(&mut self, k: &mut Kernel, now: u64) {
        let Some(t) = self.tick_next_ns else { return };
        if now < t {
            return;
        }
        let counts = k.frames.counts();
        let current = counts.populated_pages();
        let input = TickInput {
            committed_pages: self.committed(k),
            current_pages: current,
            totalram_pages: current.saturating_sub(self.kernel_pages),
            totalreserve_pages: 0,
            frontswap_pages: 0,
            toolstack_target_pages: Some(self.balloon.upper_pages()),
            boot_totalram_pages: self.boot_totalram_pages,
            max_pfn: self.max_pfn,
        };
        let out = self.controller.tick(input);
        if let Some(d) = out.decision {
            log::debug!(
                "tick {}: committed {} current {} goal {} target {}",
                self.controller.ticks(),
                input.committed_pages,
                current,
                d.goal_pages,
                d.target_pages
            );
            self.balloon
                .set_requested_target_pages(Some(d.target_pages));
            self.balloon_next_ns = Some(0);
        } else {
            self.balloon.set_requested_target_pages(None);
        }
        self.tick_next_ns = if out.rearm_timer {
            Some(now + u64::from(out.interval_s.max(1)) * NS_PER_S)
        } else {
            None
        };
        self.status_next_ns = 0;
    }

    fn run_balloon(&mut self, k: &mut Kernel, now: u64) {
        if self.balloon_next_ns.is_none_or(|t| now < t) {
            return;
        }
        let mut ops = Timed {
            inner: &mut self.mem,
            hypercall_ns: 0,
            hypercalls: 0,
        };
        let t0 = time::now_ns();
        let r = self
            .balloon
            .step(&mut ops, &mut k.frames, &mut IdentityScrubber, now);
        let step_ns = time::now_ns().saturating_sub(t0);
        let moved = r.released_pages + r.populated_pages;
        if moved > 0 {
            self.status_next_ns = 0;
            let t = &mut self.timing;
            t.steps += 1;
            t.step_ns += step_ns;
            t.hypercalls += ops.hypercalls;
            t.hypercall_ns += ops.hypercall_ns;
            t.pages += moved;
            log::info!(
                "balloon: -{} +{} pages in {} hypercalls: step {} us, hypercalls {} us ({:?})",
                r.released_pages,
                r.populated_pages,
                ops.hypercalls,
                step_ns / 1000,
                ops.hypercall_ns / 1000,
                r.progress
            );
        }
        if let Progress::BackingOff = r.progress {
            log::debug!(
                "balloon backing off: {:?}",
                self.balloon.status(k.frames.counts()).last_error
            );
        }
        self.balloon_next_ns = r.next_call_ns;
    }

    /// Logs the loop's state: what a post-mortem of a stuck or deaf guest
    /// needs (is the loop turning, is it waiting for the right things, what
    /// does it believe the targets are).
    fn dump(&mut self, k: &mut Kernel, deadline_ns: u64) {
        let now = time::now_ns();
        let rel = |t: Option<u64>| match t {
            Some(t) => format!("{}ms", (t.saturating_sub(now) / 1_000_000)),
            None => "-".to_string(),
        };
        let st = self.balloon.status(k.frames.counts());
        log::info!(
            "debug: uptime {} ms, {} loops, {} upcalls ({} nested, {} with IF clear, {} spurious), \
             {} target events ({} missed); next: wait {} tick {} balloon {} engine {} status {}",
            now / 1_000_000,
            self.loops,
            events::UPCALLS.load(Ordering::Relaxed),
            trap::NESTED_IRQS.load(Ordering::Relaxed),
            trap::MASKED_IRQS.load(Ordering::Relaxed),
            trap::SPURIOUS_IRQS.load(Ordering::Relaxed),
            self.target_events,
            self.target_missed_events,
            rel(Some(deadline_ns)),
            rel(self.tick_next_ns),
            rel(self.balloon_next_ns),
            rel(self.engine_next_ns),
            rel(Some(self.status_next_ns)),
        );
        log::info!(
            "debug: balloon current {} KiB target {} KiB toolstack {} KiB requested {:?} \
             floor {} KiB free {} KiB limit {:?} error {:?} backoff {} s",
            st.current_kib,
            st.target_kib,
            st.toolstack_target_kib,
            st.requested_target_kib,
            st.floor_kib,
            st.free_kib,
            st.limit,
            st.last_error,
            st.backoff_s
        );
        if let Some(xs) = k.store.as_mut() {
            let port = store_port(xs);
            let queued = xs.queued_watch_events();
            let target = xs.read("memory/target");
            log::info!(
                "debug: xenstore port {port} fired {} queued events {queued} broken {} \
                 memory/target {target:?}",
                events::peek(port),
                xs.is_broken(),
            );
        }
        if let Some(e) = self.engine.as_ref() {
            log::info!("debug: workload {:?}", e.status());
        }
    }

    fn publish(&mut self, k: &mut Kernel) {
        let counts = k.frames.counts();
        let status = self.balloon.status(counts);
        let Some(xs) = k.store.as_mut() else { return };
        let mut store = Dedup {
            inner: xs,
            written: &mut self.written,
        };
        let mut errors = 0;
        if balloon::publish(&mut store, &status).is_err() {
            errors += 1;
        }
        if let Some(glue) = self.glue.as_ref() {
            if glue.publish(&mut store, &self.controller).is_err() {
                errors += 1;
            }
        }
        let mut extra: Vec<(&str, String)> = alloc::vec![
            ("data/selfballoon/floor", status.floor_kib.to_string()),
            (
                "data/selfballoon/clamped",
                u8::from(status.clamped).to_string()
            ),
            (
                "data/selfballoon/toolstack_target",
                status.toolstack_target_kib.to_string()
            ),
        ];
        let t = self.timing;
        if let (Some(step), Some(hyper)) = (
            t.step_ns.checked_div(t.hypercalls),
            t.hypercall_ns.checked_div(t.hypercalls),
        ) {
            // Per 512-extent batch: guest-side step time vs hypercall time.
            extra.push(("data/selfballoon/batch_step_us", (step / 1000).to_string()));
            extra.push((
                "data/selfballoon/batch_hypercall_us",
                (hyper / 1000).to_string(),
            ));
            extra.push((
                "data/selfballoon/balloon_hypercalls",
                t.hypercalls.to_string(),
            ));
        }
        let c = self.balloon.counters();
        for (key, value) in [
            ("data/selfballoon/released_pages", c.released_pages),
            ("data/selfballoon/populated_pages", c.populated_pages),
            ("data/selfballoon/scrubbed_pages", c.scrubbed_pages),
            (
                "data/selfballoon/superpages_released",
                c.superpages_released,
            ),
            (
                "data/selfballoon/superpages_populated",
                c.superpages_populated,
            ),
            (
                "data/selfballoon/superpage_fallbacks",
                c.superpage_fallbacks,
            ),
            (
                "data/selfballoon/quarantined_extents",
                c.quarantined_extents,
            ),
            (
                "data/selfballoon/target_missed_events",
                self.target_missed_events,
            ),
            (
                "data/selfballoon/nested_irqs",
                trap::NESTED_IRQS.load(Ordering::Relaxed),
            ),
            (
                "data/selfballoon/masked_irqs",
                trap::MASKED_IRQS.load(Ordering::Relaxed),
            ),
        ] {
            extra.push((key, value.to_string()));
        }
        if let Some(e) = self.engine.as_ref() {
            let s = e.status();
            extra.push(("data/selfballoon/workload_phase", s.phase.to_string()));
            extra.push((
                "data/selfballoon/workload_reserved",
                pages_to_kib(s.reserved_pages).to_string(),
            ));
            extra.push((
                "data/selfballoon/workload_resident",
                pages_to_kib(s.resident_pages).to_string(),
            ));
            extra.push((
                "data/selfballoon/workload_verified",
                s.verified_pages.to_string(),
            ));
            extra.push((
                "data/selfballoon/workload_mismatches",
                s.mismatches.to_string(),
            ));
        }
        for (p, v) in extra {
            if store.write(p, &v).is_err() {
                errors += 1;
            }
        }
        if errors > 0 {
            log::debug!("status publish: {errors} groups failed");
        }
    }
}
