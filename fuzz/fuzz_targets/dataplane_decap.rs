//! The data plane's fast path (`lns::dataplane`): `decap` of datagrams
//! from the LACs and `encap` of packets from TUN, on a shard table with
//! four installed sessions (plain dual-stack with an MSS clamp; sequenced
//! and numbered here; sequenced and numbered by another shard; IPv6-only
//! behind an IPv6 LAC with a smaller MTU and clamp).
//!
//! Fuzzed operations:
//!
//! - arbitrary bytes as a datagram, from the session's LAC or a stranger,
//!   with a reply buffer of fuzzed size;
//! - a crafted data message for an installed (or unknown) session: every
//!   L2TP header form (Length, Ns/Nr, Offset Size and pad, trailing bytes
//!   past Length), PPP with or without Address/Control and with a one- or
//!   two-octet Protocol, carrying an IP packet (fuzzed bytes with the
//!   session's source address and a right Length put in, or not), a TCP
//!   segment with a correct checksum and fuzzed flags and options, an LCP
//!   Echo-Request (with our own Magic-Number or not, a right or fuzzed
//!   Length), any other protocol and bytes, or raw PPP bytes; from the
//!   session's LAC or from a stranger;
//! - arbitrary bytes, or a TCP segment, as a packet from TUN, optionally
//!   addressed to a session, with fuzzed headroom;
//! - re-installing a session with another MTU, clamp, address or
//!   sequencing, and removing one.
//!
//! Checked after every operation:
//!
//! - `decap` never panics; `ToTun` borrows the datagram, has the version
//!   of its PPP protocol and a source the session owns; `Reply` parses as
//!   an L2TP data message (Length = its size, the session's peer IDs, Ns
//!   exactly when sequenced) carrying an LCP Echo-Reply with the request's
//!   Identifier and Data and our Magic-Number, addressed to the LAC;
//!   `ToControl`/`Control` hand back the datagram unchanged;
//! - `encap` never panics; `Send` ends at the packet, starts 12 or 16
//!   bytes before it, parses as an L2TP data message to the session's peer
//!   with a matching PPP protocol and the packet as payload, and decaps on
//!   the LAC's mirrored table back to the same packet; `Forward` only for a
//!   session another shard numbers; `TooBig` only above the MTU;
//! - a TCP segment whose checksum was right before clamping is right after
//!   it, and no MSS option it carried stays above the clamp;
//! - the counters account for every call exactly once.
#![no_main]

use std::net::{Ipv4Addr, SocketAddr};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use lns::dataplane::{
    decap, encap, Egress, Ingress, Ipv6Ifids, MssClamp, Sequencing, SessionEntry, SessionKey,
    SessionTable,
};
use lns::wire::ip::checksum;
use lns::wire::l2tp::Packet;
use lns::wire::ppp::cp::{self, Code};
use lns::wire::ppp::Frame;

const MAX_OPS: usize = 64;
const SHARD: u16 = 0;

fn lac4() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 1701))
}

fn lac6() -> SocketAddr {
    SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], 1701))
}

fn lns_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(198, 51, 100, 1), 1701))
}

const LINK_LOCAL: [u8; 8] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0];

fn sessions() -> [SessionEntry; 4] {
    let base = SessionEntry {
        key: (10, 100),
        peer: (7, 70),
        lac: lac4(),
        ipv4: Some(Ipv4Addr::new(100, 64, 0, 10)),
        ipv6_prefix: Some([0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2]),
        ipv6_ifids: Some(Ipv6Ifids {
            ours: [0, 0, 0, 0, 0, 0, 0, 1],
            peer: [2, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55],
        }),
        sequencing: None,
        magic: 0x1122_3344,
        mtu: 1456,
        mss_clamp: Some(MssClamp {
            ipv4: 1400,
            ipv6: 1380,
        }),
    };
    [
        base.clone(),
        SessionEntry {
            key: (10, 101),
            peer: (7, 71),
            ipv4: Some(Ipv4Addr::new(100, 64, 0, 11)),
            ipv6_prefix: None,
            ipv6_ifids: None,
            sequencing: Some(Sequencing {
                owner: SHARD,
                next_ns: 0xfffe,
            }),
            magic: 0,
            mss_clamp: None,
            ..base.clone()
        },
        SessionEntry {
            key: (11, 102),
            peer: (8, 72),
            ipv4: Some(Ipv4Addr::new(100, 64, 0, 12)),
            sequencing: Some(Sequencing {
                owner: 1,
                next_ns: 0,
            }),
            ..base.clone()
        },
        SessionEntry {
            key: (12, 103),
            peer: (9, 73),
            lac: lac6(),
            ipv4: None,
            ipv6_prefix: Some([0x20, 0x01, 0x0d, 0xb8, 0, 9, 0, 0]),
            mtu: 1280,
            mss_clamp: Some(MssClamp {
                ipv4: 1240,
                ipv6: 1220,
            }),
            ..base
        },
    ]
}

#[derive(Debug, Arbitrary)]
enum Op {
    Raw {
        from_lac: bool,
        reply_room: u8,
        bytes: Vec<u8>,
    },
    Crafted {
        session: u8,
        /// Sent from an address other than the session's LAC.
        stranger: bool,
        header: HeaderForm,
        acfc: bool,
        pfc: bool,
        body: Body,
        reply_room: u8,
    },
    Tun {
        headroom: u8,
        to_session: Option<u8>,
        packet: TunPacket,
    },
    Reinstall {
        session: u8,
        mtu: u16,
        mss_clamp: Option<(u16, u16)>,
        drop_ipv4: bool,
        sequencing: Option<(bool, u16)>,
    },
    Remove {
        session: u8,
    },
}

#[derive(Debug, Arbitrary)]
struct HeaderForm {
    length: bool,
    sequence: Option<u16>,
    offset: Option<u8>,
    trailing: u8,
    /// Send to a session ID nobody has.
    unknown: bool,
}

#[derive(Debug, Arbitrary)]
enum Body {
    Ip {
        v6: bool,
        source: Source,
        fix_length: bool,
        bytes: Vec<u8>,
    },
    Tcp(Segment),
    Echo {
        identifier: u8,
        own_magic: bool,
        length: Option<u16>,
        data: Vec<u8>,
    },
    Other {
        protocol: u16,
        bytes: Vec<u8>,
    },
    /// The whole PPP frame, header included (or not).
    RawPpp(Vec<u8>),
}

/// The source address put into a crafted IP packet.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum Source {
    /// Whatever the bytes say.
    Keep,
    /// The session's own address (or an address in its /64).
    Session,
    /// IPv6 only: fe80:: with the subscriber's interface identifier.
    LinkLocal,
}

#[derive(Debug, Arbitrary)]
enum TunPacket {
    Raw(Vec<u8>),
    Tcp(Segment),
}

/// A TCP segment in IPv4 or IPv6 with a correct checksum.
#[derive(Debug, Arbitrary)]
struct Segment {
    v6: bool,
    flags: u8,
    /// Raw option bytes (padded to a multiple of 4, at most 40).
    options: Vec<u8>,
    /// Options first: an MSS option of this value.
    mss: Option<u16>,
    payload: Vec<u8>,
    /// Corrupt the checksum afterwards.
    bad_checksum: bool,
}

impl Segment {
    fn build(&self, src: [u8; 16], dst: [u8; 16]) -> Vec<u8> {
        let mut options = Vec::new();
        if let Some(mss) = self.mss {
            options.extend_from_slice(&[2, 4]);
            options.extend_from_slice(&mss.to_be_bytes());
        }
        options.extend_from_slice(&self.options[..self.options.len().min(40)]);
        options.truncate(40);
        while options.len() % 4 != 0 {
            options.push(0);
        }
        let payload = &self.payload[..self.payload.len().min(1500)];
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&443u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&50000u16.to_be_bytes());
        tcp[12] = ((20 + options.len()) / 4 << 4) as u8;
        tcp[13] = self.flags;
        tcp[14] = 0xff;
        tcp.extend_from_slice(&options);
        tcp.extend_from_slice(payload);
        let mut packet = if self.v6 {
            let mut ip = vec![0u8; 40];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&(tcp.len() as u16).to_be_bytes());
            ip[6] = 6;
            ip[7] = 64;
            ip[8..24].copy_from_slice(&src);
            ip[24..40].copy_from_slice(&dst);
            ip
        } else {
            let mut ip = vec![0u8; 20];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&((20 + tcp.len()) as u16).to_be_bytes());
            ip[6] = 0x40;
            ip[8] = 64;
            ip[9] = 6;
            ip[12..16].copy_from_slice(&src[12..]);
            ip[16..20].copy_from_slice(&dst[12..]);
            ip
        };
        let at = packet.len();
        packet.extend_from_slice(&tcp);
        let sum = tcp_checksum(&packet, at);
        let sum = if self.bad_checksum { sum ^ 0x0101 } else { sum };
        packet[at + 16..at + 18].copy_from_slice(&sum.to_be_bytes());
        packet
    }
}

/// The TCP checksum over pseudo-header and segment (RFC 9293 §3.1), field
/// excluded; `at` is where the segment starts.
fn tcp_checksum(packet: &[u8], at: usize) -> u16 {
    let segment = &packet[at..];
    let mut sum = 0u64;
    if packet[0] >> 4 == 4 {
        sum = checksum::add(sum, &packet[12..20]);
        sum = checksum::add(sum, &[0, 6]);
        sum = checksum::add(sum, &(segment.len() as u16).to_be_bytes());
    } else {
        sum = checksum::add(sum, &packet[8..40]);
        sum = checksum::add(sum, &(segment.len() as u32).to_be_bytes());
        sum = checksum::add(sum, &[0, 0, 0, 6]);
    }
    sum = checksum::add(sum, &segment[..16]);
    sum = checksum::add(sum, &segment[18..]);
    checksum::finish(sum)
}

/// Where the TCP segment of a packet this target built starts, and whether
/// its checksum is right.
fn tcp_state(packet: &[u8]) -> Option<(usize, bool)> {
    let at = match packet.first()? >> 4 {
        4 if packet.len() >= 40 && packet[9] == 6 => usize::from(packet[0] & 0x0f) * 4,
        6 if packet.len() >= 60 && packet[6] == 6 => 40,
        _ => return None,
    };
    if packet.len() < at + 20 {
        return None;
    }
    let stored = u16::from_be_bytes([packet[at + 16], packet[at + 17]]);
    Some((at, stored == tcp_checksum(packet, at)))
}

/// MSS values of a SYN's option list (walked as RFC 9293 §3.2 lays it out).
fn mss_values(packet: &[u8], at: usize) -> Vec<u16> {
    let segment = &packet[at..];
    let header = (usize::from(segment[12] >> 4) * 4).min(segment.len());
    let mut out = Vec::new();
    if segment[13] & 0x02 == 0 || header < 20 {
        return out;
    }
    let mut i = 20;
    while i < header {
        match segment[i] {
            0 => break,
            1 => i += 1,
            kind => {
                let Some(&len) = segment.get(i + 1) else {
                    break;
                };
                let len = usize::from(len);
                if len < 2 || i + len > header {
                    break;
                }
                if kind == 2 && len == 4 {
                    out.push(u16::from_be_bytes([segment[i + 2], segment[i + 3]]));
                }
                i += len;
            }
        }
    }
    out
}

/// The address bytes a session owns (IPv4 as the last four bytes).
fn session_source(entry: &SessionEntry, v6: bool) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    if v6 {
        out[..8].copy_from_slice(&entry.ipv6_prefix?);
        out[8..].copy_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x2a]);
    } else {
        out[12..].copy_from_slice(&entry.ipv4?.octets());
    }
    Some(out)
}

fn remote_host(v6: bool) -> [u8; 16] {
    if v6 {
        [
            0x20, 0x01, 0x0d, 0xb8, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80,
        ]
    } else {
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 80]
    }
}

fn data_message(key: SessionKey, form: &HeaderForm, ppp: &[u8]) -> Vec<u8> {
    let mut flags: u16 = 0x0002;
    let mut out = vec![0, 0];
    if form.length {
        flags |= 0x4000;
        out.extend_from_slice(&[0, 0]);
    }
    out.extend_from_slice(&key.0.to_be_bytes());
    out.extend_from_slice(&key.1.to_be_bytes());
    if let Some(ns) = form.sequence {
        flags |= 0x0800;
        out.extend_from_slice(&ns.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
    }
    if let Some(pad) = form.offset {
        flags |= 0x0200;
        out.extend_from_slice(&u16::from(pad).to_be_bytes());
        out.extend(std::iter::repeat_n(0xee, usize::from(pad)));
    }
    out[..2].copy_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(ppp);
    if form.length {
        let len = out.len().min(usize::from(u16::MAX)) as u16;
        out[2..4].copy_from_slice(&len.to_be_bytes());
    }
    out.extend(std::iter::repeat_n(0xdd, usize::from(form.trailing)));
    out
}

fn ppp_header(protocol: u16, acfc: bool, pfc: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if !acfc {
        out.extend_from_slice(&[0xff, 0x03]);
    }
    if pfc && protocol < 0x100 && protocol & 1 == 1 {
        out.push(protocol as u8);
    } else {
        out.extend_from_slice(&protocol.to_be_bytes());
    }
    out
}

struct Harness {
    table: SessionTable,
    entries: Vec<Option<SessionEntry>>,
    calls: u64,
}

impl Harness {
    fn entry_for_key(&self, key: SessionKey) -> Option<&SessionEntry> {
        self.entries.iter().flatten().find(|e| e.key == key)
    }

    fn decap_and_check(&mut self, from: SocketAddr, mut datagram: Vec<u8>, reply_room: u8) {
        let original = datagram.clone();
        let header = Packet::new_checked(&original[..])
            .ok()
            .filter(|p| !p.is_control())
            .map(|p| (p.tunnel_id(), p.session_id(), p.header_len()));
        let entry = header.and_then(|(t, s, _)| self.entry_for_key((t, s)).cloned());
        let mut reply = vec![0x5a; usize::from(reply_room) * 2];
        self.calls += 1;
        let range = datagram.as_ptr_range();
        match decap(&mut self.table, from, &mut datagram, &mut reply) {
            Ingress::ToTun { packet } => {
                let entry = entry.expect("ToTun for a session we installed");
                assert_eq!(from, entry.lac);
                let inner = packet.as_ptr_range();
                assert!(range.start <= inner.start && inner.end <= range.end);
                match packet[0] >> 4 {
                    4 => assert_eq!(
                        Some(Ipv4Addr::new(
                            packet[12], packet[13], packet[14], packet[15]
                        )),
                        entry.ipv4
                    ),
                    6 => {
                        assert_eq!(
                            Some(&packet[8..16]),
                            entry.ipv6_prefix.as_ref().map(|p| &p[..])
                        );
                        // Multicast and link-local destinations never
                        // reach the TUN.
                        assert!(packet[24] != 0xff);
                        assert!(!(packet[24] == 0xfe && packet[25] & 0xc0 == 0x80));
                    }
                    v => panic!("version {v} to TUN"),
                }
                let total = if packet[0] >> 4 == 4 {
                    usize::from(u16::from_be_bytes([packet[2], packet[3]]))
                } else {
                    40 + usize::from(u16::from_be_bytes([packet[4], packet[5]]))
                };
                assert_eq!(packet.len(), total);
            }
            Ingress::Reply { len, to } => {
                let entry = entry.expect("Reply for a session we installed");
                assert_eq!(to, entry.lac);
                check_reply(&entry, &original, header.map_or(0, |h| h.2), &reply[..len]);
                assert!(reply[len..].iter().all(|&b| b == 0x5a));
            }
            Ingress::ToControl { key, datagram } => {
                assert_eq!(datagram, &original[..]);
                assert!(entry.is_some_and(|e| e.key == key));
            }
            Ingress::Control { datagram } => {
                assert_eq!(datagram, &original[..]);
                assert!(original[0] & 0x80 != 0);
            }
            Ingress::Drop(_) => {}
        }
    }

    fn encap_and_check(&mut self, headroom: usize, packet: Vec<u8>, built: bool) {
        let mut buf = vec![0xa5; headroom];
        buf.extend_from_slice(&packet);
        buf.extend_from_slice(&[0xa5; 4]);
        let len = packet.len();
        let tcp_before = tcp_state(&packet);
        self.calls += 1;
        match encap(&mut self.table, &mut buf, headroom, len) {
            Egress::Send { datagram, to } => {
                assert_eq!(datagram.end, headroom + len);
                let header_len = headroom - datagram.start;
                assert!(header_len == 12 || header_len == 16);
                assert!(buf[..datagram.start].iter().all(|&b| b == 0xa5));
                let sent = buf[headroom..headroom + len].to_vec();
                let message =
                    Packet::new_checked(&buf[datagram.clone()]).expect("encap output parses");
                assert!(!message.is_control());
                assert_eq!(message.length(), Some(datagram.len() as u16));
                let entry = self
                    .entries
                    .iter()
                    .flatten()
                    .find(|e| e.peer == (message.tunnel_id(), message.session_id()))
                    .cloned()
                    .expect("sent to an installed session");
                assert_eq!(to, entry.lac);
                assert_eq!(message.has_sequence(), entry.sequencing.is_some());
                assert!(len <= usize::from(entry.mtu));
                let frame = Frame::parse(message.payload()).expect("PPP parses");
                let expected = if sent[0] >> 4 == 4 { 0x0021 } else { 0x0057 };
                assert_eq!(frame.protocol, expected);
                assert!(frame.address_control && !frame.protocol_compressed);
                assert_eq!(frame.payload, &sent[..]);
                check_clamp(&entry, tcp_before, built, &packet, &sent);
                // The LAC's side: our peer IDs are its key, and the remote
                // host (the packet's source) is who "owns" the traffic.
                let mut mirror = entry.clone();
                mirror.key = entry.peer;
                mirror.peer = entry.key;
                mirror.lac = lns_addr();
                mirror.sequencing = None;
                mirror.mss_clamp = None;
                if sent[0] >> 4 == 4 {
                    mirror.ipv4 = Some(Ipv4Addr::new(sent[12], sent[13], sent[14], sent[15]));
                    mirror.ipv6_prefix = None;
                } else {
                    let mut prefix = [0u8; 8];
                    prefix.copy_from_slice(&sent[8..16]);
                    mirror.ipv6_prefix = Some(prefix);
                    mirror.ipv4 = None;
                }
                let mut lac_table = SessionTable::new(0);
                lac_table.install(mirror);
                let mut wire = buf[datagram].to_vec();
                let back = decap(&mut lac_table, lns_addr(), &mut wire, &mut []);
                // Bytes after the IP length are the caller's business: the
                // decap of the mirror cuts them off like link padding.
                match back {
                    Ingress::ToTun { packet } => assert_eq!(packet, &sent[..packet.len()]),
                    Ingress::Drop(_) => {
                        // Only when the packet from TUN was not a valid IP
                        // packet (encap routes on the destination alone).
                        assert!(
                            (sent[0] >> 4 == 4
                                && lns::wire::ip::Ipv4Packet::new_checked(&sent[..]).is_err())
                                || (sent[0] >> 4 == 6
                                    && lns::wire::ip::Ipv6Packet::new_checked(&sent[..]).is_err())
                        );
                    }
                    other => panic!("mirror decap gave {other:?}"),
                }
            }
            Egress::Forward { shard } => assert_ne!(shard, SHARD),
            Egress::TooBig { mtu } => assert!(len > usize::from(mtu)),
            Egress::Drop(_) => {}
        }
    }
}

/// After a packet crossed the data plane (`old` in, `new` out): a correct
/// TCP checksum stays correct, and in segments this target built (whose
/// headers add up by construction) no MSS stays above the clamp.
fn check_clamp(
    entry: &SessionEntry,
    before: Option<(usize, bool)>,
    built: bool,
    old: &[u8],
    new: &[u8],
) {
    let Some((at, valid)) = before else {
        // TCP behind IPv6 extension headers is clamped too, but this
        // target does not walk them.
        let behind_extensions = old[0] >> 4 == 6 && matches!(old[6], 0 | 43 | 60);
        assert!(old == new || behind_extensions, "only TCP segments change");
        return;
    };
    if valid {
        assert_eq!(
            u16::from_be_bytes([new[at + 16], new[at + 17]]),
            tcp_checksum(new, at),
            "clamping broke a correct checksum"
        );
    }
    match entry.mss_clamp {
        Some(limits) if built => {
            let clamp = limits.for_version(new[0] >> 4 == 6);
            for mss in mss_values(new, at) {
                assert!(mss <= clamp, "MSS {mss} above clamp {clamp}");
            }
        }
        Some(_) => {}
        None => assert_eq!(old, new),
    }
}

fn check_reply(entry: &SessionEntry, request: &[u8], header_len: usize, reply: &[u8]) {
    let message = Packet::new_checked(reply).expect("reply parses");
    assert!(!message.is_control());
    assert_eq!(message.length(), Some(reply.len() as u16));
    assert_eq!((message.tunnel_id(), message.session_id()), entry.peer);
    assert_eq!(message.has_sequence(), entry.sequencing.is_some());
    let frame = Frame::parse(message.payload()).expect("reply PPP parses");
    assert_eq!(frame.protocol, 0xc021);
    let answer = cp::Packet::new_checked(frame.payload).expect("reply LCP parses");
    assert_eq!(answer.code(), Code::EchoReply);
    assert_eq!(usize::from(answer.length()), frame.payload.len());
    assert_eq!(&answer.data()[..4], &entry.magic.to_be_bytes());
    // The request, read back the same way.
    let request = Packet::new_checked(request).expect("request parsed");
    assert!(header_len <= request.header_len());
    let asked = Frame::parse(request.payload()).expect("request PPP");
    let asked = cp::Packet::new_checked(asked.payload).expect("request LCP");
    assert_eq!(asked.code(), Code::EchoRequest);
    assert_eq!(answer.identifier(), asked.identifier());
    assert_eq!(&answer.data()[4..], &asked.data()[4..]);
}

fuzz_target!(|ops: Vec<Op>| {
    let mut table = SessionTable::new(SHARD);
    let entries = sessions();
    for entry in &entries {
        table.install(entry.clone());
    }
    let mut h = Harness {
        table,
        entries: entries.iter().cloned().map(Some).collect(),
        calls: 0,
    };
    for op in ops.into_iter().take(MAX_OPS) {
        match op {
            Op::Raw {
                from_lac,
                reply_room,
                bytes,
            } => {
                let from = if from_lac { lac4() } else { lns_addr() };
                h.decap_and_check(from, bytes, reply_room);
            }
            Op::Crafted {
                session,
                stranger,
                header,
                acfc,
                pfc,
                body,
                reply_room,
            } => {
                let base = &entries[usize::from(session) % entries.len()];
                let entry = h.entries[usize::from(session) % entries.len()]
                    .clone()
                    .unwrap_or_else(|| base.clone());
                let (protocol, payload) = match body {
                    Body::Ip {
                        v6,
                        source,
                        fix_length,
                        mut bytes,
                    } => {
                        if let Some(first) = bytes.first_mut() {
                            *first = (*first & 0x0f) | if v6 { 0x60 } else { 0x40 };
                        }
                        let src = match source {
                            Source::Keep => None,
                            Source::Session => session_source(&entry, v6),
                            Source::LinkLocal => entry.ipv6_ifids.map(|ids| {
                                let mut out = [0u8; 16];
                                out[..8].copy_from_slice(&LINK_LOCAL);
                                out[8..].copy_from_slice(&ids.peer);
                                out
                            }),
                        };
                        if let Some(src) = src {
                            if v6 && bytes.len() >= 24 {
                                bytes[8..24].copy_from_slice(&src);
                            } else if !v6 && bytes.len() >= 16 {
                                bytes[12..16].copy_from_slice(&src[12..]);
                            }
                        }
                        if fix_length {
                            if v6 && bytes.len() >= 40 {
                                let len = (bytes.len() - 40).min(usize::from(u16::MAX)) as u16;
                                bytes[4..6].copy_from_slice(&len.to_be_bytes());
                            } else if !v6 && bytes.len() >= 20 {
                                bytes[0] = 0x45;
                                let len = bytes.len().min(usize::from(u16::MAX)) as u16;
                                bytes[2..4].copy_from_slice(&len.to_be_bytes());
                            }
                        }
                        (if v6 { 0x0057 } else { 0x0021 }, bytes)
                    }
                    Body::Tcp(segment) => {
                        let src = session_source(&entry, segment.v6).unwrap_or([0; 16]);
                        let dst = remote_host(segment.v6);
                        let protocol = if segment.v6 { 0x0057 } else { 0x0021 };
                        let packet = segment.build(src, dst);
                        // Ingress clamping is checked here, on the bytes
                        // that come out.
                        let before = tcp_state(&packet);
                        let datagram = data_message(entry.key, &header, &{
                            let mut ppp = ppp_header(protocol, acfc, pfc);
                            ppp.extend_from_slice(&packet);
                            ppp
                        });
                        let mut copy = datagram.clone();
                        h.calls += 1;
                        let from = entry.lac;
                        if let Ingress::ToTun { packet: out } =
                            decap(&mut h.table, from, &mut copy, &mut [])
                        {
                            let live = h.entries.iter().flatten().find(|e| e.key == entry.key);
                            let live = live.expect("installed");
                            check_clamp(live, before, true, &packet, out);
                        }
                        continue;
                    }
                    Body::Echo {
                        identifier,
                        own_magic,
                        length,
                        data,
                    } => {
                        let magic = if own_magic { entry.magic } else { 0xaabb_ccdd };
                        let len = 8 + data.len();
                        let mut lcp = vec![Code::EchoRequest.into(), identifier];
                        lcp.extend_from_slice(&length.unwrap_or(len as u16).to_be_bytes());
                        lcp.extend_from_slice(&magic.to_be_bytes());
                        lcp.extend_from_slice(&data);
                        (0xc021, lcp)
                    }
                    Body::Other { protocol, bytes } => (protocol, bytes),
                    Body::RawPpp(bytes) => (0, bytes),
                };
                let mut ppp = if protocol == 0 {
                    Vec::new()
                } else {
                    ppp_header(protocol, acfc, pfc)
                };
                ppp.extend_from_slice(&payload);
                let key = if header.unknown {
                    (entry.key.0, entry.key.1 ^ 0x8000)
                } else {
                    entry.key
                };
                let datagram = data_message(key, &header, &ppp);
                let from = if stranger { lns_addr() } else { entry.lac };
                h.decap_and_check(from, datagram, reply_room);
            }
            Op::Tun {
                headroom,
                to_session,
                packet,
            } => {
                let target = to_session.map(|s| entries[usize::from(s) % entries.len()].clone());
                let built = matches!(packet, TunPacket::Tcp(_));
                let mut bytes = match packet {
                    TunPacket::Raw(bytes) => bytes,
                    TunPacket::Tcp(segment) => {
                        let v6 = segment.v6;
                        let dst = target
                            .as_ref()
                            .and_then(|e| session_source(e, v6))
                            .unwrap_or([0; 16]);
                        segment.build(remote_host(v6), dst)
                    }
                };
                if let Some(entry) = &target {
                    match bytes.first().map(|b| b >> 4) {
                        Some(4) if bytes.len() >= 20 => {
                            if let Some(ip) = entry.ipv4 {
                                bytes[16..20].copy_from_slice(&ip.octets());
                            }
                        }
                        Some(6) if bytes.len() >= 40 => {
                            if let Some(prefix) = entry.ipv6_prefix {
                                bytes[24..32].copy_from_slice(&prefix);
                            }
                        }
                        _ => {}
                    }
                }
                h.encap_and_check(usize::from(headroom % 64), bytes, built);
            }
            Op::Reinstall {
                session,
                mtu,
                mss_clamp,
                drop_ipv4,
                sequencing,
            } => {
                let index = usize::from(session) % entries.len();
                let mut entry = entries[index].clone();
                entry.mtu = mtu;
                entry.mss_clamp = mss_clamp.map(|(ipv4, ipv6)| MssClamp { ipv4, ipv6 });
                if drop_ipv4 {
                    entry.ipv4 = None;
                }
                entry.sequencing = sequencing.map(|(here, next_ns)| Sequencing {
                    owner: if here { SHARD } else { 1 },
                    next_ns,
                });
                h.table.install(entry.clone());
                h.entries[index] = Some(entry);
            }
            Op::Remove { session } => {
                let index = usize::from(session) % entries.len();
                if let Some(entry) = h.entries[index].take() {
                    assert!(h.table.remove(entry.key).is_some());
                }
            }
        }
        let c = h.table.counters();
        assert_eq!(
            c.packets_in
                + c.packets_out
                + c.echo_replies
                + c.to_control
                + c.control
                + c.forwarded
                + c.dropped_total(),
            h.calls,
            "every call counted once"
        );
        assert_eq!(h.table.len(), h.entries.iter().flatten().count());
    }
});
