//! The standard `process_*` metrics from `/proc/self/stat` (proc(5)).
//! Parsing is pure and total; `crate::io::metrics` reads the files and
//! the kernel's clock tick and page size.

/// What the process metrics report.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessStats {
    /// User plus system CPU time.
    pub cpu_seconds: f64,
    /// Resident set size.
    pub resident_bytes: u64,
    /// Virtual memory size.
    pub virtual_bytes: u64,
    /// Threads.
    pub threads: u64,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: f64,
    /// Open file descriptors, when they could be counted.
    pub open_fds: Option<u64>,
    /// The soft limit on them, when known.
    pub max_fds: Option<u64>,
}

/// The machine facts `/proc/self/stat` is relative to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    /// `sysconf(_SC_CLK_TCK)`.
    pub ticks_per_second: f64,
    /// `sysconf(_SC_PAGESIZE)`.
    pub page_size: u64,
    /// `btime` of `/proc/stat`: boot time, seconds since the epoch.
    pub boot_time: f64,
}

/// Parse `/proc/self/stat`. The command name (field 2) is in parentheses
/// and may hold spaces or parentheses itself, so fields are counted from
/// the last `)`. None when the text does not have the fields we read.
pub fn parse_stat(stat: &str, clock: &Clock) -> Option<ProcessStats> {
    let fields = stat_fields(stat)?;
    let field = |n: usize| -> Option<u64> { fields.get(n.checked_sub(3)?)?.parse().ok() };
    let ticks = clock.ticks_per_second.max(1.0);
    let (utime, stime) = cpu_ticks(stat)?;
    Some(ProcessStats {
        cpu_seconds: (utime + stime) as f64 / ticks,
        threads: field(20)?,
        start_time_seconds: clock.boot_time + field(22)? as f64 / ticks,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)?.saturating_mul(clock.page_size),
        open_fds: None,
        max_fds: None,
    })
}

/// User and system CPU time (utime and stime, fields 14 and 15) of a
/// `/proc/PID/stat` line, in clock ticks.
pub fn cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    let fields = stat_fields(stat)?;
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    Some((field(14)?, field(15)?))
}

/// The fields of a `stat` line from field 3 (state) on: field n is at
/// index n - 3 (proc(5) numbers them from 1). The name before them is in
/// parentheses and may hold spaces and parentheses itself, so they are
/// counted from the last `)`.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().collect())
}

/// `btime` from `/proc/stat`.
pub fn parse_boot_time(proc_stat: &str) -> Option<f64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|v| v as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOCK: Clock = Clock {
        ticks_per_second: 100.0,
        page_size: 4096,
        boot_time: 1_700_000_000.0,
    };

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        // A name with a space and a parenthesis; utime 1234, stime 56.
        let stat = "4242 (l2 (tp) ns) S 1 4242 4242 0 -1 4194560 500 0 0 0 1234 56 0 0 20 0 3 0";
        assert_eq!(cpu_ticks(stat), Some((1234, 56)));
        assert_eq!(cpu_ticks("4242 (x) S 1"), None);
    }

    #[test]
    fn a_stat_line_gives_cpu_memory_threads_and_start() {
        // A name with a space and a parenthesis, as a thread may have.
        let stat = "4242 (lns (x) y) S 1 4242 4242 0 -1 4194560 500 0 0 0 \
                    150 50 0 0 20 0 7 0 12345 104857600 2560 18446744073709551615 \
                    1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";
        let p = parse_stat(stat, &CLOCK).unwrap();
        assert_eq!(p.cpu_seconds, 2.0);
        assert_eq!(p.threads, 7);
        assert!((p.start_time_seconds - 1_700_000_123.45).abs() < 1e-3);
        assert_eq!(p.virtual_bytes, 104_857_600);
        assert_eq!(p.resident_bytes, 2560 * 4096);
    }

    #[test]
    fn short_or_odd_input_is_none_not_a_panic() {
        for stat in [
            "",
            "(",
            ")",
            "1 (x) S 1 2",
            "1 (x) S a b c d e f g h i j k l m n o p q r s t u",
        ] {
            assert_eq!(parse_stat(stat, &CLOCK), None, "{stat:?}");
        }
        assert_eq!(parse_boot_time("cpu 1 2\nbtime 1700000000\n"), Some(1.7e9));
        assert_eq!(parse_boot_time("btime x\n"), None);
    }
}
