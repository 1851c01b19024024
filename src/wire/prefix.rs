//! IP prefixes (`192.0.2.0/24`, `2001:db8::/32`, or one address), in
//! their text form, with the longest-prefix matching the L2TP peer table
//! and the configuration both use.
//!
//! It lives here rather than in `config` so the protocol layer can match
//! peers without depending on the configuration reader.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 prefix (`192.0.2.0/24`, `2001:db8::/32`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

impl IpPrefix {
    /// `addr/len`; the address must have no bits set past the prefix.
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, String> {
        let max = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if len > max {
            return Err(format!("prefix length {len} is longer than {max}"));
        }
        let prefix = IpPrefix { addr, len };
        if prefix.host_bits() != 0 {
            return Err(format!(
                "{addr}/{len} has host bits set (did you mean the network address?)"
            ));
        }
        Ok(prefix)
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether the prefix covers `ip` (never across address families).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    /// The same prefix with an IPv4-mapped IPv6 network
    /// (`::ffff:192.0.2.0/120`) written as IPv4 (`192.0.2.0/24`), so it
    /// matches what [`IpAddr::to_canonical`] makes of a mapped peer address.
    /// Any other prefix is returned unchanged.
    pub fn canonical(self) -> IpPrefix {
        match (self.addr, self.addr.to_canonical()) {
            (IpAddr::V6(_), IpAddr::V4(v4)) if self.len >= 96 => IpPrefix {
                addr: IpAddr::V4(v4),
                len: self.len - 96,
            },
            _ => self,
        }
    }

    /// The address bits past the prefix (zero for a network address).
    fn host_bits(&self) -> u128 {
        let len = u32::from(self.len);
        match self.addr {
            IpAddr::V4(ip) => u128::from(u32::from(ip) & u32::MAX.checked_shr(len).unwrap_or(0)),
            IpAddr::V6(ip) => u128::from(ip) & u128::MAX.checked_shr(len).unwrap_or(0),
        }
    }
}

impl FromStr for IpPrefix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad = || format!("{s:?} is not an address or prefix (write e.g. \"192.0.2.0/24\")");
        let (addr, len) = match s.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let len = match len {
            Some(len) => len.trim().parse().map_err(|_| bad())?,
            None if addr.is_ipv4() => 32,
            None => 128,
        };
        IpPrefix::new(addr, len)
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_their_family_only() {
        let p: IpPrefix = "192.0.2.0/24".parse().unwrap();
        assert!(p.contains("192.0.2.200".parse().unwrap()));
        assert!(!p.contains("192.0.3.1".parse().unwrap()));
        assert!(!p.contains("::".parse().unwrap()));
        let all: IpPrefix = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        let host: IpPrefix = "2001:db8::7".parse().unwrap();
        assert_eq!(host.prefix_len(), 128);
        assert!(host.contains("2001:db8::7".parse().unwrap()));
        assert!(!host.contains("2001:db8::8".parse().unwrap()));
        let v6: IpPrefix = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!("192.0.2.1/24"
            .parse::<IpPrefix>()
            .unwrap_err()
            .contains("host bits"));
        assert!("192.0.2.0/33".parse::<IpPrefix>().is_err());
        assert!("::/129".parse::<IpPrefix>().is_err());
        assert!("example".parse::<IpPrefix>().is_err());
    }

    #[test]
    fn mapped_prefixes_become_ipv4() {
        let canon = |s: &str| s.parse::<IpPrefix>().unwrap().canonical().to_string();
        assert_eq!(canon("::ffff:192.0.2.0/120"), "192.0.2.0/24");
        assert_eq!(canon("::ffff:192.0.2.7"), "192.0.2.7/32");
        assert_eq!(canon("::ffff:0.0.0.0/96"), "0.0.0.0/0");
        // Shorter than the mapped block: it covers more than IPv4, stays IPv6.
        assert_eq!(canon("::/64"), "::/64");
        assert_eq!(canon("2001:db8::/32"), "2001:db8::/32");
        assert_eq!(canon("192.0.2.0/24"), "192.0.2.0/24");
    }
}
