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

impl ConsoleSink for crate::xen::console::PvConsole {
    fn write_bytes(&mut self, bytes: &[u8]) {
        crate::xen::console::PvConsole::write_bytes(self, bytes)
    }
}

/// Bytes for port 0xe9 are collected up to a line (or this many) and
/// written with one `rep outsb`: one hypervisor exit per line, not per
/// byte.
const E9_LINE: usize = 256;

struct Sinks {
    serial: Option<Serial>,
    /// Records up to this level go to port 0xe9 (`Off`: none).
    e9_level: LevelFilter,
    /// Whether the record being written goes to 0xe9.
    e9_now: bool,
    e9_buf: [u8; E9_LINE],
    e9_len: usize,
    extra: [Option<&'static mut dyn ConsoleSink>; 2],
}

static SINKS: Mutex<Sinks> = Mutex::new(Sinks {
    serial: None,
    e9_level: LevelFilter::Off,
    e9_now: false,
    e9_buf: [0; E9_LINE],
    e9_len: 0,
    extra: [None, None],
});

/// Nanoseconds since boot for the timestamp prefix, once a clock exists.
static CLOCK_FN: spin::Once<fn() -> u64> = spin::Once::new();

impl Sinks {
    fn write(&mut self, bytes: &[u8]) {
        if let Some(s) = self.serial.as_mut() {
            s.write_bytes(bytes);
        }
        if self.e9_now {
            for &b in bytes {
                self.e9_buf[self.e9_len] = b;
                self.e9_len += 1;
                if b == b'\n' || self.e9_len == E9_LINE {
                    self.flush_e9();
                }
            }
        }
        for s in self.extra.iter_mut().flatten() {
            s.write_bytes(bytes);
        }
    }

    fn flush_e9(&mut self) {
        if self.e9_len > 0 {
            cpu::debugcon_write(&self.e9_buf[..self.e9_len]);
            self.e9_len = 0;
        }
    }

    /// Writes one record or line: `level` decides whether 0xe9 gets it
    /// (`None`: raw lines, which go wherever 0xe9 is on at all).
    fn record(&mut self, level: Option<log::Level>, f: impl FnOnce(&mut Self)) {
        self.e9_now = match level {
            Some(l) => l <= self.e9_level,
            None => self.e9_level != LevelFilter::Off,
        };
        f(self);
        self.flush_e9();
        self.e9_now = false;
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

/// Uses port 0xe9 for every record.
pub fn enable_e9() {
    set_e9_level(LevelFilter::Trace);
}

/// Sends records up to `level` to port 0xe9 (`Off` stops it). Once a
/// domU's PV console ring carries the full log, 0xe9 (Xen's own console,
/// shared by every domain) only needs what an administrator must see.
pub fn set_e9_level(level: LevelFilter) {
    cpu::without_interrupts(|| SINKS.lock().e9_level = level);
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
        SINKS.lock().record(None, |s| {
            let _ = s.write_fmt(args);
            s.write(b"\n");
        });
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
            SINKS.lock().record(Some(record.level()), |s| {
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
