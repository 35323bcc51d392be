//! Domains as xenstore lists them: `/local/domain/<id>` with its `name`.

use selfballoon::parse::decimal_u64;
use selfballoon::xen::errno::Errno;
use selfballoon::xen::xenstore::{Store, XsError};

use crate::error::Error;

/// Where every domain's home is.
pub const DOMAINS_DIR: &str = "/local/domain";
/// Domain ids from here on are reserved (DOMID_FIRST_RESERVED).
pub const FIRST_RESERVED_DOMID: u16 = 0x7ff0;

/// A domain: its id and the name the toolstack gave it (`None` while it
/// has none, e.g. during creation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain {
    pub domid: u16,
    pub name: Option<String>,
}

impl Domain {
    /// `/local/domain/<id>`.
    pub fn home(&self) -> String {
        format!("{DOMAINS_DIR}/{}", self.domid)
    }

    /// The name, or the id when it has none.
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.domid.to_string())
    }
}

/// A domain id as text: strict decimal, below the reserved range.
pub fn parse_domid(s: &str) -> Option<u16> {
    decimal_u64(s)
        .ok()
        .and_then(|n| u16::try_from(n).ok())
        .filter(|&d| d < FIRST_RESERVED_DOMID)
}

/// Reads a key, `None` when it does not exist. Any other error stands.
pub fn read_opt<S: Store + ?Sized>(store: &mut S, path: &str) -> Result<Option<String>, Error> {
    match store.read(path) {
        Ok(v) => Ok(Some(v)),
        Err(XsError::Remote(Errno::ENOENT)) => Ok(None),
        Err(e) => Err(Error::xs(format!("reading {path}"), e)),
    }
}

/// Every domain, by id. Entries of `/local/domain` that are not domain
/// ids are ignored; a domain whose `name` cannot be read (it is going
/// away) is listed without one.
pub fn list<S: Store + ?Sized>(store: &mut S) -> Result<Vec<Domain>, Error> {
    let entries = store
        .directory(DOMAINS_DIR)
        .map_err(|e| Error::xs(format!("listing {DOMAINS_DIR}"), e))?;
    let mut ids: Vec<u16> = entries.iter().filter_map(|e| parse_domid(e)).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut out = Vec::with_capacity(ids.len());
    for domid in ids {
        let name = match store.read(&format!("{DOMAINS_DIR}/{domid}/name")) {
            Ok(n) => Some(n),
            Err(XsError::Remote(_)) => None,
            Err(e) => return Err(Error::xs(format!("reading {DOMAINS_DIR}/{domid}/name"), e)),
        };
        out.push(Domain { domid, name });
    }
    Ok(out)
}

/// Finds `spec` among `domains`: an id (all digits) or an exact name.
pub fn find(domains: &[Domain], spec: &str) -> Result<Domain, Error> {
    if let Some(id) = parse_domid(spec) {
        return domains
            .iter()
            .find(|d| d.domid == id)
            .cloned()
            .ok_or_else(|| Error::UnknownDomain(spec.to_string()));
    }
    let hits: Vec<&Domain> = domains
        .iter()
        .filter(|d| d.name.as_deref() == Some(spec))
        .collect();
    match hits.as_slice() {
        [] => Err(Error::UnknownDomain(spec.to_string())),
        [one] => Ok((*one).clone()),
        many => Err(Error::AmbiguousDomain(
            spec.to_string(),
            many.iter().map(|d| d.domid).collect(),
        )),
    }
}

/// Lists the domains and finds `spec` among them.
pub fn resolve<S: Store + ?Sized>(store: &mut S, spec: &str) -> Result<Domain, Error> {
    find(&list(store)?, spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::exit;

    fn d(domid: u16, name: Option<&str>) -> Domain {
        Domain {
            domid,
            name: name.map(String::from),
        }
    }

    #[test]
    fn domids() {
        assert_eq!(parse_domid("0"), Some(0));
        assert_eq!(parse_domid("32751"), Some(32751));
        assert_eq!(parse_domid("32752"), None);
        for bad in [
            "",
            "-1",
            "+3",
            "3 ",
            "0x3",
            "65536",
            "99999999999999999999999",
        ] {
            assert_eq!(parse_domid(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn resolution() {
        let doms = [
            d(0, Some("Domain-0")),
            d(3, Some("sb")),
            d(4, None),
            d(5, Some("twin")),
            d(7, Some("twin")),
            d(8, Some("12")),
        ];
        assert_eq!(find(&doms, "sb").unwrap().domid, 3);
        assert_eq!(find(&doms, "3").unwrap().name.as_deref(), Some("sb"));
        assert_eq!(find(&doms, "4").unwrap().label(), "4");
        assert_eq!(find(&doms, "0").unwrap().home(), "/local/domain/0");
        // Digits are an id, as in xl.
        assert_eq!(
            find(&doms, "12").unwrap_err().exit_code(),
            exit::UNKNOWN_DOMAIN
        );
        let e = find(&doms, "twin").unwrap_err();
        assert_eq!(e.exit_code(), exit::UNKNOWN_DOMAIN);
        assert_eq!(
            e.to_string(),
            "domain name 'twin' is ambiguous (ids 5, 7); give the id"
        );
        let e = find(&doms, "nosuch").unwrap_err();
        assert_eq!(e.to_string(), "unknown domain 'nosuch'");
        assert_eq!(
            find(&doms, "9").unwrap_err().exit_code(),
            exit::UNKNOWN_DOMAIN
        );
        assert!(find(&doms, "SB").is_err());
    }
}
