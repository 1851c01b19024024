//! IPv6 prefix pools: one /64 per PPP session, taken from an operator's
//! larger prefix (a /48 gives 65,536 of them). The /64 is what the Router
//! Advertisement announces and what the subscriber forms its addresses in
//! by SLAAC (RFC 4862 §5.5.3; a /64 because IPv6 over PPP forms interface
//! identifiers of 64 bits, RFC 5072 §4.1).
//!
//! The /64s of a pool are numbered `0..count`, and the numbers are kept by
//! the same allocator as the IPv4 pools ([`Pool`]): O(1) allocation and
//! release, never-used numbers first, then oldest-released first, a bit
//! set against double hand-out, and the same quarantine after release so
//! that a late packet for the old /64 never reaches the next subscriber.
//! Only /64s are handed out; a shorter delegated prefix (DHCPv6-PD) would
//! need its own pool and a longest-prefix index in the data plane.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use super::pool::{AddrRange, Pool, PoolStats, ReleaseError};

/// Shortest pool prefix accepted: a /40 holds 2^24 /64s, about 6 MB of
/// allocator bitmaps; shorter ones would cost memory for nothing a single
/// LNS could use.
pub const MIN_POOL_PREFIX: u8 = 40;

/// Length of every prefix handed out.
pub const SESSION_PREFIX: u8 = 64;

/// Why a prefix pool could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixPoolError {
    /// Shorter than [`MIN_POOL_PREFIX`] or longer than /64.
    Length(u8),
    /// Bits set past the prefix length.
    HostBitsSet,
}

impl fmt::Display for PrefixPoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrefixPoolError::Length(len) => write!(
                f,
                "prefix length /{len} is outside /{MIN_POOL_PREFIX}../{SESSION_PREFIX} \
                 (one /64 is handed out per session)"
            ),
            PrefixPoolError::HostBitsSet => f.write_str("network address has host bits set"),
        }
    }
}

impl std::error::Error for PrefixPoolError {}

/// A pool of /64s inside one prefix.
#[derive(Debug, Clone)]
pub struct PrefixPool {
    /// The upper 64 bits of the pool's network.
    base: u64,
    len: u8,
    numbers: Pool,
}

impl PrefixPool {
    /// The /64s of `network/len`, reused `quarantine` after release.
    pub fn new(
        name: impl Into<String>,
        network: Ipv6Addr,
        len: u8,
        quarantine: Duration,
    ) -> Result<Self, PrefixPoolError> {
        if !(MIN_POOL_PREFIX..=SESSION_PREFIX).contains(&len) {
            return Err(PrefixPoolError::Length(len));
        }
        let bits = u128::from(network);
        if bits & u128::MAX.checked_shr(u32::from(len)).unwrap_or(0) != 0 {
            return Err(PrefixPoolError::HostBitsSet);
        }
        let base = (bits >> 64) as u64;
        // At most 2^24 numbers (len >= 40): the last one fits an IPv4
        // address, which is all the allocator carries.
        let count = 1u32 << (SESSION_PREFIX - len);
        let numbers = AddrRange::new(Ipv4Addr::from(0), Ipv4Addr::from(count - 1))
            .and_then(|range| Pool::new(name, vec![range], quarantine))
            .map_err(|_| PrefixPoolError::Length(len))?;
        Ok(PrefixPool { base, len, numbers })
    }

    /// The pool's name (shared with the IPv4 pool it is declared with).
    pub fn name(&self) -> &str {
        self.numbers.name()
    }

    /// The pool's network.
    pub fn network(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.base) << 64)
    }

    /// The pool's prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Number of /64s.
    pub fn size(&self) -> u32 {
        self.numbers.size()
    }

    /// /64s allocated now.
    pub fn in_use(&self) -> u32 {
        self.numbers.in_use()
    }

    /// /64s released and still resting.
    pub fn quarantined(&self) -> u32 {
        self.numbers.quarantined()
    }

    /// Counters for metrics.
    pub fn stats(&self) -> PoolStats {
        self.numbers.stats()
    }

    /// The number of a /64 of this pool.
    fn number_of(&self, prefix: [u8; 8]) -> Option<Ipv4Addr> {
        let offset = u64::from_be_bytes(prefix).checked_sub(self.base)?;
        (offset < u64::from(self.size())).then(|| Ipv4Addr::from(offset as u32))
    }

    /// Whether `prefix` (a /64's upper 64 bits) lies in the pool.
    pub fn contains(&self, prefix: [u8; 8]) -> bool {
        self.number_of(prefix).is_some()
    }

    /// The next /64 to hand out, or `None` when every one is in use or in
    /// quarantine.
    pub fn allocate(&mut self, now: Instant) -> Option<[u8; 8]> {
        let number = self.numbers.allocate(now)?;
        Some((self.base + u64::from(u32::from(number))).to_be_bytes())
    }

    /// Take a given /64 (a static assignment); false when outside the pool,
    /// in use or in quarantine.
    pub fn allocate_specific(&mut self, prefix: [u8; 8], now: Instant) -> bool {
        match self.number_of(prefix) {
            Some(number) => self.numbers.allocate_specific(number, now),
            None => false,
        }
    }

    /// Give a /64 back; it rests for the quarantine before reuse.
    pub fn release(&mut self, prefix: [u8; 8], now: Instant) -> Result<(), ReleaseError> {
        let number = self.number_of(prefix).ok_or(ReleaseError::NotInPool)?;
        self.numbers.release(number, now)
    }
}

/// `prefix::/64` as an address, for logs and management output.
pub fn prefix_addr(prefix: [u8; 8]) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(u64::from_be_bytes(prefix)) << 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(text: &str, len: u8, quarantine: u64) -> PrefixPool {
        PrefixPool::new(
            "v6",
            text.parse().unwrap(),
            len,
            Duration::from_secs(quarantine),
        )
        .unwrap()
    }

    fn p(text: &str) -> [u8; 8] {
        let bits = u128::from(text.parse::<Ipv6Addr>().unwrap());
        ((bits >> 64) as u64).to_be_bytes()
    }

    #[test]
    fn hands_out_distinct_64s_in_order() {
        let mut pool = pool("2001:db8:100::", 48, 60);
        assert_eq!(pool.size(), 65_536);
        let now = Instant::now();
        assert_eq!(pool.allocate(now), Some(p("2001:db8:100::")));
        assert_eq!(pool.allocate(now), Some(p("2001:db8:100:1::")));
        assert_eq!(pool.allocate(now), Some(p("2001:db8:100:2::")));
        assert_eq!(pool.in_use(), 3);
        assert!(pool.contains(p("2001:db8:100:ffff::")));
        assert!(!pool.contains(p("2001:db8:101::")));
        assert!(!pool.contains(p("2001:db8:ff::")));
        assert_eq!(
            prefix_addr(p("2001:db8:100:2::")).to_string(),
            "2001:db8:100:2::"
        );
    }

    #[test]
    fn released_64s_rest_in_quarantine_and_are_never_doubled() {
        let mut pool = pool("2001:db8:100:ff00::", 62, 60);
        let t0 = Instant::now();
        let all: Vec<_> = (0..4).map(|_| pool.allocate(t0).unwrap()).collect();
        assert_eq!(pool.allocate(t0), None, "a /62 holds four /64s");
        assert_eq!(pool.release(all[1], t0), Ok(()));
        assert_eq!(pool.release(all[1], t0), Err(ReleaseError::NotAllocated));
        assert_eq!(
            pool.release(p("2001:db8:1::"), t0),
            Err(ReleaseError::NotInPool)
        );
        // Not before the quarantine is over.
        assert_eq!(pool.allocate(t0 + Duration::from_secs(59)), None);
        assert!(!pool.allocate_specific(all[1], t0 + Duration::from_secs(59)));
        assert_eq!(pool.allocate(t0 + Duration::from_secs(60)), Some(all[1]));
        assert_eq!(pool.stats().double_releases, 1);
    }

    #[test]
    fn only_sane_prefixes_make_pools() {
        let new = |text: &str, len| {
            PrefixPool::new("x", text.parse().unwrap(), len, Duration::ZERO).map(|_| ())
        };
        assert_eq!(new("2001:db8::", 32), Err(PrefixPoolError::Length(32)));
        assert_eq!(new("2001:db8::", 65), Err(PrefixPoolError::Length(65)));
        assert_eq!(new("2001:db8::1", 48), Err(PrefixPoolError::HostBitsSet));
        assert_eq!(new("2001:db8::", 40), Ok(()));
        assert_eq!(new("2001:db8::", 64), Ok(()));
        let one = pool("2001:db8:1:2::", 64, 0);
        assert_eq!(one.size(), 1);
        assert_eq!(one.network().to_string(), "2001:db8:1:2::");
        assert_eq!(one.prefix_len(), 64);
    }
}
