//! The LNS under load, when it is a process on this machine: its CPU time
//! and resident memory, read from `/proc/PID/stat` and `/proc/PID/status`
//! (proc(5)) before, during and after the run, so the report can say what
//! the load cost the LNS as well as what it cost loadgen.

use std::io;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// One reading of the process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// User CPU time of all its threads, in clock ticks.
    pub user_ticks: u64,
    /// System CPU time of all its threads, in clock ticks.
    pub system_ticks: u64,
    /// Resident set size (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// When it was read.
    pub at: Instant,
}

/// Read process `pid` now.
pub fn sample(pid: u32) -> io::Result<Sample> {
    let at = Instant::now();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let (user_ticks, system_ticks) =
        lns::metrics::process::cpu_ticks(&stat).ok_or_else(|| bad("stat", pid))?;
    let rss_kib = status_kib(&status, "VmRSS").ok_or_else(|| bad("status", pid))?;
    Ok(Sample {
        user_ticks,
        system_ticks,
        rss_kib,
        at,
    })
}

fn bad(file: &str, pid: u32) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("/proc/{pid}/{file}: unexpected format"),
    )
}

/// A `Key:   N kB` line of `status`, in KiB.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// The process's name (`comm`, at most 15 bytes).
pub fn name(pid: u32) -> Option<String> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(comm.trim_end().to_string())
}

/// The process named `name` (its `comm`, which the kernel cuts to 15
/// bytes): Ok(None) when there is none, an error when there are several.
pub fn find(name: &str) -> io::Result<Option<u32>> {
    let wanted: String = name.chars().take(15).collect();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if self::name(pid).as_deref() == Some(wanted.as_str()) {
            found.push(pid);
        }
    }
    match found.as_slice() {
        [] => Ok(None),
        [pid] => Ok(Some(*pid)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("several processes are named {wanted}: {found:?}; give --lns-pid"),
        )),
    }
}

/// The ticks per second of `stat`'s CPU fields.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// Readings of the LNS process over a run: the first, the last, and the
/// largest RSS seen between them.
#[derive(Debug)]
pub struct Watch {
    pid: u32,
    first: Sample,
    last: Sample,
    rss_max_kib: u64,
}

impl Watch {
    /// Start watching `pid` (its first reading).
    pub fn start(pid: u32) -> io::Result<Watch> {
        let first = sample(pid)?;
        Ok(Watch {
            pid,
            first,
            last: first,
            rss_max_kib: first.rss_kib,
        })
    }

    /// Take another reading; a process that has gone keeps its last one.
    pub fn sample(&mut self) {
        if let Ok(now) = sample(self.pid) {
            self.rss_max_kib = self.rss_max_kib.max(now.rss_kib);
            self.last = now;
        }
    }

    /// What the run cost the process, `established` sessions having come
    /// up.
    pub fn report(&self, established: u64) -> TargetReport {
        let hz = ticks_per_second();
        let user_s = self.last.user_ticks.saturating_sub(self.first.user_ticks) as f64 / hz;
        let system_s = self
            .last
            .system_ticks
            .saturating_sub(self.first.system_ticks) as f64
            / hz;
        let wall = self
            .last
            .at
            .saturating_duration_since(self.first.at)
            .as_secs_f64();
        let growth_kib = self.rss_max_kib.saturating_sub(self.first.rss_kib);
        TargetReport {
            pid: self.pid,
            name: name(self.pid).unwrap_or_default(),
            cpu_user_s: user_s,
            cpu_system_s: system_s,
            cpu_percent_of_one_core: if wall > 0.0 {
                (user_s + system_s) / wall * 100.0
            } else {
                0.0
            },
            rss_before_kib: self.first.rss_kib,
            rss_max_kib: self.rss_max_kib,
            rss_after_kib: self.last.rss_kib,
            rss_per_session_b: (established > 0)
                .then(|| (growth_kib * 1024) as f64 / established as f64),
        }
    }
}

/// The LNS process's side of the report (`target` in the JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetReport {
    /// Its process id.
    pub pid: u32,
    /// Its name (`comm`).
    pub name: String,
    /// User CPU time it used during the run (all threads), seconds.
    pub cpu_user_s: f64,
    /// System CPU time it used during the run, seconds.
    pub cpu_system_s: f64,
    /// (user + system) ÷ the run's wall time × 100.
    pub cpu_percent_of_one_core: f64,
    /// Resident set size when the run started, KiB.
    pub rss_before_kib: u64,
    /// The largest resident set size seen (sampled every 100 ms), KiB.
    pub rss_max_kib: u64,
    /// Resident set size when the run ended (after teardown), KiB.
    pub rss_after_kib: u64,
    /// (max − before) ÷ sessions established, bytes; null when none came
    /// up.
    pub rss_per_session_b: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_give_kib() {
        let status = "Name:\tl2tpns\nVmHWM:\t  98000 kB\nVmRSS:\t   95312 kB\n";
        assert_eq!(status_kib(status, "VmRSS"), Some(95_312));
        assert_eq!(status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn this_process_can_be_watched() {
        let pid = std::process::id();
        let mut watch = Watch::start(pid).unwrap();
        let mut spin = 0u64;
        for i in 0..2_000_000u64 {
            spin = spin.wrapping_add(i * i);
        }
        std::hint::black_box(spin);
        watch.sample();
        let report = watch.report(10);
        assert_eq!(report.pid, pid);
        assert!(!report.name.is_empty());
        assert!(report.rss_before_kib > 0);
        assert!(report.rss_max_kib >= report.rss_before_kib);
        assert!(report.rss_per_session_b.is_some());
        assert_eq!(watch.report(0).rss_per_session_b, None);
        assert_eq!(find("no-such-lns-xyz").unwrap(), None);
    }
}
