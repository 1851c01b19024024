//! The io_uring path of a shard worker: the same per-packet code as
//! [`Shard::run`] (`Shard::datagram`, `Shard::frame`, `Shard::commands`),
//! fed by a ring instead of `poll` + `recvmmsg`/`sendmmsg`.
//!
//! - UDP receive: one multishot `RecvMsg` per socket, drawing from a
//!   provided-buffer ring shared by the shard's sockets; a buffer goes back
//!   to the ring once its datagram is handled.
//! - UDP send: one `SendMsg` per datagram, all of a round submitted at once;
//!   each owns its bytes, address and `msghdr` until its completion.
//! - TUN: several `Read`s in flight into buffers with `MAX_HEADROOM` of
//!   headroom (encap frames in place); writes are `Write`s of owned copies.
//! - Wake: a `PollAdd` on the shard's eventfd, re-armed after each wake.
//!
//! `user_data` is an index into a slab of in-flight operations that own
//! their memory; a full submission queue spills into a backlog; each round
//! handles a bounded number of completions
//! ([`Batching::ring_budget`](super::shard::Batching::ring_budget)).
//! [`probe`] decides at start whether this path can run at all.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

use io_uring::{cqueue, opcode, types};

use super::ring::{self, recv_buffer_len, BufRing, RecvHeader, Ring, SendOp, UNTRACKED};
use super::shard::{Output, Shard, MAX_PACKET};
use crate::config::IoMode;
use crate::dataplane::MAX_HEADROOM;

/// Submission queue entries per shard ring (completion queue: twice that).
const RING_ENTRIES: u32 = 1024;
/// Buffer group of the receive buffers.
const BGID: u16 = 0;
const RECV_BUFFER: usize = recv_buffer_len(MAX_PACKET);

/// Which I/O path the shards run, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IoPath {
    /// Rings: multishot recvmsg, sendmsg, TUN read/write.
    IoUring,
    /// `poll` + `recvmmsg`/`sendmmsg`, for this reason.
    Fallback(String),
}

impl std::fmt::Display for IoPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IoPath::IoUring => f.write_str("io_uring"),
            IoPath::Fallback(reason) => write!(f, "fallback ({reason})"),
        }
    }
}

/// Whether the shards can run on io_uring under `mode`: `Ok`, or the
/// reason they cannot (forced off, no io_uring in this kernel or container,
/// a missing opcode, no provided-buffer rings).
pub fn probe(mode: IoMode) -> Result<(), String> {
    if mode == IoMode::Fallback {
        return Err("forced by runtime.io = \"fallback\"".into());
    }
    ring::probe(&[
        (opcode::RecvMsg::CODE, "RecvMsg"),
        (opcode::SendMsg::CODE, "SendMsg"),
        (opcode::Read::CODE, "Read"),
        (opcode::Write::CODE, "Write"),
        (opcode::PollAdd::CODE, "PollAdd"),
        (opcode::AsyncCancel::CODE, "AsyncCancel"),
    ])
}

/// The path for `mode`, logged with its reason.
pub fn choose(mode: IoMode) -> io::Result<IoPath> {
    match probe(mode) {
        Ok(()) => Ok(IoPath::IoUring),
        Err(reason) if mode == IoMode::IoUring => Err(io::Error::other(format!(
            "runtime.io = \"io-uring\" but io_uring is unavailable: {reason}"
        ))),
        Err(reason) => Ok(IoPath::Fallback(reason)),
    }
}

/// An operation the kernel holds, by slab index.
enum Op {
    Recv { socket: usize },
    Send(Box<SendOp>),
    TunRead { slot: usize },
    TunWrite(Vec<u8>),
    TunPoll,
    Wake,
}

/// The ring, the descriptors it works on and spare buffers: the
/// [`Output`] of this path.
struct Io {
    ring: Ring<Op>,
    sockets: Vec<RawFd>,
    tun: RawFd,
    // Boxed: a `SendOp` points into itself and moves into the slab.
    #[allow(clippy::vec_box)]
    spare_sends: Vec<Box<SendOp>>,
    spare_writes: Vec<Vec<u8>>,
}

impl Io {
    fn arm_recv(&mut self, socket: usize, header: &RecvHeader) {
        let fd = self.sockets[socket];
        let index = self.ring.track(Op::Recv { socket });
        let entry = header.entry(fd, BGID).user_data(index);
        // SAFETY: the header and the buffer ring belong to the shard,
        // which drops the ring first.
        unsafe { self.ring.push(entry) };
    }

    fn arm_tun_read(&mut self, slot: usize, buf: &mut [u8]) {
        let room = &mut buf[MAX_HEADROOM..];
        let len = u32::try_from(room.len()).unwrap_or(u32::MAX);
        let index = self.ring.track(Op::TunRead { slot });
        let entry = opcode::Read::new(types::Fd(self.tun), room.as_mut_ptr(), len)
            .offset(u64::MAX)
            .build()
            .user_data(index);
        // SAFETY: the TUN buffers belong to the shard, which drops the
        // ring first (or leaks them at a stop that timed out).
        unsafe { self.ring.push(entry) };
    }

    fn arm_poll(&mut self, fd: RawFd, op: Op) {
        let index = self.ring.track(op);
        let entry = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
            .build()
            .user_data(index);
        // SAFETY: a poll points at no memory.
        unsafe { self.ring.push(entry) };
    }
}

impl Output for Io {
    fn send(&mut self, socket: usize, to: SocketAddr, datagram: &[u8]) {
        let Some(&fd) = self.sockets.get(socket) else {
            return;
        };
        let mut op = self
            .spare_sends
            .pop()
            .unwrap_or_else(|| SendOp::boxed(MAX_PACKET));
        let entry = op.prepare(fd, to, datagram, 0);
        let index = self.ring.track(Op::Send(op));
        // SAFETY: the entry points into the op the slab now holds until
        // its completion.
        unsafe { self.ring.push(entry.user_data(index)) };
    }

    fn to_tun(&mut self, packet: &[u8]) -> bool {
        let mut buf = self.spare_writes.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(packet);
        let (ptr, len) = (buf.as_ptr(), u32::try_from(buf.len()).unwrap_or(u32::MAX));
        let index = self.ring.track(Op::TunWrite(buf));
        let entry = opcode::Write::new(types::Fd(self.tun), ptr, len)
            .offset(u64::MAX)
            .build()
            .user_data(index);
        // SAFETY: the buffer moved into the slab; its heap bytes stay put.
        unsafe { self.ring.push(entry) };
        true
    }
}

/// A shard on io_uring.
pub struct UringShard {
    shard: Shard,
    // Field order is drop order: the ring goes before the memory it uses.
    io: Io,
    bufs: BufRing,
    header: RecvHeader,
    tun_bufs: Vec<Vec<u8>>,
    tun_idle: Vec<usize>,
    tun_poll_armed: bool,
    reply: Vec<u8>,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for UringShard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringShard")
            .field("index", &self.shard.index)
            .field("in_flight", &self.io.ring.in_flight())
            .finish_non_exhaustive()
    }
}

impl UringShard {
    /// Set up the ring for `shard`, on the shard's own thread (the ring
    /// is that thread's alone); on failure the shard comes back to run the
    /// portable loop.
    pub fn new(shard: Shard) -> Result<UringShard, Box<(Shard, io::Error)>> {
        let mut ring = match Ring::for_this_thread(RING_ENTRIES) {
            Ok(ring) => ring,
            Err(e) => return Err(Box::new((shard, e))),
        };
        let batching = shard.batching;
        let bufs = match BufRing::new(ring.uring(), BGID, batching.recv_buffers(), RECV_BUFFER) {
            Ok(bufs) => bufs,
            Err(e) => return Err(Box::new((shard, e))),
        };
        let io = Io {
            ring,
            sockets: shard.sockets.iter().map(|s| s.as_raw_fd()).collect(),
            tun: shard.tun.as_raw_fd(),
            spare_sends: Vec::new(),
            spare_writes: Vec::new(),
        };
        Ok(UringShard {
            shard,
            io,
            bufs,
            header: RecvHeader::default(),
            tun_bufs: (0..batching.tun_reads())
                .map(|_| vec![0; MAX_HEADROOM + MAX_PACKET])
                .collect(),
            tun_idle: Vec::new(),
            tun_poll_armed: false,
            reply: vec![0; MAX_PACKET + 16],
            scratch: vec![0; MAX_HEADROOM + MAX_PACKET],
        })
    }

    /// Run until told to stop.
    pub fn run(mut self) -> Shard {
        for socket in 0..self.io.sockets.len() {
            self.io.arm_recv(socket, &self.header);
        }
        for slot in 0..self.tun_bufs.len() {
            self.io.arm_tun_read(slot, &mut self.tun_bufs[slot]);
        }
        let wake = self.shard.wake.fd();
        self.io.arm_poll(wake, Op::Wake);
        // Completions handled per round before sends are submitted, so one
        // busy socket cannot starve the TUN queue or the commands.
        let budget = self.shard.batching.ring_budget();
        let mut completions: Vec<cqueue::Entry> = Vec::with_capacity(budget);
        loop {
            self.io.ring.flush_backlog();
            let wait = usize::from(!self.io.ring.backlogged());
            match self.io.ring.submit_and_wait(wait, None) {
                Ok(submitted) => self.shard.counters.submitted(submitted),
                Err(e) => tracing::warn!(shard = self.shard.index, "io_uring submit: {e}"),
            }
            self.io.ring.reap(budget, &mut completions);
            // Commands first, as the portable loop does: a session the
            // control thread installed before its first data frame came
            // must be in the table when that frame is handled. The reaped
            // completions are handled even on Stop, so the slab knows
            // what the kernel still holds.
            let go_on = self.shard.commands(&mut self.io, &mut self.scratch);
            let mut received = 0;
            for cqe in &completions {
                received += self.complete(cqe);
            }
            // Hand back this round's receive buffers (those of dropped,
            // truncated datagrams too).
            self.bufs.publish();
            if received > 0 {
                self.shard.counters.received(received);
            }
            if !go_on {
                break;
            }
        }
        self.shutdown()
    }

    /// Handle one completion; the number of datagrams it carried.
    fn complete(&mut self, cqe: &cqueue::Entry) -> u64 {
        let index = cqe.user_data();
        if index == UNTRACKED {
            return 0;
        }
        let (result, flags) = (cqe.result(), cqe.flags());
        let more = cqueue::more(flags);
        let op = match self.io.ring.get(index) {
            Some(Op::Recv { socket }) if more => Some(Op::Recv { socket: *socket }),
            _ => self.io.ring.untrack(index),
        };
        match op {
            Some(Op::Recv { socket }) => {
                let mut received = 0;
                if let (Ok(len), Some(bid)) =
                    (usize::try_from(result), cqueue::buffer_select(flags))
                {
                    received = self.datagram(socket, bid, len);
                    self.bufs.push(bid);
                }
                if !more {
                    // ENOBUFS or an error ended the multishot: the buffers
                    // handed back this round let it start again.
                    if result == -libc::EINVAL {
                        tracing::error!(
                            shard = self.shard.index,
                            socket,
                            "multishot recvmsg refused (EINVAL): set runtime.io = \"fallback\""
                        );
                        return received;
                    }
                    self.bufs.publish();
                    self.io.arm_recv(socket, &self.header);
                }
                received
            }
            Some(Op::Send(op)) => {
                if result >= 0 {
                    self.shard.counters.datagrams_out += 1;
                }
                self.io.spare_sends.push(op);
                0
            }
            Some(Op::TunRead { slot }) => {
                match usize::try_from(result) {
                    Ok(len) if len > 0 => {
                        let buf = &mut self.tun_bufs[slot];
                        self.shard.frame(&mut self.io, buf, len);
                        self.io.arm_tun_read(slot, &mut self.tun_bufs[slot]);
                    }
                    // EAGAIN (a non-blocking queue with nothing to read)
                    // or an error: wait for readability, then read again.
                    _ => {
                        self.tun_idle.push(slot);
                        if !self.tun_poll_armed {
                            self.tun_poll_armed = true;
                            let tun = self.io.tun;
                            self.io.arm_poll(tun, Op::TunPoll);
                        }
                    }
                }
                0
            }
            Some(Op::TunWrite(buf)) => {
                if result < 0 {
                    self.shard.counters.tun_write_errors += 1;
                }
                self.io.spare_writes.push(buf);
                0
            }
            Some(Op::TunPoll) => {
                self.tun_poll_armed = false;
                while let Some(slot) = self.tun_idle.pop() {
                    self.io.arm_tun_read(slot, &mut self.tun_bufs[slot]);
                }
                0
            }
            Some(Op::Wake) => {
                self.shard.wake.clear();
                let wake = self.shard.wake.fd();
                self.io.arm_poll(wake, Op::Wake);
                0
            }
            None => 0,
        }
    }

    /// The datagram in receive buffer `bid` (`len` bytes with its header).
    fn datagram(&mut self, socket: usize, bid: u16, len: usize) -> u64 {
        let Some(buf) = self.bufs.get_mut(bid, len) else {
            return 0;
        };
        let Some((from, datagram)) = self.header.received(buf) else {
            return 0;
        };
        self.shard
            .datagram(socket, from, datagram, &mut self.reply, &mut self.io);
        1
    }

    /// Cancel what is in flight and wait for the kernel to let go of our
    /// buffers; if it will not within a second, leak them rather than free
    /// memory it may still write.
    fn shutdown(mut self) -> Shard {
        if !self.io.ring.cancel_all() {
            tracing::warn!(
                shard = self.shard.index,
                in_flight = self.io.ring.in_flight(),
                "io_uring operations still in flight at stop; leaking their buffers"
            );
            let UringShard {
                shard,
                io,
                bufs,
                header,
                tun_bufs,
                ..
            } = self;
            std::mem::forget((io, bufs, header, tun_bufs));
            return shard;
        }
        self.shard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forcing_the_fallback_gives_the_reason() {
        let reason = probe(IoMode::Fallback).unwrap_err();
        assert!(reason.contains("forced"), "{reason}");
        assert!(matches!(choose(IoMode::Fallback).unwrap(), IoPath::Fallback(r) if r == reason));
    }

    /// The loop without root: a UDP socket, a datagram socket pair standing
    /// in for the TUN queue (its reads find nothing: EAGAIN, then a poll).
    /// A HELLO reaches the urgent queue with its sender; Stop ends the loop
    /// with nothing left in flight.
    #[test]
    fn a_hello_reaches_the_control_thread_and_stop_drains_the_ring() {
        use std::os::fd::{FromRawFd, OwnedFd};
        use std::time::Duration;

        use crate::io::queue::limited;

        use crate::dataplane::SessionTable;
        use crate::io::shard::{ControlQueues, ShardCommand};
        use crate::io::wake::Wake;

        if let Err(reason) = probe(IoMode::Auto) {
            eprintln!("SKIPPED the io_uring loop test: {reason}");
            return;
        }
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let addr = socket.local_addr().unwrap();
        let mut pair = [0i32; 2];
        // SAFETY: socketpair(2) fills two descriptors we own at once.
        let rc = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK,
                0,
                pair.as_mut_ptr(),
            )
        };
        assert_eq!(rc, 0);
        // SAFETY: fresh descriptors.
        let (tun, _tun_peer) =
            unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
        let (urgent_tx, urgent_rx) = limited(16);
        let (setup_tx, _setup_rx) = limited(16);
        let (command_tx, command_rx) = limited(16);
        let wake = Wake::new().unwrap();
        let shard = Shard {
            index: 0,
            sockets: vec![OwnedFd::from(socket)],
            tun,
            table: SessionTable::new(0),
            commands: command_rx,
            wake: wake.clone(),
            control: ControlQueues {
                urgent: urgent_tx,
                setup: setup_tx,
                wake: Wake::new().unwrap(),
                urgent_sent: 0,
            },
            peers: vec![(command_tx.clone(), wake.clone())],
            counters: Default::default(),
            batching: Default::default(),
        };
        // The ring lives and dies on the shard's thread (it is not `Send`).
        let thread =
            std::thread::spawn(move || UringShard::new(shard).map_err(|e| e.1).unwrap().run());

        // A HELLO (T L S, Length 20, tunnel 10, Ns 3, Nr 4, Message Type 6).
        let hello = [
            0xc8, 0x02, 0x00, 0x14, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x03, 0x00, 0x04, //
            0x80, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06,
        ];
        let lac = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        lac.send_to(&hello, addr).unwrap();
        let got = urgent_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(got.from, lac.local_addr().unwrap());
        assert_eq!(got.datagram, hello);
        assert_eq!(got.socket, 0);

        let stop = std::time::Instant::now();
        command_tx.send(ShardCommand::Stop).unwrap();
        wake.wake();
        let shard = thread.join().unwrap();
        // Operations the kernel would not give back keep `shutdown` waiting
        // a full second before it leaks them.
        assert!(stop.elapsed() < Duration::from_millis(900));
        assert_eq!(shard.counters.datagrams_in, 1);
        assert_eq!(shard.counters.to_control, 1);
    }

    #[test]
    fn auto_runs_io_uring_or_says_why_not() {
        match (probe(IoMode::Auto), choose(IoMode::Auto).unwrap()) {
            (Ok(()), IoPath::IoUring) => {}
            (Err(reason), IoPath::Fallback(r)) => {
                assert!(!reason.is_empty());
                assert_eq!(reason, r);
                eprintln!("io_uring unavailable here: {reason}");
            }
            other => panic!("probe and choice disagree: {other:?}"),
        }
    }
}
