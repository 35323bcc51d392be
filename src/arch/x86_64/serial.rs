//! 16550 UART on COM1 (0x3f8), polled. Used when there is no hypervisor
//! (QEMU direct boot); under Xen a PVH guest has no emulated UART.

use super::cpu::{inb, outb};

const COM1: u16 = 0x3f8;
const LSR_THR_EMPTY: u8 = 1 << 5;

/// The COM1 UART.
#[derive(Debug)]
pub struct Serial {
    _private: (),
}

impl Serial {
    /// Programs COM1 for 115200 8N1, FIFO on, interrupts off.
    pub fn init() -> Serial {
        // SAFETY: COM1 registers are a console device: writing them has no
        // effect on memory.
        unsafe {
            outb(COM1 + 1, 0x00); // no interrupts
            outb(COM1 + 3, 0x80); // DLAB
            outb(COM1, 0x01); // divisor 1 = 115200 baud
            outb(COM1 + 1, 0x00);
            outb(COM1 + 3, 0x03); // 8N1
            outb(COM1 + 2, 0xc7); // FIFO on, cleared
            outb(COM1 + 4, 0x03); // DTR | RTS
        }
        Serial { _private: () }
    }

    /// Writes bytes, translating `\n` to `\r\n`.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.put(b'\r');
            }
            self.put(b);
        }
    }

    fn put(&mut self, b: u8) {
        // Bounded wait: a missing UART reads 0xff (THR "empty"), so this
        // cannot hang; the bound protects against a wedged one.
        for _ in 0..100_000 {
            // SAFETY: reading the line status register has no side effects.
            if unsafe { inb(COM1 + 5) } & LSR_THR_EMPTY != 0 {
                break;
            }
            super::cpu::relax();
        }
        // SAFETY: writing the transmit register only sends a byte.
        unsafe { outb(COM1, b) }
    }
}
