//! In-guest checks against whatever the kernel finds itself on: bare QEMU,
//! Xen as dom0, or Xen as a domU with xenstore. One line per check, then
//! the caller prints exactly one `Test result:` line (XTF convention).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::x86_64::cpu;
use crate::arch::x86_64::trap::{self, TrapFrame};
use crate::mm::direct::PhysPages;
use crate::swap::checks;
use crate::swap::xen_tmem::XenTmem;
use crate::xen::errno::Errno;
use crate::xen::ops::MemoryOps;
use crate::xen::tmem::{Presence, XenTmemHypervisor};
use crate::xen::xenstore::Store;
use crate::xen::{abi, calls, events, time};

use super::exit::TestResult;
use super::platform;
use super::{Kernel, Role};

static BREAKPOINTS: AtomicU64 = AtomicU64::new(0);

/// `int3` hook: counts and resumes.
pub fn on_breakpoint(_frame: &TrapFrame) {
    BREAKPOINTS.fetch_add(1, Ordering::Relaxed);
}

enum Outcome {
    Pass(String),
    Fail(String),
    Skip(&'static str),
}

struct Report {
    passed: u32,
    failed: u32,
    skipped: u32,
}

impl Report {
    fn record(&mut self, name: &str, o: Outcome) {
        match o {
            Outcome::Pass(d) => {
                self.passed += 1;
                crate::println!("selftest: PASS {name}: {d}");
            }
            Outcome::Fail(d) => {
                self.failed += 1;
                crate::println!("selftest: FAIL {name}: {d}");
            }
            Outcome::Skip(why) => {
                self.skipped += 1;
                crate::println!("selftest: SKIP {name}: {why}");
            }
        }
    }
}

fn outcome(r: Result<String, String>) -> Outcome {
    match r {
        Ok(d) => Outcome::Pass(d),
        Err(d) => Outcome::Fail(d),
    }
}

fn check(cond: bool, pass: String, fail: String) -> Outcome {
    if cond {
        Outcome::Pass(pass)
    } else {
        Outcome::Fail(fail)
    }
}

/// Runs every check that can run here.
pub fn run(k: &mut Kernel) -> TestResult {
    let mut r = Report {
        passed: 0,
        failed: 0,
        skipped: 0,
    };
    crate::println!("selftest: starting as {:?}", k.role);
    r.record("start-info", start_info(k));
    r.record("cmdline", Outcome::Pass(String::from("selftest word seen")));
    if k.args.crash == Some(crate::cmdline::CrashKind::FailCheck) {
        r.record(
            "injected",
            Outcome::Fail(String::from("crash=fail asked for a failing check")),
        );
    }
    r.record("traps", traps());
    r.record("irq-nesting", irq_nesting());
    r.record("sse", sse());
    r.record("heap", heap(k));
    r.record("frames", frames(k));
    r.record("paging", outcome(super::swapcheck::paging(k)));
    r.record("frontswap", outcome(super::swapcheck::frontswap(k)));
    let xen = k.xen.is_some();
    let no_xen = "no hypervisor";
    r.record(
        "xen-version",
        if xen {
            xen_version()
        } else {
            Outcome::Skip(no_xen)
        },
    );
    r.record(
        "reservation",
        if xen {
            reservation(k)
        } else {
            Outcome::Skip(no_xen)
        },
    );
    r.record(
        "memory-map",
        if xen {
            memory_map()
        } else {
            Outcome::Skip(no_xen)
        },
    );
    r.record(
        "balloon-hypercalls",
        if xen {
            balloon_roundtrip(k)
        } else {
            Outcome::Skip(no_xen)
        },
    );
    r.record("time", if xen { clock() } else { Outcome::Skip(no_xen) });
    r.record("timer", if xen { timer(k) } else { Outcome::Skip(no_xen) });
    r.record("evtchn", if xen { evtchn() } else { Outcome::Skip(no_xen) });
    r.record(
        "tmem-probe",
        if xen {
            tmem_probe()
        } else {
            Outcome::Skip(no_xen)
        },
    );
    let mut xt = if xen { tmem_backend(k) } else { Err(no_xen) };
    r.record(
        "tmem-persistent",
        xt.as_mut()
            .map_or_else(|&mut w| Outcome::Skip(w), |x| tmem_persistent(k, x)),
    );
    r.record(
        "tmem-ephemeral",
        xt.as_mut()
            .map_or_else(|&mut w| Outcome::Skip(w), tmem_ephemeral),
    );
    r.record("cleancache", outcome(super::cachecheck::cleancache(k)));
    let xs_skip = match k.role {
        Role::Bare => Some(no_xen),
        Role::Dom0 => Some("dom0 has no xenstore here"),
        Role::DomU => None,
    };
    match xs_skip {
        Some(why) => {
            r.record("xenstore", Outcome::Skip(why));
            r.record("xenstore-watch", Outcome::Skip(why));
        }
        None => {
            r.record("xenstore", xenstore(k));
            r.record("xenstore-watch", xenstore_watch(k));
        }
    }
    crate::println!(
        "selftest: {} passed, {} failed, {} skipped",
        r.passed,
        r.failed,
        r.skipped
    );
    if r.failed > 0 {
        TestResult::Failure
    } else if r.passed == 0 {
        TestResult::Skip
    } else {
        TestResult::Success
    }
}

fn start_info(k: &Kernel) -> Outcome {
    let ram_pages: u64 = k.boot.ram.iter().map(|r| r.count).sum();
    check(
        ram_pages > 0 && !k.boot.memmap.is_empty(),
        format!(
            "v{}, flags {:#x}, {} map entries{}, {} MiB RAM",
            k.boot.start_info.version,
            k.boot.start_info.flags,
            k.boot.memmap.len(),
            if k.boot.memmap_from_xen {
                " (from XENMEM_memory_map)"
            } else {
                ""
            },
            ram_pages / 256
        ),
        String::from("no RAM in the memory map"),
    )
}

fn traps() -> Outcome {
    let before = BREAKPOINTS.load(Ordering::Relaxed);
    trap::breakpoint();
    let after = BREAKPOINTS.load(Ordering::Relaxed);
    check(
        after == before + 1,
        String::from("int3 handled on its IST stack and returned"),
        format!("breakpoint count {before} -> {after}"),
    )
}

static NEST_DEPTH: AtomicU64 = AtomicU64::new(0);
static NEST_RUNS: AtomicU64 = AtomicU64::new(0);

/// Handler of [`trap::SELFTEST_VECTOR`]: the first call raises the vector
/// again from inside itself, so the second delivery lands on the IRQ stack
/// while it is in use and overwrites the first frame.
fn nest_once(_vector: u8) {
    NEST_RUNS.fetch_add(1, Ordering::Relaxed);
    if NEST_DEPTH.fetch_add(1, Ordering::Relaxed) == 0 {
        trap::raise_selftest_vector();
        // Not reached: the nested delivery resumes the idle context.
        NEST_RUNS.fetch_add(100, Ordering::Relaxed);
    }
}

fn irq_nesting() -> Outcome {
    let nested_before = trap::NESTED_IRQS.load(Ordering::Relaxed);
    NEST_DEPTH.store(0, Ordering::Relaxed);
    NEST_RUNS.store(0, Ordering::Relaxed);
    trap::set_irq_handler(trap::SELFTEST_VECTOR, nest_once);
    trap::simulate_idle_interrupt();
    let runs = NEST_RUNS.load(Ordering::Relaxed);
    let nested = trap::NESTED_IRQS.load(Ordering::Relaxed) - nested_before;
    check(
        runs == 2 && nested == 1,
        String::from("an interrupt nested on the IRQ stack resumed the idle context"),
        format!("handler runs {runs} (want 2), nested deliveries {nested} (want 1)"),
    )
}

fn sse() -> Outcome {
    let v: Vec<f64> = (1..=16).map(|i| f64::from(i) * 0.5).collect();
    let s: f64 = core::hint::black_box(&v).iter().map(|x| x * x).sum();
    check(
        s == 374.0,
        String::from("f64 arithmetic via SSE"),
        format!("sum of squares {s} != 374"),
    )
}

fn heap(k: &Kernel) -> Outcome {
    let b = alloc::vec![7u8; 64 * 1024].into_boxed_slice();
    let v: Vec<u64> = (0..10_000).collect();
    let ok = b.iter().all(|&x| x == 7) && v.iter().sum::<u64>() == 49_995_000;
    let s = k.heap.stats();
    check(
        ok,
        format!(
            "{} KiB in {} regions, {} KiB used",
            s.size_bytes / 1024,
            s.regions,
            s.used_bytes / 1024
        ),
        String::from("heap data corrupted"),
    )
}

fn frames(k: &mut Kernel) -> Outcome {
    let before = k.frames.counts();
    let mut got = Vec::new();
    for _ in 0..64 {
        match k.frames.alloc() {
            Some(p) => got.push(p),
            None => return Outcome::Fail(String::from("alloc failed")),
        }
    }
    // Write and read back through the direct map.
    let mut bad = 0;
    for &p in &got {
        match k.direct.page_mut(&k.frames, p) {
            Ok(page) => page[..8].copy_from_slice(&(p ^ 0x5a5a).to_le_bytes()),
            Err(_) => bad += 1,
        }
    }
    for &p in &got {
        let ok = k
            .direct
            .page_mut(&k.frames, p)
            .is_ok_and(|page| page[..8] == (p ^ 0x5a5a).to_le_bytes());
        if !ok {
            bad += 1;
        }
    }
    let run = k.frames.alloc_contiguous(16, 16);
    for p in got {
        if k.frames.free(p).is_err() {
            bad += 1;
        }
    }
    if let Some(start) = run {
        for p in start..start + 16 {
            if k.frames.free(p).is_err() {
                bad += 1;
            }
        }
    }
    let after = k.frames.counts();
    let inv = k.frames.check_invariants();
    check(
        bad == 0
            && run.is_some_and(|s| s % 16 == 0)
            && before.free_pages == after.free_pages
            && inv.is_ok(),
        format!(
            "64 single + 16 aligned contiguous frames, {} free",
            after.free_pages
        ),
        format!(
            "bad={bad} run={run:?} free {}->{} inv={inv:?}",
            before.free_pages, after.free_pages
        ),
    )
}

fn xen_version() -> Outcome {
    match calls::xen_version() {
        Ok((maj, min)) => {
            let extra = calls::xen_extraversion().ok();
            let extra = extra
                .map(|b| {
                    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
                    String::from_utf8_lossy(&b[..n]).into_owned()
                })
                .unwrap_or_default();
            Outcome::Pass(format!("Xen {maj}.{min}{extra}"))
        }
        Err(e) => Outcome::Fail(format!("xen_version: {e}")),
    }
}

fn reservation(_k: &Kernel) -> Outcome {
    let mut m = calls::XenMemory::new();
    match (m.current_reservation(), m.maximum_reservation()) {
        (Ok(cur), Ok(max)) => check(
            cur > 0 && cur <= max,
            format!("current {cur} pages ({} MiB), max {max}", cur / 256),
            format!("current {cur} > max {max}"),
        ),
        (a, b) => Outcome::Fail(format!("current {a:?}, maximum {b:?}")),
    }
}

fn memory_map() -> Outcome {
    match calls::memory_map(128) {
        Ok(v) => check(
            !v.is_empty(),
            format!("{} e820 entries", v.len()),
            String::from("empty map"),
        ),
        Err(e) => Outcome::Fail(format!("XENMEM_memory_map: {e}")),
    }
}

/// Decrease a batch of pages, populate them back, compare the reservation
/// and check they read as zero.
fn balloon_roundtrip(k: &mut Kernel) -> Outcome {
    const N: usize = 64;
    let mut m = calls::XenMemory::new();
    let before = match m.current_reservation() {
        Ok(c) => c,
        Err(e) => return Outcome::Fail(format!("current_reservation: {e}")),
    };
    let mut pfns = Vec::new();
    for _ in 0..N {
        match k.frames.alloc() {
            Some(p) => pfns.push(p),
            None => return Outcome::Fail(String::from("no frames")),
        }
    }
    for &p in &pfns {
        // Dirty the page, then scrub it as the balloon driver does: Xen
        // does not scrub pages a live domain frees (public/memory.h leaves
        // that to the guest), so unscrubbed pages would come back, to us or
        // to another domain, with our data in them.
        if let Ok(page) = k.direct.page_mut(&k.frames, p) {
            page.fill(0xa5);
            page.fill(0);
        }
    }
    let t0 = time::now_ns();
    let released = m.decrease_reservation(0, &pfns);
    let t1 = time::now_ns();
    let mid = m.current_reservation();
    let released = match released {
        Ok(n) => n,
        Err(e) => return Outcome::Fail(format!("decrease_reservation: {e}")),
    };
    let populated = m.populate_physmap(0, &pfns[..released]);
    let t2 = time::now_ns();
    let after = m.current_reservation();
    let mut nonzero = 0usize;
    if let Ok(n) = populated {
        for &p in pfns.iter().take(n) {
            let dirty = k
                .direct
                .page_mut(&k.frames, p)
                .map_or(true, |page| page.iter().any(|&b| b != 0));
            if dirty {
                nonzero += 1;
            }
        }
    }
    for p in pfns {
        let _ = k.frames.free(p);
    }
    let ok = released == N
        && mid == Ok(before - N as u64)
        && populated == Ok(N)
        && after == Ok(before)
        && nonzero == 0;
    check(
        ok,
        format!(
            "{N} pages: {before} -> {:?} -> {:?} pages, read back zero; decrease {} us, populate {} us",
            mid.unwrap_or(0),
            after.unwrap_or(0),
            (t1 - t0) / 1000,
            (t2 - t1) / 1000
        ),
        format!(
            "released {released}, reservation {before} -> {mid:?} -> {after:?}, populated {populated:?}, {nonzero} non-zero pages"
        ),
    )
}

fn clock() -> Outcome {
    log::debug!("time record: {:?}", time::record());
    let a = time::now_ns();
    for i in 0..100_000u64 {
        core::hint::black_box(i);
    }
    let b = time::now_ns();
    check(
        a > 0 && b > a,
        format!(
            "Xen system time {} ms, advancing ({} ns over a 100000-step loop)",
            a / 1_000_000,
            b - a
        ),
        format!("time did not advance: {a} -> {b}"),
    )
}

fn timer(k: &Kernel) -> Outcome {
    let Some(ev) = k.events else {
        return Outcome::Fail(String::from("events not initialised"));
    };
    let before = events::UPCALLS.load(Ordering::Relaxed);
    let t0 = time::now_ns();
    // Blocks in `hlt` until the one-shot timer's VIRQ wakes us.
    platform::sleep_ns(&ev, 20_000_000);
    let t1 = time::now_ns();
    let upcalls = events::UPCALLS.load(Ordering::Relaxed) - before;
    let slept_us = (t1 - t0) / 1000;
    check(
        (20_000..500_000).contains(&slept_us) && upcalls > 0,
        format!("20 ms one-shot timer woke us after {slept_us} us ({upcalls} upcalls)"),
        format!("slept {slept_us} us, {upcalls} upcalls"),
    )
}

fn evtchn() -> Outcome {
    let port = match calls::bind_virq(abi::VIRQ_DEBUG, 0) {
        Ok(p) => p,
        Err(e) => return Outcome::Fail(format!("bind_virq(DEBUG): {e}")),
    };
    let unmask = calls::evtchn_unmask(port);
    let close = calls::evtchn_close(port);
    let reclose = calls::evtchn_close(port);
    check(
        unmask.is_ok() && close.is_ok() && reclose.is_err(),
        format!("bound VIRQ_DEBUG to port {port}, unmasked, closed; second close {reclose:?}"),
        format!("unmask {unmask:?}, close {close:?}, second close {reclose:?}"),
    )
}

fn tmem_probe() -> Outcome {
    let mut op = abi::tmem_op::new_pool([0, 0], abi::tmem_pool_flags(abi::TMEM_POOL_PERSIST));
    let r = calls::tmem_op(&mut op);
    match r {
        Err(e) if e == crate::xen::errno::Errno::ENOSYS => Outcome::Pass(String::from(
            "tmem absent (ENOSYS): in-guest pool will be used",
        )),
        Err(e) => Outcome::Pass(format!("tmem unavailable ({e})")),
        Ok(id) => {
            // Give the probe's pool back (its id fits: Xen's ids are 0..16).
            let mut d = abi::tmem_op::destroy_pool(i32::try_from(id).unwrap_or(-1));
            let gone = calls::tmem_op(&mut d);
            Outcome::Pass(format!("tmem present, pool {id} (destroyed: {gone:?})"))
        }
    }
}

/// The `xen-tmem` backend on the real hypervisor, with a bounce frame
/// claimed for good, if the boot probe found tmem.
fn tmem_backend(k: &mut Kernel) -> Result<XenTmem<XenTmemHypervisor>, &'static str> {
    match crate::xen::tmem::boot_presence() {
        Some(Presence::Present) => {}
        Some(Presence::Absent(Errno::ENOSYS)) => return Err("tmem absent (ENOSYS)"),
        Some(Presence::Absent(Errno::ENODEV)) => return Err("tmem absent (ENODEV: no tmem=1)"),
        _ => return Err("tmem absent"),
    }
    let frame = k
        .direct
        .claim(&mut k.frames, 1, 1)
        .map_err(|_| "no frame for tmem's bounce page")?;
    let h = XenTmemHypervisor::new(frame).map_err(|_| "bounce claim not one frame")?;
    Ok(XenTmem::new(h))
}

/// Pages the persistent check puts, gets and flushes through Xen.
const TMEM_CHECK_PAGES: u32 = 2000;

/// Persistent tmem pages are charged to the domain (Xen 4.12's
/// `__tmem_alloc_page_thispool` fails once `tot_pages >= max_pages`), so
/// a guest at its maximum gets every persistent put refused: the check
/// first measures that, then balloons out room for its pages and Xen's
/// per-page metadata, and populates it back afterwards.
fn tmem_persistent(k: &mut Kernel, x: &mut XenTmem<XenTmemHypervisor>) -> Outcome {
    let at_max = match checks::persistent_check(x, 16, &time::now_ns) {
        Ok(r) => r.refused,
        Err(e) => return Outcome::Fail(format!("tmem at max: {e}")),
    };
    let headroom = u64::from(TMEM_CHECK_PAGES) + 256;
    let mut m = calls::XenMemory::new();
    let mut pfns = Vec::new();
    while (pfns.len() as u64) < headroom {
        match k.frames.alloc() {
            Some(p) => pfns.push(p),
            None => break,
        }
    }
    for &p in &pfns {
        // Scrubbed before it leaves the domain, as the balloon does.
        if let Ok(page) = k.direct.page_mut(&k.frames, p) {
            page.fill(0);
        }
    }
    let mut released = 0usize;
    for chunk in pfns.chunks(calls::MAX_BATCH) {
        match m.decrease_reservation(0, chunk) {
            Ok(n) => {
                released += n;
                if n < chunk.len() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let before = x.stats();
    let r = checks::persistent_check(x, TMEM_CHECK_PAGES, &time::now_ns);
    let s = x.stats();
    let mut populated = 0usize;
    for chunk in pfns[..released].chunks(calls::MAX_BATCH) {
        match m.populate_physmap(0, chunk) {
            Ok(n) => {
                populated += n;
                if n < chunk.len() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    // Frames not populated back have no memory behind them: never freed.
    let usable = pfns.len() - (released - populated);
    for &p in pfns[..populated].iter().chain(&pfns[released..]) {
        let _ = k.frames.free(p);
    }
    let r = match r {
        Ok(r) => r,
        Err(e) => return Outcome::Fail(format!("tmem: {e}")),
    };
    let (zput, zget, zstored, zbad) = checks::zpool_timing(512, 256, &time::now_ns);
    let detail = format!(
        "at max_pages {at_max}/16 puts refused; {released} pages ballooned out for room; \
         {} pages put, got back intact, flushed; {} absent after page flush (Xen answered 0: {}), \
         {} absent after object flush (-EEMPTY: {}); ns per put {} / get {} via xen-tmem, \
         zpool {} / {} (same run, {zstored} mixed pages)",
        r.stored,
        r.absent_after_page_flush,
        s.gets_absent - before.gets_absent,
        r.absent_after_object_flush,
        s.gets_empty - before.gets_empty,
        r.put_ns,
        r.get_ns,
        zput,
        zget
    );
    check(
        r.ok(u64::from(TMEM_CHECK_PAGES)) && zbad == 0 && populated == released,
        detail.clone(),
        format!(
            "{r:?}; zpool bad {zbad}; populated {populated}/{released} (usable {usable}); {detail}"
        ),
    )
}

fn tmem_ephemeral(x: &mut XenTmem<XenTmemHypervisor>) -> Outcome {
    match checks::ephemeral_check(x, 256) {
        Ok(r) => check(
            r.ok(),
            format!(
                "{} pages put to an ephemeral pool: {} returned once (second get absent), \
                 {} dropped by Xen, {} refused",
                r.stored, r.found, r.dropped, r.refused
            ),
            format!("{r:?}"),
        ),
        Err(e) => Outcome::Fail(format!("tmem: {e}")),
    }
}

fn xenstore(k: &mut Kernel) -> Outcome {
    let Some(xs) = k.store.as_mut() else {
        return Outcome::Fail(String::from("no xenstore connection"));
    };
    let domid = match xs.domid() {
        Ok(d) => d,
        Err(e) => return Outcome::Fail(format!("read domid: {e}")),
    };
    let target = xs.read_u64("memory/target");
    let max = xs.read_u64("memory/static-max");
    let w = xs.write("data/selfballoon/selftest", "1");
    let back = xs.read("data/selfballoon/selftest");
    let dir = xs.directory("data/selfballoon");
    let rm = xs.rm("data/selfballoon/selftest");
    let gone = xs.read("data/selfballoon/selftest");
    let tx = xs.transaction(|t| {
        let v = t.read("memory/target")?;
        t.write("data/selfballoon/tx", &v)
    });
    let ok = target.is_ok()
        && max.is_ok()
        && w.is_ok()
        && back.as_deref() == Ok("1")
        && dir
            .as_ref()
            .is_ok_and(|d| d.iter().any(|e| e == "selftest"))
        && rm.is_ok()
        && gone.is_err()
        && tx.is_ok();
    check(
        ok,
        format!(
            "domid {domid}, memory/target {} KiB, static-max {} KiB, write/read/dir/rm/transaction ok",
            target.unwrap_or(0),
            max.unwrap_or(0)
        ),
        format!("target {target:?} max {max:?} write {w:?} back {back:?} dir {dir:?} rm {rm:?} gone {gone:?} tx {tx:?}"),
    )
}

/// Watches a key of our own, writes it, and waits for the event: the
/// round trip through xenstored's watch machinery with nothing asked of
/// dom0 (a guest may write under its `data/` directory).
fn xenstore_watch(k: &mut Kernel) -> Outcome {
    let Some(xs) = k.store.as_mut() else {
        return Outcome::Fail(String::from("no xenstore connection"));
    };
    let path = match xs.home_path() {
        Ok(h) => format!("{h}/data/selfballoon/selftest-ping"),
        Err(e) => return Outcome::Fail(format!("home path: {e}")),
    };
    if let Err(e) = xs.watch(&path, "selftest") {
        return Outcome::Fail(format!("watch: {e}"));
    }
    let token = format!("{}", time::now_ns());
    // The initial event fires at once (xenstored's watch semantics); the
    // write after it must raise a second one.
    let deadline = time::now_ns() + 30_000_000_000;
    let mut initial = false;
    let mut written = false;
    let mut fired = false;
    while time::now_ns() < deadline && !fired {
        let _ = xs.poll();
        if let Ok(evs) = xs.take_watch_events("selftest") {
            for p in evs {
                if !initial {
                    initial = true;
                } else if written && p == path {
                    fired = true;
                }
            }
        }
        if initial && !written {
            if let Err(e) = xs.write(&path, &token) {
                let _ = xs.unwatch(&path, "selftest");
                return Outcome::Fail(format!("write {path}: {e}"));
            }
            written = true;
            continue;
        }
        if !fired {
            let port = super::store::store_port(xs);
            if let Some(ev) = k.events {
                let _ = platform::wait(&ev, &[port], (time::now_ns() + 100_000_000).min(deadline));
            } else {
                cpu::relax();
            }
        }
    }
    let value = xs.read(&path).ok();
    let _ = xs.unwatch(&path, "selftest");
    let _ = xs.rm(&path);
    check(
        fired && value.as_deref() == Some(token.as_str()),
        format!("watch on {path} fired after we wrote it; read back {value:?}"),
        format!(
            "no watch event in 30 s (initial event seen: {initial}, written: {written}, \
             read back {value:?})"
        ),
    )
}
