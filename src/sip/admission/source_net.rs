//! A source network as written in config: a CIDR (`10.0.0.0/8`) or a plain address
//! (`192.0.2.7`, read as a /32 or /128), for `sip.allow` and `sip.trusted_sources`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// A CIDR, or one address. Written back the way it is usually read: a host network as
/// the bare address, anything wider as `address/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SourceNet(IpNet);

/// Why a source network could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is neither an IP address nor a CIDR (e.g. 192.0.2.7 or 10.0.0.0/8)")]
pub struct SourceNetError(String);

impl SourceNet {
    /// Whether `ip` lies in this network. An IPv4-mapped IPv6 source is taken as its IPv4
    /// address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&canonical(ip))
    }
}

/// Whether any of `nets` holds `ip`.
pub fn any_contains(nets: &[SourceNet], ip: IpAddr) -> bool {
    nets.iter().any(|net| net.contains(ip))
}

/// `ip`, or the IPv4 address an IPv4-mapped IPv6 one stands for.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

impl From<IpAddr> for SourceNet {
    fn from(ip: IpAddr) -> Self {
        SourceNet(IpNet::from(ip))
    }
}

impl FromStr for SourceNet {
    type Err = SourceNetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(SourceNet::from(ip));
        }
        // The network itself: 10.1.2.3/8 means 10.0.0.0/8.
        text.parse::<IpNet>()
            .map(|net| SourceNet(net.trunc()))
            .map_err(|_| SourceNetError(text.to_string()))
    }
}

impl TryFrom<String> for SourceNet {
    type Error = SourceNetError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl fmt::Display for SourceNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.prefix_len() == self.0.max_prefix_len() {
            write!(f, "{}", self.0.addr())
        } else {
            write!(f, "{}", self.0)
        }
    }
}

impl From<SourceNet> for String {
    fn from(net: SourceNet) -> String {
        net.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_address_is_a_host_network() {
        let net: SourceNet = "192.0.2.7".parse().unwrap();
        assert!(net.contains(ip("192.0.2.7")));
        assert!(!net.contains(ip("192.0.2.8")));
        assert_eq!(net.to_string(), "192.0.2.7");
    }

    #[test]
    fn a_cidr_holds_its_range_and_is_truncated() {
        let net: SourceNet = "10.1.2.3/8".parse().unwrap();
        assert!(net.contains(ip("10.200.0.1")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert_eq!(net.to_string(), "10.0.0.0/8");
        let v6: SourceNet = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8::1")));
        assert!(!v6.contains(ip("192.0.2.1")));
    }

    #[test]
    fn a_mapped_ipv6_source_matches_its_ipv4_network() {
        let net: SourceNet = "127.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("::ffff:127.0.0.2")));
    }

    #[test]
    fn junk_is_refused() {
        for text in ["", "10.0.0.0/33", "example.com", "10.0.0.0/"] {
            assert!(text.parse::<SourceNet>().is_err(), "{text}");
        }
    }
}
