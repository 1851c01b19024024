//! `loadgen`: plays LACs and PPP subscribers against an L2TP Network Server
//! (ours or anyone's) and reports how the setup went.
//!
//! The protocol work is the `lns` library's, sans-IO: each worker thread
//! drives LAC-role [`lns::proto::node::Node`]s over real UDP sockets. This
//! crate adds the shell: options ([`options`]), pacing ([`pacing`]), the
//! workers, data probes ([`data`]), and counting and reporting
//! ([`report`], the run over time in [`timeline`], the HTML page in
//! [`html`]; live as Prometheus metrics in [`metrics`]). [`run`] does a whole run in-process, so tests and other
//! programs can call it; [`reflect`] is the far end of the data path.

pub mod data;
pub mod demo;
pub mod html;
pub mod metrics;
pub mod options;
pub mod pacing;
pub mod reflect;
pub mod report;
pub mod socket_io;
pub mod target;
pub mod timeline;
pub mod worker;

use std::io::{self, IsTerminal};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use options::Options;
pub use report::Report;

use report::Tally;
use timeline::{Counts, Timeline};
use worker::{bind_groups, Shared, Worker, MAX_GROUPS_PER_WORKER};

/// Run `options` to the end and report. Errors only when the run cannot
/// start (options that do not fit together, sockets, or an LNS process to
/// watch that is not there); failures of the LNS are counted in the report.
pub fn run(options: &Options) -> io::Result<Report> {
    options
        .check()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut watch = match (options.lns_pid, &options.lns_name) {
        (Some(pid), _) => Some(target::Watch::start(pid)?),
        (None, Some(name)) => match target::find(name)? {
            Some(pid) => Some(target::Watch::start(pid)?),
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no process named {name}"),
                ))
            }
        },
        (None, None) => None,
    };
    let workers = options.worker_count();
    let (path, io_reason) = socket_io::choose(options.io)?;
    let started = Instant::now();
    // The timeout bounds setup (and a plain hold); a scenario's
    // `--duration` comes on top.
    let deadline =
        started + options.timeout_duration() + options.scenario_duration().unwrap_or_default();
    let seed = started.elapsed().as_nanos() as u64
        ^ u64::from(std::process::id()).rotate_left(32)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    // Worker w takes tunnels w, w + workers, ...; each gets a socket per
    // tunnel up to the cap, so the LNS sees many source ports.
    let shares: Vec<Vec<u32>> = (0..workers)
        .map(|w| (0..options.tunnels).skip(w).step_by(workers).collect())
        .collect();
    let mut groups = Vec::with_capacity(workers);
    for (w, tunnels) in shares.iter().enumerate() {
        let count = tunnels.len().clamp(1, MAX_GROUPS_PER_WORKER);
        groups.push(bind_groups(options, count, seed ^ (w as u64) << 48)?);
    }
    let shared = Arc::new(Shared::default());
    // Stops serving when the run ends (dropped with this frame).
    let _endpoint = match options.metrics {
        Some(addr) => {
            let shape = metrics::RunShape {
                planned: options.total_sessions(),
                workers,
                started,
            };
            let endpoint = metrics::Endpoint::start(addr, Arc::clone(&shared), shape)?;
            if !options.quiet {
                eprintln!("loadgen: metrics on http://{}/metrics", endpoint.addr);
            }
            Some(endpoint)
        }
        None => None,
    };
    let mut timeline = Timeline::default();
    let progress = (!options.quiet && std::io::stderr().is_terminal())
        .then(|| progress_bar(options.total_sessions()));
    let (tally, teardown) = std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .into_iter()
            .zip(groups)
            .enumerate()
            .map(|(w, (tunnels, groups))| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("loadgen-w{w}"))
                    .spawn_scoped(scope, move || {
                        Worker::new(options, &shared, workers, groups, tunnels, deadline, path)
                            .run()
                    })
            })
            .collect::<io::Result<_>>()?;
        let handles: Vec<_> = handles;
        // A short tick so timeline samples land close to their grid and
        // the run's end is seen at once; the progress line and the LNS
        // process are looked at every tenth tick.
        let mut tick = 0u32;
        while !handles.iter().all(|h| h.is_finished()) {
            if tick % 10 == 0 {
                if let Some(bar) = &progress {
                    update_progress(bar, &shared);
                }
                if let Some(watch) = &mut watch {
                    watch.sample();
                }
            }
            tick = tick.wrapping_add(1);
            timeline.offer(started.elapsed(), counts(&shared));
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(bar) = &progress {
            update_progress(bar, &shared);
            bar.finish_and_clear();
        }
        let mut total = Tally::default();
        let mut teardown = Duration::ZERO;
        for handle in handles {
            match handle.join() {
                Ok((tally, took)) => {
                    total.merge(&tally);
                    teardown = teardown.max(took);
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok::<_, io::Error>((total, teardown))
    })?;
    let wall = started.elapsed();
    // The workers have added everything they counted by now.
    timeline.finish(wall, counts(&shared));
    let mut report = Report::build(options, workers, &tally, wall, teardown);
    report.timeline = timeline;
    report.io = Some(match shared.io_fallback.get() {
        Some(reason) => {
            report::IoReport::new(options.io, socket_io::Path::Fallback, Some(reason.clone()))
        }
        None => report::IoReport::new(options.io, path, io_reason),
    });
    report.target = watch.map(|mut watch| {
        watch.sample();
        watch.report(tally.established)
    });
    Ok(report)
}

/// The live counters, as a timeline sample takes them.
fn counts(shared: &Shared) -> Counts {
    use std::sync::atomic::Ordering::Relaxed;
    Counts {
        attempted: shared.attempted.load(Relaxed),
        established: shared.established.load(Relaxed),
        failed: shared.failed.load(Relaxed),
        data_sent: shared.data_sent.load(Relaxed),
        data_received: shared.data_received.load(Relaxed),
        data_sent_bytes: shared.data_sent_bytes.load(Relaxed),
        data_received_bytes: shared.data_received_bytes.load(Relaxed),
    }
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    let style = indicatif::ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {pos}/{len} up  {msg}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar
}

fn update_progress(bar: &indicatif::ProgressBar, shared: &Shared) {
    use std::sync::atomic::Ordering::Relaxed;
    let up = shared.established.load(Relaxed);
    bar.set_position(up);
    bar.set_message(format!(
        "{} dialled, {} failed, {:.0}/s",
        shared.attempted.load(Relaxed),
        shared.failed.load(Relaxed),
        up as f64 / bar.elapsed().as_secs_f64().max(1e-3)
    ));
}
