//! The kernel proper: boot sequence, main loop, selftest. This is the glue
//! between the hardware/hypervisor base and the host-testable logic.

pub mod boot;
pub mod cachecheck;
pub mod console;
pub mod exit;
pub mod platform;
pub mod run;
pub mod runtime;
pub mod selftest;
pub mod store;
pub mod swapcheck;
pub mod swaprun;

use alloc::string::String;

use crate::arch::x86_64::{gdt, idt, trap};
use crate::cmdline::{self, KernelArgs};
use crate::mm::direct::DirectMap;
use crate::mm::frame::FrameAllocator;
use crate::mm::heap::KernelHeap;
use crate::parse::untrusted;
use crate::xen::hypercall::{self, XenCpuid};
use crate::xen::{abi, calls};

use exit::TestResult;

/// Where the kernel image lies, and the addresses of assembly symbols the
/// binary passes in (the library does not link against them).
#[derive(Clone, Copy, Debug)]
pub struct Image {
    pub start: u64,
    pub end: u64,
    pub isr_stubs: u64,
}

/// Where the kernel finds itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// No hypervisor: QEMU direct boot.
    Bare,
    /// Xen's initial domain (PVH dom0): real hypercalls, no xenstore.
    Dom0,
    /// An ordinary guest created by the toolstack.
    DomU,
}

/// The running kernel's state, owned by the main loop.
#[derive(Debug)]
pub struct Kernel {
    pub role: Role,
    pub xen: Option<XenCpuid>,
    pub args: KernelArgs,
    pub boot: boot::BootInfo,
    /// The only way to a frame's bytes.
    pub direct: DirectMap,
    pub frames: FrameAllocator<'static>,
    pub heap: &'static KernelHeap,
    /// Pages given to the heap at boot.
    pub heap_pages: u64,
    /// The kernel's page tables and the pageable region.
    pub tables: crate::mm::paging::RegionTables,
    pub events: Option<platform::Events>,
    pub store: Option<store::XenStore>,
    pub image: Image,
}

/// Heap taken from the frame allocator at boot, in pages (4 MiB), plus
/// [`heap_pages_for`]'s share of RAM.
const HEAP_PAGES: u64 = 1024;

/// The heap for a guest of `ram_pages` frames: 4 MiB plus 1/128 of RAM.
/// The pager keeps 9 bytes per page of its region (twice RAM), and
/// frontswap's index (its map and the pool's) 50–70 bytes per page out;
/// a page-out that would leave the heap less than 2 MiB is refused
/// (`pager::HEAP_SPARE_BYTES`), so the heap bounds what frontswap holds.
fn heap_pages_for(ram_pages: u64) -> u64 {
    HEAP_PAGES + ram_pages / 128
}

/// The kernel heap, for [`heap_free_bytes`] (set once at boot).
static KERNEL_HEAP: spin::Once<&'static KernelHeap> = spin::Once::new();

/// Bytes the kernel heap has free now (0 before boot set it up).
pub fn heap_free_bytes() -> u64 {
    KERNEL_HEAP.get().map_or(0, |h| {
        let s = h.stats();
        (s.size_bytes as u64).saturating_sub(s.used_bytes as u64)
    })
}

struct XenExit {
    role: Role,
}

impl exit::Exit for XenExit {
    fn exit(&self, result: TestResult) -> ! {
        if self.role == Role::Dom0 {
            // The rig's QEMU has an isa-debug-exit device: leave through it
            // with a code that tells the result.
            exit::qemu_debug_exit(result);
        }
        let reason = if result == TestResult::Success || result == TestResult::Skip {
            abi::SHUTDOWN_poweroff
        } else {
            abi::SHUTDOWN_crash
        };
        let e = calls::sched_shutdown(reason);
        log::error!("SCHEDOP_shutdown failed: {e}");
        loop {
            crate::arch::x86_64::cpu::enable_interrupts_and_halt();
        }
    }
}

static DOMU_EXIT: XenExit = XenExit { role: Role::DomU };
static DOM0_EXIT: XenExit = XenExit { role: Role::Dom0 };

fn fail_boot(what: &str, detail: &str) -> ! {
    log::error!("boot failed: {what}: {detail}");
    exit::print_result(TestResult::Error);
    exit::finish(TestResult::Error)
}

/// Kernel main, called once from `kernel_entry`.
pub fn main(start_info_paddr: u64, image: Image, heap: &'static KernelHeap) -> ! {
    let xen = hypercall::detect();
    match xen {
        Some(x) => {
            console::enable_e9();
            // SAFETY: Xen was detected and the image is identity mapped.
            unsafe { hypercall::init(x) };
        }
        None => console::enable_serial(),
    }
    console::init_logger(log::LevelFilter::Info);
    gdt::init();
    // SAFETY: image.isr_stubs is the address of boot/isr.S's stubs and the
    // GDT/TSS are loaded.
    unsafe { idt::init(image.isr_stubs) };
    trap::set_fatal_hook(exit::fatal_trap);
    trap::set_breakpoint_hook(selftest::on_breakpoint);

    KERNEL_HEAP.call_once(|| heap);
    if let Err(e) = heap.add_boot_region() {
        fail_boot("boot heap", &alloc::format!("{e:?}"));
    }

    let mut info = match boot::read_boot_info(start_info_paddr, image, xen.is_some()) {
        Ok(i) => i,
        Err(e) => fail_boot("start info", &e),
    };
    let parsed = cmdline::parse(info.start_info.cmdline.as_deref().unwrap_or(""));
    if let Some(level) = parsed.args.loglevel {
        console::init_logger(level);
    }
    for w in &parsed.unknown {
        log::warn!("cmdline: ignoring unknown word '{}'", untrusted(w));
    }
    for e in &parsed.errors {
        log::warn!("cmdline: '{}': {}", untrusted(&e.word), e.kind);
    }
    let role = match xen {
        None => Role::Bare,
        Some(_) if info.start_info.is_initial_domain() => Role::Dom0,
        Some(_) => Role::DomU,
    };
    match role {
        Role::Dom0 => exit::set_exit(&DOM0_EXIT),
        Role::DomU => exit::set_exit(&DOMU_EXIT),
        Role::Bare => {}
    }
    log::info!(
        "selfballoon: {:?}, image {:#x}-{:#x}, start info v{} at {:#x}, cmdline '{}'",
        role,
        image.start,
        image.end,
        info.start_info.version,
        start_info_paddr,
        untrusted(info.start_info.cmdline.as_deref().unwrap_or("")).max_bytes(4096)
    );
    if let Some(x) = xen {
        let (maj, min) = hypercall::cpuid_version(x);
        log::info!("xen: {maj}.{min} (cpuid base {:#x})", x.base);
    }

    let (mut direct, mut frames) = match boot::init_frames(&mut info) {
        Ok(f) => f,
        Err(e) => fail_boot("frames", &e),
    };
    let heap_pages = heap_pages_for(frames.total_pages());
    if let Err(e) = boot::grow_heap(&mut direct, &mut frames, heap, heap_pages) {
        fail_boot("heap", &e);
    }
    let tables = match boot::init_paging(&mut direct, &mut frames) {
        Ok(t) => t,
        Err(e) => fail_boot("paging", &e),
    };
    let c = frames.counts();
    log::info!(
        "memory: {} RAM ranges{}, {} frames ({} MiB): {} free, {} reserved",
        info.ram.len(),
        if info.memmap_from_xen {
            " (XENMEM_memory_map)"
        } else {
            ""
        },
        c.total_pages,
        c.total_pages / 256,
        c.free_pages,
        c.reserved_pages
    );
    log::info!(
        "paging: region of {} pages at {:#x}, {} table frames",
        crate::mm::vm::Mmu::pages(&tables),
        crate::mm::vm::REGION_BASE,
        tables.table_pages()
    );

    let mut k = Kernel {
        role,
        xen,
        args: parsed.args,
        boot: info,
        direct,
        frames,
        heap,
        heap_pages,
        tables,
        events: None,
        store: None,
        image,
    };
    if xen.is_some() {
        if let Err(e) = k.init_xen() {
            fail_boot("xen", &e);
        }
        crate::xen::tmem::probe_at_boot();
    }
    match k.args.crash {
        None => {}
        Some(cmdline::CrashKind::FailCheck) if k.args.selftest => {} // selftest's job
        Some(cmdline::CrashKind::FailCheck) => log::warn!("crash=fail needs selftest; ignored"),
        Some(c) => crash(c),
    }
    if k.args.selftest {
        let r = selftest::run(&mut k);
        exit::print_result(r);
        exit::finish(r)
    }
    run::run(k)
}

impl Kernel {
    /// Shared info, events, timer; for a domU also the PV console and
    /// xenstore.
    fn init_xen(&mut self) -> Result<(), String> {
        let page = self
            .direct
            .claim(&mut self.frames, 1, 1)
            .map_err(|e| alloc::format!("a frame for shared info: {e}"))?;
        let ev = platform::init_events(page).map_err(|e| alloc::format!("events: {e}"))?;
        console::set_clock(crate::xen::time::now_ns);
        log::info!(
            "events: callback vector {:#x}, timer port {}",
            platform::CALLBACK_VECTOR,
            ev.timer_port
        );
        self.events = Some(ev);
        // A triple fault is a crash, not a reboot: the toolstack's
        // on_crash policy (e.g. preserve) then keeps the vCPU state for a
        // post-mortem. Xen may refuse a guest setting it; that is fine.
        if let Err(e) = calls::hvm_set_param(
            abi::HVM_PARAM_TRIPLE_FAULT_REASON,
            u64::from(abi::SHUTDOWN_crash),
        ) {
            log::debug!("HVM_PARAM_TRIPLE_FAULT_REASON: {e}");
        }
        if self.role == Role::DomU {
            match store::init_console(&mut self.direct, &mut self.frames) {
                Ok(()) => {
                    // Xen's console (0xe9, `xl dmesg`) is shared by every
                    // domain and each byte costs an exit: keep it for what
                    // an administrator must see.
                    let e9 = self.args.e9log.unwrap_or(log::LevelFilter::Warn);
                    log::info!("console: PV ring attached; port 0xe9 now gets {e9} and above");
                    console::set_e9_level(e9);
                }
                Err(e) => log::warn!("console: no PV ring: {e}"),
            }
            match store::connect(ev, &mut self.direct, &mut self.frames) {
                Ok(s) => self.store = Some(s),
                Err(e) => log::warn!("xenstore: unavailable: {e}"),
            }
        }
        Ok(())
    }
}

/// Fails on purpose (`crash=` on the command line).
fn crash(kind: cmdline::CrashKind) {
    log::warn!("crash={kind:?} requested");
    match kind {
        // Above the 4 GiB the boot page tables map.
        cmdline::CrashKind::PageFault => crate::arch::x86_64::cpu::fault_on_unmapped(8 << 30),
        cmdline::CrashKind::InvalidOpcode => crate::arch::x86_64::cpu::invalid_opcode(),
        cmdline::CrashKind::Panic => panic!("crash=panic requested"),
        cmdline::CrashKind::StackOverflow => {
            let depth = recurse(core::hint::black_box(0));
            log::error!("recursed {depth} times without overflowing the stack?");
        }
        cmdline::CrashKind::Hang => loop {
            crate::arch::x86_64::trap::halt_until_interrupt();
        },
        cmdline::CrashKind::FailCheck => {}
    }
}

/// Uses 1 KiB of stack per level, forever (for `crash=stack`): it ends
/// in the #PF of the boot stack's guard page.
#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 1024];
    frame[(depth % 1024) as usize] = depth as u8;
    let frame = core::hint::black_box(frame);
    recurse(depth + 1) + u64::from(frame[0])
}

/// The panic handler's body.
pub fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    log::error!("PANIC: {info}");
    exit::print_result(TestResult::Error);
    exit::finish(TestResult::Error)
}

/// Stops the kernel after an impossible runtime event.
pub fn abort(what: &str) -> ! {
    log::error!("abort: {what}");
    exit::finish(TestResult::Error)
}
