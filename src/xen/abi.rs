//! Xen public ABI (in progress)
