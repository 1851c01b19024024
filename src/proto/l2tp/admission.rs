//! Admission rates: how many new tunnels and new calls per second an
//! endpoint accepts. Beyond the rate a request is refused at once with the
//! RFC's answer (StopCCN or CDN), so a LAC rebooting with ten thousand
//! subscribers is paced by its own retransmissions instead of swamping the
//! control plane and starving established tunnels.

use std::time::{Duration, Instant};

/// A token bucket: up to one second's worth of requests at once, refilled
/// at `per_second`. Driven with the caller's `now`, like everything else
/// in the protocol cores.
#[derive(Debug, Clone)]
pub struct RateLimit {
    per_second: u32,
    /// Tokens, in units of 1/`per_second` s of credit, as nanoseconds of
    /// accumulated time: integer arithmetic, no drift.
    credit: Duration,
    last: Option<Instant>,
}

impl RateLimit {
    /// Accept at most `per_second` requests per second (bursts up to that
    /// many).
    pub fn new(per_second: u32) -> Self {
        RateLimit {
            per_second: per_second.max(1),
            credit: Duration::from_secs(1),
            last: None,
        }
    }

    /// Take a token if one is there.
    pub fn admit(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last);
            self.credit = (self.credit + elapsed).min(Duration::from_secs(1));
        }
        self.last = Some(now);
        let cost = Duration::from_secs(1) / self.per_second;
        if self.credit >= cost {
            self.credit -= cost;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_one_second_then_the_rate() {
        let t0 = Instant::now();
        let mut limit = RateLimit::new(4);
        let first: Vec<bool> = (0..6).map(|_| limit.admit(t0)).collect();
        assert_eq!(first, [true, true, true, true, false, false]);
        // A quarter second buys one more.
        assert!(limit.admit(t0 + Duration::from_millis(250)));
        assert!(!limit.admit(t0 + Duration::from_millis(250)));
        // A long pause refills to one second's worth, no more.
        let later = t0 + Duration::from_secs(60);
        let n = (0..10).filter(|_| limit.admit(later)).count();
        assert_eq!(n, 4);
    }
}
