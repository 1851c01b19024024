//! Pacing: a token bucket per worker, sans-IO (the caller passes `now`).

use std::time::{Duration, Instant};

/// Grants at most `rate` tokens per second on average, with bursts of at
/// most `burst` tokens after an idle spell.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket refilling at `rate` per second that starts with one token
    /// (the first session goes at once). The burst is 10 ms worth of
    /// tokens, at least one: steady, yet tolerant of a loop that wakes a
    /// little late.
    pub fn new(rate: f64, now: Instant) -> Self {
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            f64::MIN_POSITIVE
        };
        let burst = (rate / 100.0).max(1.0);
        TokenBucket {
            rate,
            burst,
            tokens: 1.0,
            last: now,
        }
    }

    /// The same with a burst of `burst` tokens (at least one), for slow
    /// rates where one token of burst would lose what a loop that wakes a
    /// little late is owed.
    pub fn with_burst(rate: f64, burst: f64, now: Instant) -> Self {
        let mut bucket = TokenBucket::new(rate, now);
        if burst.is_finite() {
            bucket.burst = burst.max(1.0);
        }
        bucket
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = self.last.max(now);
    }

    /// Take up to `want` whole tokens; returns how many were granted.
    pub fn take(&mut self, now: Instant, want: u64) -> u64 {
        self.refill(now);
        let whole = self.tokens.floor().max(0.0);
        let granted = (want as f64).min(whole);
        self.tokens -= granted;
        granted as u64
    }

    /// When the next whole token is there (`now` if one is).
    pub fn next_token(&mut self, now: Instant) -> Instant {
        self.refill(now);
        if self.tokens >= 1.0 {
            return now;
        }
        let wait = (1.0 - self.tokens) / self.rate;
        now + Duration::from_secs_f64(wait.min(3600.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_token_is_there_at_once_then_the_rate_holds() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1000.0, t0);
        assert_eq!(bucket.take(t0, 100), 1);
        assert_eq!(bucket.take(t0, 100), 0);
        assert_eq!(bucket.next_token(t0), t0 + Duration::from_millis(1));
        // 5 ms later: five tokens.
        assert_eq!(bucket.take(t0 + Duration::from_millis(5), 100), 5);
        // Over one second in 1 ms steps, 1000 tokens in all (within one for
        // floating-point rounding).
        let mut granted = 0;
        for ms in 6..=1005 {
            granted += bucket.take(t0 + Duration::from_millis(ms), 100);
        }
        assert!((999..=1000).contains(&granted), "{granted}");
    }

    #[test]
    fn an_idle_bucket_bursts_at_most_ten_milliseconds_worth() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10_000.0, t0);
        assert_eq!(bucket.take(t0 + Duration::from_secs(10), 1_000_000), 100);
        let mut slow = TokenBucket::new(2.0, t0);
        assert_eq!(slow.take(t0 + Duration::from_secs(60), 10), 1);
        assert_eq!(
            slow.next_token(t0 + Duration::from_secs(60)),
            t0 + Duration::from_millis(60_500)
        );
    }

    #[test]
    fn a_larger_burst_keeps_what_a_late_loop_is_owed() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::with_burst(50.0, 2.0, t0);
        assert_eq!(bucket.take(t0, 10), 1);
        // Woken 30 ms after the next token was due (at 20 ms): 2.5 tokens
        // owed, two kept.
        assert_eq!(bucket.take(t0 + Duration::from_millis(50), 10), 2);
        let mut capped = TokenBucket::with_burst(50.0, 0.0, t0);
        assert_eq!(capped.take(t0 + Duration::from_secs(1), 10), 1);
    }

    #[test]
    fn time_going_backwards_grants_nothing_extra() {
        let t0 = Instant::now() + Duration::from_secs(1);
        let mut bucket = TokenBucket::new(100.0, t0);
        assert_eq!(bucket.take(t0, 10), 1);
        assert_eq!(bucket.take(t0 - Duration::from_millis(500), 10), 0);
        assert_eq!(bucket.take(t0 + Duration::from_millis(10), 10), 1);
    }
}
