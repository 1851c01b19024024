//! Local tunnel and session ID allocation.
//!
//! RFC 2661 §3.1 lets each end pick its own identifiers; we use that freedom
//! twice. Tunnel IDs encode the shard that owns the tunnel (`id % shards ==
//! shard`), so the runtime's reuseport BPF program can steer every datagram
//! to its owner without a lookup. And a released ID rests in quarantine for a
//! hold period, so a late retransmission from a torn-down tunnel or session
//! can never be mistaken for traffic of a new one.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::Rng;
use rustc_hash::FxHashSet;

/// Which residue class of IDs this allocator hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    /// This shard's index, `< count`.
    pub index: u16,
    /// Number of shards (at least 1).
    pub count: u16,
}

impl ShardSpec {
    /// A single shard owning every ID.
    pub const SINGLE: ShardSpec = ShardSpec { index: 0, count: 1 };

    /// The shard that owns `id`.
    pub fn owner_of(self, id: u16) -> u16 {
        id % self.count.max(1)
    }
}

/// Hands out non-zero 16-bit IDs of one residue class (or of every class
/// in turn), with quarantine.
#[derive(Debug, Clone)]
pub struct IdAllocator {
    shard: ShardSpec,
    /// Spread mode: the class the next allocation tries first.
    next_class: Option<u16>,
    /// IDs in use or in quarantine.
    taken: FxHashSet<u16>,
    /// Released IDs with the instant they may be reused, oldest first.
    quarantine: VecDeque<(Instant, u16)>,
    hold: Duration,
    /// Most IDs that may be taken at once (0 excluded).
    capacity: usize,
}

impl IdAllocator {
    /// An allocator for the IDs of `shard`, reusing released IDs after `hold`.
    pub fn new(shard: ShardSpec, hold: Duration) -> Self {
        let count = shard.count.max(1);
        let index = shard.index % count;
        let capacity = class_size(ShardSpec { index, count });
        IdAllocator {
            shard: ShardSpec { index, count },
            next_class: None,
            taken: FxHashSet::default(),
            quarantine: VecDeque::new(),
            hold,
            capacity,
        }
    }

    /// An allocator for every ID, taking the classes `id % count` in turn
    /// so that `count` shards each own an even share.
    pub fn spread(count: u16, hold: Duration) -> Self {
        let count = count.max(1);
        IdAllocator {
            shard: ShardSpec { index: 0, count },
            next_class: Some(0),
            taken: FxHashSet::default(),
            quarantine: VecDeque::new(),
            hold,
            capacity: usize::from(u16::MAX),
        }
    }

    /// IDs currently in use or resting in quarantine.
    pub fn taken(&self) -> usize {
        self.taken.len()
    }

    /// Pick a random free ID of our class, or `None` when all are taken.
    pub fn allocate(&mut self, now: Instant, rng: &mut impl Rng) -> Option<u16> {
        self.expire(now);
        if self.taken.len() >= self.capacity {
            return None;
        }
        let Some(first) = self.next_class else {
            return self.allocate_in(self.shard.index, rng);
        };
        let count = self.shard.count;
        for step in 0..count {
            let class = (first + step) % count;
            if let Some(id) = self.allocate_in(class, rng) {
                self.next_class = Some((class + 1) % count);
                return Some(id);
            }
        }
        None
    }

    /// A random free ID with `id % count == class`.
    fn allocate_in(&mut self, class: u16, rng: &mut impl Rng) -> Option<u16> {
        let count = u32::from(self.shard.count);
        let slots = 65536 / count + 1;
        let start = rng.random_range(0..slots);
        for step in 0..slots {
            let slot = (start + step) % slots;
            let id = slot * count + u32::from(class);
            let Ok(id) = u16::try_from(id) else { continue };
            if id != 0 && self.taken.insert(id) {
                return Some(id);
            }
        }
        None
    }

    /// Give `id` back; it becomes reusable `hold` after `now`.
    pub fn release(&mut self, id: u16, now: Instant) {
        if self.taken.contains(&id) {
            self.quarantine.push_back((now + self.hold, id));
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(until, id)) = self.quarantine.front() {
            if until > now {
                break;
            }
            self.quarantine.pop_front();
            self.taken.remove(&id);
        }
    }
}

/// How many IDs of 1..=65535 satisfy `id % count == index`: `index`,
/// `index + count`, ... up to 65535, without ID 0. Arithmetic rather than a
/// walk over the ID space, since every new tunnel builds a session allocator.
fn class_size(shard: ShardSpec) -> usize {
    let (index, count) = (usize::from(shard.index), usize::from(shard.count));
    let with_zero = (usize::from(u16::MAX) - index) / count + 1;
    if index == 0 {
        with_zero - 1
    } else {
        with_zero
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::collections::HashSet;

    #[test]
    fn class_size_matches_a_count_of_the_id_space() {
        for count in [1u16, 2, 3, 4, 7, 64, 4096, 65535, u16::MAX] {
            for index in [0, 1, count / 2, count - 1]
                .into_iter()
                .filter(|i| *i < count)
            {
                let walked = (0..=u16::MAX)
                    .filter(|id| *id != 0 && id % count == index)
                    .count();
                assert_eq!(
                    class_size(ShardSpec { index, count }),
                    walked,
                    "{index}/{count}"
                );
            }
        }
    }

    #[test]
    fn ids_follow_the_shard() {
        let mut rng = StdRng::seed_from_u64(7);
        let now = Instant::now();
        let mut ids = IdAllocator::new(ShardSpec { index: 3, count: 4 }, Duration::from_secs(1));
        for _ in 0..1000 {
            let id = ids.allocate(now, &mut rng).unwrap();
            assert_eq!(id % 4, 3);
            assert_ne!(id, 0);
        }
        assert_eq!(ids.taken(), 1000);
    }

    #[test]
    fn exhausts_then_recovers_after_hold() {
        let mut rng = StdRng::seed_from_u64(1);
        let now = Instant::now();
        let mut ids = IdAllocator::new(
            ShardSpec {
                index: 0,
                count: 4096,
            },
            Duration::from_secs(5),
        );
        // Class 0 of 4096: 4096, 8192, ... 61440 (0 excluded) = 15 IDs.
        let got: HashSet<u16> = (0..15)
            .map(|_| ids.allocate(now, &mut rng).unwrap())
            .collect();
        assert_eq!(got.len(), 15);
        assert_eq!(ids.allocate(now, &mut rng), None);
        let first = *got.iter().next().unwrap();
        ids.release(first, now);
        // Still in quarantine.
        assert_eq!(ids.allocate(now + Duration::from_secs(4), &mut rng), None);
        assert_eq!(
            ids.allocate(now + Duration::from_secs(5), &mut rng),
            Some(first)
        );
    }

    #[test]
    fn never_hands_out_a_held_id() {
        let mut rng = StdRng::seed_from_u64(2);
        let t0 = Instant::now();
        let mut ids = IdAllocator::new(ShardSpec::SINGLE, Duration::from_secs(30));
        let mut held = HashSet::new();
        for round in 0..2000u64 {
            let now = t0 + Duration::from_millis(round);
            let id = ids.allocate(now, &mut rng).unwrap();
            assert!(!held.contains(&id), "ID {id} reused during its hold");
            ids.release(id, now);
            held.insert(id);
        }
    }

    #[test]
    fn spread_takes_every_class_in_turn_until_full() {
        let mut rng = StdRng::seed_from_u64(3);
        let now = Instant::now();
        let mut ids = IdAllocator::spread(4, Duration::from_secs(30));
        let first: Vec<u16> = (0..8)
            .map(|_| ids.allocate(now, &mut rng).unwrap() % 4)
            .collect();
        assert_eq!(first, [0, 1, 2, 3, 0, 1, 2, 3]);
        // Every non-zero ID, then nothing.
        let mut all: HashSet<u16> = HashSet::new();
        while let Some(id) = ids.allocate(now, &mut rng) {
            assert!(all.insert(id));
        }
        assert_eq!(all.len() + 8, 65535);
    }
}
