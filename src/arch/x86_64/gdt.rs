//! GDT and TSS with the IST stacks every interrupt gate runs on.

use spin::Once;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

/// IST slots (1-based in the IDT, 0-based in the TSS array).
pub const IST_EXCEPTION: u16 = 1;
pub const IST_DOUBLE_FAULT: u16 = 2;
pub const IST_NMI_MCE: u16 = 3;
pub const IST_IRQ: u16 = 4;

const IST_STACK_BYTES: usize = 32 * 1024;

#[repr(C, align(16))]
struct Stack([u8; IST_STACK_BYTES]);

/// The IST stacks. Only the CPU writes them (on interrupt entry); Rust code
/// never forms references to them.
static mut IST_STACKS: [Stack; 4] = [const { Stack([0; IST_STACK_BYTES]) }; 4];

struct Tables {
    gdt: GlobalDescriptorTable,
    code: SegmentSelector,
    data: SegmentSelector,
    tss: SegmentSelector,
}

static TSS: Once<TaskStateSegment> = Once::new();
static TABLES: Once<Tables> = Once::new();

fn stack_top(index: usize) -> VirtAddr {
    // SAFETY: only the address is taken; no reference to the mutable
    // static is created.
    let base = unsafe { core::ptr::addr_of_mut!(IST_STACKS[index]) } as u64;
    VirtAddr::new(base + IST_STACK_BYTES as u64)
}

/// The bounds `[bottom, top]` of IST stack `slot` (1-based, as the IDT
/// names it).
pub fn ist_range(slot: u16) -> (u64, u64) {
    let top = stack_top(usize::from(slot.saturating_sub(1)).min(3)).as_u64();
    (top - IST_STACK_BYTES as u64, top)
}

/// The kernel's code and data selectors (after [`init`]; the boot
/// selectors before).
pub fn selectors() -> (u16, u16) {
    TABLES.get().map_or((0x08, 0x10), |t| (t.code.0, t.data.0))
}

/// Builds and loads the GDT and TSS and reloads the segment registers.
/// Call once, early, on the boot CPU.
pub fn init() {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        for i in 0..4 {
            tss.interrupt_stack_table[i] = stack_top(i);
        }
        tss
    });
    let tables = TABLES.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss = gdt.append(Descriptor::tss_segment(tss));
        Tables {
            gdt,
            code,
            data,
            tss,
        }
    });
    tables.gdt.load();
    // SAFETY: the selectors index the GDT just loaded, whose descriptors
    // are a flat 64-bit code segment, a flat data segment and our TSS.
    unsafe {
        CS::set_reg(tables.code);
        SS::set_reg(tables.data);
        DS::set_reg(tables.data);
        ES::set_reg(tables.data);
        load_tss(tables.tss);
    }
}
