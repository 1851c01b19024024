//! io_uring building blocks for UDP: shared by the daemon's shards
//! (`super::uring`) and by loadgen's workers, which drive different loops
//! over the same parts.
//!
//! - [`Ring`]: the ring and the operations the kernel holds, by slab index
//!   (`user_data`), with a backlog for a full submission queue and a
//!   cancel-and-wait for the end.
//! - [`BufRing`]: a provided-buffer ring for multishot `RecvMsg`.
//! - [`RecvHeader`] and [`received`]: the layout those buffers hold.
//! - [`SendOp`]: a datagram in flight with everything `sendmsg` points at.
//! - [`probe`]: whether the kernel offers what a loop needs.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};

use super::udp::{sockaddr_from, sockaddr_to};

/// `io_uring_recvmsg_out` header, then the source address, then the data.
const RECV_HEADER: usize = 16;
/// Room for the source address in a receive buffer.
pub const NAME_LEN: usize = std::mem::size_of::<libc::sockaddr_storage>();
/// `user_data` of operations nobody waits for (cancellations, timeouts).
pub const UNTRACKED: u64 = u64::MAX;

/// The size of a receive buffer that holds a datagram of `payload` bytes
/// with its header and source address.
pub const fn recv_buffer_len(payload: usize) -> usize {
    RECV_HEADER + NAME_LEN + payload
}

/// Whether this kernel runs UDP on io_uring with `needed` opcodes (named
/// for the message), provided-buffer rings and waits with a timeout
/// (`IORING_FEAT_EXT_ARG`): `Ok`, or why not.
pub fn probe(needed: &[(u8, &str)]) -> Result<(), String> {
    let ring = IoUring::new(8).map_err(|e| format!("io_uring_setup: {e}"))?;
    if !ring.params().is_feature_ext_arg() {
        return Err("no IORING_FEAT_EXT_ARG (kernel before 5.11)".into());
    }
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| format!("opcode probe: {e}"))?;
    for &(code, name) in needed {
        if !probe.is_supported(code) {
            return Err(format!("opcode {name} unsupported"));
        }
    }
    // Provided-buffer rings (5.19) come with multishot recvmsg (6.0) in
    // every kernel worth running on; registering one proves the former.
    let bufs = BufRing::new(&ring, 0, 8, 64).map_err(|e| format!("provided-buffer ring: {e}"))?;
    drop(ring);
    drop(bufs);
    Ok(())
}

/// A ring and the operations (`T`) in flight on it: `user_data` is the
/// operation's index in a slab, so a completion finds what it owns.
pub struct Ring<T> {
    ring: IoUring,
    ops: Vec<Option<T>>,
    free: Vec<usize>,
    backlog: VecDeque<squeue::Entry>,
}

impl<T> std::fmt::Debug for Ring<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("in_flight", &self.in_flight())
            .field("backlog", &self.backlog.len())
            .finish()
    }
}

impl<T> Ring<T> {
    /// A ring of `entries` submission slots (twice that for completions).
    pub fn new(entries: u32) -> io::Result<Ring<T>> {
        Ok(Ring::from_uring(IoUring::new(entries)?))
    }

    /// A ring used by the thread that creates it and no other: the kernel
    /// posts completions when that thread enters it to wait
    /// (`DEFER_TASKRUN`, Linux 6.1) instead of interrupting it as packets
    /// arrive; on older kernels at least without the interrupts
    /// (`COOP_TASKRUN`, 5.19), else a plain ring. The caller must not hand
    /// the ring to another thread.
    pub fn for_this_thread(entries: u32) -> io::Result<Ring<T>> {
        let deferred = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(entries);
        let ring = match deferred {
            Ok(ring) => ring,
            Err(_) => IoUring::builder()
                .setup_coop_taskrun()
                .build(entries)
                .or_else(|_| IoUring::new(entries))?,
        };
        Ok(Ring::from_uring(ring))
    }

    /// `ring`, set up as its owner wants (setup flags).
    pub fn from_uring(ring: IoUring) -> Ring<T> {
        Ring {
            ring,
            ops: Vec::new(),
            free: Vec::new(),
            backlog: VecDeque::new(),
        }
    }

    /// The ring itself (to register buffers, read completions).
    pub fn uring(&mut self) -> &mut IoUring {
        &mut self.ring
    }

    /// Keep `op` until its completion; its `user_data`.
    pub fn track(&mut self, op: T) -> u64 {
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

    /// Give back the operation of `user_data` (its last completion came).
    pub fn untrack(&mut self, user_data: u64) -> Option<T> {
        let index = usize::try_from(user_data).ok()?;
        let op = self.ops.get_mut(index)?.take();
        if op.is_some() {
            self.free.push(index);
        }
        op
    }

    /// The operation of `user_data`, still in flight.
    pub fn get(&self, user_data: u64) -> Option<&T> {
        let index = usize::try_from(user_data).ok()?;
        self.ops.get(index)?.as_ref()
    }

    /// Operations the kernel holds.
    pub fn in_flight(&self) -> usize {
        self.ops.len() - self.free.len()
    }

    /// Whether entries wait in the backlog.
    pub fn backlogged(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Queue `entry`; a full submission queue is submitted, and what still
    /// does not fit waits in the backlog (behind which everything queues,
    /// so entries reach the kernel in the order they were pushed).
    ///
    /// # Safety
    /// Whatever `entry` points at must stay valid and unmoved until its
    /// last completion (in practice: it belongs to an operation this ring
    /// tracks, or to the ring's owner for longer than the ring lives).
    pub unsafe fn push(&mut self, entry: squeue::Entry) {
        if self.backlog.is_empty() {
            // SAFETY: the caller vouches for the memory `entry` names.
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
    pub fn flush_backlog(&mut self) {
        while let Some(entry) = self.backlog.front() {
            // SAFETY: backlog entries were pushed under `push`'s contract.
            if unsafe { self.ring.submission().push(entry) }.is_err() {
                break;
            }
            self.backlog.pop_front();
        }
    }

    /// Submit, and wait for `want` completions or `timeout`, whichever
    /// comes first. A full completion queue (EBUSY), a signal (EINTR) and
    /// the timeout (ETIME) are not errors: the caller drains and goes on.
    /// Returns how many entries the kernel took.
    pub fn submit_and_wait(
        &mut self,
        want: usize,
        timeout: Option<std::time::Duration>,
    ) -> io::Result<usize> {
        self.flush_backlog();
        let result = match timeout {
            None => self.ring.submit_and_wait(want),
            Some(t) => {
                let ts = types::Timespec::from(t);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(want, &args)
            }
        };
        match result {
            Ok(submitted) => Ok(submitted),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EBUSY | libc::EINTR | libc::ETIME)
                ) =>
            {
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    /// Up to `budget` completions into `into` (emptied first).
    pub fn reap(&mut self, budget: usize, into: &mut Vec<cqueue::Entry>) {
        into.clear();
        into.extend(self.ring.completion().take(budget));
    }

    /// Cancel everything in flight and wait (up to a second) for the
    /// kernel to let go of it. True when nothing is left; otherwise the
    /// caller must leak what the operations own rather than free memory
    /// the kernel may still write.
    pub fn cancel_all(&mut self) -> bool {
        let pending: Vec<u64> = (0..self.ops.len())
            .filter(|&i| self.ops[i].is_some())
            .map(|i| i as u64)
            .collect();
        for user_data in pending {
            let entry = opcode::AsyncCancel::new(user_data)
                .build()
                .user_data(UNTRACKED);
            // SAFETY: a cancellation points at no memory.
            unsafe { self.push(entry) };
        }
        let wait = std::time::Duration::from_millis(100);
        for _ in 0..10 {
            if self.in_flight() == 0 {
                break;
            }
            let _ = self.submit_and_wait(1, Some(wait));
            let done: Vec<cqueue::Entry> = self.ring.completion().collect();
            for cqe in done {
                if cqe.user_data() != UNTRACKED && !cqueue::more(cqe.flags()) {
                    self.untrack(cqe.user_data());
                }
            }
        }
        self.in_flight() == 0
    }
}

/// A provided-buffer ring: the kernel picks a buffer per datagram and
/// names it in the completion; the owner hands it back once done with it.
pub struct BufRing {
    entries: *mut types::BufRingEntry,
    layout: std::alloc::Layout,
    data: Vec<u8>,
    size: usize,
    count: u16,
    tail: u16,
    group: u16,
}

impl std::fmt::Debug for BufRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufRing")
            .field("group", &self.group)
            .field("count", &self.count)
            .field("size", &self.size)
            .finish()
    }
}

impl BufRing {
    /// `count` (a power of two) buffers of `size` bytes registered with
    /// `ring` as buffer group `group`. The ring must go before this.
    pub fn new(ring: &IoUring, group: u16, count: u16, size: usize) -> io::Result<BufRing> {
        if !count.is_power_of_two() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "buffer count must be a power of two",
            ));
        }
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
            group,
        };
        // SAFETY: `entries` is page-aligned, `count` entries long, and
        // stays allocated until after the ring is gone (see `Drop`).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(entries as u64, count, group, 0)?;
        }
        for bid in 0..count {
            bufs.push(bid);
        }
        bufs.publish();
        Ok(bufs)
    }

    /// The buffer group to name in a `RecvMsgMulti`.
    pub fn group(&self) -> u16 {
        self.group
    }

    /// Put buffer `bid` back (visible to the kernel at `publish`).
    pub fn push(&mut self, bid: u16) {
        let slot = usize::from(self.tail & (self.count - 1));
        // SAFETY: `slot < count`; the kernel reads entries only up to the
        // published tail, which this one is past.
        let entry = unsafe { &mut *self.entries.add(slot) };
        let start = usize::from(bid % self.count) * self.size;
        entry.set_addr(self.data[start..].as_mut_ptr() as u64);
        entry.set_len(u32::try_from(self.size).unwrap_or(u32::MAX));
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Let the kernel see the buffers pushed back since the last call.
    pub fn publish(&self) {
        // SAFETY: the tail shares the first entry's reserved field; the
        // kernel reads it, hence the atomic release store.
        unsafe {
            let tail = types::BufRingEntry::tail(self.entries).cast_mut();
            AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
        }
    }

    /// Buffer `bid`, `len` bytes of it.
    pub fn get_mut(&mut self, bid: u16, len: usize) -> Option<&mut [u8]> {
        let start = usize::from(bid) * self.size;
        self.data.get_mut(start..start + len.min(self.size))
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout. Owners drop the
        // ring (which unregisters the group) first.
        unsafe { std::alloc::dealloc(self.entries.cast(), self.layout) };
    }
}

/// The `msghdr` a multishot `RecvMsg` takes: only its lengths matter (they
/// lay out each buffer). Boxed so its address outlives moves of the owner.
pub struct RecvHeader(Box<libc::msghdr>);

impl std::fmt::Debug for RecvHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecvHeader")
    }
}

impl Default for RecvHeader {
    fn default() -> Self {
        // SAFETY: a zeroed msghdr is valid (null pointers, no flags).
        let mut msg: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
        msg.msg_namelen = libc::socklen_t::try_from(NAME_LEN).unwrap_or(0);
        RecvHeader(msg)
    }
}

impl RecvHeader {
    /// A multishot receive on `fd` into buffer group `group`. The entry
    /// points at this header: keep it until the receive ends.
    pub fn entry(&self, fd: RawFd, group: u16) -> squeue::Entry {
        opcode::RecvMsgMulti::new(types::Fd(fd), &*self.0, group).build()
    }

    /// The datagram in a receive buffer the kernel filled (`buf`, as long
    /// as the completion said), writable, with its sender; `None` for a
    /// truncated one or an unknown address family.
    pub fn received<'a>(&self, buf: &'a mut [u8]) -> Option<(SocketAddr, &'a mut [u8])> {
        let out = types::RecvMsgOut::parse(buf, &self.0).ok()?;
        if out.is_payload_truncated() || out.is_name_data_truncated() {
            return None;
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
        let from = sockaddr_to(&storage)?;
        Some((from, buf.get_mut(start..end)?))
    }
}

/// A datagram in flight with everything `sendmsg` points at. Boxed: the
/// header points into the op itself, and a box's contents stay put when
/// the box moves (into a slab, back to a spare list).
pub struct SendOp {
    data: Vec<u8>,
    addr: libc::sockaddr_storage,
    iov: libc::iovec,
    msg: libc::msghdr,
}

impl std::fmt::Debug for SendOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendOp")
            .field("len", &self.data.len())
            .finish_non_exhaustive()
    }
}

impl SendOp {
    /// An empty op with room for `capacity` bytes.
    pub fn boxed(capacity: usize) -> Box<SendOp> {
        Box::new(SendOp {
            data: Vec::with_capacity(capacity),
            // SAFETY: zeroed storage is a valid sockaddr_storage.
            addr: unsafe { std::mem::zeroed() },
            iov: libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            },
            // SAFETY: a zeroed msghdr is valid (null pointers, no flags).
            msg: unsafe { std::mem::zeroed() },
        })
    }

    /// Fill the op with `datagram` for `to`; the `SendMsg` entry for `fd`
    /// with `flags` (e.g. `MSG_DONTWAIT`), pointing into the op: the op
    /// must stay alive (tracked) until its completion.
    pub fn prepare(
        &mut self,
        fd: RawFd,
        to: SocketAddr,
        datagram: &[u8],
        flags: i32,
    ) -> squeue::Entry {
        self.data.clear();
        self.data.extend_from_slice(datagram);
        let (addr, addr_len) = sockaddr_from(to);
        self.addr = addr;
        self.iov = libc::iovec {
            iov_base: self.data.as_mut_ptr().cast(),
            iov_len: self.data.len(),
        };
        self.msg.msg_name = std::ptr::addr_of_mut!(self.addr).cast();
        self.msg.msg_namelen = addr_len;
        self.msg.msg_iov = std::ptr::addr_of_mut!(self.iov);
        self.msg.msg_iovlen = 1;
        opcode::SendMsg::new(types::Fd(fd), std::ptr::addr_of!(self.msg))
            .flags(flags as u32)
            .build()
    }
}
