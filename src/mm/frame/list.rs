//! Intrusive doubly linked lists threaded through the frame metadata by
//! `u32` index (the frames themselves are never written).

use super::{FrameMeta, NIL};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct List {
    pub(super) head: u32,
    pub(super) tail: u32,
    pub(super) len: u64,
}

impl List {
    pub(super) const EMPTY: List = List {
        head: NIL,
        tail: NIL,
        len: 0,
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Which {
    Clean,
    Dirty,
    Ballooned,
}

pub(super) fn push_front(meta: &mut [FrameMeta], list: &mut List, i: u32) {
    meta[i as usize].prev = NIL;
    meta[i as usize].next = list.head;
    if list.head == NIL {
        list.tail = i;
    } else {
        meta[list.head as usize].prev = i;
    }
    list.head = i;
    list.len += 1;
}

pub(super) fn push_back(meta: &mut [FrameMeta], list: &mut List, i: u32) {
    meta[i as usize].next = NIL;
    meta[i as usize].prev = list.tail;
    if list.tail == NIL {
        list.head = i;
    } else {
        meta[list.tail as usize].next = i;
    }
    list.tail = i;
    list.len += 1;
}

pub(super) fn unlink(meta: &mut [FrameMeta], list: &mut List, i: u32) {
    let FrameMeta { prev, next, .. } = meta[i as usize];
    if prev == NIL {
        list.head = next;
    } else {
        meta[prev as usize].next = next;
    }
    if next == NIL {
        list.tail = prev;
    } else {
        meta[next as usize].prev = prev;
    }
    meta[i as usize].prev = NIL;
    meta[i as usize].next = NIL;
    list.len -= 1;
}
