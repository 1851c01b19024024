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

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};

use super::shard::{Output, Shard, MAX_PACKET};
use super::udp::{sockaddr_from, sockaddr_to};
use crate::config::IoMode;
use crate::dataplane::MAX_HEADROOM;

/// Submission queue entries per shard ring (completion queue: twice that).
const RING_ENTRIES: u32 = 1024;
/// Buffer group of the receive buffers.
const BGID: u16 = 0;
/// `io_uring_recvmsg_out` header, then the source address, then the data.
const RECV_HEADER: usize = 16;
const NAME_LEN: usize = std::mem::size_of::<libc::sockaddr_storage>();
const RECV_BUFFER: usize = RECV_HEADER + NAME_LEN + MAX_PACKET;
/// `user_data` of operations nobody waits for (cancellations, timeouts).
const UNTRACKED: u64 = u64::MAX;

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
    let ring = IoUring::new(8).map_err(|e| format!("io_uring_setup: {e}"))?;
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| format!("opcode probe: {e}"))?;
    let needed = [
        (opcode::RecvMsg::CODE, "RecvMsg"),
        (opcode::SendMsg::CODE, "SendMsg"),
        (opcode::Read::CODE, "Read"),
        (opcode::Write::CODE, "Write"),
        (opcode::PollAdd::CODE, "PollAdd"),
        (opcode::AsyncCancel::CODE, "AsyncCancel"),
    ];
    for (code, name) in needed {
        if !probe.is_supported(code) {
            return Err(format!("opcode {name} unsupported"));
        }
    }
    // Provided-buffer rings (5.19) come with multishot recvmsg (6.0) in
    // every kernel worth running on; registering one proves the former.
    let bufs = BufRing::new(&ring, 8, 64).map_err(|e| format!("provided-buffer ring: {e}"))?;
    drop(ring);
    drop(bufs);
    Ok(())
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

/// A provided-buffer ring: the kernel picks a buffer per datagram and
/// names it in the completion; we hand it back once done with it.
struct BufRing {
    entries: *mut types::BufRingEntry,
    layout: std::alloc::Layout,
    data: Vec<u8>,
    size: usize,
    count: u16,
    tail: u16,
}

impl BufRing {
    /// `count` buffers of `size` bytes registered with `ring` as group `BGID`.
    fn new(ring: &IoUring, count: u16, size: usize) -> io::Result<BufRing> {
        let layout = std::alloc::Layout::from_size_align(usize::from(count) * 16, 4096)
            .map_err(io::Error::other)?;
        // SAFETY: a non-zero size; the kernel wants page-aligned memory.
        let entries = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<types::BufRingEntry>();
        if entries.is_null() {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        let mut bufs = BufRing {
            entries,
            layout,
            data: vec![0; usize::from(count) * size],
            size,
            count,
            tail: 0,
        };
        // SAFETY: `entries` is page-aligned, `count` entries long, and
        // stays allocated until after the ring is gone (see `Drop`).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(entries as u64, count, BGID, 0)?;
        }
        for bid in 0..count {
            bufs.push(bid);
        }
        bufs.publish();
        Ok(bufs)
    }

    /// Put buffer `bid` back (visible to the kernel at `publish`).
    fn push(&mut self, bid: u16) {
        let slot = usize::from(self.tail & (self.count - 1));
        // SAFETY: `slot < count`; the kernel reads entries only up to the
        // published tail, which this one is past.
        let entry = unsafe { &mut *self.entries.add(slot) };
        let start = usize::from(bid) * self.size;
        entry.set_addr(self.data[start..].as_mut_ptr() as u64);
        entry.set_len(u32::try_from(self.size).unwrap_or(u32::MAX));
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail shares the first entry's reserved field; the
        // kernel reads it, hence the atomic release store.
        unsafe {
            let tail = types::BufRingEntry::tail(self.entries).cast_mut();
            AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
        }
    }

    /// Buffer `bid`, `len` bytes of it.
    fn get_mut(&mut self, bid: u16, len: usize) -> Option<&mut [u8]> {
        let start = usize::from(bid) * self.size;
        self.data.get_mut(start..start + len.min(self.size))
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout. Callers drop the
        // ring (which unregisters the group) first.
        unsafe { std::alloc::dealloc(self.entries.cast(), self.layout) };
    }
}

/// A datagram in flight with everything `sendmsg` points at.
struct SendOp {
    data: Vec<u8>,
    addr: libc::sockaddr_storage,
    iov: libc::iovec,
    msg: libc::msghdr,
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

/// The ring and what is in flight on it: the [`Output`] of this path.
struct Ring {
    ring: IoUring,
    ops: Vec<Option<Op>>,
    free: Vec<usize>,
    backlog: VecDeque<squeue::Entry>,
    sockets: Vec<RawFd>,
    tun: RawFd,
    // Boxed: a `SendOp` points into itself and moves into the slab.
    #[allow(clippy::vec_box)]
    spare_sends: Vec<Box<SendOp>>,
    spare_writes: Vec<Vec<u8>>,
}

impl Ring {
    fn track(&mut self, op: Op) -> u64 {
        let index = match self.free.pop() {
            Some(i) => {
                self.ops[i] = Some(op);
                i
            }
            None => {
                self.ops.push(Some(op));
                self.ops.len() - 1
            }
        };
        index as u64
    }

    fn untrack(&mut self, index: usize) -> Option<Op> {
        let op = self.ops.get_mut(index)?.take();
        if op.is_some() {
            self.free.push(index);
        }
        op
    }

    fn in_flight(&self) -> usize {
        self.ops.len() - self.free.len()
    }

    /// Queue `entry`; a full submission queue is submitted, and what still
    /// does not fit waits in the backlog.
    fn push(&mut self, entry: squeue::Entry) {
        if self.backlog.is_empty() {
            // SAFETY: every entry points at memory its slab op owns.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
            let _ = self.ring.submit();
            // SAFETY: as above.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
        }
        self.backlog.push_back(entry);
    }

    /// Move the backlog into the submission queue as room allows.
    fn flush_backlog(&mut self) {
        while let Some(entry) = self.backlog.front() {
            // SAFETY: as in `push`.
            if unsafe { self.ring.submission().push(entry) }.is_err() {
                break;
            }
            self.backlog.pop_front();
        }
    }

    fn arm_recv(&mut self, socket: usize, msg: *const libc::msghdr) {
        let fd = self.sockets[socket];
        let index = self.track(Op::Recv { socket });
        let entry = opcode::RecvMsgMulti::new(types::Fd(fd), msg, BGID)
            .build()
            .user_data(index);
        self.push(entry);
    }

    fn arm_tun_read(&mut self, slot: usize, buf: &mut [u8]) {
        let room = &mut buf[MAX_HEADROOM..];
        let len = u32::try_from(room.len()).unwrap_or(u32::MAX);
        let index = self.track(Op::TunRead { slot });
        let entry = opcode::Read::new(types::Fd(self.tun), room.as_mut_ptr(), len)
            .offset(u64::MAX)
            .build()
            .user_data(index);
        self.push(entry);
    }

    fn arm_poll(&mut self, fd: RawFd, op: Op) {
        let index = self.track(op);
        let entry = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
            .build()
            .user_data(index);
        self.push(entry);
    }
}

impl Output for Ring {
    fn send(&mut self, socket: usize, to: SocketAddr, datagram: &[u8]) {
        let Some(&fd) = self.sockets.get(socket) else {
            return;
        };
        let mut op = self.spare_sends.pop().unwrap_or_else(|| {
            Box::new(SendOp {
                data: Vec::with_capacity(MAX_PACKET),
                // SAFETY: zeroed storage is a valid sockaddr_storage.
                addr: unsafe { std::mem::zeroed() },
                iov: libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                },
                // SAFETY: a zeroed msghdr is valid (null pointers, no flags).
                msg: unsafe { std::mem::zeroed() },
            })
        });
        op.data.clear();
        op.data.extend_from_slice(datagram);
        let (addr, addr_len) = sockaddr_from(to);
        op.addr = addr;
        op.iov = libc::iovec {
            iov_base: op.data.as_mut_ptr().cast(),
            iov_len: op.data.len(),
        };
        op.msg.msg_name = std::ptr::addr_of_mut!(op.addr).cast();
        op.msg.msg_namelen = addr_len;
        op.msg.msg_iov = std::ptr::addr_of_mut!(op.iov);
        op.msg.msg_iovlen = 1;
        // The box's contents do not move when the box does.
        let msg = std::ptr::addr_of!(op.msg);
        let index = self.track(Op::Send(op));
        let entry = opcode::SendMsg::new(types::Fd(fd), msg)
            .build()
            .user_data(index);
        self.push(entry);
    }

    fn to_tun(&mut self, packet: &[u8]) -> bool {
        let mut buf = self.spare_writes.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(packet);
        let (ptr, len) = (buf.as_ptr(), u32::try_from(buf.len()).unwrap_or(u32::MAX));
        let index = self.track(Op::TunWrite(buf));
        let entry = opcode::Write::new(types::Fd(self.tun), ptr, len)
            .offset(u64::MAX)
            .build()
            .user_data(index);
        self.push(entry);
        true
    }
}

/// A shard on io_uring.
pub struct UringShard {
    shard: Shard,
    // Field order is drop order: the ring goes before the memory it uses.
    ring: Ring,
    bufs: BufRing,
    msg: Box<libc::msghdr>,
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
            .field("in_flight", &self.ring.in_flight())
            .finish_non_exhaustive()
    }
}

impl UringShard {
    /// Set up the ring for `shard`; on failure the shard comes back to run
    /// the portable loop.
    pub fn new(shard: Shard) -> Result<UringShard, Box<(Shard, io::Error)>> {
        let ring = match IoUring::new(RING_ENTRIES) {
            Ok(ring) => ring,
            Err(e) => return Err(Box::new((shard, e))),
        };
        let batching = shard.batching;
        let bufs = match BufRing::new(&ring, batching.recv_buffers(), RECV_BUFFER) {
            Ok(bufs) => bufs,
            Err(e) => return Err(Box::new((shard, e))),
        };
        // SAFETY: a zeroed msghdr is valid; only the lengths matter to
        // multishot recvmsg (the layout of each buffer).
        let mut msg: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
        msg.msg_namelen = libc::socklen_t::try_from(NAME_LEN).unwrap_or(0);
        let ring = Ring {
            ring,
            ops: Vec::new(),
            free: Vec::new(),
            backlog: VecDeque::new(),
            sockets: shard.sockets.iter().map(|s| s.as_raw_fd()).collect(),
            tun: shard.tun.as_raw_fd(),
            spare_sends: Vec::new(),
            spare_writes: Vec::new(),
        };
        Ok(UringShard {
            shard,
            ring,
            bufs,
            msg,
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
        let msg: *const libc::msghdr = &*self.msg;
        for socket in 0..self.ring.sockets.len() {
            self.ring.arm_recv(socket, msg);
        }
        for slot in 0..self.tun_bufs.len() {
            self.ring.arm_tun_read(slot, &mut self.tun_bufs[slot]);
        }
        let wake = self.shard.wake.fd();
        self.ring.arm_poll(wake, Op::Wake);
        // Completions handled per round before sends are submitted, so one
        // busy socket cannot starve the TUN queue or the commands.
        let budget = self.shard.batching.ring_budget();
        let mut completions: Vec<cqueue::Entry> = Vec::with_capacity(budget);
        loop {
            self.ring.flush_backlog();
            let wait = usize::from(self.ring.backlog.is_empty());
            match self.ring.ring.submit_and_wait(wait) {
                Ok(_) => {}
                // EBUSY: the completion queue is full; draining it below
                // makes room. EINTR: a signal; go round.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EINTR)) => {}
                Err(e) => tracing::warn!(shard = self.shard.index, "io_uring submit: {e}"),
            }
            completions.clear();
            completions.extend(self.ring.ring.completion().take(budget));
            // Commands first, as the portable loop does: a session the
            // control thread installed before its first data frame came
            // must be in the table when that frame is handled. The reaped
            // completions are handled even on Stop, so the slab knows
            // what the kernel still holds.
            let go_on = self.shard.commands(&mut self.ring, &mut self.scratch);
            let mut received = 0;
            for cqe in &completions {
                received += self.complete(cqe);
            }
            // Hand back this round's receive buffers (those of dropped,
            // truncated datagrams too).
            self.bufs.publish();
            if received > 0 {
                self.shard.counters.recv_batches += 1;
                self.shard.counters.datagrams_in += received;
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
        let Ok(index) = usize::try_from(index) else {
            return 0;
        };
        let (result, flags) = (cqe.result(), cqe.flags());
        let more = cqueue::more(flags);
        let op = match self.ring.ops.get(index) {
            Some(Some(Op::Recv { socket })) if more => Some(Op::Recv { socket: *socket }),
            _ => self.ring.untrack(index),
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
                    let msg: *const libc::msghdr = &*self.msg;
                    self.bufs.publish();
                    self.ring.arm_recv(socket, msg);
                }
                received
            }
            Some(Op::Send(op)) => {
                if result >= 0 {
                    self.shard.counters.datagrams_out += 1;
                }
                self.ring.spare_sends.push(op);
                0
            }
            Some(Op::TunRead { slot }) => {
                match usize::try_from(result) {
                    Ok(len) if len > 0 => {
                        let buf = &mut self.tun_bufs[slot];
                        self.shard.frame(&mut self.ring, buf, len);
                        self.ring.arm_tun_read(slot, &mut self.tun_bufs[slot]);
                    }
                    // EAGAIN (a non-blocking queue with nothing to read)
                    // or an error: wait for readability, then read again.
                    _ => {
                        self.tun_idle.push(slot);
                        if !self.tun_poll_armed {
                            self.tun_poll_armed = true;
                            let tun = self.ring.tun;
                            self.ring.arm_poll(tun, Op::TunPoll);
                        }
                    }
                }
                0
            }
            Some(Op::TunWrite(buf)) => {
                if result < 0 {
                    self.shard.counters.tun_write_errors += 1;
                }
                self.ring.spare_writes.push(buf);
                0
            }
            Some(Op::TunPoll) => {
                self.tun_poll_armed = false;
                while let Some(slot) = self.tun_idle.pop() {
                    self.ring.arm_tun_read(slot, &mut self.tun_bufs[slot]);
                }
                0
            }
            Some(Op::Wake) => {
                self.shard.wake.clear();
                let wake = self.shard.wake.fd();
                self.ring.arm_poll(wake, Op::Wake);
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
        let Ok(out) = types::RecvMsgOut::parse(buf, &self.msg) else {
            return 0;
        };
        if out.is_payload_truncated() || out.is_name_data_truncated() {
            return 0;
        }
        // SAFETY: zeroed storage is a valid sockaddr_storage.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let name = out.name_data();
        let name_len = name.len().min(NAME_LEN);
        // SAFETY: copies at most the storage's size of plain bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(
                name.as_ptr(),
                std::ptr::addr_of_mut!(storage).cast::<u8>(),
                name_len,
            );
        }
        let start = out.payload_data().as_ptr() as usize - buf.as_ptr() as usize;
        let end = start + out.payload_data().len();
        let Some(from) = sockaddr_to(&storage) else {
            return 0;
        };
        let Some(datagram) = buf.get_mut(start..end) else {
            return 0;
        };
        self.shard
            .datagram(socket, from, datagram, &mut self.reply, &mut self.ring);
        1
    }

    /// Cancel what is in flight and wait for the kernel to let go of our
    /// buffers; if it will not within a second, leak them rather than free
    /// memory it may still write.
    fn shutdown(mut self) -> Shard {
        let pending: Vec<u64> = (0..self.ring.ops.len())
            .filter(|&i| self.ring.ops[i].is_some())
            .map(|i| i as u64)
            .collect();
        for index in pending {
            let entry = opcode::AsyncCancel::new(index).build().user_data(UNTRACKED);
            self.ring.push(entry);
        }
        let timeout = types::Timespec::new().nsec(100_000_000);
        for _ in 0..10 {
            if self.ring.in_flight() == 0 {
                break;
            }
            self.ring.flush_backlog();
            let guard = opcode::Timeout::new(&timeout).build().user_data(UNTRACKED);
            self.ring.push(guard);
            let _ = self.ring.ring.submit_and_wait(1);
            let done: Vec<cqueue::Entry> = self.ring.ring.completion().collect();
            for cqe in done {
                if let Ok(index) = usize::try_from(cqe.user_data()) {
                    if !cqueue::more(cqe.flags()) {
                        self.ring.untrack(index);
                    }
                }
            }
        }
        if self.ring.in_flight() != 0 {
            tracing::warn!(
                shard = self.shard.index,
                in_flight = self.ring.in_flight(),
                "io_uring operations still in flight at stop; leaking their buffers"
            );
            let UringShard {
                shard,
                ring,
                bufs,
                msg,
                tun_bufs,
                ..
            } = self;
            std::mem::forget((ring, bufs, msg, tun_bufs));
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

        use crossbeam_channel::bounded;

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
        let (urgent_tx, urgent_rx) = bounded(16);
        let (setup_tx, _setup_rx) = bounded(16);
        let (command_tx, command_rx) = bounded(16);
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
