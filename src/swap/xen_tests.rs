//! Host tests of the `xen-tmem` backend on the byte-level fake Xen
//! (`xen_fake`): the exact bytes of every command, the mapping of Xen's
//! answers, the shared conformance suite, and tiered frontswap with Xen
//! refusing per page against a model.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::mm::Pfn;
use crate::xen::errno::Errno;
use crate::xen::tmem::{probe, Presence, TmemHypervisor, TmemOp, EEMPTY, EFROZEN};

use super::content::{fill, verify, ContentKind};
use super::frontswap::{slot_key, Frontswap, FrontswapError, Tier};
use super::tests::conformance;
use super::tmem::{
    Key, Lookup, ObjectId, Page, PoolId, PoolKind, Refusal, Tmem, TmemError, PAGE_BYTES,
};
use super::xen_fake::{Decoded, FakeXenTmem, PutScript};
use super::xen_tmem::{xen_pool_flags, SwapBackend, XenTmem};
use super::zpool::{VecFrames, ZPool};

const GFN: Pfn = 0x1_2345;

fn xen() -> XenTmem<FakeXenTmem> {
    XenTmem::new(FakeXenTmem::new(GFN))
}

fn page(kind: ContentKind, id: u64) -> Page {
    let mut p = [0u8; PAGE_BYTES];
    fill(kind, id, &mut p);
    p
}

fn key(o: u64, i: u32) -> Key {
    Key::new(ObjectId([o, 0, 0]), i)
}

#[test]
fn xen_tmem_conforms() {
    let mut x = xen();
    conformance(&mut x);
    assert_eq!(x.hypervisor().pages(), 0);
    // The fake decoded (and checked) every op; none was unknown.
    assert!(x
        .hypervisor()
        .ops
        .iter()
        .all(|d| !matches!(d, Decoded::Other { .. })));
    assert_eq!(x.stats().bad_replies, 0);
}

#[test]
fn every_command_is_the_bytes_xen_reads() {
    let mut x = xen();
    let p = x.new_pool(PoolKind::PERSISTENT).unwrap();
    let e = x.new_pool(PoolKind::EPHEMERAL).unwrap();
    let k = Key::new(ObjectId([0x0f, 0x1111, 0x2222]), 0x8000_0001);
    let a = page(ContentKind::Mixed, 7);
    let mut out = [0u8; PAGE_BYTES];
    x.put(p, k, &a).unwrap();
    assert_eq!(x.get(p, k, &mut out), Ok(Lookup::Found));
    x.flush_page(p, k).unwrap();
    x.flush_object(p, k.object).unwrap();
    x.destroy_pool(e).unwrap();
    let oid = [0x0f, 0x1111, 0x2222];
    assert_eq!(
        x.hypervisor().ops,
        [
            Decoded::NewPool {
                uuid: [0; 2],
                flags: 0x0100_0001
            },
            Decoded::NewPool {
                uuid: [0; 2],
                flags: 0x0100_0000
            },
            Decoded::Put {
                pool: 0,
                oid,
                index: 0x8000_0001,
                cmfn: GFN
            },
            Decoded::Get {
                pool: 0,
                oid,
                index: 0x8000_0001,
                cmfn: GFN
            },
            Decoded::FlushPage {
                pool: 0,
                oid,
                index: 0x8000_0001
            },
            Decoded::FlushObject { pool: 0, oid },
            Decoded::DestroyPool { pool: 1 },
        ]
    );
    assert_eq!(out, a);
    assert_eq!(
        xen_pool_flags(PoolKind::PERSISTENT),
        PoolKind::PERSISTENT.xen_flags()
    );
    assert_eq!(
        xen_pool_flags(PoolKind::EPHEMERAL),
        PoolKind::EPHEMERAL.xen_flags()
    );
}

#[test]
fn the_fake_rejects_what_xen_would_not_accept() {
    let mut f = FakeXenTmem::new(GFN);
    // A wrong spec version, a shared persistent pool, a page size of
    // 8 KiB, precompression, reserved bits: -EPERM, no pool.
    for flags in [
        1,
        0x0200_0001,
        0x0100_0003,
        0x0100_0011,
        0x0100_0004,
        0x0100_0100,
    ] {
        assert_eq!(
            f.tmem_op(&TmemOp::new_pool(flags, [0; 2])),
            Err(Errno::EPERM)
        );
    }
    // Page commands on a pool that does not exist: -ENODEV.
    assert_eq!(
        f.tmem_op(&TmemOp::flush_object(0, [0; 3])),
        Err(Errno::ENODEV)
    );
    assert_eq!(
        f.tmem_op(&TmemOp::flush_page(-1, [0; 3], 0)),
        Err(Errno::ENODEV)
    );
    assert_eq!(f.tmem_op(&TmemOp::destroy_pool(3)), Ok(0));
}

#[test]
#[should_panic(expected = "cmfn must be the bounce frame")]
fn the_fake_catches_a_wrong_frame() {
    let mut f = FakeXenTmem::new(GFN);
    f.tmem_op(&TmemOp::new_pool(0x0100_0001, [0; 2])).unwrap();
    let _ = f.tmem_op(&TmemOp::put(0, [0; 3], 0, GFN + 1));
}

#[test]
fn refused_puts_are_no_loss_and_leave_no_older_copy() {
    let mut x = xen();
    let p = x.new_pool(PoolKind::PERSISTENT).unwrap();
    let old = page(ContentKind::Mixed, 1);
    let new = page(ContentKind::Mixed, 2);
    for (script, want) in [
        (
            PutScript::NoMemKeepOld,
            TmemError::Refused(Refusal::NoMemory),
        ),
        (PutScript::Zero, TmemError::Refused(Refusal::NoMemory)),
        (PutScript::DupFailed, TmemError::Refused(Refusal::NoMemory)),
        (
            PutScript::Errno(Errno::EFAULT),
            TmemError::Hypervisor(Errno::EFAULT.0),
        ),
        (PutScript::Errno(EFROZEN), TmemError::Hypervisor(1000)),
    ] {
        x.put(p, key(1, 5), &old).unwrap();
        x.hypervisor_mut().put_script.push_back(script);
        let before = new;
        assert_eq!(x.put(p, key(1, 5), &new), Err(want), "{script:?}");
        assert_eq!(new, before, "the caller's page is untouched");
        // The put was followed by a flush of its key: Xen holds no older
        // copy, whatever it did itself.
        assert!(matches!(
            x.hypervisor().ops.last(),
            Some(Decoded::FlushPage { index: 5, .. })
        ));
        assert!(!x.hypervisor().holds(p.0, [1, 0, 0], 5), "{script:?}");
        let mut out = [0u8; PAGE_BYTES];
        assert_eq!(x.get(p, key(1, 5), &mut out), Ok(Lookup::Absent));
    }
    let s = x.stats();
    assert_eq!((s.puts_refused, s.puts_failed), (3, 2));
}

#[test]
fn xen_out_of_memory_refuses_and_evicts_ephemeral_pages_first() {
    let mut x = xen();
    x.hypervisor_mut().capacity_pages = Some(8);
    let p = x.new_pool(PoolKind::PERSISTENT).unwrap();
    let e = x.new_pool(PoolKind::EPHEMERAL).unwrap();
    for i in 0..4 {
        x.put(e, key(9, i), &page(ContentKind::Text, u64::from(i)))
            .unwrap();
    }
    let mut stored = 0;
    let mut refused = 0;
    for i in 0..10 {
        match x.put(p, key(1, i), &page(ContentKind::Mixed, u64::from(i))) {
            Ok(()) => stored += 1,
            Err(TmemError::Refused(Refusal::NoMemory)) => refused += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!((stored, refused), (8, 2));
    assert_eq!(x.hypervisor().evicted, 4);
    let mut out = [0u8; PAGE_BYTES];
    for i in 0..4 {
        // Evicted ephemeral pages: absent (the pool is empty: -EEMPTY).
        assert_eq!(x.get(e, key(9, i), &mut out), Ok(Lookup::Absent));
    }
    assert_eq!(x.stats().gets_empty, 4);
    for i in 0..8 {
        assert_eq!(x.get(p, key(1, i), &mut out), Ok(Lookup::Found));
        assert!(verify(ContentKind::Mixed, u64::from(i), &out));
    }
}

#[test]
fn gets_after_flushes_are_absent_zero_or_eempty() {
    let mut x = xen();
    let p = x.new_pool(PoolKind::PERSISTENT).unwrap();
    let mut out = [0u8; PAGE_BYTES];
    assert_eq!(x.get(p, key(1, 0), &mut out), Ok(Lookup::Absent));
    assert_eq!(x.stats().gets_empty, 1, "an empty pool answers -EEMPTY");
    for i in 0..3 {
        x.put(p, key(1, i), &page(ContentKind::Mixed, u64::from(i)))
            .unwrap();
    }
    x.put(p, key(2, 0), &page(ContentKind::Text, 9)).unwrap();
    x.flush_page(p, key(1, 1)).unwrap();
    assert_eq!(x.get(p, key(1, 1), &mut out), Ok(Lookup::Absent));
    assert_eq!(x.stats().gets_absent, 1, "a flushed page answers 0");
    x.flush_object(p, ObjectId([1, 0, 0])).unwrap();
    assert_eq!(x.get(p, key(1, 0), &mut out), Ok(Lookup::Absent));
    assert_eq!(x.stats().gets_absent, 2);
    x.flush_object(p, ObjectId([2, 0, 0])).unwrap();
    assert_eq!(x.get(p, key(2, 0), &mut out), Ok(Lookup::Absent));
    assert_eq!(x.stats().gets_empty, 2, "the last object flushed: -EEMPTY");
}

#[test]
fn ephemeral_gets_are_destructive() {
    let mut x = xen();
    let e = x.new_pool(PoolKind::EPHEMERAL).unwrap();
    let a = page(ContentKind::Mixed, 3);
    let mut out = [0u8; PAGE_BYTES];
    x.put(e, key(1, 1), &a).unwrap();
    x.put(e, key(1, 2), &a).unwrap();
    assert_eq!(x.get(e, key(1, 1), &mut out), Ok(Lookup::Found));
    assert_eq!(out, a);
    assert_eq!(x.get(e, key(1, 1), &mut out), Ok(Lookup::Absent));
    assert_eq!(x.hypervisor().pool_pages(e.0), 1);
    assert_eq!(x.hypervisor_mut().evict_ephemeral(5), 1);
    assert_eq!(x.get(e, key(1, 2), &mut out), Ok(Lookup::Absent));
}

#[test]
fn no_tmem_is_unsupported_and_the_probe_says_absent() {
    for gate in [Errno::ENOSYS, Errno::ENODEV, Errno::EPERM, Errno::EFAULT] {
        let mut f = FakeXenTmem::new(GFN);
        f.gate = Some(gate);
        assert_eq!(probe(&mut f), Presence::Absent(gate));
        assert_eq!(
            SwapBackend::from_presence(Some(probe(&mut f))),
            SwapBackend::Zpool
        );
        let mut x = XenTmem::new(f);
        let want = match gate {
            Errno::ENOSYS | Errno::ENODEV => TmemError::Unsupported,
            Errno::EPERM => TmemError::NoPoolSlots,
            e => TmemError::Hypervisor(e.0),
        };
        assert_eq!(x.new_pool(PoolKind::PERSISTENT), Err(want));
    }
    let mut f = FakeXenTmem::new(GFN);
    assert_eq!(probe(&mut f), Presence::Present);
    assert_eq!(f.ops.len(), 2, "new pool, then destroy");
    assert_eq!(f.tmem_op(&TmemOp::destroy_pool(0)), Ok(0), "destroyed");
    assert_eq!(
        SwapBackend::from_presence(Some(Presence::Present)).name(),
        "xen-tmem"
    );
    assert_eq!(SwapBackend::from_presence(None).name(), "zpool");
}

/// A hypervisor that answers every call with one fixed value.
struct Answers(Result<u64, Errno>);

impl TmemHypervisor for Answers {
    fn bounce_gfn(&self) -> Pfn {
        GFN
    }
    fn write_bounce(&mut self, _: &Page) {}
    fn read_bounce(&mut self, page: &mut Page) {
        page.fill(0xee);
    }
    fn tmem_op(&mut self, _: &TmemOp) -> Result<u64, Errno> {
        self.0
    }
}

#[test]
fn replies_outside_tmem_are_not_trusted() {
    let eio = TmemError::Hypervisor(Errno::EIO.0);
    let mut x = XenTmem::new(Answers(Ok(16)));
    assert_eq!(x.new_pool(PoolKind::PERSISTENT), Err(eio));
    let mut x = XenTmem::new(Answers(Ok(2)));
    let mut out = [0u8; PAGE_BYTES];
    assert_eq!(x.get(PoolId(0), key(0, 0), &mut out), Err(eio));
    assert_eq!(out, [0u8; PAGE_BYTES], "nothing copied on a bad reply");
    assert_eq!(x.put(PoolId(0), key(0, 0), &out), Err(eio));
    assert_eq!(x.destroy_pool(PoolId(0)), Err(eio));
    assert_eq!(x.stats().bad_replies, 3);
    assert_eq!(
        x.get(PoolId(u32::MAX), key(0, 0), &mut out),
        Err(TmemError::NoSuchPool(PoolId(u32::MAX)))
    );
    let mut x = XenTmem::new(Answers(Err(EEMPTY)));
    assert_eq!(x.get(PoolId(0), key(0, 0), &mut out), Ok(Lookup::Absent));
}

/// Tiered frontswap, Xen tmem first (filling up, refusing per page on
/// script, also with the "keep the old copy" -ENOMEM), zpool behind it,
/// against a model map. After every operation: no slot that frontswap
/// does not place in Xen has a page in Xen (no stale copy can come back).
fn tiered_model_run(ops: u64, seed: u64) -> (u64, u64, u64) {
    let mut rng = seed;
    let mut next = move |n: u64| {
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    };
    let mut hyp = FakeXenTmem::new(GFN);
    hyp.capacity_pages = Some(150);
    let zpool = ZPool::new(VecFrames::new(0x1000, 512), 200);
    let mut fs = Frontswap::tiered(XenTmem::new(hyp), zpool).expect("pools");
    let mut model: BTreeMap<u64, u64> = BTreeMap::new();
    let mut mismatches = 0;
    let mut pg = [0u8; PAGE_BYTES];
    let mut id = 0u64;
    let kind = |id: u64| match id % 8 {
        0 => ContentKind::Zero,
        1 => ContentKind::Text,
        _ => ContentKind::Mixed,
    };
    for op in 0..ops {
        let slot = next(500);
        let script = match next(40) {
            0 => Some(PutScript::NoMemKeepOld),
            1 => Some(PutScript::Zero),
            2 => Some(PutScript::DupFailed),
            _ => None,
        };
        let xen = fs.primary_mut().hypervisor_mut();
        xen.put_script.clear();
        xen.put_script.extend(script);
        match next(10) {
            0..=4 => {
                id += 1;
                fill(kind(id), id, &mut pg);
                match fs.store(slot, &pg) {
                    Ok(_) => {
                        model.insert(slot, id);
                    }
                    Err(FrontswapError::Refused { .. }) => {
                        model.remove(&slot);
                    }
                    Err(_) => mismatches += 1,
                }
            }
            5..=7 => match (fs.load(slot, &mut pg), model.get(&slot)) {
                (Ok(_), Some(&id)) if verify(kind(id), id, &pg) => {}
                (Err(FrontswapError::NotStored(_)), None) => {}
                _ => mismatches += 1,
            },
            _ => {
                if fs.invalidate(slot).is_err() {
                    mismatches += 1;
                }
                model.remove(&slot);
            }
        }
        assert_eq!(fs.curr_pages(), model.len() as u64, "op {op}");
        let xen = fs.primary().hypervisor();
        assert_eq!(xen.pool_pages(0), fs.tier_pages(Tier::Primary), "op {op}");
        if op % 64 == 0 {
            for s in 0..500u64 {
                let k = slot_key(s).expect("slot");
                let in_xen = xen.holds(0, k.object.0, k.index);
                assert_eq!(
                    in_xen,
                    fs.tier_of(s) == Some(Tier::Primary),
                    "slot {s} op {op}"
                );
            }
        }
    }
    fs.primary_mut().hypervisor_mut().put_script.clear();
    for (&slot, &id) in &model {
        match fs.load(slot, &mut pg) {
            Ok(_) if verify(kind(id), id, &pg) => {}
            _ => mismatches += 1,
        }
    }
    let s = fs.stats();
    assert_eq!(s.lost, 0);
    let x = fs.primary().stats();
    (mismatches, x.puts_refused, s.fell_back)
}

#[test]
fn tiered_frontswap_on_xen_tmem_matches_a_model() {
    let (mismatches, xen_refused, fell_back) = tiered_model_run(5_000, 0x7e3e);
    assert_eq!(mismatches, 0);
    assert!(
        xen_refused > 100 && fell_back > 100,
        "{xen_refused} {fell_back}"
    );
}

#[test]
fn tiered_frontswap_moves_pages_between_tiers_exactly() {
    let mut hyp = FakeXenTmem::new(GFN);
    hyp.capacity_pages = Some(4);
    let mut fs =
        Frontswap::tiered(XenTmem::new(hyp), ZPool::new(VecFrames::new(0, 64), 64)).unwrap();
    let tiers: Vec<Tier> = (0..8u64)
        .map(|s| fs.store(s, &page(ContentKind::Mixed, s)).unwrap())
        .collect();
    assert_eq!(&tiers[..4], [Tier::Primary; 4]);
    assert_eq!(&tiers[4..], [Tier::Fallback; 4]);
    // Xen refuses a page it held (old copy kept by Xen, flushed by us):
    // the slot moves to zpool and Xen holds nothing for it.
    fs.primary_mut()
        .hypervisor_mut()
        .put_script
        .push_back(PutScript::NoMemKeepOld);
    assert_eq!(
        fs.store(0, &page(ContentKind::Text, 100)),
        Ok(Tier::Fallback)
    );
    let k = slot_key(0).unwrap();
    assert!(!fs.primary().hypervisor().holds(0, k.object.0, k.index));
    let mut out = [0u8; PAGE_BYTES];
    assert_eq!(fs.load(0, &mut out), Ok(Tier::Fallback));
    assert!(verify(ContentKind::Text, 100, &out));
    // Room again in Xen: a fallback page stored again goes to Xen, and
    // zpool's copy is flushed.
    assert_eq!(
        fs.store(5, &page(ContentKind::Mixed, 105)),
        Ok(Tier::Primary)
    );
    assert_eq!(fs.tier_pages(Tier::Primary), 4);
    assert_eq!(fs.tier_pages(Tier::Fallback), 4);
    assert_eq!(fs.fallback().map(|z| z.stats().logical_pages), Some(4));
}

#[test]
fn the_selftest_checks_pass_on_the_fake_xen_and_see_its_answers() {
    use super::checks::{ephemeral_check, persistent_check, zpool_timing};
    use core::cell::Cell;
    let clock = Cell::new(0u64);
    let now = || {
        clock.set(clock.get() + 10);
        clock.get()
    };
    let mut x = xen();
    let r = persistent_check(&mut x, 1000, &now).expect("check");
    assert!(r.ok(1000), "{r:?}");
    assert_eq!((r.put_ns, r.get_ns), (10, 10));
    let s = x.stats();
    // Half the gets after flushes saw 0, the half after the object
    // flushes emptied the pool saw -EEMPTY.
    assert_eq!((s.gets_absent, s.gets_empty), (504, 496));
    assert_eq!(x.hypervisor().pages(), 0);
    let e = ephemeral_check(&mut x, 64).expect("check");
    assert!(e.ok() && e.found == 64 && e.dropped == 0, "{e:?}");
    // Xen dropping ephemeral pages is tolerated and counted.
    x.hypervisor_mut().capacity_pages = Some(40);
    let e = ephemeral_check(&mut x, 64).expect("check");
    assert!(e.ok() && e.found == 40 && e.dropped == 24, "{e:?}");
    // A Xen that loses a persistent page fails the check.
    x.hypervisor_mut().capacity_pages = Some(10);
    let r = persistent_check(&mut x, 20, &now).expect("check");
    assert!(!r.ok(20) && r.refused == 10, "{r:?}");
    // On the zpool too (the same code gives the in-guest figures).
    let mut z = ZPool::new(VecFrames::new(0, 512), 512);
    assert!(persistent_check(&mut z, 1000, &now)
        .expect("check")
        .ok(1000));
    assert!(ephemeral_check(&mut z, 64).expect("check").ok());
    let (put, get, stored, bad) = zpool_timing(512, 256, &now);
    // Some `mixed` pages do not compress below zpool's threshold.
    assert!((put, get, bad) == (10, 10, 0) && stored > 400, "{stored}");
}
