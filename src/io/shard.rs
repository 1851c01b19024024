//! A shard worker: one thread, pinned to a core, owning its UDP sockets
//! (one per listen address, each in its reuseport group), its TUN queue
//! and its replica of the session table.
//!
//! Ingress: batch-receive datagrams, let `dataplane::decap` sort them, write
//! IP packets to TUN, answer LCP echoes, pass control traffic to the control
//! thread. Egress: read IP packets from TUN into buffers with headroom, let
//! `dataplane::encap` frame them in place, batch-send. Commands from the
//! control thread (install/remove sessions, stop) arrive on a channel with
//! an eventfd to wake the poll.
//!
//! `Shard::run` is the portable path (`poll` + `recvmmsg`/`sendmmsg` + TUN
//! `read`/`write`); the io_uring path (`super::uring`) drives the same
//! per-packet code (`datagram`, `frame`, `commands`) through [`Output`].

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::batch::{RecvBatch, SendBatch};
use super::queue::Limited;
use super::tun::{read_packet, write_packet};
use super::wake::{Poller, Wake};
use crate::dataplane::{
    decap, encap, stamp_ns, DropReason, Egress, Ingress, SessionEntry, SessionKey, SessionTable,
    Stamp, MAX_HEADROOM,
};
use crate::wire::l2tp::Packet;

/// Datagrams per receive batch, and TUN packets per egress round: enough
/// to amortise the system call, small enough that one busy socket cannot
/// starve the other (a per-round budget, as boringtun does).
pub const BATCH: usize = 64;

/// How much a shard moves per system call or per ring round, from
/// `runtime.batch_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// Datagrams per `recvmmsg`/`sendmmsg`, TUN packets read per wakeup.
    pub size: usize,
}

impl Default for Batching {
    fn default() -> Self {
        Batching { size: BATCH }
    }
}

impl Batching {
    /// `size` datagrams a batch (at least 1).
    pub fn new(size: usize) -> Self {
        Batching { size: size.max(1) }
    }

    /// io_uring: completions handled per round before submitting.
    pub fn ring_budget(self) -> usize {
        self.size * 4
    }

    /// io_uring: TUN reads kept in flight.
    pub fn tun_reads(self) -> usize {
        (self.size / 4).clamp(1, 256)
    }

    /// io_uring: provided receive buffers (a power of two, at most 2^15).
    pub fn recv_buffers(self) -> u16 {
        let wanted = (self.size * 8).clamp(8, 1 << 15);
        u16::try_from(wanted.next_power_of_two()).unwrap_or(1 << 15)
    }
}

/// Largest datagram or IP packet we handle (jumbo frames excluded).
pub const MAX_PACKET: usize = 2048;

/// What the control thread tells a shard.
#[derive(Debug)]
pub enum ShardCommand {
    /// A session reached the network phase: route its traffic.
    Install(Box<SessionEntry>),
    /// A session ended.
    Remove(SessionKey),
    /// A session's PPP renegotiates: hold its IP traffic until the next
    /// `Install` (the entry, and its data sequence counter, stay).
    Pause(SessionKey),
    /// An IP packet of a sequenced session this shard numbers (another
    /// shard read it from TUN).
    Egress(Vec<u8>),
    /// A data message the control thread framed for a sequenced session
    /// this shard numbers: stamp its Ns and send it.
    Numbered {
        /// The session.
        key: SessionKey,
        /// The LAC.
        to: SocketAddr,
        /// The datagram.
        datagram: Vec<u8>,
    },
    /// A subscriber's IP packet that reached the control thread because it
    /// overtook its session's install: write it to TUN.
    ToTun(Vec<u8>),
    /// Send a copy of this shard's counters (for `lns show stats`; the
    /// hot path keeps plain integers and pays nothing until asked).
    Report(Sender<ShardReport>),
    /// Finish: the daemon is stopping.
    Stop,
}

/// One shard's counters at the moment it was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardReport {
    /// Which shard.
    pub shard: u16,
    /// Its I/O counters.
    pub io: ShardCounters,
    /// Its data-plane counters.
    pub dataplane: crate::dataplane::Counters,
    /// Sessions in its table.
    pub sessions: usize,
}

/// Traffic for the control thread.
#[derive(Debug)]
pub struct ToControl {
    /// The shard that received it (its sockets share the port).
    pub shard: u16,
    /// Which listen address it arrived on (index into the listen list).
    pub socket: usize,
    /// The sender.
    pub from: SocketAddr,
    /// The datagram as received.
    pub datagram: Vec<u8>,
    /// How many datagrams this shard had put in the urgent queue when it
    /// queued this one (this one included when it is urgent): the control
    /// thread handles those first, so a setup-queue datagram never overtakes
    /// an earlier one of its tunnel in the other queue.
    pub urgent_before: u64,
}

/// The two queues to the control thread: keepalives, acks and everything
/// of tunnels already up go first, so a setup storm (new tunnels, new
/// calls) never starves the existing tunnels' HELLOs.
#[derive(Debug, Clone)]
pub struct ControlQueues {
    /// Traffic of established tunnels.
    pub urgent: Limited<ToControl>,
    /// New tunnels (SCCRQ to tunnel 0) and new calls (ICRQ, OCRP...).
    pub setup: Limited<ToControl>,
    /// Wakes the control thread.
    pub wake: Wake,
    /// Datagrams this shard put in the urgent queue so far.
    pub urgent_sent: u64,
}

/// Counters a shard keeps for itself (plain integers, read at scrape time
/// through the control thread).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardCounters {
    /// Datagrams handed to the control thread.
    pub to_control: u64,
    /// Of those, dropped because the control queue was full.
    pub control_queue_full: u64,
    /// Of those, dropped from the setup queue (new tunnels and calls, PPP
    /// of calls still negotiating).
    pub setup_queue_full: u64,
    /// TUN writes that failed (queue full).
    pub tun_write_errors: u64,
    /// Receive batches and their datagrams.
    pub recv_batches: u64,
    /// Datagrams received.
    pub datagrams_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Submissions to the kernel: `io_uring_enter` calls of the ring loop,
    /// `sendmmsg` batches of the portable one.
    pub submits: u64,
    /// What they carried: ring entries, or datagrams.
    pub submitted: u64,
    /// Receive batch sizes (datagrams per `recvmmsg` or ring round).
    pub recv_sizes: BatchSizes,
    /// Submission sizes (entries per submit).
    pub submit_sizes: BatchSizes,
    /// Subscribers' IP packets that reached TUN through the control thread
    /// (they overtook their session's install) and their bytes: part of
    /// the data plane's ingress, though `decap` never saw them.
    pub late_packets_in: u64,
    /// Their IP bytes.
    pub late_bytes_in: u64,
}

impl ShardCounters {
    /// A receive batch of `n` datagrams.
    pub fn received(&mut self, n: u64) {
        self.recv_batches += 1;
        self.datagrams_in += n;
        self.recv_sizes.observe(n);
    }

    /// A submission of `n` entries (an idle wait submits none).
    pub fn submitted(&mut self, n: usize) {
        self.submits += 1;
        self.submitted += n as u64;
        if n > 0 {
            self.submit_sizes.observe(n as u64);
        }
    }
}

/// A histogram of batch sizes over power-of-two buckets (1, 2, 4, ...
/// 2048, then the rest): one array increment per batch, none per packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchSizes {
    /// Batches per bucket: index `i` holds sizes in `(2^(i-1), 2^i]`, the
    /// last one everything above [`BatchSizes::BOUNDS`]'s end.
    pub buckets: [u64; BatchSizes::BOUNDS.len() + 1],
    /// Sum of the sizes.
    pub sum: u64,
}

impl BatchSizes {
    /// The buckets' upper bounds.
    pub const BOUNDS: [u64; 12] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048];

    /// Count one batch of `n`.
    pub fn observe(&mut self, n: u64) {
        let at = (u64::BITS - n.saturating_sub(1).leading_zeros()) as usize;
        self.buckets[at.min(Self::BOUNDS.len())] += 1;
        self.sum += n;
    }

    /// Batches counted.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

/// Everything one shard thread owns.
#[derive(Debug)]
pub struct Shard {
    /// Its index (tunnel IDs `id % shards == index` are its own).
    pub index: u16,
    /// Its socket of each listen address.
    pub sockets: Vec<OwnedFd>,
    /// Its TUN queue.
    pub tun: OwnedFd,
    /// Its session table replica.
    pub table: SessionTable,
    /// Commands from the control thread.
    pub commands: Receiver<ShardCommand>,
    /// Wakes this shard.
    pub wake: Wake,
    /// Queues to the control thread.
    pub control: ControlQueues,
    /// Every shard's command queue and wake (for `Egress::Forward`).
    pub peers: Vec<(Limited<ShardCommand>, Wake)>,
    /// Counters.
    pub counters: ShardCounters,
    /// Batch sizes.
    pub batching: Batching,
}

/// Where the per-packet code puts what it produces: datagrams to send and
/// IP packets for TUN. The two loops differ only in how they hand these to
/// the kernel (a `sendmmsg` batch and `write`, or ring submissions).
pub trait Output {
    /// Queue `datagram` to `to` on our socket of listen address `socket`.
    fn send(&mut self, socket: usize, to: SocketAddr, datagram: &[u8]);
    /// Write `packet` to TUN; false when it could not be queued.
    fn to_tun(&mut self, packet: &[u8]) -> bool;
}

/// The portable loop's output: one `sendmmsg` batch per socket, TUN
/// written at once.
struct PollOutput<'a> {
    sends: &'a mut [SendBatch],
    tun: RawFd,
}

impl Output for PollOutput<'_> {
    fn send(&mut self, socket: usize, to: SocketAddr, datagram: &[u8]) {
        if let Some(batch) = self.sends.get_mut(socket) {
            batch.push(to, datagram);
        }
    }

    fn to_tun(&mut self, packet: &[u8]) -> bool {
        write_packet(self.tun, packet).is_ok()
    }
}

impl Shard {
    /// Run the portable loop until told to stop.
    pub fn run(mut self) -> Self {
        let mut recv = RecvBatch::new(self.batching.size, MAX_PACKET);
        let mut sends: Vec<SendBatch> = self.sockets.iter().map(|_| SendBatch::new()).collect();
        let mut reply = vec![0u8; MAX_PACKET + 16];
        let mut tun_buf = vec![0u8; MAX_HEADROOM + MAX_PACKET];
        let mut fds: Vec<i32> = self.sockets.iter().map(|s| s.as_raw_fd()).collect();
        fds.push(self.tun.as_raw_fd());
        fds.push(self.wake.fd());
        let mut poller = Poller::new(&fds);
        let (tun_index, wake_index) = (self.sockets.len(), self.sockets.len() + 1);
        loop {
            if poller.wait(Duration::from_millis(200)).is_err() {
                continue;
            }
            if poller.ready(wake_index) {
                self.wake.clear();
            }
            let mut out = PollOutput {
                sends: &mut sends,
                tun: self.tun.as_raw_fd(),
            };
            if !self.commands(&mut out, &mut tun_buf) {
                return self;
            }
            for socket in 0..self.sockets.len() {
                if poller.ready(socket) {
                    self.ingress(socket, &mut recv, &mut out, &mut reply);
                }
            }
            if poller.ready(tun_index) {
                self.egress(&mut out, &mut tun_buf);
            }
            for (socket, batch) in self.sockets.iter().zip(sends.iter_mut()) {
                if !batch.is_empty() {
                    if let Ok(n) = batch.flush(socket.as_raw_fd()) {
                        self.counters.datagrams_out += n as u64;
                        self.counters.submitted(n);
                    }
                }
            }
        }
    }

    /// Apply queued commands; false when told to stop. `buf` is scratch
    /// room for a forwarded packet (`MAX_HEADROOM + MAX_PACKET`).
    pub fn commands(&mut self, out: &mut impl Output, buf: &mut [u8]) -> bool {
        while let Ok(command) = self.commands.try_recv() {
            match command {
                ShardCommand::Install(entry) => {
                    self.table.install(*entry);
                }
                ShardCommand::Remove(key) => {
                    self.table.remove(key);
                }
                ShardCommand::Pause(key) => {
                    self.table.pause(key);
                }
                ShardCommand::Egress(packet) => {
                    let len = packet.len().min(buf.len() - MAX_HEADROOM);
                    buf[MAX_HEADROOM..MAX_HEADROOM + len].copy_from_slice(&packet[..len]);
                    self.frame(out, buf, len);
                }
                ShardCommand::Numbered {
                    key,
                    to,
                    mut datagram,
                } => match stamp_ns(&mut self.table, key, &mut datagram) {
                    Stamp::Stamped { .. } | Stamp::Unchanged => {
                        let socket = socket_for(&to, self.sockets.len());
                        out.send(socket, to, &datagram);
                    }
                    Stamp::Forward { .. } | Stamp::Drop(_) => {}
                },
                ShardCommand::ToTun(packet) => {
                    if out.to_tun(&packet) {
                        self.counters.late_packets_in += 1;
                        self.counters.late_bytes_in += packet.len() as u64;
                    } else {
                        self.counters.tun_write_errors += 1;
                    }
                }
                ShardCommand::Report(reply) => {
                    let _ = reply.try_send(ShardReport {
                        shard: self.index,
                        io: self.counters,
                        dataplane: *self.table.counters(),
                        sessions: self.table.len(),
                    });
                }
                ShardCommand::Stop => return false,
            }
        }
        true
    }

    fn ingress(
        &mut self,
        socket: usize,
        recv: &mut RecvBatch,
        out: &mut impl Output,
        reply: &mut [u8],
    ) {
        let fd = self.sockets[socket].as_raw_fd();
        let Ok(n) = recv.recv(fd) else { return };
        if n == 0 {
            return;
        }
        self.counters.received(n as u64);
        for i in 0..n {
            if let Some((datagram, from)) = recv.get_mut(i) {
                self.datagram(socket, from, datagram, reply, out);
            }
        }
    }

    /// One datagram received on `socket` from `from`: to TUN, answered
    /// (`reply` is scratch room for the answer), or to the control thread.
    pub fn datagram(
        &mut self,
        socket: usize,
        from: SocketAddr,
        datagram: &mut [u8],
        reply: &mut [u8],
        out: &mut impl Output,
    ) {
        let mut unknown = false;
        match decap(&mut self.table, from, datagram, reply) {
            Ingress::ToTun { packet } => {
                if !out.to_tun(packet) {
                    self.counters.tun_write_errors += 1;
                }
            }
            Ingress::Reply { len, to } => out.send(socket, to, &reply[..len]),
            Ingress::ToControl { datagram, .. } => {
                let datagram = datagram.to_vec();
                self.pass_to_control(socket, from, datagram, true);
            }
            Ingress::Control { datagram } => {
                let urgent = !is_setup_message(datagram);
                let datagram = datagram.to_vec();
                self.pass_to_control(socket, from, datagram, urgent);
            }
            // A session still negotiating PPP is not in the table
            // yet: its frames are the control thread's, which also
            // drops those of sessions nobody knows.
            Ingress::Drop(DropReason::UnknownSession) => unknown = true,
            Ingress::Drop(_) => {}
        }
        if unknown {
            // Mostly PPP of a call still negotiating: it must stay behind
            // the call's ICRQ and ICCN, which travel in the setup queue.
            self.pass_to_control(socket, from, datagram.to_vec(), false);
        }
    }

    fn pass_to_control(
        &mut self,
        socket: usize,
        from: SocketAddr,
        datagram: Vec<u8>,
        urgent: bool,
    ) {
        let urgent_before = self.control.urgent_sent + u64::from(urgent);
        let message = ToControl {
            shard: self.index,
            socket,
            from,
            datagram,
            urgent_before,
        };
        let queue = if urgent {
            &self.control.urgent
        } else {
            &self.control.setup
        };
        match queue.try_send(message) {
            Ok(()) => {
                self.counters.to_control += 1;
                self.control.urgent_sent = urgent_before;
                self.control.wake.wake();
            }
            // A full queue sheds load: the peer retransmits (§5.8).
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counters.control_queue_full += 1;
                if !urgent {
                    self.counters.setup_queue_full += 1;
                }
            }
        }
    }

    fn egress(&mut self, out: &mut impl Output, buf: &mut [u8]) {
        for _ in 0..self.batching.size {
            let Ok(n) = read_packet(self.tun.as_raw_fd(), &mut buf[MAX_HEADROOM..]) else {
                return;
            };
            if n == 0 {
                return;
            }
            self.frame(out, buf, n);
        }
    }

    /// Frame the IP packet at `buf[MAX_HEADROOM..][..len]` and queue it.
    pub fn frame(&mut self, out: &mut impl Output, buf: &mut [u8], len: usize) {
        match encap(&mut self.table, buf, MAX_HEADROOM, len) {
            Egress::Send { datagram, to } => {
                let socket = socket_for(&to, self.sockets.len());
                out.send(socket, to, &buf[datagram]);
            }
            Egress::Forward { shard } => {
                if let Some((tx, wake)) = self.peers.get(usize::from(shard)) {
                    let packet = buf[MAX_HEADROOM..MAX_HEADROOM + len].to_vec();
                    if tx.try_send(ShardCommand::Egress(packet)).is_ok() {
                        wake.wake();
                    }
                }
            }
            Egress::TooBig { .. } | Egress::Drop(_) => {}
        }
    }
}

/// Which of our sockets sends to `to`: the daemon binds IPv4 listen
/// addresses before IPv6 ones; with one of each, the family decides.
fn socket_for(to: &SocketAddr, sockets: usize) -> usize {
    match to {
        SocketAddr::V6(_) if sockets > 1 => sockets - 1,
        _ => 0,
    }
}

/// New tunnels and new calls wait behind established tunnels' traffic:
/// a control message to tunnel 0 (SCCRQ), or whose first AVP (RFC 2661
/// §4.1: Message Type comes first) is one of the call setup messages —
/// ICRQ, ICCN, OCRQ, OCRP, OCCN. A call's messages all travel in this one
/// queue, and so does PPP for sessions not yet in the data plane, so the
/// control thread sees them in the order they came: an ICCN that overtook
/// its ICRQ would be held as out of order, and the call's first PPP frames
/// would find no session yet.
fn is_setup_message(datagram: &[u8]) -> bool {
    let Ok(packet) = Packet::new_checked(datagram) else {
        return false;
    };
    if packet.tunnel_id() == 0 {
        return true;
    }
    let body = packet.payload();
    // AVP header (6) then the 2-byte Message Type value.
    let Some(value) = body.get(6..8) else {
        return false;
    };
    let vendor_and_type = body.get(2..6) == Some(&[0, 0, 0, 0][..]);
    let message_type = u16::from_be_bytes([value[0], value[1]]);
    // OCRQ (7), OCRP (8), OCCN (9), ICRQ (10), ICCN (12). ICRP (11) is
    // ours to send.
    vendor_and_type && matches!(message_type, 7..=10 | 12)
}

#[cfg(test)]
mod tests {
    use super::Batching;

    /// A control message to `tunnel` whose Message Type AVP is `kind`.
    fn control(tunnel: u16, kind: u16) -> Vec<u8> {
        let mut d = vec![0xc8, 0x02, 0, 20];
        d.extend_from_slice(&tunnel.to_be_bytes());
        d.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // session, Ns, Nr
        d.extend_from_slice(&[0x80, 0x08, 0, 0, 0, 0]); // M, length 8, IETF, type 0
        d.extend_from_slice(&kind.to_be_bytes());
        d
    }

    #[test]
    fn a_calls_setup_messages_share_the_setup_queue() {
        // SCCRQ to tunnel 0, and the call messages of any tunnel.
        assert!(super::is_setup_message(&control(0, 1)));
        for kind in [7, 8, 9, 10, 12] {
            assert!(super::is_setup_message(&control(5, kind)), "type {kind}");
        }
        // Keepalives, acks, teardown and the rest of an established
        // tunnel's traffic go first.
        for kind in [2, 3, 4, 6, 11, 14, 15, 16] {
            assert!(!super::is_setup_message(&control(5, kind)), "type {kind}");
        }
        let mut zlb = control(5, 10)[..12].to_vec();
        zlb[3] = 12; // Length: the header alone
        assert!(!super::is_setup_message(&zlb), "a ZLB has no Message Type");
        assert!(!super::is_setup_message(&[0xc8]), "runt");
    }

    #[test]
    fn batch_sizes_land_in_power_of_two_buckets() {
        let mut sizes = super::BatchSizes::default();
        for n in [1, 2, 3, 4, 5, 64, 65, 2048, 2049, 100_000] {
            sizes.observe(n);
        }
        // Bounds 1, 2, 4, 8 ... 64, 128 ... 2048, then the rest.
        assert_eq!(&sizes.buckets[..4], &[1, 1, 2, 1]);
        assert_eq!((sizes.buckets[6], sizes.buckets[7]), (1, 1));
        assert_eq!(sizes.buckets[11], 1);
        assert_eq!(sizes.buckets[12], 2);
        assert_eq!(sizes.count(), 10);
        assert_eq!(
            sizes.sum,
            1 + 2 + 3 + 4 + 5 + 64 + 65 + 2048 + 2049 + 100_000
        );
        let mut counters = super::ShardCounters::default();
        counters.received(3);
        counters.submitted(0);
        counters.submitted(7);
        assert_eq!((counters.recv_batches, counters.datagrams_in), (1, 3));
        assert_eq!((counters.submits, counters.submitted), (2, 7));
        assert_eq!(counters.submit_sizes.count(), 1, "an idle wait is no batch");
    }

    #[test]
    fn the_default_batch_keeps_the_tuned_ring_sizes() {
        let b = Batching::default();
        assert_eq!(b.size, 64);
        assert_eq!(
            (b.ring_budget(), b.tun_reads(), b.recv_buffers()),
            (256, 16, 512)
        );
    }

    #[test]
    fn extreme_batches_stay_within_the_ring_limits() {
        let one = Batching::new(0);
        assert_eq!(one.size, 1);
        assert_eq!((one.tun_reads(), one.recv_buffers()), (1, 8));
        let big = Batching::new(4096);
        assert_eq!((big.tun_reads(), big.recv_buffers()), (256, 1 << 15));
        let odd = Batching::new(100);
        assert_eq!(odd.recv_buffers(), 1024, "rounded up to a power of two");
    }
}
