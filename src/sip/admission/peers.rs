//! The addresses of the peers the endpoint itself talks to and names by host name (queue
//! targets, registrars), as their look-ups report them (sans-IO: the runtime looks the
//! names up, `sip::peer_resolver`, and feeds the results in).
//!
//! A failed look-up keeps the addresses last found, so a DNS outage does not lock out an
//! agent's phone in the middle of a bridged call; a name that resolved once and later
//! resolves elsewhere has only its new addresses. The names come from config, and each
//! keeps at most [`MAX_ADDRESSES_PER_NAME`], so the set is bounded whatever DNS says.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::canonical;

/// Addresses kept per name (a DNS answer may hold more; the rest are left out).
pub const MAX_ADDRESSES_PER_NAME: usize = 16;

/// Peer name → the addresses it last resolved to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerAddresses {
    by_name: BTreeMap<String, BTreeSet<IpAddr>>,
}

impl PeerAddresses {
    /// Records one look-up of `name`: its addresses, or `None` when it failed. True when
    /// the set of all addresses may have changed.
    pub fn update(&mut self, name: &str, found: Option<Vec<IpAddr>>) -> bool {
        let Some(found) = found.filter(|f| !f.is_empty()) else { return false };
        let addresses: BTreeSet<IpAddr> =
            found.into_iter().map(canonical).take(MAX_ADDRESSES_PER_NAME).collect();
        if self.by_name.get(name) == Some(&addresses) {
            return false;
        }
        self.by_name.insert(name.to_string(), addresses);
        true
    }

    /// Every address of every name, once each.
    pub fn addresses(&self) -> Vec<IpAddr> {
        let all: BTreeSet<IpAddr> = self.by_name.values().flatten().copied().collect();
        all.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn a_name_takes_its_new_addresses_and_keeps_them_through_a_failed_lookup() {
        let mut peers = PeerAddresses::default();
        assert!(peers.update("agents.example.com", Some(ips(&["192.0.2.10", "192.0.2.11"]))));
        assert!(peers.update("sbc.example.com", Some(ips(&["198.51.100.1", "192.0.2.10"]))));
        assert_eq!(peers.addresses(), ips(&["192.0.2.10", "192.0.2.11", "198.51.100.1"]));
        // The same answer again changes nothing.
        assert!(!peers.update("agents.example.com", Some(ips(&["192.0.2.11", "192.0.2.10"]))));
        // A failed or empty look-up keeps what was found.
        assert!(!peers.update("agents.example.com", None));
        assert!(!peers.update("agents.example.com", Some(Vec::new())));
        assert_eq!(peers.addresses().len(), 3);
        // The name moved: its old address goes, unless another name still has it.
        assert!(peers.update("agents.example.com", Some(ips(&["203.0.113.5"]))));
        assert_eq!(peers.addresses(), ips(&["192.0.2.10", "198.51.100.1", "203.0.113.5"]));
    }

    #[test]
    fn mapped_addresses_are_read_as_ipv4_and_each_name_is_bounded() {
        let mut peers = PeerAddresses::default();
        peers.update("a", Some(ips(&["::ffff:192.0.2.1"])));
        assert_eq!(peers.addresses(), ips(&["192.0.2.1"]));
        let many: Vec<IpAddr> =
            (0..1000u32).map(|n| IpAddr::from((0x0a00_0000 + n).to_be_bytes())).collect();
        peers.update("b", Some(many));
        assert_eq!(peers.addresses().len(), 1 + MAX_ADDRESSES_PER_NAME);
    }
}
