//! The kernel console: the `log` crate's front end, writing every record to
//! whichever sinks exist where the kernel finds itself:
//! - COM1 when there is no hypervisor (QEMU direct boot);
//! - port 0xe9 under Xen (shows in `xl dmesg` / Xen's serial log);
//! - the PV console ring for a domU (`xl console`, xenconsoled's log);
//! - HYPERVISOR_console_io for dom0 (dropped by release Xen for domUs).

use core::fmt::{self, Write};

use log::{LevelFilter, Log, Metadata, Record};
use spin::Mutex;

use crate::arch::x86_64::cpu;
use crate::arch::x86_64::serial::Serial;

/// A place console bytes can go besides the built-in ones.
pub trait ConsoleSink: Send {
    fn write_bytes(&mut self, bytes: &[u8]);
}

struct Sinks {
    serial: Option<Serial>,
    e9: bool,
    extra: [Option<&'static mut dyn ConsoleSink>; 2],
}

static SINKS: Mutex<Sinks> = Mutex::new(Sinks {
    serial: None,
    e9: false,
    extra: [None, None],
});

/// Nanoseconds since boot for the timestamp prefix, once a clock exists.
static CLOCK_FN: spin::Once<fn() -> u64> = spin::Once::new();

impl Sinks {
    fn write(&mut self, bytes: &[u8]) {
        if let Some(s) = self.serial.as_mut() {
            s.write_bytes(bytes);
        }
        if self.e9 {
            for &b in bytes {
                // SAFETY: port 0xe9 is Xen's/QEMU's debug console port;
                // writing it only emits a character.
                unsafe { cpu::outb(0xe9, b) };
            }
        }
        for s in self.extra.iter_mut().flatten() {
            s.write_bytes(bytes);
        }
    }
}

impl fmt::Write for Sinks {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write(s.as_bytes());
        Ok(())
    }
}

/// Uses COM1.
pub fn enable_serial() {
    cpu::without_interrupts(|| SINKS.lock().serial = Some(Serial::init()));
}

/// Uses port 0xe9.
pub fn enable_e9() {
    cpu::without_interrupts(|| SINKS.lock().e9 = true);
}

/// Adds a sink (PV console ring, console_io). At most two.
pub fn add_sink(sink: &'static mut dyn ConsoleSink) {
    cpu::without_interrupts(|| {
        let mut s = SINKS.lock();
        if let Some(slot) = s.extra.iter_mut().find(|x| x.is_none()) {
            *slot = Some(sink);
        }
    });
}

/// Sets the function giving nanoseconds since boot for timestamps.
pub fn set_clock(now_ns: fn() -> u64) {
    CLOCK_FN.call_once(|| now_ns);
}

fn now_ns() -> Option<u64> {
    CLOCK_FN.get().map(|f| f())
}

/// Writes a raw line (no level prefix), e.g. the selftest result line.
pub fn write_line(args: fmt::Arguments<'_>) {
    cpu::without_interrupts(|| {
        let mut s = SINKS.lock();
        let _ = s.write_fmt(args);
        s.write(b"\n");
    });
}

/// Prints a raw line on the console.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => { $crate::kernel::console::write_line(format_args!($($arg)*)) };
}

struct Logger;

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let t = now_ns();
        cpu::without_interrupts(|| {
            let mut s = SINKS.lock();
            if let Some(t) = t {
                let _ = write!(
                    s,
                    "[{:5}.{:06}] ",
                    t / 1_000_000_000,
                    (t / 1000) % 1_000_000
                );
            }
            let _ = writeln!(s, "{:5} {}", record.level(), record.args());
        });
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Installs the logger with `level`. Safe to call more than once (later
/// calls only change the level).
pub fn init_logger(level: LevelFilter) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
