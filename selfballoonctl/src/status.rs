//! Every domain's self-balloon status as its guest publishes it
//! (`data/selfballoon/*`, KiB) and the toolstack's `memory/target`.
//!
//! Values are another domain's writing: numbers are parsed with the
//! guest's own strict parsers; a value that does not parse is kept (for
//! `--json`) and shown as `?`, a key that is not there as `-`.

use selfballoon::balloon::parse_target_kib;
use selfballoon::parse::decimal_u64;
use selfballoon::xen::xenstore::{Store, XsError};

use crate::domain::{self, Domain};
use crate::error::Error;
use crate::keys::STATUS_DIR;

/// A number the guest (or the toolstack) published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Num {
    /// The key does not exist (yet).
    Missing,
    /// A strict decimal.
    Value(u64),
    /// Something else: the raw text.
    Malformed(String),
}

impl Num {
    pub fn value(&self) -> Option<u64> {
        match self {
            Num::Value(v) => Some(*v),
            _ => None,
        }
    }
}

/// One domain's row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainStatus {
    pub domain: Domain,
    /// `data/selfballoon/current`: RAM the guest holds, KiB.
    pub current_kib: Num,
    /// `memory/target`: the toolstack's target, KiB.
    pub target_kib: Num,
    /// `data/selfballoon/target`: the balloon driver's effective target.
    pub balloon_target_kib: Num,
    /// `data/selfballoon/goal_kib`: the controller's goal.
    pub goal_kib: Num,
    /// `data/selfballoon/committed_kib`: committed memory.
    pub committed_kib: Num,
    /// `data/selfballoon/frontswap_kib`: held in the swap tier.
    pub frontswap_kib: Num,
    /// `data/selfballoon/mode`: `2011` or `linux`.
    pub mode: Option<String>,
    /// `data/selfballoon/swap_backend`: the swap tier's backend.
    pub backend: Option<String>,
}

/// The numeric fields: (name in JSON and metrics, path under the
/// domain's home, accessor). The order is the table's.
pub type NumField = (&'static str, &'static str, fn(&DomainStatus) -> &Num);

/// Every numeric field.
pub const NUM_FIELDS: [NumField; 6] = [
    ("current_kib", "data/selfballoon/current", |s| {
        &s.current_kib
    }),
    ("target_kib", "memory/target", |s| &s.target_kib),
    ("balloon_target_kib", "data/selfballoon/target", |s| {
        &s.balloon_target_kib
    }),
    ("goal_kib", "data/selfballoon/goal_kib", |s| &s.goal_kib),
    ("committed_kib", "data/selfballoon/committed_kib", |s| {
        &s.committed_kib
    }),
    ("frontswap_kib", "data/selfballoon/frontswap_kib", |s| {
        &s.frontswap_kib
    }),
];

fn read_num<S: Store + ?Sized>(
    store: &mut S,
    path: &str,
    parse: fn(&str) -> Option<u64>,
) -> Result<Num, Error> {
    Ok(match read_status(store, path)? {
        None => Num::Missing,
        Some(v) => match parse(&v) {
            Some(n) => Num::Value(n),
            None => Num::Malformed(v),
        },
    })
}

/// Reads a status key: absent, or unreadable for xenstored's reasons
/// (EACCES on a domain going away), is `None`; a broken transport stands.
fn read_status<S: Store + ?Sized>(store: &mut S, path: &str) -> Result<Option<String>, Error> {
    match store.read(path) {
        Ok(v) => Ok(Some(v)),
        Err(XsError::Remote(_)) => Ok(None),
        Err(e) => Err(Error::xs(format!("reading {path}"), e)),
    }
}

/// Reads one domain's status.
pub fn read<S: Store + ?Sized>(store: &mut S, domain: &Domain) -> Result<DomainStatus, Error> {
    let home = domain.home();
    let strict: fn(&str) -> Option<u64> = |v| decimal_u64(v).ok();
    let target: fn(&str) -> Option<u64> = |v| parse_target_kib(v).ok();
    let mut num = |rel: &str, parse| read_num(store, &format!("{home}/{rel}"), parse);
    let current_kib = num("data/selfballoon/current", strict)?;
    let target_kib = num("memory/target", target)?;
    let balloon_target_kib = num("data/selfballoon/target", strict)?;
    let goal_kib = num("data/selfballoon/goal_kib", strict)?;
    let committed_kib = num("data/selfballoon/committed_kib", strict)?;
    let frontswap_kib = num("data/selfballoon/frontswap_kib", strict)?;
    let mode = read_status(store, &format!("{home}/{STATUS_DIR}/mode"))?;
    let backend = read_status(store, &format!("{home}/{STATUS_DIR}/swap_backend"))?;
    Ok(DomainStatus {
        domain: domain.clone(),
        current_kib,
        target_kib,
        balloon_target_kib,
        goal_kib,
        committed_kib,
        frontswap_kib,
        mode,
        backend,
    })
}

/// Every domain's status, by id.
pub fn collect<S: Store + ?Sized>(store: &mut S) -> Result<Vec<DomainStatus>, Error> {
    let domains = domain::list(store)?;
    domains.iter().map(|d| read(store, d)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use selfballoon::balloon::XENSTORE_KEYS;
    use selfballoon::kernel::runtime::SWAP_STATUS_KEYS;
    use selfballoon::selfballoon::{Controller, TickInput, Tunables};

    /// The keys read here are the ones the guest publishes: the balloon
    /// driver's and the controller's own lists.
    #[test]
    fn keys_are_what_the_guest_publishes() {
        assert!(XENSTORE_KEYS.contains(&"data/selfballoon/current"));
        assert!(XENSTORE_KEYS.contains(&"data/selfballoon/target"));
        let mut c = Controller::new(Tunables::default());
        c.tick(TickInput {
            committed_pages: 1000,
            current_pages: 4000,
            totalram_pages: 3900,
            boot_totalram_pages: 3900,
            max_pfn: 4096,
            ..TickInput::default()
        });
        let published: Vec<String> = c
            .status()
            .iter()
            .map(|(k, _)| format!("{STATUS_DIR}/{k}"))
            .collect();
        for (name, path, _) in NUM_FIELDS {
            let by_balloon = XENSTORE_KEYS.contains(&path);
            let by_controller = published.iter().any(|p| p == path);
            let by_toolstack = path == "memory/target";
            let by_swap = SWAP_STATUS_KEYS.contains(&path);
            assert!(
                by_balloon || by_controller || by_toolstack || by_swap,
                "{name}: {path}"
            );
        }
        assert!(SWAP_STATUS_KEYS.contains(&"data/selfballoon/swap_backend"));
        assert!(published.iter().any(|p| p == "data/selfballoon/mode"));
    }
}
