//! The queues between the daemon's threads (shards → control thread,
//! control thread → shards, shard → shard): crossbeam's unbounded channel
//! under a depth limit checked on send.
//!
//! crossbeam's bounded channel allocates every slot when it is made and
//! writes each one's stamp, so its whole capacity is resident from the
//! start: the daemon's four queues held 9.4 MB of its 10.4 MB idle heap.
//! The unbounded (list) flavour allocates blocks of slots as messages
//! arrive and frees them as they are taken, so a queue costs memory only
//! while a burst sits in it, and its limit can be as deep as a storm
//! needs.

use crossbeam_channel::{Receiver, SendError, Sender, TrySendError};

/// The sending side of a queue with a depth limit.
#[derive(Debug)]
pub struct Limited<T> {
    tx: Sender<T>,
    limit: usize,
}

// Not derived: that would ask `T: Clone`.
impl<T> Clone for Limited<T> {
    fn clone(&self) -> Self {
        Limited {
            tx: self.tx.clone(),
            limit: self.limit,
        }
    }
}

/// A queue that sheds (`try_send`) once `limit` messages wait.
pub fn limited<T>(limit: usize) -> (Limited<T>, Receiver<T>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    (Limited { tx, limit }, rx)
}

impl<T> Limited<T> {
    /// Queue `message` unless `limit` messages are waiting or the receiver
    /// is gone. Senders that check at the same moment may each pass the
    /// limit by one message: it bounds a burst, it is not an exact count.
    pub fn try_send(&self, message: T) -> Result<(), TrySendError<T>> {
        if self.tx.len() >= self.limit {
            return Err(TrySendError::Full(message));
        }
        self.tx
            .send(message)
            .map_err(|SendError(message)| TrySendError::Disconnected(message))
    }

    /// Queue `message` whatever the depth, without blocking: for what
    /// must not be lost (a session's install or removal). Fails only when
    /// the receiver is gone.
    pub fn send(&self, message: T) -> Result<(), SendError<T>> {
        self.tx.send(message)
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.tx.len()
    }

    /// No message waiting.
    pub fn is_empty(&self) -> bool {
        self.tx.is_empty()
    }

    /// The depth at which `try_send` sheds.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheds_at_the_limit_and_takes_again_once_drained() {
        let (tx, rx) = limited(3);
        for n in 0..3 {
            tx.try_send(n).unwrap();
        }
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        assert_eq!(tx.len(), 3);
        // What must not be lost goes past the limit.
        tx.send(4).unwrap();
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 2, 4]);
        assert!(tx.is_empty());
        tx.try_send(5).unwrap();
        assert_eq!(rx.recv().unwrap(), 5);
        drop(rx);
        assert_eq!(tx.try_send(6), Err(TrySendError::Disconnected(6)));
        assert!(tx.send(7).is_err());
    }

    /// Resident memory of this process, in KiB.
    fn rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// The point of the module: a queue holds memory only for what waits
    /// in it. One as deep as a million 1 KiB messages would be a resident
    /// GiB the moment crossbeam's bounded flavour made it; this one adds
    /// (far) less than 64 MiB, other tests' allocations included.
    #[test]
    fn an_idle_queue_reserves_nothing() {
        let before = rss_kib();
        let (tx, rx) = limited::<[u8; 1024]>(1 << 20);
        tx.try_send([7; 1024]).unwrap();
        let grew = rss_kib().saturating_sub(before);
        assert!(
            grew < 64 * 1024,
            "a deep idle queue made RSS grow {grew} KiB"
        );
        assert_eq!(rx.recv().unwrap()[0], 7);
        assert!(tx.is_empty());
    }
}
