//! Xen's public ABI: the `#[repr(C)]` structures and constants the kernel
//! passes to hypercalls or shares with other domains.
//!
//! Names follow the C headers (`xen/include/public/...` of Xen 4.17) so a
//! field can be looked up there directly. What the `xen-sys` crate already
//! provides with the right layout is re-exported; the rest is defined here.
//! Every structure has a size/offset test against the values of the 4.17
//! headers (checked with a C compiler against Debian's `libxen-dev`
//! 4.17.7 headers, x86_64).
//!
//! Data only: no hypercalls live here (see `xen::hypercall` / `xen::ops`).
//!
//! Guest handles (`XEN_GUEST_HANDLE(T)`) are plain 64-bit fields holding
//! the guest *virtual* address of the buffer; for a PVH guest Xen walks the
//! guest's page tables to find it.

#![allow(non_camel_case_types, non_upper_case_globals)]

use core::fmt;

// ---------------------------------------------------------------------------
// Re-exports from xen-sys (layouts checked in the tests below).
// ---------------------------------------------------------------------------

/// Console I/O (public/xen.h). Note: a release build of Xen drops a
/// domU's CONSOLEIO_write output.
pub use xen_sys::CONSOLEIO_write;
/// Hypercall numbers (public/xen.h).
pub use xen_sys::{
    __HYPERVISOR_console_io, __HYPERVISOR_event_channel_op, __HYPERVISOR_hvm_op,
    __HYPERVISOR_memory_op, __HYPERVISOR_sched_op, __HYPERVISOR_set_timer_op, __HYPERVISOR_tmem_op,
    __HYPERVISOR_vcpu_op, __HYPERVISOR_xen_version,
};
/// Shared info page and per-vCPU info/time (public/xen.h). On x86_64 the
/// 4.17 layout matches xen-sys: `vcpu_time_info.pad1[0]` is the 4.17
/// `flags` byte (`XEN_PVCLOCK_TSC_STABLE_BIT`).
pub use xen_sys::{
    arch_shared_info, arch_vcpu_info, shared_info, vcpu_info, vcpu_time_info, XEN_LEGACY_MAX_VCPUS,
    XEN_PVCLOCK_TSC_STABLE_BIT,
};
/// Basic types (public/xen.h, public/arch-x86/xen.h, public/event_channel.h).
pub use xen_sys::{domid_t, evtchn_port_t, xen_pfn_t, xen_ulong_t};
/// Event channels (public/event_channel.h).
pub use xen_sys::{
    evtchn_bind_virq, evtchn_close, evtchn_send, evtchn_unmask, EVTCHNOP_bind_virq, EVTCHNOP_close,
    EVTCHNOP_send, EVTCHNOP_unmask, VIRQ_DEBUG, VIRQ_TIMER,
};
/// Scheduler operations (public/sched.h). `SCHEDOP_shutdown` takes a
/// pointer to a [`sched_shutdown`], not the reason by value.
pub use xen_sys::{
    sched_shutdown, SCHEDOP_block, SCHEDOP_poll, SCHEDOP_shutdown, SCHEDOP_yield, SHUTDOWN_crash,
    SHUTDOWN_poweroff, SHUTDOWN_reboot, SHUTDOWN_suspend,
};

// ---------------------------------------------------------------------------
// public/xen.h
// ---------------------------------------------------------------------------

/// The calling domain (public/xen.h).
pub const DOMID_SELF: domid_t = 0x7FF0;

// ---------------------------------------------------------------------------
// public/arch-x86/hvm/start_info.h: the PVH boot information.
// ---------------------------------------------------------------------------

/// `hvm_start_info.magic`: "xEn3" with the 0x80 bit of the "E" set.
pub const XEN_HVM_START_MAGIC_VALUE: u32 = 0x336e_c578;

/// Memory map entry types (same values as E820).
pub const XEN_HVM_MEMMAP_TYPE_RAM: u32 = 1;
pub const XEN_HVM_MEMMAP_TYPE_RESERVED: u32 = 2;
pub const XEN_HVM_MEMMAP_TYPE_ACPI: u32 = 3;
pub const XEN_HVM_MEMMAP_TYPE_NVS: u32 = 4;
pub const XEN_HVM_MEMMAP_TYPE_UNUSABLE: u32 = 5;
pub const XEN_HVM_MEMMAP_TYPE_DISABLED: u32 = 6;
pub const XEN_HVM_MEMMAP_TYPE_PMEM: u32 = 7;

/// Handed to a PVH kernel in `%ebx` at entry. All addresses are physical.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct hvm_start_info {
    /// [`XEN_HVM_START_MAGIC_VALUE`].
    pub magic: u32,
    /// 0, or 1 when the memmap fields are valid.
    pub version: u32,
    /// SIF_* flags.
    pub flags: u32,
    pub nr_modules: u32,
    /// Array of `nr_modules` [`hvm_modlist_entry`].
    pub modlist_paddr: u64,
    /// NUL-terminated command line, 0 if none.
    pub cmdline_paddr: u64,
    pub rsdp_paddr: u64,
    /// Version 1 and newer: array of `memmap_entries`
    /// [`hvm_memmap_table_entry`]. 0 entries means no map was given.
    pub memmap_paddr: u64,
    pub memmap_entries: u32,
    /// Must be zero.
    pub reserved: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct hvm_modlist_entry {
    pub paddr: u64,
    pub size: u64,
    pub cmdline_paddr: u64,
    pub reserved: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct hvm_memmap_table_entry {
    pub addr: u64,
    pub size: u64,
    /// XEN_HVM_MEMMAP_TYPE_*.
    pub type_: u32,
    /// Must be zero for version 1.
    pub reserved: u32,
}

// ---------------------------------------------------------------------------
// public/memory.h
// ---------------------------------------------------------------------------

pub const XENMEM_increase_reservation: u32 = 0;
pub const XENMEM_decrease_reservation: u32 = 1;
pub const XENMEM_maximum_ram_page: u32 = 2;
pub const XENMEM_current_reservation: u32 = 3;
pub const XENMEM_maximum_reservation: u32 = 4;
pub const XENMEM_populate_physmap: u32 = 6;
pub const XENMEM_add_to_physmap: u32 = 7;
pub const XENMEM_memory_map: u32 = 9;
pub const XENMEM_get_pod_target: u32 = 17;

/// `xen_add_to_physmap.space`: the shared info page.
pub const XENMAPSPACE_shared_info: u32 = 0;

/// Argument of XENMEM_{increase,decrease}_reservation and
/// XENMEM_populate_physmap.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct xen_memory_reservation {
    /// Guest handle: virtual address of an array of `nr_extents`
    /// [`xen_pfn_t`] (GFN bases of the extents; IN for decrease and
    /// populate, OUT for populate too).
    pub extent_start: u64,
    pub nr_extents: xen_ulong_t,
    /// Each extent is 2^extent_order pages.
    pub extent_order: u32,
    /// XENMEMF_* flags (0 for plain order-0 work).
    pub mem_flags: u32,
    /// [`DOMID_SELF`] for an unprivileged domain.
    pub domid: domid_t,
}

impl xen_memory_reservation {
    /// A reservation change on our own domain over `nr_extents` order-0
    /// frames whose GFNs are at virtual address `extent_start`.
    pub const fn order0_self(extent_start: u64, nr_extents: u64) -> Self {
        Self {
            extent_start,
            nr_extents,
            extent_order: 0,
            mem_flags: 0,
            domid: DOMID_SELF,
        }
    }
}

/// Argument of XENMEM_memory_map: the E820-style map Xen holds for us.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct xen_memory_map {
    /// IN: capacity of `buffer` in entries; OUT: entries stored.
    pub nr_entries: u32,
    /// Guest handle: virtual address of an array of [`e820entry`].
    pub buffer: u64,
}

/// One entry of the map XENMEM_memory_map returns, "in the same format as
/// returned by the BIOS INT 0x15 EAX=0xE820 call": packed, 20 bytes
/// (xen/arch/x86/include/asm/e820.h `struct __packed e820entry`).
/// Fields of a packed struct must be copied out, not borrowed.
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct e820entry {
    pub addr: u64,
    pub size: u64,
    /// Same values as XEN_HVM_MEMMAP_TYPE_*.
    pub type_: u32,
}

/// Argument of XENMEM_add_to_physmap, e.g. to map the shared info page:
/// `{ domid: DOMID_SELF, space: XENMAPSPACE_shared_info, idx: 0, gpfn }`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct xen_add_to_physmap {
    pub domid: domid_t,
    /// Number of pages for XENMAPSPACE_gmfn_range.
    pub size: u16,
    /// XENMAPSPACE_*.
    pub space: u32,
    /// Index into the space being mapped.
    pub idx: xen_ulong_t,
    /// Where the page should appear in our physical address space.
    pub gpfn: xen_pfn_t,
}

// ---------------------------------------------------------------------------
// public/hvm/hvm_op.h and public/hvm/params.h
// ---------------------------------------------------------------------------

pub const HVMOP_set_param: u32 = 0;
pub const HVMOP_get_param: u32 = 1;
pub const HVMOP_set_evtchn_upcall_vector: u32 = 23;

/// Argument of HVMOP_{get,set}_param.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct xen_hvm_param {
    pub domid: domid_t,
    pub pad: u16,
    /// HVM_PARAM_*.
    pub index: u32,
    pub value: u64,
}

impl xen_hvm_param {
    /// Parameter `index` of our own domain, value 0 (for get) or `value`.
    pub const fn new(index: u32, value: u64) -> Self {
        Self {
            domid: DOMID_SELF,
            pad: 0,
            index,
            value,
        }
    }
}

/// Argument of HVMOP_set_evtchn_upcall_vector: a per-vCPU upcall vector
/// (the alternative to the domain-wide HVM_PARAM_CALLBACK_IRQ vector).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct xen_hvm_evtchn_upcall_vector {
    pub vcpu: u32,
    pub vector: u8,
}

/// How event-channel upcalls for vCPU 0 are delivered; see
/// [`hvm_callback_via_vector`].
pub const HVM_PARAM_CALLBACK_IRQ: u32 = 0;
/// The xenstore ring's PFN and event channel.
pub const HVM_PARAM_STORE_PFN: u32 = 1;
pub const HVM_PARAM_STORE_EVTCHN: u32 = 2;
/// The PV console ring's PFN and event channel.
pub const HVM_PARAM_CONSOLE_PFN: u32 = 17;
pub const HVM_PARAM_CONSOLE_EVTCHN: u32 = 18;
/// Shutdown reason Xen uses when the guest triple-faults (default reboot).
pub const HVM_PARAM_TRIPLE_FAULT_REASON: u32 = 31;

/// Bits 63:56 of HVM_PARAM_CALLBACK_IRQ hold the delivery type.
pub const HVM_PARAM_CALLBACK_IRQ_TYPE_MASK: u64 = 0xFF00_0000_0000_0000;
pub const HVM_PARAM_CALLBACK_TYPE_GSI: u64 = 0;
pub const HVM_PARAM_CALLBACK_TYPE_PCI_INTX: u64 = 1;
/// x86: bits 7:0 are an IDT vector (needs XENFEAT_hvm_callback_vector).
pub const HVM_PARAM_CALLBACK_TYPE_VECTOR: u64 = 2;

/// The HVM_PARAM_CALLBACK_IRQ value that delivers event-channel upcalls
/// as interrupt `vector`.
pub const fn hvm_callback_via_vector(vector: u8) -> u64 {
    (HVM_PARAM_CALLBACK_TYPE_VECTOR << 56) | vector as u64
}

// ---------------------------------------------------------------------------
// public/vcpu.h
// ---------------------------------------------------------------------------

pub const VCPUOP_set_singleshot_timer: u32 = 8;
pub const VCPUOP_stop_singleshot_timer: u32 = 9;
/// Fail with -ETIME instead of firing at once when the timeout is in the
/// past.
pub const VCPU_SSHOTTMR_future: u32 = 1;

/// Argument of VCPUOP_set_singleshot_timer. The timer raises VIRQ_TIMER.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct vcpu_set_singleshot_timer {
    /// Absolute system time (as in `vcpu_time_info`) in nanoseconds.
    pub timeout_abs_ns: u64,
    /// VCPU_SSHOTTMR_*.
    pub flags: u32,
}

// ---------------------------------------------------------------------------
// public/version.h and public/features.h
// ---------------------------------------------------------------------------

/// Returns `(major << 16) | minor`; arg is NULL.
pub const XENVER_version: u32 = 0;
/// arg is a [`xen_extraversion_t`].
pub const XENVER_extraversion: u32 = 1;
/// arg is a [`xen_feature_info`].
pub const XENVER_get_features: u32 = 6;

/// E.g. ".7" — NUL-terminated unless all 16 bytes are used.
pub type xen_extraversion_t = [u8; 16];

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct xen_feature_info {
    /// IN: which 32-bit submap to return.
    pub submap_idx: u32,
    /// OUT: the submap.
    pub submap: u32,
}

/// Bit numbers in the feature submaps (submap 0).
pub const XENFEAT_hvm_callback_vector: u32 = 8;
pub const XENFEAT_hvm_safe_pvclock: u32 = 9;

/// Splits XENVER_version's result into (major, minor).
pub const fn xen_version_split(v: u32) -> (u16, u16) {
    ((v >> 16) as u16, v as u16)
}

// ---------------------------------------------------------------------------
// public/io/console.h
// ---------------------------------------------------------------------------

pub type XENCONS_RING_IDX = u32;

/// The PV console page (HVM_PARAM_CONSOLE_PFN). We produce into `out`
/// (`out_prod`) and consume from `in_` (`in_cons`); indices are free
/// running, masked with the ring size (power of two).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct xencons_interface {
    /// `in` in C.
    pub in_: [u8; 1024],
    pub out: [u8; 2048],
    pub in_cons: XENCONS_RING_IDX,
    pub in_prod: XENCONS_RING_IDX,
    pub out_cons: XENCONS_RING_IDX,
    pub out_prod: XENCONS_RING_IDX,
}

impl fmt::Debug for xencons_interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("xencons_interface")
            .field("in_cons", &self.in_cons)
            .field("in_prod", &self.in_prod)
            .field("out_cons", &self.out_cons)
            .field("out_prod", &self.out_prod)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------
// public/io/xs_wire.h: the xenstore protocol.
// ---------------------------------------------------------------------------

/// `enum xsd_sockmsg_type`.
pub const XS_CONTROL: u32 = 0;
pub const XS_DIRECTORY: u32 = 1;
pub const XS_READ: u32 = 2;
pub const XS_GET_PERMS: u32 = 3;
pub const XS_WATCH: u32 = 4;
pub const XS_UNWATCH: u32 = 5;
pub const XS_TRANSACTION_START: u32 = 6;
pub const XS_TRANSACTION_END: u32 = 7;
pub const XS_INTRODUCE: u32 = 8;
pub const XS_RELEASE: u32 = 9;
pub const XS_GET_DOMAIN_PATH: u32 = 10;
pub const XS_WRITE: u32 = 11;
pub const XS_MKDIR: u32 = 12;
pub const XS_RM: u32 = 13;
pub const XS_SET_PERMS: u32 = 14;
pub const XS_WATCH_EVENT: u32 = 15;
pub const XS_ERROR: u32 = 16;
pub const XS_IS_DOMAIN_INTRODUCED: u32 = 17;
pub const XS_RESUME: u32 = 18;
pub const XS_SET_TARGET: u32 = 19;
/// 20 (XS_RESTRICT) was removed.
pub const XS_RESET_WATCHES: u32 = 21;
pub const XS_DIRECTORY_PART: u32 = 22;
pub const XS_TYPE_COUNT: u32 = 23;
pub const XS_INVALID: u32 = 0xffff;

/// Header of every xenstore message, followed by `len` payload bytes
/// (generally NUL-terminated strings).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct xsd_sockmsg {
    /// XS_*.
    pub type_: u32,
    /// Echoed in the daemon's reply.
    pub req_id: u32,
    /// Transaction id, 0 outside a transaction.
    pub tx_id: u32,
    /// Payload length.
    pub len: u32,
}

pub const XENSTORE_RING_SIZE: usize = 1024;
pub type XENSTORE_RING_IDX = u32;
/// Largest payload of one message.
pub const XENSTORE_PAYLOAD_MAX: usize = 4096;
pub const XENSTORE_ABS_PATH_MAX: usize = 3072;
pub const XENSTORE_REL_PATH_MAX: usize = 2048;

/// `server_features` bits.
pub const XENSTORE_SERVER_FEATURE_RECONNECTION: u32 = 1;
pub const XENSTORE_SERVER_FEATURE_ERROR: u32 = 2;
/// `connection` values.
pub const XENSTORE_CONNECTED: u32 = 0;
pub const XENSTORE_RECONNECT: u32 = 1;
/// `error` values.
pub const XENSTORE_ERROR_NONE: u32 = 0;
pub const XENSTORE_ERROR_COMM: u32 = 1;
pub const XENSTORE_ERROR_RINGIDX: u32 = 2;
pub const XENSTORE_ERROR_PROTO: u32 = 3;

/// The xenstore page (HVM_PARAM_STORE_PFN), shared with xenstored. We
/// produce into `req` and consume from `rsp`; indices are free running,
/// masked with `XENSTORE_RING_SIZE - 1`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct xenstore_domain_interface {
    pub req: [u8; XENSTORE_RING_SIZE],
    pub rsp: [u8; XENSTORE_RING_SIZE],
    pub req_cons: XENSTORE_RING_IDX,
    pub req_prod: XENSTORE_RING_IDX,
    pub rsp_cons: XENSTORE_RING_IDX,
    pub rsp_prod: XENSTORE_RING_IDX,
    /// XENSTORE_SERVER_FEATURE_* bits.
    pub server_features: u32,
    /// XENSTORE_CONNECTED or XENSTORE_RECONNECT.
    pub connection: u32,
    /// XENSTORE_ERROR_*.
    pub error: u32,
}

impl fmt::Debug for xenstore_domain_interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("xenstore_domain_interface")
            .field("req_cons", &self.req_cons)
            .field("req_prod", &self.req_prod)
            .field("rsp_cons", &self.rsp_cons)
            .field("rsp_prod", &self.rsp_prod)
            .field("server_features", &self.server_features)
            .field("connection", &self.connection)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------
// public/tmem.h (Xen <= 4.12; hypercall 38 answers -ENOSYS on 4.17).
// Declared as of __XEN_INTERFACE_VERSION__ 0x00040400..0x00041300.
// ---------------------------------------------------------------------------

pub const TMEM_SPEC_VERSION: u32 = 1;

pub const TMEM_NEW_POOL: u32 = 1;
pub const TMEM_DESTROY_POOL: u32 = 2;
pub const TMEM_PUT_PAGE: u32 = 4;
pub const TMEM_GET_PAGE: u32 = 5;
pub const TMEM_FLUSH_PAGE: u32 = 6;
pub const TMEM_FLUSH_OBJECT: u32 = 7;

/// Pool flags of TMEM_NEW_POOL.
pub const TMEM_POOL_PERSIST: u32 = 1;
pub const TMEM_POOL_SHARED: u32 = 2;
pub const TMEM_POOL_PRECOMPRESSED: u32 = 4;
/// Page size field: (log2(page size) - 12) << TMEM_POOL_PAGESIZE_SHIFT.
pub const TMEM_POOL_PAGESIZE_SHIFT: u32 = 4;
pub const TMEM_POOL_PAGESIZE_MASK: u32 = 0xf;
/// Spec version field: TMEM_SPEC_VERSION << TMEM_POOL_VERSION_SHIFT.
pub const TMEM_POOL_VERSION_SHIFT: u32 = 24;
pub const TMEM_POOL_VERSION_MASK: u32 = 0xff;
pub const TMEM_POOL_RESERVED_BITS: u32 = 0x00ff_ff00;

/// `tmem_op.u.creat`, for TMEM_NEW_POOL.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct tmem_op_creat {
    /// Zero for a private pool.
    pub uuid: [u64; 2],
    /// TMEM_POOL_* flags.
    pub flags: u32,
    pub arg1: u32,
}

/// `tmem_op.u.gen`, for every other command.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct tmem_op_gen {
    /// The object id (`xen_tmem_oid_t`).
    pub oid: [u64; 3],
    /// Page index within the object.
    pub index: u32,
    pub tmem_offset: u32,
    pub pfn_offset: u32,
    pub len: u32,
    /// The guest frame the page is copied from (put) or to (get).
    pub cmfn: xen_pfn_t,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union tmem_op_u {
    pub creat: tmem_op_creat,
    pub gen: tmem_op_gen,
}

impl fmt::Debug for tmem_op_u {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Which variant is meant depends on `tmem_op.cmd`; see its Debug.
        f.write_str("tmem_op_u { .. }")
    }
}

/// Argument of `__HYPERVISOR_tmem_op` (56 bytes). PUT/GET return 1 on
/// success and 0 for "not present".
#[repr(C)]
#[derive(Clone, Copy)]
pub struct tmem_op {
    /// TMEM_*.
    pub cmd: u32,
    pub pool_id: i32,
    pub u: tmem_op_u,
}

impl tmem_op {
    /// TMEM_NEW_POOL with `flags` (TMEM_POOL_*; the page-size and version
    /// fields are the caller's to fill, see [`tmem_pool_flags`]).
    pub const fn new_pool(uuid: [u64; 2], flags: u32) -> Self {
        Self {
            cmd: TMEM_NEW_POOL,
            pool_id: 0,
            u: tmem_op_u {
                creat: tmem_op_creat {
                    uuid,
                    flags,
                    arg1: 0,
                },
            },
        }
    }

    /// A page command (PUT/GET/FLUSH_PAGE/FLUSH_OBJECT) on whole pages.
    pub const fn page(cmd: u32, pool_id: i32, oid: [u64; 3], index: u32, cmfn: xen_pfn_t) -> Self {
        Self {
            cmd,
            pool_id,
            u: tmem_op_u {
                gen: tmem_op_gen {
                    oid,
                    index,
                    tmem_offset: 0,
                    pfn_offset: 0,
                    len: 0,
                    cmfn,
                },
            },
        }
    }

    /// A DESTROY_POOL command.
    pub const fn destroy_pool(pool_id: i32) -> Self {
        Self::page(TMEM_DESTROY_POOL, pool_id, [0; 3], 0, 0)
    }
}

/// TMEM_NEW_POOL flags for 4 KiB pages at spec version 1, plus `extra`
/// (TMEM_POOL_PERSIST / TMEM_POOL_SHARED).
pub const fn tmem_pool_flags(extra: u32) -> u32 {
    const PAGE_SHIFT: u32 = 12;
    extra
        | ((PAGE_SHIFT - 12) << TMEM_POOL_PAGESIZE_SHIFT)
        | (TMEM_SPEC_VERSION << TMEM_POOL_VERSION_SHIFT)
}

impl fmt::Debug for tmem_op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("tmem_op");
        d.field("cmd", &self.cmd).field("pool_id", &self.pool_id);
        // Both union variants are plain integers, so every bit pattern is
        // valid for either; the command says which one is meant.
        if self.cmd == TMEM_NEW_POOL {
            // SAFETY: see above: any bits are a valid `creat`.
            d.field("creat", unsafe { &self.u.creat });
        } else {
            // SAFETY: see above: any bits are a valid `gen`.
            d.field("gen", unsafe { &self.u.gen });
        }
        d.finish()
    }
}

#[cfg(test)]
mod tests {
    //! Sizes, alignments and offsets from Xen 4.17's public headers
    //! (x86_64), as printed by a C program including them.
    use super::*;
    use core::mem::{align_of, offset_of, size_of};

    #[test]
    fn start_info_layout() {
        // public/arch-x86/hvm/start_info.h
        assert_eq!(size_of::<hvm_start_info>(), 56);
        assert_eq!(align_of::<hvm_start_info>(), 8);
        assert_eq!(offset_of!(hvm_start_info, magic), 0);
        assert_eq!(offset_of!(hvm_start_info, version), 4);
        assert_eq!(offset_of!(hvm_start_info, flags), 8);
        assert_eq!(offset_of!(hvm_start_info, nr_modules), 12);
        assert_eq!(offset_of!(hvm_start_info, modlist_paddr), 16);
        assert_eq!(offset_of!(hvm_start_info, cmdline_paddr), 24);
        assert_eq!(offset_of!(hvm_start_info, rsdp_paddr), 32);
        assert_eq!(offset_of!(hvm_start_info, memmap_paddr), 40);
        assert_eq!(offset_of!(hvm_start_info, memmap_entries), 48);
        assert_eq!(offset_of!(hvm_start_info, reserved), 52);

        assert_eq!(size_of::<hvm_modlist_entry>(), 32);
        assert_eq!(offset_of!(hvm_modlist_entry, paddr), 0);
        assert_eq!(offset_of!(hvm_modlist_entry, size), 8);
        assert_eq!(offset_of!(hvm_modlist_entry, cmdline_paddr), 16);
        assert_eq!(offset_of!(hvm_modlist_entry, reserved), 24);

        assert_eq!(size_of::<hvm_memmap_table_entry>(), 24);
        assert_eq!(offset_of!(hvm_memmap_table_entry, addr), 0);
        assert_eq!(offset_of!(hvm_memmap_table_entry, size), 8);
        assert_eq!(offset_of!(hvm_memmap_table_entry, type_), 16);
        assert_eq!(offset_of!(hvm_memmap_table_entry, reserved), 20);

        assert_eq!(XEN_HVM_START_MAGIC_VALUE, 862_897_528);
        // "xEn3" little-endian with 0x80 on the 'E'.
        assert_eq!(
            XEN_HVM_START_MAGIC_VALUE.to_le_bytes(),
            [b'x', b'E' | 0x80, b'n', b'3']
        );
        assert_eq!(
            [
                XEN_HVM_MEMMAP_TYPE_RAM,
                XEN_HVM_MEMMAP_TYPE_RESERVED,
                XEN_HVM_MEMMAP_TYPE_ACPI,
                XEN_HVM_MEMMAP_TYPE_NVS,
                XEN_HVM_MEMMAP_TYPE_UNUSABLE,
                XEN_HVM_MEMMAP_TYPE_DISABLED,
                XEN_HVM_MEMMAP_TYPE_PMEM
            ],
            [1, 2, 3, 4, 5, 6, 7]
        );
    }

    #[test]
    fn memory_layout() {
        // public/memory.h
        assert_eq!(size_of::<xen_memory_reservation>(), 32);
        assert_eq!(align_of::<xen_memory_reservation>(), 8);
        assert_eq!(offset_of!(xen_memory_reservation, extent_start), 0);
        assert_eq!(offset_of!(xen_memory_reservation, nr_extents), 8);
        assert_eq!(offset_of!(xen_memory_reservation, extent_order), 16);
        assert_eq!(offset_of!(xen_memory_reservation, mem_flags), 20);
        assert_eq!(offset_of!(xen_memory_reservation, domid), 24);

        assert_eq!(size_of::<xen_memory_map>(), 16);
        assert_eq!(offset_of!(xen_memory_map, nr_entries), 0);
        assert_eq!(offset_of!(xen_memory_map, buffer), 8);

        // xen/arch/x86/include/asm/e820.h: packed, 20 bytes.
        assert_eq!(size_of::<e820entry>(), 20);
        assert_eq!(align_of::<e820entry>(), 1);
        assert_eq!(offset_of!(e820entry, addr), 0);
        assert_eq!(offset_of!(e820entry, size), 8);
        assert_eq!(offset_of!(e820entry, type_), 16);

        assert_eq!(size_of::<xen_add_to_physmap>(), 24);
        assert_eq!(offset_of!(xen_add_to_physmap, domid), 0);
        assert_eq!(offset_of!(xen_add_to_physmap, size), 2);
        assert_eq!(offset_of!(xen_add_to_physmap, space), 4);
        assert_eq!(offset_of!(xen_add_to_physmap, idx), 8);
        assert_eq!(offset_of!(xen_add_to_physmap, gpfn), 16);

        assert_eq!(XENMEM_increase_reservation, 0);
        assert_eq!(XENMEM_decrease_reservation, 1);
        assert_eq!(XENMEM_maximum_ram_page, 2);
        assert_eq!(XENMEM_current_reservation, 3);
        assert_eq!(XENMEM_maximum_reservation, 4);
        assert_eq!(XENMEM_populate_physmap, 6);
        assert_eq!(XENMEM_add_to_physmap, 7);
        assert_eq!(XENMEM_memory_map, 9);
        assert_eq!(XENMEM_get_pod_target, 17);
        assert_eq!(XENMAPSPACE_shared_info, 0);
        assert_eq!(DOMID_SELF, 32752);

        let r = xen_memory_reservation::order0_self(0x1000, 3);
        assert_eq!((r.extent_order, r.mem_flags, r.domid), (0, 0, DOMID_SELF));
    }

    #[test]
    fn hvm_layout() {
        // public/hvm/hvm_op.h, public/hvm/params.h
        assert_eq!(size_of::<xen_hvm_param>(), 16);
        assert_eq!(offset_of!(xen_hvm_param, domid), 0);
        assert_eq!(offset_of!(xen_hvm_param, pad), 2);
        assert_eq!(offset_of!(xen_hvm_param, index), 4);
        assert_eq!(offset_of!(xen_hvm_param, value), 8);

        assert_eq!(size_of::<xen_hvm_evtchn_upcall_vector>(), 8);
        assert_eq!(align_of::<xen_hvm_evtchn_upcall_vector>(), 4);
        assert_eq!(offset_of!(xen_hvm_evtchn_upcall_vector, vcpu), 0);
        assert_eq!(offset_of!(xen_hvm_evtchn_upcall_vector, vector), 4);

        assert_eq!(HVMOP_set_param, 0);
        assert_eq!(HVMOP_get_param, 1);
        assert_eq!(HVMOP_set_evtchn_upcall_vector, 23);
        assert_eq!(HVM_PARAM_CALLBACK_IRQ, 0);
        assert_eq!(HVM_PARAM_STORE_PFN, 1);
        assert_eq!(HVM_PARAM_STORE_EVTCHN, 2);
        assert_eq!(HVM_PARAM_CONSOLE_PFN, 17);
        assert_eq!(HVM_PARAM_CONSOLE_EVTCHN, 18);
        assert_eq!(HVM_PARAM_CALLBACK_TYPE_VECTOR, 2);
        assert_eq!(
            HVM_PARAM_CALLBACK_IRQ_TYPE_MASK as i64,
            -72_057_594_037_927_936
        );
        assert_eq!(hvm_callback_via_vector(0xf3), 0x0200_0000_0000_00f3);
        assert_eq!(
            hvm_callback_via_vector(0x20) & HVM_PARAM_CALLBACK_IRQ_TYPE_MASK,
            HVM_PARAM_CALLBACK_TYPE_VECTOR << 56
        );
        assert_eq!(xen_hvm_param::new(HVM_PARAM_STORE_PFN, 0).domid, DOMID_SELF);
    }

    #[test]
    fn vcpu_version_layout() {
        // public/vcpu.h
        assert_eq!(size_of::<vcpu_set_singleshot_timer>(), 16);
        assert_eq!(offset_of!(vcpu_set_singleshot_timer, timeout_abs_ns), 0);
        assert_eq!(offset_of!(vcpu_set_singleshot_timer, flags), 8);
        assert_eq!(VCPUOP_set_singleshot_timer, 8);
        assert_eq!(VCPUOP_stop_singleshot_timer, 9);
        assert_eq!(VCPU_SSHOTTMR_future, 1);

        // public/version.h, public/features.h
        assert_eq!(size_of::<xen_feature_info>(), 8);
        assert_eq!(offset_of!(xen_feature_info, submap_idx), 0);
        assert_eq!(offset_of!(xen_feature_info, submap), 4);
        assert_eq!(size_of::<xen_extraversion_t>(), 16);
        assert_eq!(XENVER_version, 0);
        assert_eq!(XENVER_extraversion, 1);
        assert_eq!(XENVER_get_features, 6);
        assert_eq!(XENFEAT_hvm_callback_vector, 8);
        assert_eq!(XENFEAT_hvm_safe_pvclock, 9);
        assert_eq!(xen_version_split(0x0004_0011), (4, 17));
    }

    #[test]
    fn console_layout() {
        // public/io/console.h
        assert_eq!(size_of::<xencons_interface>(), 3088);
        assert_eq!(offset_of!(xencons_interface, in_), 0);
        assert_eq!(offset_of!(xencons_interface, out), 1024);
        assert_eq!(offset_of!(xencons_interface, in_cons), 3072);
        assert_eq!(offset_of!(xencons_interface, in_prod), 3076);
        assert_eq!(offset_of!(xencons_interface, out_cons), 3080);
        assert_eq!(offset_of!(xencons_interface, out_prod), 3084);
    }

    #[test]
    fn xenstore_layout() {
        // public/io/xs_wire.h
        assert_eq!(size_of::<xenstore_domain_interface>(), 2076);
        assert_eq!(offset_of!(xenstore_domain_interface, req), 0);
        assert_eq!(offset_of!(xenstore_domain_interface, rsp), 1024);
        assert_eq!(offset_of!(xenstore_domain_interface, req_cons), 2048);
        assert_eq!(offset_of!(xenstore_domain_interface, req_prod), 2052);
        assert_eq!(offset_of!(xenstore_domain_interface, rsp_cons), 2056);
        assert_eq!(offset_of!(xenstore_domain_interface, rsp_prod), 2060);
        assert_eq!(offset_of!(xenstore_domain_interface, server_features), 2064);
        assert_eq!(offset_of!(xenstore_domain_interface, connection), 2068);
        assert_eq!(offset_of!(xenstore_domain_interface, error), 2072);

        assert_eq!(size_of::<xsd_sockmsg>(), 16);
        assert_eq!(offset_of!(xsd_sockmsg, type_), 0);
        assert_eq!(offset_of!(xsd_sockmsg, req_id), 4);
        assert_eq!(offset_of!(xsd_sockmsg, tx_id), 8);
        assert_eq!(offset_of!(xsd_sockmsg, len), 12);

        let types = [
            XS_CONTROL,
            XS_DIRECTORY,
            XS_READ,
            XS_GET_PERMS,
            XS_WATCH,
            XS_UNWATCH,
            XS_TRANSACTION_START,
            XS_TRANSACTION_END,
            XS_INTRODUCE,
            XS_RELEASE,
            XS_GET_DOMAIN_PATH,
            XS_WRITE,
            XS_MKDIR,
            XS_RM,
            XS_SET_PERMS,
            XS_WATCH_EVENT,
            XS_ERROR,
            XS_IS_DOMAIN_INTRODUCED,
            XS_RESUME,
            XS_SET_TARGET,
        ];
        for (i, t) in types.iter().enumerate() {
            assert_eq!(*t as usize, i);
        }
        assert_eq!(XS_RESET_WATCHES, 21);
        assert_eq!(XS_DIRECTORY_PART, 22);
        assert_eq!(XS_TYPE_COUNT, 23);
        assert_eq!(XS_INVALID, 65535);
        assert_eq!(XENSTORE_RING_SIZE, 1024);
        assert_eq!(XENSTORE_PAYLOAD_MAX, 4096);
        assert_eq!(XENSTORE_ABS_PATH_MAX, 3072);
        assert_eq!(XENSTORE_REL_PATH_MAX, 2048);
        assert_eq!(
            (
                XENSTORE_SERVER_FEATURE_RECONNECTION,
                XENSTORE_SERVER_FEATURE_ERROR
            ),
            (1, 2)
        );
        assert_eq!((XENSTORE_CONNECTED, XENSTORE_RECONNECT), (0, 1));
        assert_eq!(
            (
                XENSTORE_ERROR_NONE,
                XENSTORE_ERROR_COMM,
                XENSTORE_ERROR_RINGIDX,
                XENSTORE_ERROR_PROTO
            ),
            (0, 1, 2, 3)
        );
    }

    #[test]
    fn tmem_layout() {
        // public/tmem.h (interface version 0x00040400 .. 0x00041300)
        assert_eq!(size_of::<tmem_op>(), 56);
        assert_eq!(align_of::<tmem_op>(), 8);
        assert_eq!(offset_of!(tmem_op, cmd), 0);
        assert_eq!(offset_of!(tmem_op, pool_id), 4);
        assert_eq!(offset_of!(tmem_op, u), 8);
        assert_eq!(size_of::<tmem_op_u>(), 48);
        assert_eq!(size_of::<tmem_op_creat>(), 24);
        assert_eq!(offset_of!(tmem_op_creat, uuid), 0);
        assert_eq!(offset_of!(tmem_op_creat, flags), 16);
        assert_eq!(offset_of!(tmem_op_creat, arg1), 20);
        assert_eq!(size_of::<tmem_op_gen>(), 48);
        assert_eq!(offset_of!(tmem_op_gen, oid), 0);
        assert_eq!(offset_of!(tmem_op_gen, index), 24);
        assert_eq!(offset_of!(tmem_op_gen, tmem_offset), 28);
        assert_eq!(offset_of!(tmem_op_gen, pfn_offset), 32);
        assert_eq!(offset_of!(tmem_op_gen, len), 36);
        assert_eq!(offset_of!(tmem_op_gen, cmfn), 40);

        assert_eq!(__HYPERVISOR_tmem_op, 38);
        assert_eq!(TMEM_SPEC_VERSION, 1);
        assert_eq!(
            [
                TMEM_NEW_POOL,
                TMEM_DESTROY_POOL,
                TMEM_PUT_PAGE,
                TMEM_GET_PAGE,
                TMEM_FLUSH_PAGE,
                TMEM_FLUSH_OBJECT
            ],
            [1, 2, 4, 5, 6, 7]
        );
        assert_eq!(
            (TMEM_POOL_PERSIST, TMEM_POOL_SHARED, TMEM_POOL_PRECOMPRESSED),
            (1, 2, 4)
        );
        assert_eq!((TMEM_POOL_PAGESIZE_SHIFT, TMEM_POOL_PAGESIZE_MASK), (4, 15));
        assert_eq!((TMEM_POOL_VERSION_SHIFT, TMEM_POOL_VERSION_MASK), (24, 255));
        assert_eq!(TMEM_POOL_RESERVED_BITS, 16_776_960);
        // Frontswap's pool: persistent, private, 4 KiB, spec version 1.
        assert_eq!(tmem_pool_flags(TMEM_POOL_PERSIST), 0x0100_0001);

        let op = tmem_op::page(TMEM_PUT_PAGE, 3, [0x15, 0, 0], 7, 0x1234);
        // SAFETY: `gen` is the variant just written.
        let gen = unsafe { op.u.gen };
        assert_eq!(
            (op.cmd, op.pool_id, gen.oid[0], gen.index, gen.cmfn),
            (4, 3, 0x15, 7, 0x1234)
        );
        assert!(format!("{op:?}").contains("gen"));
        let op = tmem_op::new_pool([0; 2], tmem_pool_flags(TMEM_POOL_PERSIST));
        assert!(format!("{op:?}").contains("creat"));
        assert_eq!(tmem_op::destroy_pool(2).cmd, TMEM_DESTROY_POOL);
    }

    #[test]
    fn reexports_match_headers() {
        // public/xen.h hypercall numbers (interface version >= 0x00030202).
        assert_eq!(__HYPERVISOR_set_timer_op, 15);
        assert_eq!(__HYPERVISOR_memory_op, 12);
        assert_eq!(__HYPERVISOR_xen_version, 17);
        assert_eq!(__HYPERVISOR_console_io, 18);
        assert_eq!(__HYPERVISOR_vcpu_op, 24);
        assert_eq!(__HYPERVISOR_sched_op, 29);
        assert_eq!(__HYPERVISOR_event_channel_op, 32);
        assert_eq!(__HYPERVISOR_hvm_op, 34);
        assert_eq!(CONSOLEIO_write, 0);
        assert_eq!(VIRQ_TIMER, 0);
        assert_eq!(VIRQ_DEBUG, 1);

        // public/event_channel.h
        assert_eq!(
            (
                EVTCHNOP_bind_virq,
                EVTCHNOP_close,
                EVTCHNOP_send,
                EVTCHNOP_unmask
            ),
            (1, 3, 4, 9)
        );
        assert_eq!(size_of::<evtchn_bind_virq>(), 12);
        assert_eq!(offset_of!(evtchn_bind_virq, virq), 0);
        assert_eq!(offset_of!(evtchn_bind_virq, vcpu), 4);
        assert_eq!(offset_of!(evtchn_bind_virq, port), 8);
        assert_eq!(size_of::<evtchn_send>(), 4);
        assert_eq!(size_of::<evtchn_unmask>(), 4);
        assert_eq!(size_of::<evtchn_close>(), 4);

        // public/sched.h
        assert_eq!(
            (SCHEDOP_yield, SCHEDOP_block, SCHEDOP_shutdown, SCHEDOP_poll),
            (0, 1, 2, 3)
        );
        assert_eq!(
            (
                SHUTDOWN_poweroff,
                SHUTDOWN_reboot,
                SHUTDOWN_suspend,
                SHUTDOWN_crash
            ),
            (0, 1, 2, 3)
        );
        assert_eq!(size_of::<sched_shutdown>(), 4);

        // public/xen.h shared info (x86_64, 4.17).
        assert_eq!(size_of::<vcpu_time_info>(), 32);
        assert_eq!(offset_of!(vcpu_time_info, tsc_timestamp), 8);
        assert_eq!(offset_of!(vcpu_time_info, system_time), 16);
        assert_eq!(offset_of!(vcpu_time_info, tsc_to_system_mul), 24);
        assert_eq!(offset_of!(vcpu_time_info, tsc_shift), 28);
        assert_eq!(offset_of!(vcpu_time_info, pad1), 29); // 4.17: flags
        assert_eq!(size_of::<vcpu_info>(), 64);
        assert_eq!(offset_of!(vcpu_info, evtchn_upcall_pending), 0);
        assert_eq!(offset_of!(vcpu_info, evtchn_upcall_mask), 1);
        assert_eq!(offset_of!(vcpu_info, evtchn_pending_sel), 8);
        assert_eq!(offset_of!(vcpu_info, time), 32);
        assert_eq!(size_of::<shared_info>(), 3136);
        assert_eq!(offset_of!(shared_info, evtchn_pending), 2048);
        assert_eq!(offset_of!(shared_info, evtchn_mask), 2560);
        assert_eq!(offset_of!(shared_info, wc_version), 3072);
        assert_eq!(offset_of!(shared_info, arch), 3088);
        assert_eq!(XEN_LEGACY_MAX_VCPUS, 32);
        assert_eq!(XEN_PVCLOCK_TSC_STABLE_BIT, 1);
        assert_eq!(size_of::<domid_t>(), 2);
        assert_eq!(size_of::<evtchn_port_t>(), 4);
        assert_eq!(size_of::<xen_pfn_t>(), 8);
        assert_eq!(size_of::<xen_ulong_t>(), 8);
    }
}
