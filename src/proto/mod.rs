//! Sans-IO protocol state machines.
//!
//! Nothing here reads the clock, touches a socket, spawns a thread or draws
//! from a thread-local RNG: time comes in as `now: Instant`, randomness from a
//! seeded generator the caller owns, and output leaves as datagrams, events and
//! the next deadline.
#![forbid(unsafe_code)]

pub mod aaa;
pub mod l2tp;
pub mod node;
pub mod ppp;
pub mod ra;

/// Queue capacity kept however empty a queue gets: small enough to be
/// nothing next to a session's state, large enough that ordinary traffic
/// never reallocates.
const KEEP_CAPACITY: usize = 64;

/// Give back what a burst left in `queue` (a setup storm grows queues to
/// its peak, and a `VecDeque` keeps that capacity forever): shrink it when
/// it holds less than a quarter of its capacity. Owners call this now and
/// then, not per packet, so a storm does not shrink and regrow.
pub(crate) fn shrink_queue<T>(queue: &mut std::collections::VecDeque<T>) {
    if queue.capacity() > KEEP_CAPACITY && queue.len() < queue.capacity() / 4 {
        queue.shrink_to(queue.len().max(KEEP_CAPACITY));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    #[test]
    fn shrink_queue_gives_back_a_burst_and_keeps_a_working_queue() {
        let mut burst: VecDeque<u64> = (0..10_000).collect();
        burst.truncate(10);
        super::shrink_queue(&mut burst);
        assert!(burst.capacity() < 128, "{}", burst.capacity());
        assert_eq!(burst, (0..10).collect::<VecDeque<_>>());
        let mut busy: VecDeque<u64> = VecDeque::with_capacity(1024);
        busy.extend(0..600);
        let before = busy.capacity();
        super::shrink_queue(&mut busy);
        assert_eq!(busy.capacity(), before);
    }
}
