//! The Prometheus endpoint's thread: a plain TCP listener serving
//! `GET /metrics` and `GET /healthz`, one request per connection, one
//! connection at a time. It never touches a shard's or the control
//! thread's state: it asks for a snapshot (`stats::collect`) the way
//! `lns show stats` does, and the threads answer between batches.
//!
//! A client cannot make it cost more than one bounded read: the head is
//! at most `http::MAX_HEAD` bytes and must arrive within [`REQUEST_TIME`];
//! anything else is a 400 (or a silent close), and no request touches the
//! daemon except the two that are meant to.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::manage::{Query, ShardHandles};
use super::stats;
use super::wake::Wake;
use crate::metrics::http::{self, HeadError, Route};
use crate::metrics::process::{self, Clock, ProcessStats};
use crate::metrics::{self as exposition, CONTENT_TYPE};

/// How long a client has to send its request head.
pub const REQUEST_TIME: Duration = Duration::from_secs(2);
/// How long writing the answer may take.
const WRITE_TIME: Duration = Duration::from_secs(5);

/// What the endpoint asks the daemon's threads with.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The control thread's query queue.
    pub queries: Sender<Query>,
    /// Wakes the control thread.
    pub wake: Wake,
    /// Every shard's command queue and wake.
    pub shards: ShardHandles,
}

/// Bind `addr` and serve the daemon's metrics until `stop` is set; the
/// bound address (its port resolved) and the thread.
pub fn serve(
    addr: SocketAddr,
    sources: Sources,
    stop: Arc<AtomicBool>,
) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    serve_every(addr, sources, stop, SNAPSHOT_INTERVAL)
}

/// [`serve`], taking a snapshot at most once per `interval`.
fn serve_every(
    addr: SocketAddr,
    sources: Sources,
    stop: Arc<AtomicBool>,
    interval: Duration,
) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let mut last: Option<(Instant, stats::Snapshot)> = None;
    serve_with(addr, "lns-metrics", stop, move |route| {
        // However fast a client asks, the daemon's threads take at most
        // one snapshot per interval; a request between gets the last one.
        let fresh = last.as_ref().is_some_and(|(at, _)| at.elapsed() < interval);
        if !fresh {
            let snapshot = stats::collect(&sources.queries, &sources.wake, &sources.shards);
            last = Some((Instant::now(), snapshot));
        }
        match &last {
            Some((_, snapshot)) => daemon_answer(route, snapshot),
            None => daemon_answer(route, &stats::Snapshot::default()),
        }
    })
}

/// The shortest time between two snapshots the endpoint asks for.
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(100);

/// What a handler answers for `/metrics` or `/healthz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Content-Type.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

/// Plain text, for the health check and errors.
pub const TEXT: &str = "text/plain; charset=utf-8";

/// Serve `/metrics` and `/healthz` with `handler` (asked only for those
/// two routes; everything else is answered here) on a thread named
/// `name` until `stop` is set. loadgen serves its own counters with it.
pub fn serve_with(
    addr: SocketAddr,
    name: &str,
    stop: Arc<AtomicBool>,
    mut handler: impl FnMut(Route) -> Answer + Send + 'static,
) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = answer(stream, &mut handler);
                    }
                    // Nothing waiting (or a transient accept error such
                    // as EMFILE): look again shortly.
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        })?;
    Ok((bound, thread))
}

/// The daemon's answers, from a snapshot of every thread's counters.
fn daemon_answer(route: Route, snapshot: &stats::Snapshot) -> Answer {
    if route == Route::Metrics {
        let families = exposition::families(snapshot, read_process().as_ref());
        return Answer {
            status: 200,
            content_type: CONTENT_TYPE,
            body: exposition::encode(&families),
        };
    }
    if snapshot.healthy() {
        return Answer {
            status: 200,
            content_type: TEXT,
            body: "ok\n".into(),
        };
    }
    let control = if snapshot.control.is_some() {
        "answering"
    } else {
        "silent"
    };
    Answer {
        status: 503,
        content_type: TEXT,
        body: format!(
            "unhealthy: control thread {control}, shards answering {} of {}\n",
            snapshot.reports.len(),
            snapshot.shards
        ),
    }
}

/// Read one request head, answer it, close.
fn answer(mut stream: TcpStream, handler: &mut impl FnMut(Route) -> Answer) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(WRITE_TIME))?;
    let deadline = Instant::now() + REQUEST_TIME;
    let mut head = vec![0u8; http::MAX_HEAD];
    let mut len = 0;
    let parsed = loop {
        match http::parse(&head[..len]) {
            Err(HeadError::Incomplete) => {}
            done => break done,
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            // Too slow: not worth an answer.
            return Ok(());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut head[len..]) {
            Ok(0) => return Ok(()),
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Ok(()),
        }
    };
    let (route, head_only) = http::route(parsed);
    let reply = match route {
        Route::Metrics | Route::Health => {
            let a = handler(route);
            http::response(a.status, a.content_type, &a.body, head_only)
        }
        Route::NotFound => http::response(404, TEXT, "not found\n", head_only),
        Route::MethodNotAllowed => http::response(405, TEXT, "only GET and HEAD\n", false),
        Route::BadRequest => http::response(400, TEXT, "bad request\n", false),
    };
    stream.write_all(&reply)?;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    // Closing with unread input would reset the connection and could
    // destroy the answer in flight: read a little of what is left first.
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    let _ = io::copy(&mut (&stream).take(64 * 1024), &mut io::sink());
    Ok(())
}

/// This process's `process_*` figures from /proc; none when unreadable.
pub fn read_process() -> Option<ProcessStats> {
    // SAFETY: sysconf only reads a configuration value.
    let (tick, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    let clock = Clock {
        ticks_per_second: if tick > 0 { tick as f64 } else { 100.0 },
        page_size: u64::try_from(page).unwrap_or(4096),
        boot_time: process::parse_boot_time(&boot)?,
    };
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let mut stats = process::parse_stat(&stat, &clock)?;
    stats.open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|dir| dir.count() as u64);
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for the kernel to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        stats.max_fds = Some(limit.rlim_cur);
    }
    Some(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::manage::Reply;
    use crate::io::stats::ControlSnapshot;

    /// Sources with no shards, and the receiving end of their query queue
    /// (the test plays the control thread).
    fn shardless_sources() -> (Sources, crossbeam_channel::Receiver<Query>) {
        let (tx, rx) = crossbeam_channel::bounded::<Query>(4);
        let sources = Sources {
            queries: tx,
            wake: Wake::new().unwrap(),
            shards: Vec::new(),
        };
        (sources, rx)
    }

    /// A request over a real socket to an endpoint whose "control thread"
    /// is a test thread answering `answers` queries.
    fn exchange(request: &[u8], answers: usize) -> String {
        let (sources, rx) = shardless_sources();
        let stop = Arc::new(AtomicBool::new(false));
        let (addr, server) =
            serve("127.0.0.1:0".parse().unwrap(), sources, Arc::clone(&stop)).unwrap();
        let control = std::thread::spawn(move || {
            for _ in 0..answers {
                let query = rx.recv().unwrap();
                let mut snapshot = ControlSnapshot::default();
                snapshot.counters.sessions_up = 42;
                query.reply.send(Reply::Stats(Box::new(snapshot))).unwrap();
            }
        });
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(request).unwrap();
        let mut answer = String::new();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let _ = stream.read_to_string(&mut answer);
        control.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap();
        answer
    }

    #[test]
    fn metrics_are_served_from_a_snapshot() {
        let answer = exchange(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 1);
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(
            answer.contains("Content-Type: text/plain; version=0.0.4"),
            "{answer}"
        );
        assert!(
            answer.contains("lns_session_setups_total{result=\"success\"} 42\n"),
            "{answer}"
        );
        assert!(
            answer.contains("# TYPE process_cpu_seconds_total counter\n"),
            "{answer}"
        );
        let body = answer.split("\r\n\r\n").nth(1).unwrap();
        let length: usize = answer
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(body.len(), length);
    }

    #[test]
    fn health_is_ok_when_every_thread_answers() {
        let answer = exchange(b"GET /healthz HTTP/1.1\r\n\r\n", 1);
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nok\n"), "{answer}");
    }

    #[test]
    fn health_is_503_when_a_thread_is_silent() {
        // A control thread that is gone and a shard that never reads its
        // queue: both show in the answer, after the shards' wait.
        let (tx, rx) = crossbeam_channel::bounded::<Query>(4);
        drop(rx);
        let (shard_tx, _shard_rx) = crate::io::queue::limited(4);
        let stop = Arc::new(AtomicBool::new(false));
        let sources = Sources {
            queries: tx,
            wake: Wake::new().unwrap(),
            shards: vec![(shard_tx, Wake::new().unwrap())],
        };
        let (addr, server) =
            serve("127.0.0.1:0".parse().unwrap(), sources, Arc::clone(&stop)).unwrap();
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{answer}"
        );
        assert!(
            answer.ends_with("control thread silent, shards answering 0 of 1\n"),
            "{answer}"
        );
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap();
    }

    #[test]
    fn bad_and_unknown_requests_never_reach_the_daemon() {
        // The control stand-in answers nothing: a query would hang it.
        let answer = exchange(b"GET /nope HTTP/1.1\r\n\r\n", 0);
        assert!(answer.starts_with("HTTP/1.1 404 Not Found\r\n"), "{answer}");
        let answer = exchange(b"BREW /metrics HTCPCP/1.0\r\n\r\n", 0);
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );
        let answer = exchange(b"POST /metrics HTTP/1.1\r\n\r\n", 0);
        assert!(
            answer.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{answer}"
        );
        let mut flood = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        flood.resize(http::MAX_HEAD + 100, b'a');
        let answer = exchange(&flood, 0);
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );
    }

    #[test]
    fn a_silent_client_is_dropped_after_the_request_time() {
        let t0 = Instant::now();
        let answer = exchange(b"GET /metrics HTTP/1.1\r\n", 0);
        assert_eq!(answer, "");
        let took = t0.elapsed();
        assert!(took >= REQUEST_TIME && took < REQUEST_TIME * 3, "{took:?}");
    }

    #[test]
    fn scrapes_in_quick_succession_share_one_snapshot() {
        let (sources, rx) = shardless_sources();
        let stop = Arc::new(AtomicBool::new(false));
        let interval = Duration::from_millis(500);
        let any = "127.0.0.1:0".parse().unwrap();
        let (addr, server) = serve_every(any, sources, Arc::clone(&stop), interval).unwrap();
        let control = std::thread::spawn(move || {
            let mut answered = 0;
            while let Ok(query) = rx.recv_timeout(Duration::from_secs(3)) {
                answered += 1;
                let mut snapshot = ControlSnapshot::default();
                snapshot.counters.sessions_up = answered;
                query.reply.send(Reply::Stats(Box::new(snapshot))).unwrap();
            }
            answered
        });
        let scrape = || {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).unwrap();
            answer
        };
        let first = scrape();
        let second = scrape();
        assert!(
            first.contains("lns_session_setups_total{result=\"success\"} 1\n"),
            "{first}"
        );
        assert!(
            second.contains("lns_session_setups_total{result=\"success\"} 1\n"),
            "{second}"
        );
        std::thread::sleep(interval + Duration::from_millis(50));
        let third = scrape();
        assert!(
            third.contains("lns_session_setups_total{result=\"success\"} 2\n"),
            "{third}"
        );
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap();
        assert_eq!(control.join().unwrap(), 2);
    }

    #[test]
    fn the_process_figures_are_read() {
        let p = read_process().unwrap();
        assert!(p.resident_bytes > 0 && p.threads >= 1, "{p:?}");
        assert!(p.open_fds.unwrap() > 0 && p.max_fds.unwrap() > 0, "{p:?}");
        assert!(p.start_time_seconds > 1.0e9, "{p:?}");
    }
}
