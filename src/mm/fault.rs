//! How a page fault reaches the pager.
//!
//! The pager's state (frames, page tables, frontswap) is owned by the main
//! loop, not by a global: it is lent to the fault path only while the
//! workload runs, by [`with_fault_handler`], which makes a
//! [`Shared`] handler reachable from [`deliver`] for the duration of a
//! closure and unreachable again when the closure returns.
//!
//! `Shared` is a spin lock around the handler. The code inside the closure
//! (the workload's page source) locks it for its own short operations
//! (allocating a page, freeing one) and never touches the region while it
//! holds the lock; the fault path only ever *tries* the lock. So a fault
//! taken while the lock is held, which includes a fault inside the fault
//! handler itself, finds it busy and is reported as fatal instead of
//! deadlocking or aliasing the handler's state ([`Resolution::Busy`]).
//!
//! On the machine the `#PF` hook calls [`deliver`]; in host tests the fake
//! MMU calls it for an access to a page that is not mapped, so the same
//! resolution code runs in both.

use core::marker::PhantomData;

/// A page fault as the CPU reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The faulting linear address (CR2).
    pub addr: u64,
    /// The error code the CPU pushed.
    pub error_code: u64,
}

impl Fault {
    /// Error code bit 0: the entry was present (a protection fault).
    pub const PRESENT: u64 = 1 << 0;
    /// Error code bit 1: a write.
    pub const WRITE: u64 = 1 << 1;
    /// Error code bit 3: a reserved bit was set in an entry.
    pub const RESERVED: u64 = 1 << 3;

    /// Whether the page was simply not present (the case demand paging
    /// resolves); protection and reserved-bit faults are bugs.
    pub const fn is_not_present(&self) -> bool {
        self.error_code & (Self::PRESENT | Self::RESERVED) == 0
    }

    /// Whether the access was a write.
    pub const fn is_write(&self) -> bool {
        self.error_code & Self::WRITE != 0
    }
}

/// What became of a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The page is mapped now; retry the instruction.
    Resolved,
    /// The address is not the handler's, or no handler is lent: fatal.
    NotOurs,
    /// The handler is in use (a fault while its lock was held, or inside
    /// the handler): fatal.
    Busy,
    /// The handler could not resolve it (no frame, the backend lost the
    /// page): fatal, with the reason.
    Failed(&'static str),
}

/// A page-fault handler.
pub trait FaultHandler {
    /// Resolves `fault` (maps the page, with its content) or says why not.
    fn handle(&mut self, fault: Fault) -> Resolution;
}

/// A handler shared between the code of a [`with_fault_handler`] scope and
/// the fault path.
#[derive(Debug)]
pub struct Shared<H> {
    inner: spin::Mutex<H>,
}

impl<H> Shared<H> {
    /// Wraps `handler`.
    pub const fn new(handler: H) -> Self {
        Shared {
            inner: spin::Mutex::new(handler),
        }
    }

    /// Locks the handler for an operation of the scope's code. The caller
    /// must not touch the region while it holds the guard: a fault then
    /// finds the handler busy and is fatal. Panics if the lock is held
    /// (nothing on this single CPU could release it).
    pub fn lock(&self) -> spin::MutexGuard<'_, H> {
        match self.inner.try_lock() {
            Some(g) => g,
            None => panic!("fault handler locked twice"),
        }
    }

    /// The handler back.
    pub fn into_inner(self) -> H {
        self.inner.into_inner()
    }
}

/// The lent handler, type-erased: a pointer to a `Shared<H>` and the
/// monomorphised function that calls it.
#[derive(Clone, Copy)]
struct Lent {
    shared: *const (),
    call: fn(*const (), Fault) -> Resolution,
}

fn call<H: FaultHandler>(shared: *const (), fault: Fault) -> Resolution {
    // SAFETY: `shared` was made from a `&Shared<H>` by `with_fault_handler`
    // (the only place a `Lent` is made, with this very `H`), and that
    // function keeps the borrow alive and the pointer installed only while
    // its closure runs; it uninstalls it before returning (the guard's
    // drop, which also runs when the closure unwinds). Only shared access
    // is made, and `Shared` serialises mutation with its lock.
    let shared = unsafe { &*shared.cast::<Shared<H>>() };
    match shared.inner.try_lock() {
        Some(mut h) => h.handle(fault),
        None => Resolution::Busy,
    }
}

#[cfg(not(test))]
mod slot {
    //! One CPU, one slot.
    use super::Lent;

    struct Slot(spin::Mutex<Option<Lent>>);
    // SAFETY: the kernel runs on one CPU; the pointer inside is only used
    // by `super::call` under the conditions stated there.
    unsafe impl Sync for Slot {}

    static CURRENT: Slot = Slot(spin::Mutex::new(None));

    pub(super) fn replace(new: Option<Lent>) -> Option<Lent> {
        // Taken only here, never across a call out: cannot be held when a
        // fault arrives.
        core::mem::replace(&mut *CURRENT.0.lock(), new)
    }

    pub(super) fn get() -> Option<Lent> {
        CURRENT.0.try_lock().and_then(|g| *g)
    }
}

#[cfg(test)]
mod slot {
    //! Host tests run on many threads: one slot per thread.
    use super::Lent;
    use core::cell::Cell;

    std::thread_local! {
        static CURRENT: Cell<Option<Lent>> = const { Cell::new(None) };
    }

    pub(super) fn replace(new: Option<Lent>) -> Option<Lent> {
        CURRENT.with(|c| c.replace(new))
    }

    pub(super) fn get() -> Option<Lent> {
        CURRENT.with(|c| c.get())
    }
}

/// Restores the previous slot content when the scope ends.
struct Uninstall<'a> {
    previous: Option<Lent>,
    _borrow: PhantomData<&'a ()>,
}

impl Drop for Uninstall<'_> {
    fn drop(&mut self) {
        slot::replace(self.previous);
    }
}

/// Runs `body` with `handler` reachable by page faults ([`deliver`]).
/// Scopes nest: the inner handler is used until its scope ends.
pub fn with_fault_handler<H: FaultHandler, T>(handler: &Shared<H>, body: impl FnOnce() -> T) -> T {
    let lent = Lent {
        shared: (handler as *const Shared<H>).cast(),
        call: call::<H>,
    };
    let _uninstall = Uninstall {
        previous: slot::replace(Some(lent)),
        _borrow: PhantomData,
    };
    body()
}

/// Hands `fault` to the handler lent now, if any.
pub fn deliver(fault: Fault) -> Resolution {
    match slot::get() {
        Some(l) => (l.call)(l.shared, fault),
        None => Resolution::NotOurs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(u32);
    impl FaultHandler for Counter {
        fn handle(&mut self, f: Fault) -> Resolution {
            self.0 += 1;
            if f.addr == 0 {
                Resolution::NotOurs
            } else {
                Resolution::Resolved
            }
        }
    }

    #[test]
    fn lent_only_inside_the_scope() {
        let f = Fault {
            addr: 0x1000,
            error_code: 0,
        };
        assert_eq!(deliver(f), Resolution::NotOurs);
        let h = Shared::new(Counter(0));
        let r = with_fault_handler(&h, || (deliver(f), deliver(Fault { addr: 0, ..f })));
        assert_eq!(r, (Resolution::Resolved, Resolution::NotOurs));
        assert_eq!(deliver(f), Resolution::NotOurs);
        assert_eq!(h.into_inner().0, 2);
    }

    #[test]
    fn busy_while_locked_and_scopes_nest() {
        let f = Fault {
            addr: 0x1000,
            error_code: Fault::WRITE,
        };
        assert!(f.is_not_present() && f.is_write());
        let outer = Shared::new(Counter(0));
        let inner = Shared::new(Counter(0));
        with_fault_handler(&outer, || {
            {
                let _g = outer.lock();
                assert_eq!(deliver(f), Resolution::Busy);
            }
            with_fault_handler(&inner, || assert_eq!(deliver(f), Resolution::Resolved));
            assert_eq!(deliver(f), Resolution::Resolved);
        });
        assert_eq!((outer.into_inner().0, inner.into_inner().0), (1, 1));
        let prot = Fault {
            addr: 1,
            error_code: Fault::PRESENT,
        };
        assert!(!prot.is_not_present());
    }
}
