//! The run over time, sans-IO: the thread that started the workers reads
//! the live counters in [`crate::worker::Shared`] now and then and hands
//! them to a [`Timeline`], which keeps cumulative samples at a fixed
//! interval. Long runs stay bounded: when the timeline is full, every
//! other sample goes and the interval doubles (the counters are
//! cumulative, so dropping a sample merges its interval into the next).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The first interval between samples.
pub const INTERVAL: Duration = Duration::from_millis(250);

/// At most this many samples (plus the one at the end of the run).
pub const MAX_SAMPLES: usize = 2000;

/// Cumulative counts since the start of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Sessions dialled.
    pub attempted: u64,
    /// Sessions up.
    pub established: u64,
    /// Sessions failed.
    pub failed: u64,
    /// Data packets sent (upstream).
    pub data_sent: u64,
    /// Data packets back (downstream), each once.
    pub data_received: u64,
    /// Bytes of `data_sent` (IP packets, headers included).
    pub data_sent_bytes: u64,
    /// Bytes of `data_received`.
    pub data_received_bytes: u64,
}

/// One sample: the counts at `t_s` seconds into the run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the run started.
    pub t_s: f64,
    /// The counts then.
    #[serde(flatten)]
    pub counts: Counts,
}

/// Samples of the run at (about) every `interval_s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// Seconds between two samples (the last may be closer: the end of
    /// the run).
    pub interval_s: f64,
    /// In time order; the counts never go down.
    pub samples: Vec<Sample>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            interval_s: INTERVAL.as_secs_f64(),
            samples: Vec::new(),
        }
    }
}

impl Timeline {
    /// Offer the counts at `elapsed`: kept when an interval has passed
    /// since the last sample kept (the first is always kept).
    pub fn offer(&mut self, elapsed: Duration, counts: Counts) {
        let t_s = elapsed.as_secs_f64();
        // `next` lies on the grid of intervals, so sampling late once does
        // not shift every later sample.
        let next = self
            .samples
            .last()
            .map(|s| ((s.t_s / self.interval_s).floor() + 1.0) * self.interval_s);
        if next.is_some_and(|next| t_s + 1e-9 < next) {
            return;
        }
        if self.samples.len() >= MAX_SAMPLES {
            self.thin();
        }
        self.samples.push(Sample { t_s, counts });
    }

    /// The counts at the end of the run: always kept (replacing a sample
    /// at the same time).
    pub fn finish(&mut self, elapsed: Duration, counts: Counts) {
        let t_s = elapsed.as_secs_f64();
        if self.samples.last().is_some_and(|s| s.t_s >= t_s) {
            self.samples.pop();
        }
        self.samples.push(Sample { t_s, counts });
    }

    /// Keep every other sample (the first always) and double the interval.
    fn thin(&mut self) {
        let mut i = 0;
        self.samples.retain(|_| {
            i += 1;
            i % 2 == 1
        });
        self.interval_s *= 2.0;
    }

    /// Rates between consecutive samples: for each interval, its middle
    /// time and `f(later) − f(earlier)` per second.
    pub fn rates(&self, f: impl Fn(&Counts) -> u64) -> Vec<(f64, f64)> {
        self.samples
            .windows(2)
            .filter_map(|w| {
                let dt = w[1].t_s - w[0].t_s;
                (dt > 0.0).then(|| {
                    let dn = f(&w[1].counts).saturating_sub(f(&w[0].counts));
                    ((w[0].t_s + w[1].t_s) / 2.0, dn as f64 / dt)
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(n: u64) -> Counts {
        Counts {
            attempted: n,
            established: n,
            ..Counts::default()
        }
    }

    #[test]
    fn samples_land_on_the_interval_grid() {
        let mut t = Timeline::default();
        // Polled every 100 ms: kept at 0, 0.3 (first at or past 0.25),
        // 0.5, 0.8, 1.0.
        for i in 0..=10u64 {
            t.offer(Duration::from_millis(100 * i), counts(i));
        }
        let at: Vec<f64> = t.samples.iter().map(|s| s.t_s).collect();
        assert_eq!(at, [0.0, 0.3, 0.5, 0.8, 1.0]);
        t.finish(Duration::from_millis(1050), counts(11));
        assert_eq!(t.samples.last().map(|s| s.counts.established), Some(11));
        // The end at the time of the last sample replaces it.
        t.finish(Duration::from_millis(1050), counts(12));
        assert_eq!(t.samples.len(), 6);
        assert_eq!(t.samples[5].counts.established, 12);
    }

    #[test]
    fn a_long_run_stays_bounded_and_keeps_its_totals() {
        let mut t = Timeline::default();
        // An hour polled every 100 ms.
        for i in 0..36_000u64 {
            t.offer(Duration::from_millis(100 * i), counts(i));
        }
        t.finish(Duration::from_secs(3600), counts(36_000));
        assert!(t.samples.len() <= MAX_SAMPLES + 1, "{}", t.samples.len());
        assert!(t.samples.len() > MAX_SAMPLES / 4, "{}", t.samples.len());
        assert!(t.interval_s > 1.0);
        assert_eq!(t.samples[0].t_s, 0.0);
        assert!(t.samples.windows(2).all(|w| w[0].t_s < w[1].t_s));
        let rates = t.rates(|c| c.established);
        assert_eq!(rates.len(), t.samples.len() - 1);
        // The rates integrate back to the total.
        let total: f64 = t
            .samples
            .windows(2)
            .zip(&rates)
            .map(|(w, &(_, r))| r * (w[1].t_s - w[0].t_s))
            .sum();
        assert!((total - 36_000.0).abs() < 1e-6, "{total}");
        // 10 sessions per 100 ms poll: 10/s everywhere.
        assert!(
            rates.iter().all(|&(_, r)| (r - 10.0).abs() < 0.5),
            "{rates:?}"
        );
    }

    #[test]
    fn rates_of_one_sample_or_none_are_empty() {
        let mut t = Timeline::default();
        assert!(t.rates(|c| c.attempted).is_empty());
        t.finish(Duration::from_millis(5), counts(3));
        assert!(t.rates(|c| c.attempted).is_empty());
    }
}
