//! A worker's socket I/O, behind one small interface with two back ends:
//!
//! - io_uring ([`Path::IoUring`]): one ring per worker, a multishot
//!   `RecvMsg` on every group socket drawing from a provided-buffer ring,
//!   one `SendMsg` per datagram, and the wait for the next deadline done
//!   by the ring (`io_uring_enter` with a timeout) — the daemon's parts
//!   (`lns::io::ring`), driven by this loop.
//! - the fallback ([`Path::Fallback`]): `poll(2)`, then `recvmmsg(2)` and
//!   `sendmmsg(2)` batches (`lns::io::batch`).
//!
//! Either way datagrams queued for a socket leave in the order they were
//! queued, and what the kernel refuses (a full send buffer) is dropped as
//! on a wire: the protocols retransmit.

use std::io;
use std::mem::ManuallyDrop;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode};
use lns::io::batch::{RecvBatch, SendBatch};
use lns::io::ring::{self, recv_buffer_len, BufRing, RecvHeader, Ring, SendOp, UNTRACKED};

/// `--io`: which I/O path the workers take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IoChoice {
    /// The path that measured cheaper (the fallback, see
    /// docs/decisions.md); LOADGEN_IO=uring or LOADGEN_IO=fallback in the
    /// environment decides instead (to run a whole test suite on one path).
    Auto,
    /// io_uring; the run fails to start without it.
    Uring,
    /// `poll` + `recvmmsg`/`sendmmsg`, even where io_uring works.
    Fallback,
}

/// The path a worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// The ring.
    IoUring,
    /// `poll` + `recvmmsg`/`sendmmsg`.
    Fallback,
}

impl Path {
    /// The name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Path::IoUring => "io_uring",
            Path::Fallback => "fallback",
        }
    }
}

/// The environment variable that overrides `--io auto`.
pub const ENV: &str = "LOADGEN_IO";

/// What `--io auto` takes. The fallback: measured against our daemon, the
/// ring costs loadgen as much CPU per storm and per data packet, within
/// the noise (docs/benchmarks.md, "loadgen I/O"; docs/decisions.md), and
/// the fallback runs everywhere. Set to [`Path::IoUring`], auto probes
/// and takes the ring where it runs.
pub const AUTO_PREFERS: Path = Path::Fallback;

/// The path for `mode`, and why it is the fallback when it is: an error
/// only when io_uring was demanded and cannot run here.
pub fn choose(mode: IoChoice) -> io::Result<(Path, Option<String>)> {
    let (mode, forced_by) = match (mode, std::env::var(ENV).ok().as_deref()) {
        (IoChoice::Auto, Some("uring")) => (IoChoice::Uring, format!("{ENV}=uring")),
        (IoChoice::Auto, Some("fallback")) => (IoChoice::Fallback, format!("{ENV}=fallback")),
        (mode, _) => (mode, "--io".to_string()),
    };
    if mode == IoChoice::Fallback {
        return Ok((Path::Fallback, Some(format!("forced by {forced_by}"))));
    }
    if mode == IoChoice::Auto && AUTO_PREFERS == Path::Fallback {
        let why = "auto: it measured as cheap as io_uring; --io uring for the ring";
        return Ok((Path::Fallback, Some(why.to_string())));
    }
    match probe() {
        Ok(()) => Ok((Path::IoUring, None)),
        Err(reason) if mode == IoChoice::Uring => Err(io::Error::other(format!(
            "io_uring demanded ({forced_by}) but unavailable: {reason}"
        ))),
        Err(reason) => Ok((Path::Fallback, Some(reason))),
    }
}

/// Whether this kernel (or container) runs the ring path.
pub fn probe() -> Result<(), String> {
    ring::probe(&[
        (opcode::RecvMsg::CODE, "RecvMsg"),
        (opcode::SendMsg::CODE, "SendMsg"),
        (opcode::AsyncCancel::CODE, "AsyncCancel"),
    ])
}

/// A worker's I/O over its group sockets (indexed as the groups are).
#[derive(Debug)]
pub enum WorkerIo {
    /// See [`Path::IoUring`] (boxed: the ring's state is large, and there
    /// is one per worker).
    Uring(Box<UringIo>),
    /// See [`Path::Fallback`].
    Poll(PollIo),
}

impl WorkerIo {
    /// I/O on `sockets` along `path`; a ring that cannot be set up falls
    /// back, with the reason.
    pub fn new(path: Path, sockets: Vec<RawFd>) -> (WorkerIo, Option<String>) {
        match path {
            Path::Fallback => (WorkerIo::Poll(PollIo::new(sockets)), None),
            Path::IoUring => match UringIo::new(&sockets) {
                Ok(io) => (WorkerIo::Uring(Box::new(io)), None),
                Err(e) => (
                    WorkerIo::Poll(PollIo::new(sockets)),
                    Some(format!("worker ring setup: {e}")),
                ),
            },
        }
    }

    /// The path this worker runs.
    pub fn path(&self) -> Path {
        match self {
            WorkerIo::Uring(_) => Path::IoUring,
            WorkerIo::Poll(_) => Path::Fallback,
        }
    }

    /// Queue `datagram` to `to` on socket `socket`.
    pub fn send(&mut self, socket: usize, to: SocketAddr, datagram: &[u8]) {
        match self {
            WorkerIo::Uring(io) => io.send(socket, to, datagram),
            WorkerIo::Poll(io) => io.send(socket, to, datagram),
        }
    }

    /// Hand what is queued to the kernel (the ring submits it with the
    /// next wait, in the same system call).
    pub fn flush(&mut self) {
        match self {
            WorkerIo::Uring(_) => {}
            WorkerIo::Poll(io) => io.flush(),
        }
    }

    /// Wait until a datagram arrives or `until`, whichever is first, and
    /// hand what arrived to `on_datagram` (socket, when read, sender,
    /// bytes).
    pub fn wait(
        &mut self,
        until: Instant,
        on_datagram: impl FnMut(usize, Instant, SocketAddr, &[u8]),
    ) {
        match self {
            WorkerIo::Uring(io) => io.wait(until, on_datagram),
            WorkerIo::Poll(io) => io.wait(until, on_datagram),
        }
    }
}

/// Datagrams per `recvmmsg`.
const RECV_BATCH: usize = 64;
/// The largest datagram a worker takes (larger ones are truncated by the
/// fallback, dropped by the ring).
const MAX_DATAGRAM: usize = 4096;

/// `poll` + `recvmmsg`/`sendmmsg`.
#[derive(Debug)]
pub struct PollIo {
    sockets: Vec<RawFd>,
    fds: Vec<libc::pollfd>,
    /// Batches live on the worker's thread (they hold raw pointers).
    recv: RecvBatch,
    /// One send batch per socket.
    out: Vec<SendBatch>,
}

impl PollIo {
    fn new(sockets: Vec<RawFd>) -> PollIo {
        PollIo {
            fds: Vec::with_capacity(sockets.len()),
            recv: RecvBatch::new(RECV_BATCH, MAX_DATAGRAM),
            out: sockets.iter().map(|_| SendBatch::new()).collect(),
            sockets,
        }
    }

    fn send(&mut self, socket: usize, to: SocketAddr, datagram: &[u8]) {
        if let Some(out) = self.out.get_mut(socket) {
            out.push(to, datagram);
        }
    }

    fn flush(&mut self) {
        for (out, &fd) in self.out.iter_mut().zip(&self.sockets) {
            if !out.is_empty() {
                // What the socket refuses is lost like on a wire.
                let _ = out.flush(fd);
            }
        }
    }

    fn wait(
        &mut self,
        until: Instant,
        mut on_datagram: impl FnMut(usize, Instant, SocketAddr, &[u8]),
    ) {
        self.fds.clear();
        self.fds.extend(self.sockets.iter().map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        }));
        let wait = until.saturating_duration_since(Instant::now());
        let ms = wait.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // SAFETY: `fds` is a live array of `fds.len()` pollfds.
        let n = unsafe { libc::poll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, ms) };
        if n <= 0 {
            return;
        }
        for socket in 0..self.fds.len() {
            if self.fds[socket].revents & libc::POLLIN != 0 {
                self.receive(socket, &mut on_datagram);
            }
        }
    }

    /// Everything waiting on `socket`.
    fn receive(
        &mut self,
        socket: usize,
        on_datagram: &mut impl FnMut(usize, Instant, SocketAddr, &[u8]),
    ) {
        let fd = self.sockets[socket];
        let mut errors = 0;
        loop {
            let n = match self.recv.recv(fd) {
                Ok(n) => n,
                // An ICMP error queued on the socket (port unreachable) is
                // reported once and consumed: read on. The protocol's
                // timers deal with the silence.
                Err(_) if errors < 8 => {
                    errors += 1;
                    continue;
                }
                Err(_) => break,
            };
            if n == 0 {
                break;
            }
            let now = Instant::now();
            for i in 0..n {
                if let Some((datagram, from)) = self.recv.get(i) {
                    on_datagram(socket, now, from, datagram);
                }
            }
            if n < RECV_BATCH {
                break;
            }
        }
    }
}

/// Submission queue entries per worker ring (completions: twice that).
const RING_ENTRIES: u32 = 1024;
/// Provided receive buffers per worker (a power of two): a storm's
/// answers to 64 sockets arrive in bursts.
const RECV_BUFFERS: u16 = 1024;
/// The buffer group of a worker ring's receive buffers.
const BGID: u16 = 0;
/// Completions handled per wake before the worker's timers run again.
const BUDGET: usize = 2048;
/// Errors in a row a socket's receive may end with before it is re-armed
/// only after a pause (doubling up to [`MAX_REST`]): an error that
/// repeats must not spin the loop.
const ERRORS_BEFORE_REST: u32 = 3;
/// The longest pause between two attempts of a failing receive.
const MAX_REST: Duration = Duration::from_secs(1);

/// What the ring holds.
enum Op {
    Recv { socket: usize },
    Send(Box<SendOp>),
}

/// The ring path.
pub struct UringIo {
    // Dropped by hand (see `Drop`): the ring before the memory it uses.
    ring: ManuallyDrop<Ring<Op>>,
    bufs: ManuallyDrop<BufRing>,
    header: ManuallyDrop<RecvHeader>,
    sockets: Vec<RawFd>,
    // Boxed: a `SendOp` points into itself and moves into the slab.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<SendOp>>,
    cqes: Vec<cqueue::Entry>,
    /// Sockets whose multishot receive ended this round, to re-arm once
    /// the round's buffers are back.
    ended: Vec<usize>,
    /// Errors in a row per socket.
    errors: Vec<u32>,
    /// Sockets resting after repeated errors, and until when.
    resting: Vec<(usize, Instant)>,
}

impl std::fmt::Debug for UringIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringIo")
            .field("sockets", &self.sockets.len())
            .field("ring", &*self.ring)
            .finish_non_exhaustive()
    }
}

impl UringIo {
    fn new(sockets: &[RawFd]) -> io::Result<UringIo> {
        UringIo::with_buffers(sockets, RECV_BUFFERS)
    }

    /// With `buffers` receive buffers (a power of two).
    fn with_buffers(sockets: &[RawFd], buffers: u16) -> io::Result<UringIo> {
        let mut ring = Ring::for_this_thread(RING_ENTRIES)?;
        let bufs = BufRing::new(ring.uring(), BGID, buffers, recv_buffer_len(MAX_DATAGRAM))?;
        let mut io = UringIo {
            ring: ManuallyDrop::new(ring),
            bufs: ManuallyDrop::new(bufs),
            header: ManuallyDrop::new(RecvHeader::default()),
            sockets: sockets.to_vec(),
            spare: Vec::new(),
            cqes: Vec::with_capacity(BUDGET),
            ended: Vec::new(),
            errors: vec![0; sockets.len()],
            resting: Vec::new(),
        };
        for socket in 0..sockets.len() {
            io.arm(socket);
        }
        Ok(io)
    }

    fn arm(&mut self, socket: usize) {
        let index = self.ring.track(Op::Recv { socket });
        let entry = self
            .header
            .entry(self.sockets[socket], BGID)
            .user_data(index);
        // SAFETY: the header and the buffer ring live until the ring is
        // gone (see `Drop`).
        unsafe { self.ring.push(entry) };
    }

    fn send(&mut self, socket: usize, to: SocketAddr, datagram: &[u8]) {
        let Some(&fd) = self.sockets.get(socket) else {
            return;
        };
        let mut op = self
            .spare
            .pop()
            .unwrap_or_else(|| SendOp::boxed(MAX_DATAGRAM));
        // MSG_DONTWAIT: a full send buffer fails the send at once (dropped,
        // as the fallback drops it) instead of the ring parking it and
        // sending it after datagrams queued later.
        let entry = op.prepare(fd, to, datagram, libc::MSG_DONTWAIT);
        let index = self.ring.track(Op::Send(op));
        // SAFETY: the entry points into the op the slab holds until its
        // completion.
        unsafe { self.ring.push(entry.user_data(index)) };
    }

    fn wait(
        &mut self,
        until: Instant,
        mut on_datagram: impl FnMut(usize, Instant, SocketAddr, &[u8]),
    ) {
        loop {
            let now = Instant::now();
            self.wake_rested(now);
            let rest_end = self.resting.iter().map(|&(_, at)| at).min();
            let wake = rest_end.map_or(until, |at| at.min(until));
            // Whole milliseconds, rounded up as poll(2) rounds: deadlines
            // a few microseconds apart (the probes' schedule) are served
            // by one wake rather than one each.
            let timeout = ceil_ms(wake.saturating_duration_since(now));
            if self.ring.submit_and_wait(1, Some(timeout)).is_err() {
                // The ring refused the wait itself: sleep it instead, so
                // an error that repeats cannot spin the worker.
                std::thread::sleep(timeout);
                return;
            }
            self.ring.reap(BUDGET, &mut self.cqes);
            let now = Instant::now();
            let mut received = false;
            let cqes = std::mem::take(&mut self.cqes);
            for cqe in &cqes {
                received |= self.complete(cqe, now, &mut on_datagram);
            }
            self.cqes = cqes;
            // The round's buffers go back before ended receives re-arm:
            // an ENOBUFS ended one because they were all taken.
            self.bufs.publish();
            while let Some(socket) = self.ended.pop() {
                self.arm(socket);
            }
            // Send completions alone are no reason to wake the worker.
            if received || now >= until {
                return;
            }
        }
    }

    /// Handle one completion: whether it carried a datagram.
    fn complete(
        &mut self,
        cqe: &cqueue::Entry,
        now: Instant,
        on_datagram: &mut impl FnMut(usize, Instant, SocketAddr, &[u8]),
    ) -> bool {
        let index = cqe.user_data();
        if index == UNTRACKED {
            return false;
        }
        let (result, flags) = (cqe.result(), cqe.flags());
        let more = cqueue::more(flags);
        let op = match self.ring.get(index) {
            Some(Op::Recv { socket }) if more => Some(Op::Recv { socket: *socket }),
            _ => self.ring.untrack(index),
        };
        match op {
            Some(Op::Recv { socket }) => {
                let mut received = false;
                if let (Ok(len), Some(bid)) =
                    (usize::try_from(result), cqueue::buffer_select(flags))
                {
                    if let Some(buf) = self.bufs.get_mut(bid, len) {
                        if let Some((from, datagram)) = self.header.received(buf) {
                            on_datagram(socket, now, from, datagram);
                            received = true;
                        }
                    }
                    self.bufs.push(bid);
                    self.errors[socket] = 0;
                }
                if !more {
                    self.receive_ended(socket, result, now);
                }
                received
            }
            Some(Op::Send(op)) => {
                // A refused send (full buffer, ICMP error reported on the
                // socket) is a datagram lost on the wire.
                self.spare.push(op);
                false
            }
            None => false,
        }
    }

    /// `socket`'s multishot receive ended with `result`: re-arm it at the
    /// end of the round, or after a pause when it keeps failing.
    fn receive_ended(&mut self, socket: usize, result: i32, now: Instant) {
        if result >= 0 || result == -libc::ENOBUFS {
            self.ended.push(socket);
            return;
        }
        let errors = &mut self.errors[socket];
        *errors = errors.saturating_add(1);
        if *errors <= ERRORS_BEFORE_REST {
            self.ended.push(socket);
        } else {
            let doublings = (*errors - ERRORS_BEFORE_REST).min(10);
            let rest = Duration::from_millis(1 << doublings).min(MAX_REST);
            self.resting.push((socket, now + rest));
        }
    }

    /// Re-arm the sockets whose rest is over.
    fn wake_rested(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.resting.len() {
            if self.resting[i].1 <= now {
                let (socket, _) = self.resting.swap_remove(i);
                self.arm(socket);
            } else {
                i += 1;
            }
        }
    }
}

/// `d` rounded up to whole milliseconds.
fn ceil_ms(d: Duration) -> Duration {
    let ms = d.as_micros().div_ceil(1000);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

impl Drop for UringIo {
    fn drop(&mut self) {
        // Only once the kernel has let go of every receive and send may
        // their memory go; if it will not, leak it.
        if self.ring.cancel_all() {
            // SAFETY: each dropped once, here; the ring first, and nothing
            // in flight uses the buffers or the header any more.
            unsafe {
                ManuallyDrop::drop(&mut self.ring);
                ManuallyDrop::drop(&mut self.bufs);
                ManuallyDrop::drop(&mut self.header);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    /// Two sockets on each path: datagrams queued in order leave and
    /// arrive in order, each reported with its socket and sender; a wait
    /// with nothing to read ends at its deadline.
    #[test]
    fn both_paths_carry_datagrams_in_order_and_wait_for_their_deadline() {
        for path in [Path::IoUring, Path::Fallback] {
            if path == Path::IoUring {
                if let Err(reason) = probe() {
                    eprintln!("SKIPPED the io_uring half: {reason}");
                    continue;
                }
            }
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = UdpSocket::bind("127.0.0.1:0").unwrap();
            for s in [&a, &b] {
                s.set_nonblocking(true).unwrap();
            }
            let (mut io, fell_back) = WorkerIo::new(path, vec![a.as_raw_fd(), b.as_raw_fd()]);
            assert_eq!((io.path(), fell_back), (path, None));
            let to_b = b.local_addr().unwrap();
            let to_a = a.local_addr().unwrap();
            for i in 0..200u16 {
                io.send(0, to_b, &i.to_be_bytes());
            }
            io.send(1, to_a, b"from b");
            io.flush();
            let mut got: Vec<(usize, SocketAddr, Vec<u8>)> = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(5);
            while got.len() < 201 && Instant::now() < deadline {
                io.wait(deadline, |socket, _, from, d| {
                    got.push((socket, from, d.to_vec()))
                });
            }
            let on_b: Vec<Vec<u8>> = got
                .iter()
                .filter(|(s, from, _)| *s == 1 && *from == to_a)
                .map(|(_, _, d)| d.clone())
                .collect();
            let expected: Vec<Vec<u8>> = (0..200u16).map(|i| i.to_be_bytes().to_vec()).collect();
            assert_eq!(on_b, expected, "{path:?}");
            assert!(got.contains(&(0, to_b, b"from b".to_vec())), "{path:?}");

            let t0 = Instant::now();
            io.wait(t0 + Duration::from_millis(50), |_, _, _, _| {
                panic!("nothing was sent")
            });
            let took = t0.elapsed();
            assert!(took >= Duration::from_millis(45), "{path:?}: {took:?}");
            assert!(took < Duration::from_millis(1000), "{path:?}: {took:?}");
        }
    }

    /// `--io fallback`, and `LOADGEN_IO=fallback` under `--io auto`, force
    /// the fallback and say who did. (The only test here that reads the
    /// variable: setting it cannot disturb the others.)
    /// Eight buffers for a hundred datagrams: the multishot receive ends
    /// with ENOBUFS again and again, is re-armed each time the buffers are
    /// back, and every datagram arrives, in order.
    #[test]
    fn running_out_of_receive_buffers_loses_nothing() {
        if let Err(reason) = probe() {
            eprintln!("SKIPPED: {reason}");
            return;
        }
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut io = UringIo::with_buffers(&[b.as_raw_fd()], 8).unwrap();
        for i in 0..100u16 {
            a.send_to(&i.to_be_bytes(), b.local_addr().unwrap())
                .unwrap();
        }
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < 100 && Instant::now() < deadline {
            io.wait(deadline, |_, _, _, d| got.push(d.to_vec()));
        }
        let expected: Vec<Vec<u8>> = (0..100u16).map(|i| i.to_be_bytes().to_vec()).collect();
        assert_eq!(got, expected);
    }

    /// A receive that fails at once every time (here: the descriptor is a
    /// pipe, ENOTSOCK) is retried three times, then with growing pauses:
    /// a 300 ms wait sees about ten attempts, not thousands, and a
    /// healthy socket beside it still receives.
    #[test]
    fn a_receive_that_keeps_failing_backs_off_instead_of_spinning() {
        if let Err(reason) = probe() {
            eprintln!("SKIPPED: {reason}");
            return;
        }
        let mut pipe = [0i32; 2];
        // SAFETY: pipe(2) fills two descriptors we own at once.
        assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
        // SAFETY: fresh descriptors, owned (and closed) here.
        let _ends = unsafe {
            use std::os::fd::{FromRawFd, OwnedFd};
            (OwnedFd::from_raw_fd(pipe[0]), OwnedFd::from_raw_fd(pipe[1]))
        };
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut io = UringIo::new(&[pipe[0], b.as_raw_fd()]).unwrap();
        let t0 = Instant::now();
        let mut got = Vec::new();
        while t0.elapsed() < Duration::from_millis(300) {
            a.send_to(b"ping", b.local_addr().unwrap()).unwrap();
            io.wait(t0 + Duration::from_millis(300), |s, _, _, d| {
                got.push((s, d.to_vec()))
            });
        }
        let attempts = io.errors[0];
        assert!((4..=12).contains(&attempts), "{attempts} attempts");
        assert!(got.iter().all(|(s, d)| *s == 1 && d == b"ping"));
        assert!(!got.is_empty());
    }

    #[test]
    fn forcing_the_fallback_says_who_did() {
        let (path, reason) = choose(IoChoice::Fallback).unwrap();
        assert_eq!(path, Path::Fallback);
        assert!(reason.unwrap().contains("forced by --io"));
        let before = std::env::var_os(ENV);
        std::env::set_var(ENV, "fallback");
        let forced = choose(IoChoice::Auto).unwrap();
        std::env::remove_var(ENV);
        let auto = choose(IoChoice::Auto).unwrap();
        if let Some(value) = before {
            std::env::set_var(ENV, value);
        }
        assert_eq!(forced.0, Path::Fallback);
        assert!(forced.1.unwrap().contains("LOADGEN_IO=fallback"));
        // Without the variable, auto takes what measured cheaper.
        if AUTO_PREFERS == Path::Fallback {
            assert_eq!(auto.0, Path::Fallback);
            assert!(auto.1.unwrap().starts_with("auto: "));
        }
    }
}
