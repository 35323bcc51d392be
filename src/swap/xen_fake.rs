//! A fake Xen 4.12 tmem for host tests of the `xen-tmem` backend. It sees
//! what Xen sees: the 56 bytes of each `struct tmem_op` (decoded here from
//! [`TmemOp::bytes`], little endian, at `public/tmem.h`'s offsets) and
//! the guest frame named in `cmfn`. It panics on any byte a correct guest
//! would not send (non-zero `tmem_offset`/`pfn_offset`/`len`, a uuid on a
//! private pool, a `cmfn` on a flush, a frame other than the bounce
//! frame), and answers as `common/tmem.c` does:
//!
//! - gate: `-ENOSYS` (Xen ≥ 4.13) or `-ENODEV` (no `tmem=1`) when so set;
//! - new pool: flag checks (`-EPERM`), 16 slots, lowest free id;
//! - put: `-ENOMEM` when memory is full *before* looking at the key (an
//!   older copy survives, as in Xen), after evicting ephemeral pages
//!   oldest first; replace in place; scripted answers;
//! - get: `-EEMPTY` for an empty pool, 0 for absent, 1 and the copy into
//!   the frame; destructive in an ephemeral pool;
//! - flushes: 1 whether found or not; a pool id that is not live:
//!   `-ENODEV`.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use crate::mm::Pfn;
use crate::xen::abi;
use crate::xen::errno::Errno;
use crate::xen::tmem::{TmemHypervisor, TmemOp, EEMPTY, MAX_POOLS, TMEM_OP_BYTES};

use super::tmem::{Page, PAGE_BYTES};

/// A decoded `tmem_op`, every field as Xen reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    NewPool {
        uuid: [u64; 2],
        flags: u32,
    },
    DestroyPool {
        pool: i32,
    },
    Put {
        pool: i32,
        oid: [u64; 3],
        index: u32,
        cmfn: u64,
    },
    Get {
        pool: i32,
        oid: [u64; 3],
        index: u32,
        cmfn: u64,
    },
    FlushPage {
        pool: i32,
        oid: [u64; 3],
        index: u32,
    },
    FlushObject {
        pool: i32,
        oid: [u64; 3],
    },
    Other {
        cmd: u32,
    },
}

fn u32_at(b: &[u8; TMEM_OP_BYTES], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8; TMEM_OP_BYTES], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Decodes the 56 bytes, panicking on anything a correct guest does not
/// send.
pub(crate) fn decode(b: &[u8; TMEM_OP_BYTES]) -> Decoded {
    let cmd = u32_at(b, 0);
    let pool = u32_at(b, 4) as i32;
    // `u.gen`: oid[3] at 8, index at 32, tmem_offset 36, pfn_offset 40,
    // len 44, cmfn 48. `u.creat`: uuid[2] at 8, flags at 24, arg1 at 28.
    let oid = [u64_at(b, 8), u64_at(b, 16), u64_at(b, 24)];
    let index = u32_at(b, 32);
    let cmfn = u64_at(b, 48);
    let zero_offsets = || {
        assert_eq!(
            (u32_at(b, 36), u32_at(b, 40), u32_at(b, 44)),
            (0, 0, 0),
            "tmem_offset, pfn_offset, len must be 0 (whole pages): {b:?}"
        );
    };
    match cmd {
        abi::TMEM_NEW_POOL => {
            assert_eq!(pool, 0, "NEW_POOL: pool_id unused, sent as 0");
            assert_eq!(u32_at(b, 28), 0, "NEW_POOL: arg1 must be 0");
            assert!(b[32..].iter().all(|&x| x == 0), "NEW_POOL: tail not zero");
            Decoded::NewPool {
                uuid: [oid[0], oid[1]],
                flags: u32_at(b, 24),
            }
        }
        abi::TMEM_DESTROY_POOL => {
            assert!(
                b[8..].iter().all(|&x| x == 0),
                "DESTROY_POOL: union not zero"
            );
            Decoded::DestroyPool { pool }
        }
        abi::TMEM_PUT_PAGE | abi::TMEM_GET_PAGE => {
            zero_offsets();
            if cmd == abi::TMEM_PUT_PAGE {
                Decoded::Put {
                    pool,
                    oid,
                    index,
                    cmfn,
                }
            } else {
                Decoded::Get {
                    pool,
                    oid,
                    index,
                    cmfn,
                }
            }
        }
        abi::TMEM_FLUSH_PAGE => {
            zero_offsets();
            assert_eq!(cmfn, 0, "FLUSH_PAGE passes no frame");
            Decoded::FlushPage { pool, oid, index }
        }
        abi::TMEM_FLUSH_OBJECT => {
            zero_offsets();
            assert_eq!((index, cmfn), (0, 0), "FLUSH_OBJECT: index and cmfn 0");
            Decoded::FlushObject { pool, oid }
        }
        cmd => Decoded::Other { cmd },
    }
}

/// A scripted answer for the next put (consumed by it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PutScript {
    /// Answer 0 and store nothing (old copy flushed).
    Zero,
    /// `-ENOMEM` before looking at the key: an older copy survives.
    NoMemKeepOld,
    /// A replacement that failed: `-ENOSPC`, old copy flushed.
    DupFailed,
    /// Any errno, nothing changed (old copy survives).
    Errno(Errno),
}

/// An object's pages by index: (put sequence number, data).
type Object = BTreeMap<u32, (u64, Box<Page>)>;

#[derive(Debug)]
struct Pool {
    persistent: bool,
    objects: BTreeMap<[u64; 3], Object>,
}

impl Pool {
    fn pages(&self) -> u64 {
        self.objects.values().map(|o| o.len() as u64).sum()
    }
}

/// The fake hypervisor.
#[derive(Debug)]
pub(crate) struct FakeXenTmem {
    /// The guest's bounce frame: its gfn and contents.
    gfn: Pfn,
    frame: Box<Page>,
    pools: [Option<Pool>; MAX_POOLS as usize],
    /// `Some(e)`: every call answers `-e` (ENOSYS, ENODEV, EPERM).
    pub gate: Option<Errno>,
    /// Pages Xen can hold (all pools); `None`: unlimited.
    pub capacity_pages: Option<u64>,
    /// Answers for the next puts, front first.
    pub put_script: VecDeque<PutScript>,
    /// Every op, decoded, in order.
    pub ops: Vec<Decoded>,
    /// Ephemeral pages evicted for room.
    pub evicted: u64,
    seq: u64,
}

impl FakeXenTmem {
    /// tmem on, with the guest's bounce frame at `gfn`.
    pub fn new(gfn: Pfn) -> Self {
        FakeXenTmem {
            gfn,
            frame: Box::new([0x5a; PAGE_BYTES]),
            pools: Default::default(),
            gate: None,
            capacity_pages: None,
            put_script: VecDeque::new(),
            ops: Vec::new(),
            evicted: 0,
            seq: 0,
        }
    }

    /// Pages held, all pools.
    pub fn pages(&self) -> u64 {
        self.pools.iter().flatten().map(Pool::pages).sum()
    }

    /// Pages in `pool` (0 if none).
    pub fn pool_pages(&self, pool: u32) -> u64 {
        self.pools
            .get(pool as usize)
            .and_then(Option::as_ref)
            .map_or(0, Pool::pages)
    }

    /// Whether (`pool`, `oid`, `index`) holds a page (for tests that check
    /// what Xen kept behind the backend's back).
    pub fn holds(&self, pool: u32, oid: [u64; 3], index: u32) -> bool {
        self.pools
            .get(pool as usize)
            .and_then(Option::as_ref)
            .and_then(|p| p.objects.get(&oid))
            .is_some_and(|o| o.contains_key(&index))
    }

    /// Drops up to `n` ephemeral pages, oldest first (Xen may at any time).
    pub fn evict_ephemeral(&mut self, n: u64) -> u64 {
        let mut done = 0;
        while done < n && self.evict_one() {
            done += 1;
        }
        done
    }

    fn evict_one(&mut self) -> bool {
        let oldest = self
            .pools
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().map(|p| (i, p)))
            .filter(|(_, p)| !p.persistent)
            .flat_map(|(i, p)| {
                p.objects.iter().flat_map(move |(oid, o)| {
                    o.iter().map(move |(idx, (s, _))| (*s, i, *oid, *idx))
                })
            })
            .min();
        let Some((_, i, oid, idx)) = oldest else {
            return false;
        };
        if let Some(Some(p)) = self.pools.get_mut(i) {
            remove(p, oid, idx);
        }
        self.evicted += 1;
        true
    }

    fn pool(&mut self, pool: i32) -> Result<&mut Pool, Errno> {
        usize::try_from(pool)
            .ok()
            .and_then(|i| self.pools.get_mut(i))
            .and_then(Option::as_mut)
            .ok_or(Errno::ENODEV)
    }

    fn check_frame(&self, cmfn: u64) -> Result<(), Errno> {
        // Only the bounce frame is a page the guest means; anything else
        // is a backend bug (Xen would copy some other frame, or -EFAULT).
        assert_eq!(cmfn, self.gfn, "cmfn must be the bounce frame's gfn");
        Ok(())
    }

    fn new_pool(&mut self, uuid: [u64; 2], flags: u32) -> Result<u64, Errno> {
        let persistent = flags & abi::TMEM_POOL_PERSIST != 0;
        let shared = flags & abi::TMEM_POOL_SHARED != 0;
        let pagebits = (flags >> abi::TMEM_POOL_PAGESIZE_SHIFT) & abi::TMEM_POOL_PAGESIZE_MASK;
        let version = (flags >> abi::TMEM_POOL_VERSION_SHIFT) & abi::TMEM_POOL_VERSION_MASK;
        if version != abi::TMEM_SPEC_VERSION
            || (shared && persistent)
            || pagebits != 0
            || flags & abi::TMEM_POOL_PRECOMPRESSED != 0
            || flags & abi::TMEM_POOL_RESERVED_BITS != 0
        {
            return Err(Errno::EPERM);
        }
        assert!(shared || uuid == [0; 2], "a private pool has no uuid");
        let Some(slot) = self.pools.iter().position(Option::is_none) else {
            return Err(Errno::EPERM);
        };
        self.pools[slot] = Some(Pool {
            persistent,
            objects: BTreeMap::new(),
        });
        Ok(slot as u64)
    }

    fn put(&mut self, pool: i32, oid: [u64; 3], index: u32, cmfn: u64) -> Result<u64, Errno> {
        self.pool(pool)?;
        self.check_frame(cmfn)?;
        match self.put_script.pop_front() {
            Some(PutScript::NoMemKeepOld) => return Err(Errno::ENOMEM),
            Some(PutScript::Errno(e)) => return Err(e),
            Some(PutScript::Zero) => {
                remove(self.pool(pool)?, oid, index);
                return Ok(0);
            }
            Some(PutScript::DupFailed) => {
                remove(self.pool(pool)?, oid, index);
                return Err(Errno::ENOSPC);
            }
            None => {}
        }
        if let Some(cap) = self.capacity_pages {
            // tmem_ensure_avail_pages: evict ephemeral pages, else -ENOMEM
            // before the key is looked at (a replacement included: the
            // older copy survives).
            while self.pages() >= cap {
                if !self.evict_one() {
                    return Err(Errno::ENOMEM);
                }
            }
        }
        self.seq += 1;
        let seq = self.seq;
        let data = Box::new(*self.frame);
        self.pool(pool)?
            .objects
            .entry(oid)
            .or_default()
            .insert(index, (seq, data));
        Ok(1)
    }

    fn get(&mut self, pool: i32, oid: [u64; 3], index: u32, cmfn: u64) -> Result<u64, Errno> {
        self.pool(pool)?;
        self.check_frame(cmfn)?;
        let p = self.pool(pool)?;
        if p.pages() == 0 {
            return Err(EEMPTY);
        }
        let data = if p.persistent {
            p.objects
                .get(&oid)
                .and_then(|o| o.get(&index))
                .map(|(_, d)| d.clone())
        } else {
            remove(p, oid, index)
        };
        match data {
            Some(d) => {
                *self.frame = *d;
                Ok(1)
            }
            None => Ok(0),
        }
    }
}

/// Removes a page, and its object when that empties (Xen's obj_free).
fn remove(p: &mut Pool, oid: [u64; 3], index: u32) -> Option<Box<Page>> {
    let o = p.objects.get_mut(&oid)?;
    let d = o.remove(&index).map(|(_, d)| d);
    if o.is_empty() {
        p.objects.remove(&oid);
    }
    d
}

impl TmemHypervisor for FakeXenTmem {
    fn bounce_gfn(&self) -> Pfn {
        self.gfn
    }

    fn write_bounce(&mut self, page: &Page) {
        *self.frame = *page;
    }

    fn read_bounce(&mut self, page: &mut Page) {
        *page = *self.frame;
    }

    fn tmem_op(&mut self, op: &TmemOp) -> Result<u64, Errno> {
        let d = decode(&op.bytes());
        self.ops.push(d);
        if let Some(e) = self.gate {
            return Err(e);
        }
        match d {
            Decoded::NewPool { uuid, flags } => self.new_pool(uuid, flags),
            Decoded::DestroyPool { pool } => {
                match usize::try_from(pool)
                    .ok()
                    .and_then(|i| self.pools.get_mut(i))
                {
                    Some(slot @ Some(_)) => {
                        *slot = None;
                        Ok(1)
                    }
                    _ => Ok(0),
                }
            }
            Decoded::Put {
                pool,
                oid,
                index,
                cmfn,
            } => self.put(pool, oid, index, cmfn),
            Decoded::Get {
                pool,
                oid,
                index,
                cmfn,
            } => self.get(pool, oid, index, cmfn),
            Decoded::FlushPage { pool, oid, index } => {
                remove(self.pool(pool)?, oid, index);
                Ok(1)
            }
            Decoded::FlushObject { pool, oid } => {
                self.pool(pool)?.objects.remove(&oid);
                Ok(1)
            }
            Decoded::Other { .. } => Err(Errno::ENOSYS),
        }
    }
}
