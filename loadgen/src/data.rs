//! Data probes, sans-IO: the IPv4/UDP packet a session sends to the
//! reflector, reading it back when it returns, the per-session sequence
//! window that tells new from reordered and duplicate, and the schedule
//! that paces a worker's packets.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::time::{Duration, Instant};

use lns::io::netns::ipv4_checksum;
use lns::wire::ip::checksum;

use crate::options::DATA_HEADER;

/// The first four payload bytes of every probe ("LGD1").
pub const MAGIC: u32 = 0x4c47_4431;

/// IPv4 header (no options) and UDP header.
const HEADERS: usize = 28;

/// What a probe's payload carries (RFC-style big-endian fields after the
/// magic: session index, sequence number, send time in nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The global session index (as in the user template's `{n}`).
    pub index: u32,
    /// The session's packet number, from 0.
    pub seq: u32,
    /// When it was sent, nanoseconds since the worker's epoch.
    pub sent_ns: u64,
}

/// The probe in a UDP payload of `size` bytes.
fn payload(out: &mut Vec<u8>, probe: Probe, size: u16) {
    let start = out.len();
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.extend_from_slice(&probe.index.to_be_bytes());
    out.extend_from_slice(&probe.seq.to_be_bytes());
    out.extend_from_slice(&probe.sent_ns.to_be_bytes());
    out.resize(start + usize::from(size), 0);
}

/// The probe in a UDP payload.
fn read_payload(payload: &[u8]) -> Option<Probe> {
    let field = |at: usize, len: usize| payload.get(at..at + len);
    let u32_at = |at| {
        field(at, 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
    };
    if u32_at(0)? != MAGIC {
        return None;
    }
    Some(Probe {
        index: u32_at(4)?,
        seq: u32_at(8)?,
        sent_ns: u64::from_be_bytes(field(12, 8)?.try_into().ok()?),
    })
}

/// Write into `out` (cleared first) an IPv6/UDP packet from `src` to
/// `reflector` with a `size`-byte payload carrying `probe`; the UDP
/// checksum, mandatory over IPv6 (RFC 8200 §8.1), is valid.
pub fn build6(
    out: &mut Vec<u8>,
    src: Ipv6Addr,
    sport: u16,
    reflector: SocketAddrV6,
    size: u16,
    probe: Probe,
) {
    let size = size.max(DATA_HEADER);
    let udp_len = 8 + size;
    out.clear();
    // Version 6, no traffic class or flow label; payload length; UDP; hop
    // limit 64.
    out.extend_from_slice(&[0x60, 0, 0, 0]);
    out.extend_from_slice(&udp_len.to_be_bytes());
    out.extend_from_slice(&[17, 64]);
    out.extend_from_slice(&src.octets());
    out.extend_from_slice(&reflector.ip().octets());
    out.extend_from_slice(&sport.to_be_bytes());
    out.extend_from_slice(&reflector.port().to_be_bytes());
    out.extend_from_slice(&udp_len.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    payload(out, probe, size);
    // Pseudo-header (addresses, length, next header), then the datagram.
    let mut sum = checksum::add(0, &out[8..40]);
    sum += u64::from(udp_len) + 17;
    sum = checksum::add(sum, &out[40..]);
    let value = match checksum::finish(sum) {
        // All ones stand for a computed zero (RFC 768).
        0 => 0xffff,
        v => v,
    };
    out[46..48].copy_from_slice(&value.to_be_bytes());
}

/// An IPv6 probe coming back from `reflector`: its destination and what
/// it carries. `None` for anything else (extension headers included: a
/// reflected probe has none).
pub fn parse6(packet: &[u8], reflector: SocketAddrV6) -> Option<(Ipv6Addr, Probe)> {
    if packet.first()? >> 4 != 6 || packet.get(6) != Some(&17) {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*packet.get(4)?, *packet.get(5)?]));
    let packet = packet.get(..40 + len)?;
    let address = |at: usize| -> Option<Ipv6Addr> {
        let octets: [u8; 16] = packet.get(at..at + 16)?.try_into().ok()?;
        Some(Ipv6Addr::from(octets))
    };
    let (src, dst) = (address(8)?, address(24)?);
    let sport = u16::from_be_bytes([*packet.get(40)?, *packet.get(41)?]);
    if src != *reflector.ip() || sport != reflector.port() {
        return None;
    }
    Some((dst, read_payload(packet.get(48..)?)?))
}

/// Write into `out` (cleared first) an IPv4/UDP packet from `src` to
/// `reflector` with a `size`-byte payload carrying `probe`. The header
/// checksum is valid; the UDP checksum is 0 ("none", RFC 768), which IPv4
/// allows.
pub fn build(
    out: &mut Vec<u8>,
    src: Ipv4Addr,
    sport: u16,
    reflector: SocketAddrV4,
    size: u16,
    probe: Probe,
) {
    let size = size.max(DATA_HEADER);
    let total = HEADERS as u16 + size;
    out.clear();
    // Version 4, IHL 5; DF; TTL 64; UDP.
    out.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0]);
    out[2..4].copy_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&src.octets());
    out.extend_from_slice(&reflector.ip().octets());
    let sum = ipv4_checksum(&out[..20]);
    out[10..12].copy_from_slice(&sum.to_be_bytes());
    out.extend_from_slice(&sport.to_be_bytes());
    out.extend_from_slice(&reflector.port().to_be_bytes());
    out.extend_from_slice(&(8 + size).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    payload(out, probe, size);
}

/// A probe coming back from `reflector`: its destination (the session's
/// address) and what it carries. `None` for anything else.
pub fn parse(packet: &[u8], reflector: SocketAddrV4) -> Option<(Ipv4Addr, Probe)> {
    let version_ihl = *packet.first()?;
    if version_ihl >> 4 != 4 || packet.get(9) != Some(&17) {
        return None;
    }
    let ihl = usize::from(version_ihl & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*packet.get(2)?, *packet.get(3)?]));
    let packet = packet.get(..total)?;
    // A fragment cannot be read on its own (a probe is never fragmented).
    if u16::from_be_bytes([packet[6], packet[7]]) & 0x3fff != 0 || ihl < 20 {
        return None;
    }
    let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    let udp = packet.get(ihl..)?;
    let sport = u16::from_be_bytes([*udp.first()?, *udp.get(1)?]);
    if src != *reflector.ip() || sport != reflector.port() {
        return None;
    }
    Some((dst, read_payload(udp.get(8..)?)?))
}

/// How a sequence number arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Higher than any before.
    InOrder,
    /// Lower than one already seen and new (within the window, or too old
    /// to tell: those are counted as reordered, never as duplicates).
    Reordered,
    /// Seen before (within the last [`WINDOW`] numbers).
    Duplicate,
}

/// Sequence numbers remembered behind the highest.
pub const WINDOW: u32 = 64;

/// A session's received sequence numbers: the highest and a bitmap of the
/// 64 below it, as an anti-replay window (RFC 4303 §3.4.3) — 16 bytes a
/// session, however long the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqWindow {
    highest: Option<u32>,
    /// Bit d: `highest - d` has arrived.
    seen: u64,
}

impl SeqWindow {
    /// Note `seq`.
    pub fn accept(&mut self, seq: u32) -> Arrival {
        let Some(highest) = self.highest else {
            self.highest = Some(seq);
            self.seen = 1;
            return Arrival::InOrder;
        };
        if seq > highest {
            let shift = seq - highest;
            self.seen = if shift >= WINDOW {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.highest = Some(seq);
            return Arrival::InOrder;
        }
        let behind = highest - seq;
        if behind >= WINDOW {
            return Arrival::Reordered;
        }
        let bit = 1u64 << behind;
        if self.seen & bit != 0 {
            Arrival::Duplicate
        } else {
            self.seen |= bit;
            Arrival::Reordered
        }
    }
}

/// A worker's data schedule: `targets` sessions at `pps` each from `start`
/// to `end`, packet k (from 0) due at `start + k / (pps × targets)` and
/// going to session `k % targets` as its number `k / targets`. Spreading
/// the sessions evenly over time keeps bursts small; a worker that wakes
/// late sends what is due at once (up to a cap per call).
#[derive(Debug, Clone)]
pub struct Schedule {
    start: Instant,
    /// Packets per second over all targets.
    rate: f64,
    targets: u64,
    /// Packets handed out so far.
    next: u64,
    /// Packets in all (what is due at `end`).
    total: u64,
}

impl Schedule {
    /// A schedule for `targets` sessions at `pps` each over `start..end`.
    pub fn new(start: Instant, end: Instant, pps: f64, targets: usize) -> Self {
        let targets = targets as u64;
        let rate = pps * targets as f64;
        let span = end.saturating_duration_since(start).as_secs_f64();
        let total = if rate > 0.0 {
            // A hair over, so 3 s × 2/s is 6 and not 5.999...
            (span * rate + 1e-6).floor() as u64
        } else {
            0
        };
        Schedule {
            start,
            rate,
            targets,
            next: 0,
            total,
        }
    }

    /// Packets due by `now` and not yet handed out, at most `cap`: each as
    /// (target index, sequence number).
    pub fn due(&mut self, now: Instant, cap: u64) -> impl Iterator<Item = (usize, u32)> {
        let elapsed = now.saturating_duration_since(self.start).as_secs_f64();
        // Packet k is due at k / rate: those with k <= elapsed × rate.
        let due = if self.rate > 0.0 && now >= self.start {
            ((elapsed * self.rate).floor() as u64 + 1).min(self.total)
        } else {
            0
        };
        let from = self.next;
        let to = due.max(from).min(from.saturating_add(cap));
        self.next = to;
        let targets = self.targets.max(1);
        (from..to).map(move |k| ((k % targets) as usize, (k / targets) as u32))
    }

    /// When the next packet is due (`None` when all are out).
    pub fn next_due(&self) -> Option<Instant> {
        (self.next < self.total && self.rate > 0.0)
            .then(|| self.start + Duration::from_secs_f64(self.next as f64 / self.rate))
    }

    /// Every packet has been handed out.
    pub fn finished(&self) -> bool {
        self.next >= self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFLECTOR: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(100, 64, 0, 1), 7);

    /// The reflector's answer: addresses and ports swapped, as the kernel
    /// would send it.
    fn reflected(packet: &[u8]) -> Vec<u8> {
        let mut back = packet.to_vec();
        back[12..16].copy_from_slice(&packet[16..20]);
        back[16..20].copy_from_slice(&packet[12..16]);
        back[20..22].copy_from_slice(&packet[22..24]);
        back[22..24].copy_from_slice(&packet[20..22]);
        back
    }

    #[test]
    fn a_probe_is_valid_ipv4_udp_of_the_asked_size_and_reads_back() {
        let src = Ipv4Addr::new(100, 65, 1, 2);
        let probe = Probe {
            index: 70_000,
            seq: 3,
            sent_ns: 0x0102_0304_0506_0708,
        };
        let mut out = vec![0xee; 7];
        build(&mut out, src, 40_000, REFLECTOR, 64, probe);
        assert_eq!(out.len(), 92);
        assert_eq!(&out[..4], &[0x45, 0, 0, 92]);
        // A valid header sums to zero with its checksum in place.
        assert_eq!(ipv4_checksum(&out[..20]), 0);
        assert_eq!(&out[12..16], &[100, 65, 1, 2]);
        assert_eq!(&out[16..20], &[100, 64, 0, 1]);
        assert_eq!(&out[20..28], &[0x9c, 0x40, 0, 7, 0, 72, 0, 0]);
        assert_eq!(&out[28..32], b"LGD1");
        assert!(out[48..].iter().all(|&b| b == 0), "padding");
        // Not from the reflector: not ours.
        assert_eq!(parse(&out, REFLECTOR), None);
        assert_eq!(parse(&reflected(&out), REFLECTOR), Some((src, probe)));
        let other = SocketAddrV4::new(*REFLECTOR.ip(), 8);
        assert_eq!(parse(&reflected(&out), other), None);
        // The smallest size holds the probe exactly; truncation is refused.
        build(&mut out, src, 40_000, REFLECTOR, DATA_HEADER, probe);
        assert_eq!(out.len(), 48);
        let back = reflected(&out);
        assert_eq!(parse(&back, REFLECTOR), Some((src, probe)));
        assert_eq!(parse(&back[..47], REFLECTOR), None);
        let mut bad = back.clone();
        bad[28] ^= 1;
        assert_eq!(parse(&bad, REFLECTOR), None, "magic");
        assert_eq!(parse(&[], REFLECTOR), None);
    }

    #[test]
    fn an_ipv6_probe_has_a_valid_udp_checksum_and_reads_back() {
        let src: Ipv6Addr = "2001:db8:100:1::2".parse().unwrap();
        let reflector: SocketAddrV6 = "[2001:db8:ff::1]:7".parse().unwrap();
        let probe = Probe {
            index: 5,
            seq: 9,
            sent_ns: 123_456_789,
        };
        let mut out = vec![0xee; 3];
        build6(&mut out, src, 50_000, reflector, 64, probe);
        assert_eq!(out.len(), 40 + 8 + 64);
        assert_eq!(&out[..8], &[0x60, 0, 0, 0, 0, 72, 17, 64]);
        // The checksum over pseudo-header and datagram verifies to zero.
        let mut sum = checksum::add(0, &out[8..40]);
        sum += 72 + 17;
        sum = checksum::add(sum, &out[40..]);
        assert_eq!(checksum::fold(sum), 0xffff);
        assert_eq!(parse6(&out, reflector), None, "not from the reflector");
        let mut back = out.clone();
        back[8..24].copy_from_slice(&out[24..40]);
        back[24..40].copy_from_slice(&out[8..24]);
        back[40..42].copy_from_slice(&out[42..44]);
        back[42..44].copy_from_slice(&out[40..42]);
        assert_eq!(parse6(&back, reflector), Some((src, probe)));
        assert_eq!(parse6(&back[..100], reflector), None, "truncated");
        // An IPv6 packet is not an IPv4 probe.
        assert_eq!(parse(&back, REFLECTOR), None);
    }

    #[test]
    fn the_window_tells_in_order_reordered_and_duplicates() {
        let mut w = SeqWindow::default();
        assert_eq!(w.accept(0), Arrival::InOrder);
        assert_eq!(w.accept(2), Arrival::InOrder);
        assert_eq!(w.accept(1), Arrival::Reordered);
        assert_eq!(w.accept(1), Arrival::Duplicate);
        assert_eq!(w.accept(2), Arrival::Duplicate);
        assert_eq!(w.accept(100), Arrival::InOrder);
        assert_eq!(w.accept(37), Arrival::Reordered);
        assert_eq!(w.accept(37), Arrival::Duplicate);
        // Too old to tell: counted as reordered.
        assert_eq!(w.accept(36), Arrival::Reordered);
        assert_eq!(w.accept(36), Arrival::Reordered);
        assert_eq!(w.accept(1000), Arrival::InOrder);
        assert_eq!(w.accept(999), Arrival::Reordered);
    }

    #[test]
    fn the_schedule_spreads_sessions_evenly_and_sends_the_planned_total() {
        let t0 = Instant::now();
        // 4 sessions at 10/s for 1 s: 40 packets, one every 25 ms.
        let mut s = Schedule::new(t0, t0 + Duration::from_secs(1), 10.0, 4);
        assert_eq!(s.next_due(), Some(t0));
        assert_eq!(s.due(t0, 100).collect::<Vec<_>>(), vec![(0, 0)]);
        assert_eq!(s.next_due(), Some(t0 + Duration::from_millis(25)));
        let ms = |n| t0 + Duration::from_millis(n);
        assert_eq!(
            s.due(ms(100), 100).collect::<Vec<_>>(),
            vec![(1, 0), (2, 0), (3, 0), (0, 1)]
        );
        assert_eq!(s.due(ms(100), 100).count(), 0);
        // A late wake-up sends what is due, at most `cap` at a time.
        assert_eq!(s.due(ms(600), 5).count(), 5);
        let mut rest: Vec<_> = s.due(ms(5000), 1000).collect();
        assert!(s.finished());
        assert_eq!(s.next_due(), None);
        assert_eq!(rest.len(), 40 - 10);
        assert_eq!(rest.pop(), Some((3, 9)), "ten packets each");
    }
}
