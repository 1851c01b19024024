//! `--metrics ADDR`: loadgen's live counters as Prometheus metrics while a
//! run lasts, so a test run can be watched on the same dashboards as the
//! LNS. The daemon's endpoint code serves them (`lns::io::metrics`); the
//! numbers are the ones the progress line and the timeline read: each
//! worker adds what it counted once per turn of its loop, never per packet.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use lns::io::metrics::{read_process, serve_with, Answer, TEXT};
use lns::metrics::http::Route;
use lns::metrics::{encode, process_families, Families, CONTENT_TYPE};

use crate::worker::Shared;

/// What the families describe besides the live counters.
#[derive(Debug, Clone, Copy)]
pub struct RunShape {
    /// Sessions the run will dial.
    pub planned: u64,
    /// Worker threads.
    pub workers: usize,
    /// When the run started.
    pub started: Instant,
}

/// The exposition of `shared` now.
pub fn exposition(shared: &Shared, shape: &RunShape) -> String {
    let mut out = Families::default();
    out.gauges(
        "loadgen_build_info",
        "Build of the running loadgen (always 1).",
        [(vec![("version", env!("CARGO_PKG_VERSION"))], 1.0)],
    );
    out.gauge(
        "loadgen_sessions_planned",
        "Sessions this run will dial.",
        shape.planned as f64,
    );
    out.gauge("loadgen_workers", "Worker threads.", shape.workers as f64);
    out.gauge(
        "loadgen_workers_setup_done",
        "Workers whose sessions are all up or failed.",
        shared.setup_done.load(Relaxed) as f64,
    );
    out.counter_f64(
        "loadgen_run_seconds_total",
        "Time since the run started.",
        shape.started.elapsed().as_secs_f64(),
    );
    out.counters(
        "loadgen_sessions_total",
        "Sessions by outcome so far: attempted (dialled), established (PPP up), failed.",
        [
            (
                vec![("outcome", "attempted")],
                shared.attempted.load(Relaxed),
            ),
            (
                vec![("outcome", "established")],
                shared.established.load(Relaxed),
            ),
            (vec![("outcome", "failed")], shared.failed.load(Relaxed)),
        ],
    );
    out.counters(
        "loadgen_data_packets_total",
        "Data probes sent up the sessions (direction=out) and received back (direction=in).",
        [
            (vec![("direction", "out")], shared.data_sent.load(Relaxed)),
            (
                vec![("direction", "in")],
                shared.data_received.load(Relaxed),
            ),
        ],
    );
    out.counters(
        "loadgen_data_bytes_total",
        "IP bytes of those probes (IP and UDP headers included).",
        [
            (
                vec![("direction", "out")],
                shared.data_sent_bytes.load(Relaxed),
            ),
            (
                vec![("direction", "in")],
                shared.data_received_bytes.load(Relaxed),
            ),
        ],
    );
    if let Some(p) = read_process() {
        process_families(&mut out, &p);
    }
    encode(&out.finish())
}

/// The endpoint of a run: stops when dropped.
#[derive(Debug)]
pub struct Endpoint {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Endpoint {
    /// Serve `shared` on `addr`.
    pub fn start(addr: SocketAddr, shared: Arc<Shared>, shape: RunShape) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let (addr, thread) = serve_with(
            addr,
            "loadgen-metrics",
            Arc::clone(&stop),
            move |route| match route {
                Route::Health => Answer {
                    status: 200,
                    content_type: TEXT,
                    body: "ok\n".into(),
                },
                _ => Answer {
                    status: 200,
                    content_type: CONTENT_TYPE,
                    body: exposition(&shared, &shape),
                },
            },
        )?;
        Ok(Endpoint {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_counters_are_exposed_with_help_and_type() {
        let shared = Shared::default();
        shared.attempted.store(10, Relaxed);
        shared.established.store(8, Relaxed);
        shared.failed.store(1, Relaxed);
        shared.data_sent.store(40, Relaxed);
        shared.data_sent_bytes.store(40 * 92, Relaxed);
        let shape = RunShape {
            planned: 12,
            workers: 2,
            started: Instant::now(),
        };
        let text = exposition(&shared, &shape);
        for line in [
            "loadgen_sessions_total{outcome=\"established\"} 8",
            "loadgen_sessions_total{outcome=\"failed\"} 1",
            "loadgen_sessions_planned 12",
            "loadgen_data_packets_total{direction=\"out\"} 40",
            "loadgen_data_bytes_total{direction=\"out\"} 3680",
            "loadgen_data_packets_total{direction=\"in\"} 0",
            "# TYPE loadgen_sessions_total counter",
            "# TYPE loadgen_run_seconds_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = line.split(' ').nth(2).unwrap_or_default();
            assert!(name.starts_with("loadgen_") || name.starts_with("process_"));
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
        }
    }
}
