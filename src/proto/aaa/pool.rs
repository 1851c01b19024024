//! IPv4 address pools for subscriber sessions (the address IPCP hands out,
//! RFC 1332 §3.3), sized for millions of addresses.
//!
//! A pool is a list of disjoint ranges flattened into offsets `0..size`.
//! Per address it keeps three bits (in use, in quarantine, queued for
//! reuse); on top of that a FIFO of released offsets costs 4 bytes per
//! address that has been given back at least once. Addresses are handed out
//! in order first (a cursor over never-used offsets), then oldest-released
//! first, so a returned address rests as long as possible before reuse.
//!
//! A released address sits in quarantine for the pool's hold time before it
//! may go out again: a late packet routed to the old subscriber's address
//! must not reach a new one, and accounting records of the two sessions must
//! not share an address for overlapping times.
//!
//! Every operation is O(1) amortised; mapping an offset to its range is a
//! binary search over the (few) ranges.

use std::collections::VecDeque;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Longest quarantine a pool accepts; longer values are clamped. Keeps
/// `now + quarantine` far from the end of `Instant`'s range.
pub const MAX_QUARANTINE: Duration = Duration::from_secs(365 * 24 * 3600);

/// An inclusive range of IPv4 addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrRange {
    first: u32,
    last: u32,
}

/// Why a pool or range could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolError {
    /// A range whose first address is above its last.
    Reversed,
    /// A prefix length above 32.
    BadPrefix,
    /// A CIDR network address with host bits set (`10.0.0.1/24`).
    HostBitsSet,
    /// A CIDR with network and broadcast excluded leaves no address.
    EmptyRange,
    /// Text that is not `a.b.c.d`, `a.b.c.d/n` or `a.b.c.d-e.f.g.h`.
    Syntax,
    /// Two ranges of one pool share addresses.
    Overlap,
    /// No ranges given.
    NoRanges,
    /// More than `u32::MAX` addresses (only the whole IPv4 space).
    TooLarge,
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PoolError::Reversed => "first address above last",
            PoolError::BadPrefix => "prefix length above 32",
            PoolError::HostBitsSet => "network address has host bits set",
            PoolError::EmptyRange => "range holds no address",
            PoolError::Syntax => "expected a.b.c.d, a.b.c.d/n or a.b.c.d-e.f.g.h",
            PoolError::Overlap => "ranges overlap",
            PoolError::NoRanges => "pool has no ranges",
            PoolError::TooLarge => "pool larger than 2^32 - 1 addresses",
        })
    }
}

impl std::error::Error for PoolError {}

impl AddrRange {
    /// `first..=last`.
    pub fn new(first: Ipv4Addr, last: Ipv4Addr) -> Result<Self, PoolError> {
        let (first, last) = (u32::from(first), u32::from(last));
        if first > last {
            return Err(PoolError::Reversed);
        }
        Ok(AddrRange { first, last })
    }

    /// The addresses of `network/prefix`. With `hosts_only`, the network and
    /// broadcast addresses are left out for prefixes up to /30; /31 and /32
    /// have neither (RFC 3021 §2.1 for /31), so they stay whole.
    pub fn cidr(network: Ipv4Addr, prefix: u8, hosts_only: bool) -> Result<Self, PoolError> {
        if prefix > 32 {
            return Err(PoolError::BadPrefix);
        }
        let net = u32::from(network);
        let host_mask = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
        if net & host_mask != 0 {
            return Err(PoolError::HostBitsSet);
        }
        let (mut first, mut last) = (net, net | host_mask);
        if hosts_only && prefix <= 30 {
            first += 1;
            last -= 1;
        }
        if first > last {
            return Err(PoolError::EmptyRange);
        }
        Ok(AddrRange { first, last })
    }

    /// First address.
    pub fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.first)
    }

    /// Last address (inclusive).
    pub fn last(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.last)
    }

    /// Number of addresses (up to 2^32, hence `u64`).
    pub fn len(&self) -> u64 {
        u64::from(self.last - self.first) + 1
    }

    /// Never true: a range holds at least one address.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Operator syntax: `10.0.0.0/16` (host addresses only: network and broadcast
/// left out), `10.0.0.10-10.0.0.99` (inclusive), or one address `10.0.0.7`.
impl FromStr for AddrRange {
    type Err = PoolError;

    fn from_str(s: &str) -> Result<Self, PoolError> {
        let s = s.trim();
        let addr = |t: &str| t.trim().parse::<Ipv4Addr>().map_err(|_| PoolError::Syntax);
        if let Some((net, prefix)) = s.split_once('/') {
            let prefix = prefix.trim().parse::<u8>().map_err(|_| PoolError::Syntax)?;
            AddrRange::cidr(addr(net)?, prefix, true)
        } else if let Some((first, last)) = s.split_once('-') {
            AddrRange::new(addr(first)?, addr(last)?)
        } else {
            let one = addr(s)?;
            AddrRange::new(one, one)
        }
    }
}

/// Why a release did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseError {
    /// The address is not in this pool.
    NotInPool,
    /// The address is in the pool but not allocated (free, or already
    /// released and still in quarantine): a double release.
    NotAllocated,
}

/// Counters for metrics; they only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Successful allocations (`allocate` and `allocate_specific`).
    pub allocations: u64,
    /// Successful releases.
    pub releases: u64,
    /// `allocate` calls that found nothing free.
    pub exhausted: u64,
    /// `allocate_specific` calls refused (taken, held or outside the pool).
    pub specific_refused: u64,
    /// Releases of an address that was not allocated.
    pub double_releases: u64,
    /// Releases of an address outside the pool.
    pub foreign_releases: u64,
}

/// One range of the pool: addresses `first..first+len` are offsets
/// `base..base+len`.
#[derive(Debug, Clone, Copy)]
struct Segment {
    first: u32,
    len: u32,
    base: u32,
}

/// A fixed-size bit per offset.
#[derive(Debug, Clone)]
struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    fn new(bits: u32) -> Self {
        BitSet {
            words: vec![0; (bits as usize).div_ceil(64)],
        }
    }
    fn get(&self, i: u32) -> bool {
        self.words[(i >> 6) as usize] & (1 << (i & 63)) != 0
    }
    fn set(&mut self, i: u32) {
        self.words[(i >> 6) as usize] |= 1 << (i & 63);
    }
    fn clear(&mut self, i: u32) {
        self.words[(i >> 6) as usize] &= !(1 << (i & 63));
    }
    fn heap_bytes(&self) -> usize {
        self.words.capacity() * 8
    }
}

/// An IPv4 address pool with FIFO reuse after a quarantine.
#[derive(Debug, Clone)]
pub struct Pool {
    name: String,
    segments: Vec<Segment>,
    size: u32,
    quarantine: Duration,
    in_use: BitSet,
    held: BitSet,
    /// Set while the offset has an entry in `free`. Entries of offsets that
    /// were since taken by `allocate_specific` stay in the queue and are
    /// skipped when popped; this bit keeps an offset from being queued twice.
    queued: BitSet,
    /// Offsets at or above the cursor have never been handed out by
    /// `allocate`; those below it that are free sit in `free`.
    cursor: u32,
    free: VecDeque<u32>,
    /// Offsets in quarantine, oldest first.
    held_offsets: VecDeque<u32>,
    /// Release deadlines for `held_offsets`, run-length coded: `(until, n)`
    /// covers the next `n` offsets. A LAC dropping takes thousands of
    /// sessions down at one `now`, which becomes one run.
    held_runs: VecDeque<(Instant, u32)>,
    in_use_count: u32,
    held_count: u32,
    stats: PoolStats,
}

impl Pool {
    /// A pool over `ranges` (any order, disjoint), reusing released
    /// addresses `quarantine` after their release (clamped to
    /// [`MAX_QUARANTINE`]).
    pub fn new(
        name: impl Into<String>,
        ranges: Vec<AddrRange>,
        quarantine: Duration,
    ) -> Result<Self, PoolError> {
        let mut ranges = ranges;
        if ranges.is_empty() {
            return Err(PoolError::NoRanges);
        }
        ranges.sort_by_key(|r| r.first);
        if ranges.windows(2).any(|w| w[1].first <= w[0].last) {
            return Err(PoolError::Overlap);
        }
        let total: u64 = ranges.iter().map(AddrRange::len).sum();
        let size = u32::try_from(total).map_err(|_| PoolError::TooLarge)?;
        let mut base = 0u32;
        let segments = ranges
            .iter()
            .map(|r| {
                // Each range is at most `size` long, which fits in u32.
                let len = r.last - r.first + 1;
                let seg = Segment {
                    first: r.first,
                    len,
                    base,
                };
                base = base.wrapping_add(len);
                seg
            })
            .collect();
        Ok(Pool {
            name: name.into(),
            segments,
            size,
            quarantine: quarantine.min(MAX_QUARANTINE),
            in_use: BitSet::new(size),
            held: BitSet::new(size),
            queued: BitSet::new(size),
            cursor: 0,
            free: VecDeque::new(),
            held_offsets: VecDeque::new(),
            held_runs: VecDeque::new(),
            in_use_count: 0,
            held_count: 0,
            stats: PoolStats::default(),
        })
    }

    /// The pool's name (what users files and RADIUS Framed-Pool refer to).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of addresses in the pool.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Addresses allocated now.
    pub fn in_use(&self) -> u32 {
        self.in_use_count
    }

    /// Addresses released and not yet past quarantine, as of the last call
    /// that took `now` (see [`Pool::expire`]).
    pub fn quarantined(&self) -> u32 {
        self.held_count
    }

    /// Addresses that could be allocated, as of the last call that took `now`.
    pub fn available(&self) -> u32 {
        self.size - self.in_use_count - self.held_count
    }

    /// Counters for metrics.
    pub fn stats(&self) -> PoolStats {
        self.stats
    }

    /// Whether `addr` belongs to the pool.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        self.offset_of(addr).is_some()
    }

    /// Whether `addr` is allocated now.
    pub fn is_allocated(&self, addr: Ipv4Addr) -> bool {
        self.offset_of(addr).is_some_and(|off| self.in_use.get(off))
    }

    /// The next address to hand out, or `None` when every address is in use
    /// or in quarantine.
    pub fn allocate(&mut self, now: Instant) -> Option<Ipv4Addr> {
        self.expire(now);
        let offset = self.next_free();
        match offset {
            Some(off) => {
                self.take(off);
                Some(self.addr_of(off))
            }
            None => {
                self.stats.exhausted += 1;
                None
            }
        }
    }

    fn next_free(&mut self) -> Option<u32> {
        // Never-used offsets first: they have rested longest.
        while self.cursor < self.size {
            let off = self.cursor;
            self.cursor += 1;
            if !self.is_taken(off) {
                return Some(off);
            }
        }
        while let Some(off) = self.free.pop_front() {
            self.queued.clear(off);
            if !self.is_taken(off) {
                trim(&mut self.free);
                return Some(off);
            }
        }
        trim(&mut self.free);
        None
    }

    /// Take `addr` for a session that must have it (a static address from
    /// the users file or RADIUS, or one the peer asked for in IPCP). False
    /// when it is outside the pool, allocated, or in quarantine.
    pub fn allocate_specific(&mut self, addr: Ipv4Addr, now: Instant) -> bool {
        self.expire(now);
        match self.offset_of(addr) {
            Some(off) if !self.is_taken(off) => {
                self.take(off);
                true
            }
            _ => {
                self.stats.specific_refused += 1;
                false
            }
        }
    }

    /// Give `addr` back; it may be handed out again once the quarantine has
    /// passed after `now`. A release of an address that is not allocated
    /// changes nothing but a counter.
    pub fn release(&mut self, addr: Ipv4Addr, now: Instant) -> Result<(), ReleaseError> {
        let Some(off) = self.offset_of(addr) else {
            self.stats.foreign_releases += 1;
            return Err(ReleaseError::NotInPool);
        };
        if !self.in_use.get(off) {
            self.stats.double_releases += 1;
            return Err(ReleaseError::NotAllocated);
        }
        self.in_use.clear(off);
        self.in_use_count -= 1;
        self.held.set(off);
        self.held_count += 1;
        // Unreachable fallback: the quarantine is clamped to a year.
        let until = now.checked_add(self.quarantine).unwrap_or(now);
        match self.held_runs.back_mut() {
            Some((last, n)) if *last == until => *n += 1,
            _ => self.held_runs.push_back((until, 1)),
        }
        self.held_offsets.push_back(off);
        self.stats.releases += 1;
        Ok(())
    }

    /// Return to service every address whose quarantine ended by `now`.
    /// Allocation calls this itself; call it before reading the gauges for
    /// exact numbers.
    pub fn expire(&mut self, now: Instant) {
        while let Some(&(until, n)) = self.held_runs.front() {
            if until > now {
                break;
            }
            self.held_runs.pop_front();
            for _ in 0..n {
                let Some(off) = self.held_offsets.pop_front() else {
                    break;
                };
                self.held.clear(off);
                self.held_count -= 1;
                // At or above the cursor the scan will find it anyway.
                if off < self.cursor && !self.queued.get(off) {
                    self.queued.set(off);
                    self.free.push_back(off);
                }
            }
        }
        trim(&mut self.held_offsets);
        trim(&mut self.held_runs);
    }

    /// The next instant at which a quarantined address becomes free.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.held_runs.front().map(|&(until, _)| until)
    }

    /// Heap bytes held by the pool's bookkeeping (capacities, not lengths).
    pub fn memory_bytes(&self) -> usize {
        self.in_use.heap_bytes()
            + self.held.heap_bytes()
            + self.queued.heap_bytes()
            + self.free.capacity() * std::mem::size_of::<u32>()
            + self.held_offsets.capacity() * std::mem::size_of::<u32>()
            + self.held_runs.capacity() * std::mem::size_of::<(Instant, u32)>()
            + self.segments.capacity() * std::mem::size_of::<Segment>()
            + self.name.capacity()
    }

    fn is_taken(&self, off: u32) -> bool {
        self.in_use.get(off) || self.held.get(off)
    }

    fn take(&mut self, off: u32) {
        self.in_use.set(off);
        self.in_use_count += 1;
        self.stats.allocations += 1;
    }

    fn offset_of(&self, addr: Ipv4Addr) -> Option<u32> {
        let a = u32::from(addr);
        let idx = self.segments.partition_point(|s| s.first <= a);
        let seg = self.segments.get(idx.checked_sub(1)?)?;
        let delta = a - seg.first;
        (delta < seg.len).then_some(seg.base + delta)
    }

    /// `off` must be below `size` (it always comes from our own bookkeeping).
    fn addr_of(&self, off: u32) -> Ipv4Addr {
        let idx = self.segments.partition_point(|s| s.base <= off);
        let seg = self.segments[idx.saturating_sub(1)];
        Ipv4Addr::from(seg.first + (off - seg.base))
    }
}

/// Give back most of a queue's buffer once it is three-quarters empty, so a
/// mass release (a LAC reboot) does not pin its peak memory for good. The
/// copy costs at most a quarter of the capacity, paid for by the pops that
/// emptied it.
fn trim<T>(queue: &mut VecDeque<T>) {
    let cap = queue.capacity();
    if cap > 1024 && queue.len() < cap / 4 {
        queue.shrink_to(queue.len() * 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::{HashMap, HashSet};

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn pool(ranges: &[&str], quarantine_s: u64) -> Pool {
        let ranges = ranges.iter().map(|r| r.parse().unwrap()).collect();
        Pool::new("test", ranges, Duration::from_secs(quarantine_s)).unwrap()
    }

    #[test]
    fn ranges_parse_as_operators_write_them() {
        let r: AddrRange = "10.0.0.0/24".parse().unwrap();
        assert_eq!(
            (r.first(), r.last(), r.len()),
            (ip("10.0.0.1"), ip("10.0.0.254"), 254)
        );
        let r: AddrRange = "10.0.0.10 - 10.0.0.19".parse().unwrap();
        assert_eq!(r.len(), 10);
        let r: AddrRange = "192.0.2.7".parse().unwrap();
        assert_eq!((r.first(), r.last()), (ip("192.0.2.7"), ip("192.0.2.7")));
        let r: AddrRange = "192.0.2.6/31".parse().unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            "0.0.0.0/0".parse::<AddrRange>().unwrap().len(),
            (1 << 32) - 2
        );
        assert_eq!(
            AddrRange::cidr(ip("10.0.0.0"), 24, false).unwrap().len(),
            256
        );
        assert_eq!(
            "10.0.0.1/24".parse::<AddrRange>(),
            Err(PoolError::HostBitsSet)
        );
        assert_eq!(
            "10.0.0.0/33".parse::<AddrRange>(),
            Err(PoolError::BadPrefix)
        );
        assert_eq!(
            "10.0.0.9-10.0.0.1".parse::<AddrRange>(),
            Err(PoolError::Reversed)
        );
        assert_eq!("10.0.0".parse::<AddrRange>(), Err(PoolError::Syntax));
        assert_eq!("10.0.0.0/x".parse::<AddrRange>(), Err(PoolError::Syntax));
    }

    #[test]
    fn pool_rejects_bad_range_sets() {
        let r = |s: &str| s.parse::<AddrRange>().unwrap();
        let q = Duration::ZERO;
        assert_eq!(Pool::new("p", vec![], q).err(), Some(PoolError::NoRanges));
        assert_eq!(
            Pool::new("p", vec![r("10.0.0.0/24"), r("10.0.0.200-10.0.1.5")], q).err(),
            Some(PoolError::Overlap)
        );
        let whole = AddrRange::cidr(ip("0.0.0.0"), 0, false).unwrap();
        assert_eq!(
            Pool::new("p", vec![whole], q).err(),
            Some(PoolError::TooLarge)
        );
    }

    #[test]
    fn allocates_every_address_once_then_exhausts() {
        let now = Instant::now();
        // Ranges out of order: offsets follow address order.
        let mut p = pool(&["10.1.0.0/30", "10.0.0.5-10.0.0.6"], 0);
        assert_eq!(p.size(), 4);
        let got: Vec<Ipv4Addr> = (0..4).map(|_| p.allocate(now).unwrap()).collect();
        assert_eq!(
            got,
            [
                ip("10.0.0.5"),
                ip("10.0.0.6"),
                ip("10.1.0.1"),
                ip("10.1.0.2")
            ]
        );
        assert_eq!(p.allocate(now), None);
        assert_eq!((p.in_use(), p.available()), (4, 0));
        assert_eq!(p.stats().exhausted, 1);
        assert!(!p.contains(ip("10.1.0.0")) && !p.contains(ip("10.1.0.3")));
    }

    #[test]
    fn quarantine_holds_then_releases_in_fifo_order() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut p = pool(&["10.0.0.1-10.0.0.3"], 10);
        let a: Vec<Ipv4Addr> = (0..3).map(|_| p.allocate(t0).unwrap()).collect();
        p.release(a[2], t0).unwrap();
        p.release(a[0], t0 + s(1)).unwrap();
        assert_eq!((p.in_use(), p.quarantined(), p.available()), (1, 2, 0));
        assert_eq!(p.next_expiry(), Some(t0 + s(10)));
        assert_eq!(p.allocate(t0 + s(9)), None);
        // Both held: asking for either by name fails too.
        assert!(!p.allocate_specific(a[0], t0 + s(9)));
        assert_eq!(p.allocate(t0 + s(10)), Some(a[2]));
        assert_eq!(p.allocate(t0 + s(10)), None);
        assert_eq!(p.allocate(t0 + s(11)), Some(a[0]));
        assert_eq!(p.in_use(), 3);
    }

    #[test]
    fn double_and_foreign_release_change_only_counters() {
        let t0 = Instant::now();
        let mut p = pool(&["10.0.0.1-10.0.0.2"], 5);
        let a = p.allocate(t0).unwrap();
        assert_eq!(p.release(a, t0), Ok(()));
        assert_eq!(p.release(a, t0), Err(ReleaseError::NotAllocated));
        assert_eq!(
            p.release(ip("10.0.0.2"), t0),
            Err(ReleaseError::NotAllocated)
        );
        assert_eq!(p.release(ip("192.0.2.1"), t0), Err(ReleaseError::NotInPool));
        let st = p.stats();
        assert_eq!(
            (st.double_releases, st.foreign_releases, st.releases),
            (2, 1, 1)
        );
        assert_eq!((p.in_use(), p.quarantined(), p.available()), (0, 1, 1));
        // The double release did not queue `a` twice.
        let later = t0 + Duration::from_secs(5);
        let mut seen = HashSet::new();
        while let Some(x) = p.allocate(later) {
            assert!(seen.insert(x));
        }
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn specific_allocation_is_skipped_by_the_cursor_and_the_queue() {
        let t0 = Instant::now();
        let mut p = pool(&["10.0.0.1-10.0.0.4"], 0);
        assert!(p.allocate_specific(ip("10.0.0.2"), t0));
        assert!(!p.allocate_specific(ip("10.0.0.2"), t0));
        assert!(!p.allocate_specific(ip("10.9.9.9"), t0));
        assert_eq!(p.stats().specific_refused, 2);
        assert_eq!(p.allocate(t0), Some(ip("10.0.0.1")));
        assert_eq!(p.allocate(t0), Some(ip("10.0.0.3")));
        // Release .1 so it is queued, take it specifically: the stale queue
        // entry must not hand it out a second time.
        p.release(ip("10.0.0.1"), t0).unwrap();
        p.expire(t0);
        assert!(p.allocate_specific(ip("10.0.0.1"), t0));
        assert_eq!(p.allocate(t0), Some(ip("10.0.0.4")));
        assert_eq!(p.allocate(t0), None);
        // A static user reconnecting over and over does not grow the queue.
        for _ in 0..1000 {
            p.release(ip("10.0.0.1"), t0).unwrap();
            assert!(p.allocate_specific(ip("10.0.0.1"), t0));
        }
        assert!(p.free.len() <= 4, "queue grew to {}", p.free.len());
    }

    /// Random allocate / allocate_specific / release with time moving on:
    /// an address is never held by two sessions, never reused inside its
    /// quarantine, and the gauges always add up.
    #[test]
    fn churn_never_duplicates_or_cuts_quarantine_short() {
        let mut rng = StdRng::seed_from_u64(0x1d5);
        let t0 = Instant::now();
        let hold = Duration::from_millis(500);
        let mut p = Pool::new(
            "churn",
            vec![
                "10.0.0.0/26".parse().unwrap(),
                "10.0.1.10-10.0.1.40".parse().unwrap(),
            ],
            hold,
        )
        .unwrap();
        let size = p.size();
        let mut owned: Vec<Ipv4Addr> = Vec::new();
        let mut owned_set: HashSet<Ipv4Addr> = HashSet::new();
        let mut released_at: HashMap<Ipv4Addr, Instant> = HashMap::new();
        let mut now = t0;
        for _ in 0..200_000 {
            now += Duration::from_millis(rng.random_range(0..20));
            let fresh = match rng.random_range(0..10) {
                0..=4 => p.allocate(now),
                5 => {
                    let want = Ipv4Addr::from(u32::from(ip("10.0.0.0")) + rng.random_range(0..320));
                    p.allocate_specific(want, now).then_some(want)
                }
                _ => {
                    if !owned.is_empty() {
                        let i = rng.random_range(0..owned.len());
                        let a = owned.swap_remove(i);
                        owned_set.remove(&a);
                        assert_eq!(p.release(a, now), Ok(()));
                        released_at.insert(a, now);
                    }
                    None
                }
            };
            if let Some(a) = fresh {
                assert!(p.contains(a));
                assert!(owned_set.insert(a), "{a} handed out twice");
                if let Some(&t) = released_at.get(&a) {
                    assert!(now >= t + hold, "{a} reused inside quarantine");
                }
                owned.push(a);
            }
            assert_eq!(p.in_use() as usize, owned.len());
            assert_eq!(p.in_use() + p.quarantined() + p.available(), size);
        }
        assert!(p.stats().allocations > 50_000);
        assert!(p.stats().exhausted > 0, "the test should reach exhaustion");
    }

    /// A /10 with network and broadcast left out: 2^22 - 2 addresses, all
    /// handed out, all released at one instant, all handed out again after
    /// the quarantine.
    ///
    /// Measured with `memory_bytes` (run with `--nocapture` to see the line):
    /// fresh 0.375 bytes per address (three bitsets), all in use 0.375, all
    /// in quarantine 4.375 (plus one run entry), all back in the reuse queue
    /// 4.375, all reused 0.376. Inside the one `expire` call that moves 4M
    /// addresses from quarantine to the reuse queue both buffers exist for a
    /// moment (about 8.4 bytes per address) before the drained one is trimmed.
    #[test]
    fn four_million_addresses_allocate_release_reallocate() {
        let t0 = Instant::now();
        let mut p = Pool::new(
            "big",
            vec!["100.64.0.0/10".parse().unwrap()],
            Duration::from_secs(60),
        )
        .unwrap();
        let n = (1u32 << 22) - 2;
        assert_eq!(p.size(), n);
        let fresh = p.memory_bytes();
        assert!(
            fresh <= 3 * (1 << 22) / 8 + 4096,
            "fresh pool uses {fresh} bytes"
        );

        let per_addr = |p: &Pool| p.memory_bytes() as f64 / f64::from(n);
        let mut last = 0u32;
        for i in 0..n {
            let a = u32::from(p.allocate(t0).unwrap());
            assert!(a > last || i == 0);
            last = a;
        }
        assert_eq!(p.allocate(t0), None);
        assert_eq!(last, u32::from(ip("100.127.255.254")));
        let all_in_use = per_addr(&p);

        for off in 1..=n {
            let a = Ipv4Addr::from(u32::from(ip("100.64.0.0")) + off);
            p.release(a, t0).unwrap();
        }
        assert_eq!((p.in_use(), p.quarantined()), (0, n));
        assert_eq!(p.held_runs.len(), 1);
        let all_held = per_addr(&p);
        assert_eq!(p.allocate(t0 + Duration::from_secs(59)), None);
        let later = t0 + Duration::from_secs(60);
        p.expire(later);
        assert_eq!(p.available(), n);
        let all_queued = per_addr(&p);
        for _ in 0..n {
            assert!(p.allocate(later).is_some());
        }
        assert_eq!(p.allocate(later), None);
        let reused = per_addr(&p);
        eprintln!(
            "bytes/address: fresh {:.3}, all in use {all_in_use:.3}, all held \
             {all_held:.3}, all queued {all_queued:.3}, all reused {reused:.3}",
            fresh as f64 / f64::from(n)
        );
        for m in [all_in_use, all_held, all_queued, reused] {
            assert!(m < 4.5, "{m:.2} bytes per address");
        }
    }
}
