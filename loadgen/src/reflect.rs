//! `loadgen reflect`: a UDP reflector for the far end of the data path.
//! Every datagram goes back to its sender unchanged, so a session's packet
//! travels LAC → LNS → reflector → LNS → LAC and `loadgen run` measures
//! loss and round-trip time end to end.
//!
//! One thread per socket, the sockets in one `SO_REUSEPORT` group (the
//! kernel spreads senders over them), `recvmmsg`/`sendmmsg` batches.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lns::io::batch::{RecvBatch, SendBatch};
use lns::io::udp::{bind_reuseport, local_addr, SocketOptions};

/// Datagrams per `recvmmsg`.
const BATCH: usize = 64;

/// The largest datagram reflected whole (longer ones are truncated).
const DATAGRAM_MAX: usize = 9000;

/// How often a thread looks at the stop flag while idle.
const POLL_MS: i32 = 50;

/// What a reflector did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReflectStats {
    /// Datagrams received.
    pub received: u64,
    /// Datagrams handed back to the kernel.
    pub reflected: u64,
    /// Bytes received (UDP payload).
    pub bytes: u64,
}

impl ReflectStats {
    fn add(&mut self, other: ReflectStats) {
        self.received += other.received;
        self.reflected += other.reflected;
        self.bytes += other.bytes;
    }
}

impl std::fmt::Display for ReflectStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} datagrams received ({} bytes), {} reflected",
            self.received, self.bytes, self.reflected
        )
    }
}

/// Bound sockets, not yet serving.
#[derive(Debug)]
pub struct Reflector {
    sockets: Vec<OwnedFd>,
    addr: SocketAddr,
}

impl Reflector {
    /// Bind `workers` sockets to `listen` (port 0: the first picks one and
    /// the others join it).
    pub fn bind(listen: SocketAddr, workers: usize) -> io::Result<Reflector> {
        let options = SocketOptions::default();
        let first = bind_reuseport(listen, options)?;
        let addr = local_addr(&first)?;
        let mut sockets = vec![first];
        for _ in 1..workers.max(1) {
            sockets.push(bind_reuseport(addr, options)?);
        }
        Ok(Reflector { sockets, addr })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Reflect until `stop` is set; the counts over all threads.
    pub fn serve(self, stop: &AtomicBool) -> io::Result<ReflectStats> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .sockets
                .iter()
                .enumerate()
                .map(|(i, socket)| {
                    std::thread::Builder::new()
                        .name(format!("reflect-{i}"))
                        .spawn_scoped(scope, move || reflect_loop(socket, stop))
                })
                .collect::<io::Result<_>>()?;
            let mut total = ReflectStats::default();
            for handle in handles {
                match handle.join() {
                    Ok(stats) => total.add(stats),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            Ok(total)
        })
    }

    /// Reflect on background threads (they live in the caller's network
    /// namespace) until [`Running::stop`].
    pub fn spawn(self) -> io::Result<Running> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let addr = self.addr;
        let thread = std::thread::Builder::new()
            .name("reflector".into())
            .spawn(move || self.serve(&flag))?;
        Ok(Running { stop, thread, addr })
    }
}

/// A reflector serving in the background.
#[derive(Debug)]
pub struct Running {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<io::Result<ReflectStats>>,
    addr: SocketAddr,
}

impl Running {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop it and collect the counts.
    pub fn stop(self) -> io::Result<ReflectStats> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Bind `listen` with `workers` threads and reflect until `stop` is set
/// or `duration` has passed.
pub fn serve(
    listen: SocketAddr,
    workers: usize,
    duration: Option<Duration>,
    stop: &AtomicBool,
) -> io::Result<ReflectStats> {
    let reflector = Reflector::bind(listen, workers)?;
    match duration {
        None => reflector.serve(stop),
        Some(duration) => {
            let end = Instant::now() + duration;
            let done = AtomicBool::new(false);
            std::thread::scope(|scope| {
                let timer = scope.spawn(|| {
                    while !done.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                        let left = end.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        std::thread::sleep(left.min(Duration::from_millis(50)));
                    }
                    stop.store(true, Ordering::Relaxed);
                });
                let result = reflector.serve(stop);
                done.store(true, Ordering::Relaxed);
                let _ = timer.join();
                result
            })
        }
    }
}

/// One thread: receive a batch, send each datagram back to its sender.
fn reflect_loop(socket: &OwnedFd, stop: &AtomicBool) -> ReflectStats {
    let fd = socket.as_raw_fd();
    let mut recv = RecvBatch::new(BATCH, DATAGRAM_MAX);
    let mut send = SendBatch::new();
    let mut stats = ReflectStats::default();
    while !stop.load(Ordering::Relaxed) {
        let n = match recv.recv(fd) {
            Ok(n) => n,
            // An ICMP error for an earlier reply (the sender went away):
            // consumed by the failed call, read on.
            Err(_) => continue,
        };
        if n == 0 {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one live pollfd.
            unsafe { libc::poll(&mut pfd, 1, POLL_MS) };
            continue;
        }
        for i in 0..n {
            if let Some((datagram, from)) = recv.get(i) {
                stats.received += 1;
                stats.bytes += datagram.len() as u64;
                send.push(from, datagram);
            }
        }
        // What the socket refuses now is lost, as on a wire.
        if let Ok(sent) = send.flush(fd) {
            stats.reflected += sent as u64;
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn every_datagram_goes_back_to_its_sender() {
        let reflector = Reflector::bind("127.0.0.1:0".parse().unwrap(), 2).unwrap();
        let addr = reflector.local_addr();
        assert_ne!(addr.port(), 0);
        let running = reflector.spawn().unwrap();
        let clients: Vec<UdpSocket> = (0..4)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        for (c, client) in clients.iter().enumerate() {
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            for i in 0..10u8 {
                client.send_to(&[c as u8, i, 42], addr).unwrap();
            }
        }
        let mut buf = [0u8; 64];
        for (c, client) in clients.iter().enumerate() {
            let mut seen = Vec::new();
            for _ in 0..10 {
                let (n, from) = client.recv_from(&mut buf).unwrap();
                assert_eq!(from, addr);
                assert_eq!(n, 3);
                assert_eq!(buf[0], c as u8, "back to its own sender");
                seen.push(buf[1]);
            }
            seen.sort_unstable();
            assert_eq!(seen, (0..10).collect::<Vec<u8>>());
        }
        let stats = running.stop().unwrap();
        assert_eq!(stats.received, 40);
        assert_eq!(stats.reflected, 40);
        assert_eq!(stats.bytes, 120);
    }

    #[test]
    fn serve_ends_after_its_duration() {
        let stop = AtomicBool::new(false);
        let t0 = Instant::now();
        let stats = serve(
            "127.0.0.1:0".parse().unwrap(),
            1,
            Some(Duration::from_millis(200)),
            &stop,
        )
        .unwrap();
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(200), "{took:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
        assert_eq!(stats, ReflectStats::default());
    }
}
