//! Every path of the fast path with real bytes, plus a random-input loop.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::mss::tests::{ipv4_syn, ipv6_syn_ack, tcp_checksum};
use super::*;

const SHARD: u16 = 0;

fn lac() -> SocketAddr {
    "192.0.2.1:1701".parse().unwrap()
}

fn lns() -> SocketAddr {
    "198.51.100.1:1701".parse().unwrap()
}

const SUB_A: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 10);
const SUB_B: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 11);
const SUB_C: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 12);
const PREFIX_A: [u8; 8] = [0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x02];
const PEER_IFID: [u8; 8] = [0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55];

/// Session A: plain, IPv4 and IPv6, MSS clamp 1400 (IPv4) / 1380 (IPv6).
fn entry_a() -> SessionEntry {
    SessionEntry {
        key: (10, 100),
        peer: (7, 70),
        lac: lac(),
        ipv4: Some(SUB_A),
        ipv6_prefix: Some(PREFIX_A),
        ipv6_ifids: Some(Ipv6Ifids {
            ours: [0, 0, 0, 0, 0, 0, 0, 1],
            peer: PEER_IFID,
        }),
        sequencing: None,
        magic: 0x1122_3344,
        mtu: 1456,
        mss_clamp: Some(MssClamp {
            ipv4: 1400,
            ipv6: 1380,
        }),
    }
}

/// Session B: sequenced, numbered by this shard, next Ns 5.
fn entry_b() -> SessionEntry {
    SessionEntry {
        key: (10, 101),
        peer: (7, 71),
        ipv4: Some(SUB_B),
        ipv6_prefix: None,
        ipv6_ifids: None,
        sequencing: Some(Sequencing {
            owner: SHARD,
            next_ns: 5,
        }),
        mss_clamp: None,
        ..entry_a()
    }
}

/// Session C: sequenced, numbered by shard 1.
fn entry_c() -> SessionEntry {
    SessionEntry {
        key: (11, 102),
        peer: (8, 72),
        ipv4: Some(SUB_C),
        sequencing: Some(Sequencing {
            owner: 1,
            next_ns: 0,
        }),
        ..entry_b()
    }
}

fn table() -> SessionTable {
    let mut table = SessionTable::new(SHARD);
    for entry in [entry_a(), entry_b(), entry_c()] {
        assert_eq!(table.install(entry), None);
    }
    table
}

/// A UDP-in-IPv4 packet of `len` bytes (len ≥ 28).
fn ipv4_udp(src: Ipv4Addr, dst: Ipv4Addr, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[6] = 0x40;
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    p[20..22].copy_from_slice(&5353u16.to_be_bytes());
    p[22..24].copy_from_slice(&53u16.to_be_bytes());
    p[24..26].copy_from_slice(&((len - 20) as u16).to_be_bytes());
    for (i, b) in p[28..].iter_mut().enumerate() {
        *b = i as u8;
    }
    p
}

/// An ICMPv6-ish IPv6 packet of `len` bytes (len ≥ 40).
fn ipv6_packet(src: Ipv6Addr, dst: Ipv6Addr, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
    p[6] = 58;
    p[7] = 255;
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    p
}

fn addr_a6(low: u64) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    octets[..8].copy_from_slice(&PREFIX_A);
    octets[8..].copy_from_slice(&low.to_be_bytes());
    Ipv6Addr::from(octets)
}

/// Which optional L2TP header fields a test datagram carries.
#[derive(Debug, Clone, Copy, Default)]
struct Form {
    length: bool,
    sequence: Option<u16>,
    offset: Option<u16>,
    /// Bytes after the message that Length excludes.
    trailing: usize,
}

/// An L2TP data message for `key` carrying `ppp` (PPP header and payload).
fn data_message(key: SessionKey, form: Form, ppp: &[u8]) -> Vec<u8> {
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
        out.extend_from_slice(&pad.to_be_bytes());
        out.extend(std::iter::repeat_n(0xee, usize::from(pad)));
    }
    out[..2].copy_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(ppp);
    if form.length {
        let len = out.len() as u16;
        out[2..4].copy_from_slice(&len.to_be_bytes());
    }
    out.extend(std::iter::repeat_n(0xdd, form.trailing));
    out
}

fn ppp(header: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = header.to_vec();
    out.extend_from_slice(payload);
    out
}

fn decap_vec<'a>(
    table: &mut SessionTable,
    datagram: &'a mut [u8],
    reply: &mut [u8],
) -> Ingress<'a> {
    decap(table, lac(), datagram, reply)
}

const FULL_V4: [u8; 4] = [0xff, 0x03, 0x00, 0x21];
const FULL_V6: [u8; 4] = [0xff, 0x03, 0x00, 0x57];
const FULL_LCP: [u8; 4] = [0xff, 0x03, 0xc0, 0x21];

// ---------------------------------------------------------------- ingress

#[test]
fn every_l2tp_header_form_reaches_tun() {
    let packet = ipv4_udp(SUB_A, Ipv4Addr::new(192, 0, 2, 80), 64);
    let forms = [
        Form::default(),
        Form {
            length: true,
            ..Form::default()
        },
        Form {
            sequence: Some(9),
            ..Form::default()
        },
        Form {
            length: true,
            sequence: Some(0xffff),
            ..Form::default()
        },
        Form {
            offset: Some(0),
            ..Form::default()
        },
        Form {
            length: true,
            sequence: Some(1),
            offset: Some(5),
            ..Form::default()
        },
        // Length shorter than the UDP payload: the rest is not the message.
        Form {
            length: true,
            trailing: 7,
            ..Form::default()
        },
    ];
    let mut table = table();
    let mut reply = [0u8; 2048];
    for (n, form) in forms.into_iter().enumerate() {
        let mut datagram = data_message((10, 100), form, &ppp(&FULL_V4, &packet));
        match decap_vec(&mut table, &mut datagram, &mut reply) {
            Ingress::ToTun { packet: out } => assert_eq!(out, &packet[..], "{form:?}"),
            other => panic!("{form:?}: {other:?}"),
        }
        assert_eq!(table.counters().packets_in, n as u64 + 1);
    }
    let stats = table.stats((10, 100)).unwrap();
    assert_eq!(stats.packets_in, 7);
    assert_eq!(stats.bytes_in, 7 * 64);
    assert_eq!(table.counters().bytes_in, 7 * 64);
    assert_eq!(table.counters().dropped_total(), 0);
}

#[test]
fn every_ppp_header_form_reaches_tun() {
    let v4 = ipv4_udp(SUB_A, Ipv4Addr::new(192, 0, 2, 80), 40);
    let v6 = ipv6_packet(addr_a6(0x1234), "2001:db8::1".parse().unwrap(), 48);
    let cases: [(&[u8], &Vec<u8>); 6] = [
        (&FULL_V4, &v4),
        (&[0x00, 0x21], &v4),       // ACFC
        (&[0xff, 0x03, 0x21], &v4), // PFC
        (&[0x21], &v4),             // ACFC + PFC
        (&FULL_V6, &v6),
        (&[0x57], &v6),
    ];
    let mut table = table();
    for (header, packet) in cases {
        let mut datagram = data_message((10, 100), Form::default(), &ppp(header, packet));
        let out = decap_vec(&mut table, &mut datagram, &mut []);
        assert_eq!(
            out,
            Ingress::ToTun {
                packet: &packet[..]
            },
            "{header:02x?}"
        );
    }
}

#[test]
fn link_padding_after_the_ip_packet_is_cut() {
    let packet = ipv4_udp(SUB_A, Ipv4Addr::new(192, 0, 2, 80), 46);
    let mut padded = packet.clone();
    padded.extend_from_slice(&[0; 10]);
    let mut datagram = data_message((10, 100), Form::default(), &ppp(&FULL_V4, &padded));
    let mut table = table();
    assert_eq!(
        decap_vec(&mut table, &mut datagram, &mut []),
        Ingress::ToTun { packet: &packet }
    );
    assert_eq!(table.stats((10, 100)).unwrap().bytes_in, 46);
}

#[test]
fn malformed_and_mismatched_ip_is_dropped() {
    let mut table = table();
    let good = ipv4_udp(SUB_A, Ipv4Addr::new(192, 0, 2, 80), 40);
    let v6 = ipv6_packet(addr_a6(1), "2001:db8::1".parse().unwrap(), 40);
    let mut long_total = good.clone();
    long_total[3] = 41;
    let cases: [(&[u8], Vec<u8>, DropReason); 6] = [
        (&FULL_V4, vec![], DropReason::IpMalformed),
        (&FULL_V4, good[..19].to_vec(), DropReason::IpMalformed),
        (&FULL_V4, long_total, DropReason::IpMalformed),
        (&FULL_V4, v6.clone(), DropReason::IpVersionMismatch),
        (&FULL_V6, good.clone(), DropReason::IpVersionMismatch),
        (&FULL_V6, v6[..39].to_vec(), DropReason::IpMalformed),
    ];
    for (header, payload, reason) in cases {
        let mut datagram = data_message((10, 100), Form::default(), &ppp(header, &payload));
        assert_eq!(
            decap_vec(&mut table, &mut datagram, &mut []),
            Ingress::Drop(reason)
        );
    }
    assert_eq!(table.counters().dropped(DropReason::IpMalformed), 4);
    assert_eq!(table.counters().dropped(DropReason::IpVersionMismatch), 2);
    assert_eq!(table.counters().packets_in, 0);
}

#[test]
fn spoofed_sources_are_dropped() {
    let mut table = table();
    let dst = Ipv4Addr::new(192, 0, 2, 80);
    let v6_dst: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let link_local = |ifid: [u8; 8]| {
        let mut octets = [0u8; 16];
        octets[..2].copy_from_slice(&[0xfe, 0x80]);
        octets[8..].copy_from_slice(&ifid);
        Ipv6Addr::from(octets)
    };
    let cases: [(SessionKey, [u8; 4], Vec<u8>); 5] = [
        // Session B's address on session A.
        ((10, 100), FULL_V4, ipv4_udp(SUB_B, dst, 40)),
        ((10, 100), FULL_V4, ipv4_udp(Ipv4Addr::UNSPECIFIED, dst, 40)),
        // Outside A's /64.
        (
            (10, 100),
            FULL_V6,
            ipv6_packet("2001:db8:1:3::a".parse().unwrap(), v6_dst, 40),
        ),
        // Link-local, but not the identifier IPv6CP agreed.
        (
            (10, 100),
            FULL_V6,
            ipv6_packet(link_local([9; 8]), "ff02::2".parse().unwrap(), 48),
        ),
        // Session B has no IPv6 at all.
        (
            (10, 101),
            FULL_V6,
            ipv6_packet(link_local(PEER_IFID), "ff02::2".parse().unwrap(), 48),
        ),
    ];
    for (key, header, packet) in cases {
        let mut datagram = data_message(key, Form::default(), &ppp(&header, &packet));
        assert_eq!(
            decap_vec(&mut table, &mut datagram, &mut []),
            Ingress::Drop(DropReason::SpoofedSource)
        );
    }
    assert_eq!(table.counters().dropped(DropReason::SpoofedSource), 5);
    // A session without an IPv4 address accepts no IPv4 at all.
    let mut entry = entry_a();
    entry.ipv4 = None;
    table.install(entry);
    let mut datagram = data_message(
        (10, 100),
        Form::default(),
        &ppp(&FULL_V4, &ipv4_udp(SUB_A, dst, 40)),
    );
    assert_eq!(
        decap_vec(&mut table, &mut datagram, &mut []),
        Ingress::Drop(DropReason::SpoofedSource)
    );
}

#[test]
fn router_and_neighbor_solicitations_go_to_control() {
    use crate::wire::icmpv6::{link_local, RouterSolicitation, ALL_ROUTERS};
    let mut table = table();
    let ours = link_local([0, 0, 0, 0, 0, 0, 0, 1]);
    let mut ns = ipv6_packet(link_local(PEER_IFID), ours, 64);
    ns[40] = 135;
    let cases = [
        // Router Solicitations to all-routers, from the subscriber's
        // link-local address, from the unspecified address, and from its
        // /64; and to our link-local address.
        RouterSolicitation::emit(link_local(PEER_IFID), ALL_ROUTERS),
        RouterSolicitation::emit(Ipv6Addr::UNSPECIFIED, ALL_ROUTERS),
        RouterSolicitation::emit(addr_a6(7), ALL_ROUTERS),
        RouterSolicitation::emit(link_local(PEER_IFID), ours),
        // A Neighbor Solicitation for our link-local address.
        ns,
    ];
    for (n, packet) in cases.iter().enumerate() {
        let mut datagram = data_message((10, 100), Form::default(), &ppp(&FULL_V6, packet));
        let copy = datagram.clone();
        assert_eq!(
            decap_vec(&mut table, &mut datagram, &mut []),
            Ingress::ToControl {
                key: (10, 100),
                datagram: &copy
            },
            "case {n}"
        );
    }
    assert_eq!(table.counters().to_control, 5);
}

#[test]
fn other_link_scoped_ipv6_stops_at_the_data_plane() {
    use crate::wire::icmpv6::link_local;
    let mut table = table();
    let mut mdns = ipv6_packet(link_local(PEER_IFID), "ff02::fb".parse().unwrap(), 48);
    mdns[6] = 17;
    let mut echo = ipv6_packet(addr_a6(1), link_local([0, 0, 0, 0, 0, 0, 0, 1]), 48);
    echo[40] = 128;
    let mut global_multicast = ipv6_packet(addr_a6(1), "ff0e::1".parse().unwrap(), 48);
    global_multicast[6] = 17;
    for packet in [mdns, echo, global_multicast] {
        let mut datagram = data_message((10, 100), Form::default(), &ppp(&FULL_V6, &packet));
        assert_eq!(
            decap_vec(&mut table, &mut datagram, &mut []),
            Ingress::Drop(DropReason::LinkScope)
        );
    }
    // A link-local source is never forwarded to a global destination.
    let leak = ipv6_packet(link_local(PEER_IFID), "2001:db8::1".parse().unwrap(), 48);
    let mut datagram = data_message((10, 100), Form::default(), &ppp(&FULL_V6, &leak));
    assert_eq!(
        decap_vec(&mut table, &mut datagram, &mut []),
        Ingress::Drop(DropReason::SpoofedSource)
    );
    assert_eq!(table.counters().dropped(DropReason::LinkScope), 3);
    assert_eq!(table.counters().to_control, 0);
}

#[test]
fn unknown_session_wrong_peer_and_bad_headers_are_dropped() {
    let mut table = table();
    let packet = ipv4_udp(SUB_A, Ipv4Addr::new(192, 0, 2, 80), 40);
    let body = ppp(&FULL_V4, &packet);
    let cases = [
        (
            data_message((10, 999), Form::default(), &body),
            lac(),
            DropReason::UnknownSession,
        ),
        (
            data_message((0, 0), Form::default(), &body),
            lac(),
            DropReason::UnknownSession,
        ),
        (
            data_message((10, 100), Form::default(), &body),
            "192.0.2.1:1702".parse().unwrap(),
            DropReason::WrongPeer,
        ),
        (
            data_message((10, 100), Form::default(), &body),
            "192.0.2.2:1701".parse().unwrap(),
            DropReason::WrongPeer,
        ),
        // Version 3 (an L2TPv3 peer).
        (
            vec![0x00, 0x03, 0, 10, 0, 100, 0xff, 0x03, 0x00, 0x21],
            lac(),
            DropReason::L2tpVersion,
        ),
        // Length past the datagram.
        (
            vec![0x40, 0x02, 0, 40, 0, 10, 0, 100, 0xff, 0x03],
            lac(),
            DropReason::L2tpMalformed,
        ),
        // Offset pad past the end.
        (
            vec![0x02, 0x02, 0, 10, 0, 100, 0, 9, 0xff],
            lac(),
            DropReason::L2tpMalformed,
        ),
        // A control message without the L and S bits it must carry.
        (
            vec![0x80, 0x02, 0, 10, 0, 0],
            lac(),
            DropReason::L2tpMalformed,
        ),
        // No PPP protocol at all.
        (
            data_message((10, 100), Form::default(), &[]),
            lac(),
            DropReason::PppMalformed,
        ),
        (
            data_message((10, 100), Form::default(), &[0xff, 0x03, 0xc0]),
            lac(),
            DropReason::PppMalformed,
        ),
    ];
    for (mut datagram, from, reason) in cases {
        let shown = format!("{datagram:02x?}");
        assert_eq!(
            decap(&mut table, from, &mut datagram, &mut []),
            Ingress::Drop(reason),
            "{shown}"
        );
        assert!(table.counters().dropped(reason) > 0);
    }
    assert_eq!(table.counters().dropped_total(), 10);
    assert_eq!(table.counters().packets_in, 0);
}

#[test]
fn control_messages_go_to_the_control_thread() {
    let mut table = table();
    // A HELLO (T L S, Length 20, tunnel 10, Ns 3, Nr 4, Message Type 6).
    let mut hello = vec![
        0xc8, 0x02, 0x00, 0x14, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x03, 0x00, 0x04, //
        0x80, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06,
    ];
    let copy = hello.clone();
    // Any source: the endpoint judges control messages itself.
    let from = "203.0.113.9:4000".parse().unwrap();
    assert_eq!(
        decap(&mut table, from, &mut hello, &mut []),
        Ingress::Control { datagram: &copy }
    );
    // An SCCRQ for tunnel 0, and a ZLB for an unknown tunnel.
    for mut message in [
        vec![0xc8, 0x02, 0x00, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0],
        vec![0xc8, 0x02, 0x00, 0x0c, 0x12, 0x34, 0, 0, 0, 1, 0, 1],
    ] {
        assert!(matches!(
            decap_vec(&mut table, &mut message, &mut []),
            Ingress::Control { .. }
        ));
    }
    assert_eq!(table.counters().control, 3);
}

#[test]
fn the_buffer_is_usable_after_the_verdict() {
    // What the shard loop does: decide, then forward the same buffer.
    let mut table = table();
    let mut buf = vec![0xc8, 0x02, 0x00, 0x0c, 0x00, 0x0a, 0, 0, 0, 1, 0, 1];
    let forwarded = match decap_vec(&mut table, &mut buf, &mut []) {
        Ingress::Control { .. } => buf.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(forwarded, buf);
}

/// Echo-Request id 0x2a, peer magic aabbccdd, data 01020304.
const ECHO_REQUEST: [u8; 16] = [
    0xff, 0x03, 0xc0, 0x21, // PPP: LCP
    0x09, 0x2a, 0x00, 0x0c, // Echo-Request, id, length 12
    0xaa, 0xbb, 0xcc, 0xdd, // peer's magic
    0x01, 0x02, 0x03, 0x04, // data
];

#[test]
fn echo_request_is_answered_on_the_shard() {
    let mut table = table();
    let mut reply = [0x5au8; 64];
    let mut datagram = data_message((10, 100), Form::default(), &ECHO_REQUEST);
    let out = decap_vec(&mut table, &mut datagram, &mut reply);
    assert_eq!(out, Ingress::Reply { len: 24, to: lac() });
    let expected = [
        0x40, 0x02, 0x00, 0x18, // L, version 2, Length 24
        0x00, 0x07, 0x00, 0x46, // the LAC's tunnel 7, session 70
        0xff, 0x03, 0xc0, 0x21, // PPP: LCP, uncompressed (RFC 1661 §6.5, §6.6)
        0x0a, 0x2a, 0x00, 0x0c, // Echo-Reply, same id, length 12
        0x11, 0x22, 0x33, 0x44, // our magic
        0x01, 0x02, 0x03, 0x04, // data copied
    ];
    assert_eq!(reply[..24], expected);
    assert_eq!(reply[24], 0x5a, "nothing written past the reply");
    assert_eq!(table.counters().echo_replies, 1);
    // The reply parses as what it claims to be.
    let packet = crate::wire::l2tp::Packet::new_checked(&reply[..24]).unwrap();
    assert!(!packet.is_control());
    let frame = crate::wire::ppp::Frame::parse(packet.payload()).unwrap();
    let lcp = crate::wire::ppp::CpRepr::parse_bytes(frame.payload).unwrap();
    assert_eq!(lcp.code, crate::wire::ppp::Code::EchoReply);
}

#[test]
fn echo_request_forms_and_padding() {
    // Compressed PPP header, Length + offset in L2TP, PPP padding after
    // the LCP Length: the reply copies only the Data within Length.
    let mut table = table();
    let mut frame = vec![0xc0, 0x21]; // ACFC (LCP may still arrive this way)
    frame.extend_from_slice(&ECHO_REQUEST[4..]);
    frame.extend_from_slice(&[0, 0, 0]);
    let form = Form {
        length: true,
        offset: Some(2),
        ..Form::default()
    };
    let mut datagram = data_message((10, 100), form, &frame);
    let mut reply = [0u8; 64];
    assert_eq!(
        decap_vec(&mut table, &mut datagram, &mut reply),
        Ingress::Reply { len: 24, to: lac() }
    );
    assert_eq!(&reply[20..24], &[1, 2, 3, 4]);
    // Without data after the magic number.
    let bare = [0xff, 0x03, 0xc0, 0x21, 0x09, 0x01, 0x00, 0x08, 0, 0, 0, 0];
    let mut datagram = data_message((10, 100), Form::default(), &bare);
    assert_eq!(
        decap_vec(&mut table, &mut datagram, &mut reply),
        Ingress::Reply { len: 20, to: lac() }
    );
    assert_eq!(
        &reply[12..20],
        &[0x0a, 0x01, 0x00, 0x08, 0x11, 0x22, 0x33, 0x44]
    );
}

#[test]
fn echo_reply_on_a_sequenced_session_carries_ns() {
    let mut table = table();
    let mut reply = [0u8; 64];
    for ns in [5u8, 6] {
        let mut datagram = data_message((10, 101), Form::default(), &ECHO_REQUEST);
        assert_eq!(
            decap_vec(&mut table, &mut datagram, &mut reply),
            Ingress::Reply { len: 28, to: lac() }
        );
        assert_eq!(
            reply[..12],
            [0x48, 0x02, 0x00, 0x1c, 0x00, 0x07, 0x00, 0x47, 0x00, ns, 0x00, 0x00]
        );
    }
    assert_eq!(table.get((10, 101)).unwrap().sequencing.unwrap().next_ns, 7);
}

#[test]
fn other_lcp_and_ppp_control_go_to_the_control_thread() {
    let mut table = table();
    let mut reply = [0u8; 64];
    let mut own_magic = ECHO_REQUEST;
    own_magic[8..12].copy_from_slice(&0x1122_3344u32.to_be_bytes());
    let mut short_echo = ECHO_REQUEST.to_vec();
    short_echo.truncate(10);
    short_echo[7] = 6;
    let mut bad_length = ECHO_REQUEST;
    bad_length[7] = 40;
    let frames: [(SessionKey, Vec<u8>); 9] = [
        // Configure-Request, Terminate-Request, Echo-Reply.
        ((10, 100), ppp(&FULL_LCP, &[0x01, 0x01, 0x00, 0x04])),
        ((10, 100), ppp(&FULL_LCP, &[0x05, 0x02, 0x00, 0x04])),
        (
            (10, 100),
            ppp(&FULL_LCP, &[0x0a, 0x03, 0x00, 0x08, 1, 2, 3, 4]),
        ),
        // Our own magic number: maybe a loop.
        ((10, 100), own_magic.to_vec()),
        // No room for a magic number; Length past the frame.
        ((10, 100), short_echo),
        ((10, 100), bad_length.to_vec()),
        // Shard 1 numbers session C.
        ((11, 102), ECHO_REQUEST.to_vec()),
        // IPCP and CHAP.
        ((10, 100), vec![0x80, 0x21, 0x01, 0x01, 0x00, 0x04]),
        (
            (10, 100),
            vec![0xff, 0x03, 0xc2, 0x23, 0x02, 0x01, 0x00, 0x04],
        ),
    ];
    for (n, (key, frame)) in frames.into_iter().enumerate() {
        let mut datagram = data_message(key, Form::default(), &frame);
        let copy = datagram.clone();
        assert_eq!(
            decap_vec(&mut table, &mut datagram, &mut reply),
            Ingress::ToControl {
                key,
                datagram: &copy
            },
            "case {n}"
        );
    }
    // A reply buffer too small to hold the answer.
    let mut datagram = data_message((10, 100), Form::default(), &ECHO_REQUEST);
    assert!(matches!(
        decap_vec(&mut table, &mut datagram, &mut [0u8; 23]),
        Ingress::ToControl { .. }
    ));
    assert_eq!(table.counters().to_control, 10);
    assert_eq!(table.counters().echo_replies, 0);
}

#[test]
fn every_prefix_of_a_datagram_is_safe() {
    let packet = ipv4_udp(SUB_A, Ipv4Addr::new(192, 0, 2, 80), 40);
    let form = Form {
        length: true,
        sequence: Some(3),
        offset: Some(2),
        ..Form::default()
    };
    let mut table = table();
    for body in [ppp(&FULL_V4, &packet), ECHO_REQUEST.to_vec()] {
        let full = data_message((10, 100), form, &body);
        for len in 0..full.len() {
            let mut datagram = full[..len].to_vec();
            let mut reply = [0u8; 64];
            match decap_vec(&mut table, &mut datagram, &mut reply) {
                Ingress::Drop(_) => {}
                other => panic!("prefix {len}: {other:?}"),
            }
        }
    }
    // Without the Length field the prefixes parse as shorter messages: a
    // lone 0xff reads as a one-octet (unknown) PPP protocol, which the
    // control thread rejects; everything else is a drop.
    let full = data_message((10, 100), Form::default(), &ppp(&FULL_V4, &packet));
    for len in 0..full.len() {
        let mut datagram = full[..len].to_vec();
        match decap_vec(&mut table, &mut datagram, &mut []) {
            Ingress::Drop(_) => {}
            Ingress::ToControl { .. } if len == 7 => {}
            other => panic!("prefix {len}: {other:?}"),
        }
    }
}

// ----------------------------------------------------------------- egress

/// A buffer with `headroom` junk bytes, the packet, and some tail.
fn tun_buffer(headroom: usize, packet: &[u8]) -> Vec<u8> {
    let mut buf = vec![0xa5u8; headroom];
    buf.extend_from_slice(packet);
    buf.extend_from_slice(&[0xa5; 8]);
    buf
}

#[test]
fn encap_ipv4_writes_ppp_and_l2tp_in_place() {
    let mut table = table();
    let packet = ipv4_udp(Ipv4Addr::new(192, 0, 2, 80), SUB_A, 64);
    let mut buf = tun_buffer(MAX_HEADROOM, &packet);
    let out = encap(&mut table, &mut buf, MAX_HEADROOM, packet.len());
    let start = MAX_HEADROOM - 12;
    assert_eq!(
        out,
        Egress::Send {
            datagram: start..MAX_HEADROOM + 64,
            to: lac()
        }
    );
    assert_eq!(
        buf[start..MAX_HEADROOM],
        [
            0x40, 0x02, 0x00, 0x4c, // L, version 2, Length 76
            0x00, 0x07, 0x00, 0x46, // tunnel 7, session 70
            0xff, 0x03, 0x00, 0x21, // PPP: IPv4
        ]
    );
    assert_eq!(&buf[MAX_HEADROOM..MAX_HEADROOM + 64], &packet[..]);
    assert!(
        buf[..start].iter().all(|&b| b == 0xa5),
        "headroom in front untouched"
    );
    let stats = table.stats((10, 100)).unwrap();
    assert_eq!((stats.packets_out, stats.bytes_out), (1, 64));
    assert_eq!(table.counters().bytes_out, 64);
}

#[test]
fn encap_ipv6_by_prefix() {
    let mut table = table();
    let packet = ipv6_packet("2001:db8::80".parse().unwrap(), addr_a6(0xabcd), 1400);
    let mut buf = tun_buffer(DATA_HEADROOM, &packet);
    let out = encap(&mut table, &mut buf, DATA_HEADROOM, packet.len());
    assert_eq!(
        out,
        Egress::Send {
            datagram: 4..DATA_HEADROOM + 1400,
            to: lac()
        }
    );
    assert_eq!(
        buf[4..16],
        [0x40, 0x02, 0x05, 0x84, 0x00, 0x07, 0x00, 0x46, 0xff, 0x03, 0x00, 0x57]
    );
    assert_eq!(
        table.lookup_ipv6(addr_a6(7)).map(|e| e.key),
        Some((10, 100))
    );
}

#[test]
fn encap_sequenced_session_numbers_and_forwards() {
    let mut table = table();
    for ns in [5u8, 6, 7] {
        let packet = ipv4_udp(Ipv4Addr::new(192, 0, 2, 80), SUB_B, 40);
        let mut buf = tun_buffer(DATA_HEADROOM, &packet);
        let out = encap(&mut table, &mut buf, DATA_HEADROOM, packet.len());
        assert_eq!(
            out,
            Egress::Send {
                datagram: 0..DATA_HEADROOM + 40,
                to: lac()
            }
        );
        assert_eq!(
            buf[..16],
            [
                0x48, 0x02, 0x00, 0x38, // L S, Length 56
                0x00, 0x07, 0x00, 0x47, // tunnel 7, session 71
                0x00, ns, 0x00, 0x00, // Ns, Nr 0
                0xff, 0x03, 0x00, 0x21,
            ]
        );
    }
    // Session C belongs to shard 1: nothing written, nothing counted out.
    let packet = ipv4_udp(Ipv4Addr::new(192, 0, 2, 80), SUB_C, 40);
    let mut buf = tun_buffer(DATA_HEADROOM, &packet);
    let before = buf.clone();
    assert_eq!(
        encap(&mut table, &mut buf, DATA_HEADROOM, packet.len()),
        Egress::Forward { shard: 1 }
    );
    assert_eq!(buf, before);
    assert_eq!(table.counters().forwarded, 1);
    // Shard 1's replica encapsulates it.
    let mut owner = SessionTable::new(1);
    owner.install(entry_c());
    assert!(matches!(
        encap(&mut owner, &mut buf, DATA_HEADROOM, packet.len()),
        Egress::Send { .. }
    ));
    assert_eq!(buf[8..10], [0, 0]);
}

#[test]
fn encap_drops() {
    let mut table = table();
    let to_a = ipv4_udp(Ipv4Addr::new(192, 0, 2, 80), SUB_A, 1456);
    let too_big = ipv4_udp(Ipv4Addr::new(192, 0, 2, 80), SUB_A, 1457);
    let nobody = ipv4_udp(Ipv4Addr::new(192, 0, 2, 80), Ipv4Addr::new(10, 0, 0, 1), 40);
    let v6_nobody = ipv6_packet(addr_a6(1), "2001:db8:9::1".parse().unwrap(), 40);
    let mut buf = tun_buffer(DATA_HEADROOM, &to_a);
    assert!(matches!(
        encap(&mut table, &mut buf, DATA_HEADROOM, to_a.len()),
        Egress::Send { .. }
    ));
    let mut buf = tun_buffer(DATA_HEADROOM, &too_big);
    assert_eq!(
        encap(&mut table, &mut buf, DATA_HEADROOM, too_big.len()),
        Egress::TooBig { mtu: 1456 }
    );
    for (packet, reason) in [
        (nobody, DropReason::NoRoute),
        (v6_nobody, DropReason::NoRoute),
        (vec![0x45; 19], DropReason::IpMalformed),
        (vec![0x60; 39], DropReason::IpMalformed),
        (vec![0x50; 60], DropReason::NotIp),
        (vec![], DropReason::NotIp),
    ] {
        let mut buf = tun_buffer(DATA_HEADROOM, &packet);
        assert_eq!(
            encap(&mut table, &mut buf, DATA_HEADROOM, packet.len()),
            Egress::Drop(reason)
        );
    }
    // The caller's mistakes: too little headroom, a length past the buffer.
    let packet = ipv4_udp(Ipv4Addr::new(192, 0, 2, 80), SUB_A, 40);
    let mut buf = tun_buffer(DATA_HEADROOM - 1, &packet);
    assert_eq!(
        encap(&mut table, &mut buf, DATA_HEADROOM - 1, 40),
        Egress::Drop(DropReason::BufferTooSmall)
    );
    let mut buf = tun_buffer(DATA_HEADROOM, &packet);
    assert_eq!(
        encap(&mut table, &mut buf, DATA_HEADROOM, 49),
        Egress::Drop(DropReason::BufferTooSmall)
    );
    assert_eq!(
        encap(&mut table, &mut buf, usize::MAX, 2),
        Egress::Drop(DropReason::BufferTooSmall)
    );
    let counters = table.counters();
    assert_eq!(counters.dropped(DropReason::TooBig), 1);
    assert_eq!(counters.dropped(DropReason::NoRoute), 2);
    assert_eq!(counters.dropped(DropReason::BufferTooSmall), 3);
    assert_eq!(counters.packets_out, 1);
}

// ------------------------------------------------------------ MSS clamping

#[test]
fn mss_is_clamped_in_both_directions() {
    let mut table = table();
    // Ingress: the subscriber's SYN (from 100.64.0.10, session A).
    let syn = ipv4_syn();
    let mut datagram = data_message((10, 100), Form::default(), &ppp(&FULL_V4, &syn));
    let Ingress::ToTun { packet } = decap_vec(&mut table, &mut datagram, &mut []) else {
        panic!("not to TUN");
    };
    assert_eq!(&packet[40..44], &[0x02, 0x04, 0x05, 0x78]); // 1400
    assert_eq!(
        u16::from_be_bytes([packet[36], packet[37]]),
        tcp_checksum(packet)
    );
    // Egress: a SYN-ACK to the subscriber's /64 (MSS 1440 at an odd offset).
    let syn_ack = ipv6_syn_ack();
    let mut buf = tun_buffer(DATA_HEADROOM, &syn_ack);
    let out = encap(&mut table, &mut buf, DATA_HEADROOM, syn_ack.len());
    assert!(matches!(out, Egress::Send { .. }));
    let sent = &buf[DATA_HEADROOM..DATA_HEADROOM + syn_ack.len()];
    assert_eq!(&sent[61..65], &[0x02, 0x04, 0x05, 0x64]); // 1380
    assert_eq!(u16::from_be_bytes([sent[56], sent[57]]), tcp_checksum(sent));
    assert_eq!(table.counters().mss_clamped, 2);
    // Session B has no clamp: the SYN passes unchanged.
    let mut syn_b = ipv4_syn();
    syn_b[12..16].copy_from_slice(&SUB_B.octets());
    let mut datagram = data_message((10, 101), Form::default(), &ppp(&FULL_V4, &syn_b));
    assert_eq!(
        decap_vec(&mut table, &mut datagram, &mut []),
        Ingress::ToTun { packet: &syn_b }
    );
}

// ----------------------------------------------------------- round trips

/// The LAC's view of `entry`: keys swapped, the LNS as the peer, and the
/// remote host of `packet` as the "subscriber" (its source), so that the
/// mirrored decap's anti-spoofing accepts what we encapsulated.
pub(super) fn mirror(entry: &SessionEntry, packet: &[u8]) -> SessionEntry {
    let mut mirrored = entry.clone();
    mirrored.key = entry.peer;
    mirrored.peer = entry.key;
    mirrored.lac = lns();
    mirrored.ipv4 = None;
    mirrored.ipv6_prefix = None;
    match packet[0] >> 4 {
        4 => {
            mirrored.ipv4 = Some(Ipv4Addr::new(
                packet[12], packet[13], packet[14], packet[15],
            ))
        }
        _ => {
            let mut prefix = [0u8; 8];
            prefix.copy_from_slice(&packet[8..16]);
            mirrored.ipv6_prefix = Some(prefix);
        }
    }
    mirrored.sequencing = None;
    mirrored
}

#[test]
fn encap_output_decaps_on_the_mirrored_table() {
    let mut table = table();
    let packets = [
        ipv4_udp(Ipv4Addr::new(192, 0, 2, 80), SUB_A, 64),
        ipv4_udp(Ipv4Addr::new(192, 0, 2, 80), SUB_B, 1400),
        ipv6_packet("2001:db8::80".parse().unwrap(), addr_a6(3), 64),
        ipv6_syn_ack(),
    ];
    for packet in packets {
        let mut buf = tun_buffer(MAX_HEADROOM, &packet);
        let Egress::Send { datagram, to } = encap(&mut table, &mut buf, MAX_HEADROOM, packet.len())
        else {
            panic!("not sent");
        };
        assert_eq!(to, lac());
        let sent = buf[MAX_HEADROOM..MAX_HEADROOM + packet.len()].to_vec();
        let entry = table.lookup_ipv4(Ipv4Addr::new(sent[16], sent[17], sent[18], sent[19]));
        let entry = match (sent[0] >> 4, entry) {
            (4, Some(entry)) => entry.clone(),
            _ => table.get((10, 100)).unwrap().clone(),
        };
        let mut lac_table = SessionTable::new(0);
        lac_table.install(mirror(&entry, &sent));
        let mut wire = buf[datagram].to_vec();
        assert_eq!(
            decap(&mut lac_table, lns(), &mut wire, &mut []),
            Ingress::ToTun { packet: &sent }
        );
    }
}

// ---------------------------------------------------------------- stamping

#[test]
fn stamp_ns_numbers_control_thread_frames() {
    let mut table = table();
    // An LCP Echo-Request the node built for session B with its own Ns 0.
    let form = Form {
        sequence: Some(0),
        ..Form::default()
    };
    let mut frame = data_message((7, 71), form, &ECHO_REQUEST);
    assert_eq!(
        stamp_ns(&mut table, (10, 101), &mut frame),
        Stamp::Stamped { ns: 5 }
    );
    assert_eq!(frame[6..8], [0, 5]);
    let mut with_length = data_message(
        (7, 71),
        Form {
            length: true,
            ..form
        },
        &ECHO_REQUEST,
    );
    assert_eq!(
        stamp_ns(&mut table, (10, 101), &mut with_length),
        Stamp::Stamped { ns: 6 }
    );
    assert_eq!(with_length[8..10], [0, 6]);
    // Session C is numbered elsewhere; A is not sequenced; an unknown
    // session is the node's own business; no S bit, nothing to do.
    let mut frame_c = data_message((8, 72), form, &ECHO_REQUEST);
    assert_eq!(
        stamp_ns(&mut table, (11, 102), &mut frame_c),
        Stamp::Forward { shard: 1 }
    );
    let mut frame_a = data_message((7, 70), form, &ECHO_REQUEST);
    assert_eq!(
        stamp_ns(&mut table, (10, 100), &mut frame_a),
        Stamp::Unchanged
    );
    assert_eq!(
        stamp_ns(&mut table, (99, 99), &mut frame_a),
        Stamp::Unchanged
    );
    let mut plain = data_message((7, 71), Form::default(), &ECHO_REQUEST);
    assert_eq!(
        stamp_ns(&mut table, (10, 101), &mut plain),
        Stamp::Unchanged
    );
    // Wrong IDs for the key, and garbage.
    assert_eq!(
        stamp_ns(&mut table, (10, 101), &mut frame_a),
        Stamp::Drop(DropReason::UnknownSession)
    );
    assert_eq!(
        stamp_ns(&mut table, (10, 101), &mut [0x08]),
        Stamp::Drop(DropReason::L2tpMalformed)
    );
    assert_eq!(table.get((10, 101)).unwrap().sequencing.unwrap().next_ns, 7);
}

// ------------------------------------------------------------------- table

#[test]
fn table_install_replace_remove() {
    let mut table = table();
    assert_eq!(table.len(), 3);
    assert_eq!(table.lookup_ipv4(SUB_A).map(|e| e.key), Some((10, 100)));
    // Traffic, then a renegotiated address: stats stay, the index moves.
    let mut datagram = data_message(
        (10, 100),
        Form::default(),
        &ppp(&FULL_V4, &ipv4_udp(SUB_A, Ipv4Addr::new(192, 0, 2, 80), 40)),
    );
    assert!(matches!(
        decap_vec(&mut table, &mut datagram, &mut []),
        Ingress::ToTun { .. }
    ));
    let moved = Ipv4Addr::new(100, 64, 9, 9);
    let mut entry = entry_a();
    entry.ipv4 = Some(moved);
    entry.ipv6_prefix = None;
    assert_eq!(table.install(entry), Some(entry_a()));
    assert_eq!(table.len(), 3);
    assert!(table.lookup_ipv4(SUB_A).is_none());
    assert!(table.lookup_ipv6(addr_a6(1)).is_none());
    assert_eq!(table.lookup_ipv4(moved).map(|e| e.key), Some((10, 100)));
    assert_eq!(table.stats((10, 100)).unwrap().packets_in, 1);
    // Removal hands back the entry and its statistics; the slot is reused.
    let (gone, stats) = table.remove((10, 100)).unwrap();
    assert_eq!(gone.ipv4, Some(moved));
    assert_eq!(stats.bytes_in, 40);
    assert!(table.remove((10, 100)).is_none());
    assert!(table.lookup_ipv4(moved).is_none());
    assert_eq!(table.len(), 2);
    let slots = table.slots.len();
    table.install(entry_a());
    assert_eq!(table.slots.len(), slots, "freed slot reused");
    assert_eq!(table.stats((10, 100)).unwrap().packets_in, 0);
    assert_eq!(table.iter().count(), 3);
}

#[test]
fn address_conflict_last_writer_wins() {
    let mut table = table();
    let mut thief = entry_b();
    thief.key = (12, 1);
    thief.ipv4 = Some(SUB_A);
    thief.ipv6_prefix = Some(PREFIX_A);
    table.install(thief);
    assert_eq!(table.counters().address_conflicts, 2);
    assert_eq!(table.lookup_ipv4(SUB_A).map(|e| e.key), Some((12, 1)));
    assert_eq!(table.lookup_ipv6(addr_a6(1)).map(|e| e.key), Some((12, 1)));
    // Removing the loser leaves the winner's route alone.
    table.remove((10, 100));
    assert_eq!(table.lookup_ipv4(SUB_A).map(|e| e.key), Some((12, 1)));
    assert_eq!(table.lookup_ipv6(addr_a6(1)).map(|e| e.key), Some((12, 1)));
}

#[test]
fn drop_reason_names_follow_counter_order() {
    let mut names: Vec<&str> = DropReason::ALL.iter().map(|r| r.name()).collect();
    for (i, reason) in DropReason::ALL.iter().enumerate() {
        assert_eq!(reason.index(), i);
    }
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), DropReason::COUNT);
}

#[test]
fn headroom_constants_add_up() {
    assert_eq!(DATA_HEADROOM, 16);
    assert_eq!(MAX_HEADROOM, 48);
}

// ----------------------------------------------------------- random input

/// Seeds for mutation: the datagrams and packets above.
fn seeds() -> Vec<Vec<u8>> {
    let v4 = ipv4_udp(SUB_A, Ipv4Addr::new(192, 0, 2, 80), 40);
    let form = Form {
        length: true,
        sequence: Some(1),
        offset: Some(1),
        ..Form::default()
    };
    vec![
        data_message((10, 100), Form::default(), &ppp(&FULL_V4, &v4)),
        data_message((10, 100), form, &ppp(&[0x21], &ipv4_syn())),
        data_message((10, 101), Form::default(), &ECHO_REQUEST),
        data_message((10, 100), form, &ECHO_REQUEST),
        data_message((10, 100), Form::default(), &ppp(&FULL_V6, &ipv6_syn_ack())),
        vec![0xc8, 0x02, 0x00, 0x0c, 0, 10, 0, 0, 0, 1, 0, 1],
    ]
}

#[test]
fn random_datagrams_never_panic_and_answers_are_well_formed() {
    let mut rng = StdRng::seed_from_u64(2661);
    let mut table = table();
    let seeds = seeds();
    for _ in 0..50_000 {
        let mut bytes = crate::testkit::mutated_input(&mut rng, &seeds, 0.2, 96);
        let original = bytes.clone();
        let mut reply = vec![0u8; rng.random_range(0..128)];
        match decap_vec(&mut table, &mut bytes, &mut reply) {
            Ingress::ToTun { packet } => {
                let v = packet[0] >> 4;
                assert!(v == 4 || v == 6);
            }
            Ingress::Reply { len, to } => {
                assert_eq!(to, lac());
                let packet = crate::wire::l2tp::Packet::new_checked(&reply[..len]).unwrap();
                assert_eq!(packet.length(), Some(len as u16));
                let frame = crate::wire::ppp::Frame::parse(packet.payload()).unwrap();
                assert_eq!(frame.protocol, 0xc021);
                let lcp = crate::wire::ppp::CpRepr::parse_bytes(frame.payload).unwrap();
                assert_eq!(lcp.code, crate::wire::ppp::Code::EchoReply);
            }
            Ingress::ToControl { datagram, .. } | Ingress::Control { datagram } => {
                assert_eq!(datagram, &original[..]);
            }
            Ingress::Drop(_) => {}
        }
        // The same bytes as an IP packet from TUN.
        let headroom = rng.random_range(0..40);
        let mut buf = vec![0u8; headroom];
        buf.extend_from_slice(&original);
        let len = original.len();
        match encap(&mut table, &mut buf, headroom, len) {
            Egress::Send { datagram, to } => {
                assert_eq!(to, lac());
                assert_eq!(datagram.end, headroom + len);
                let packet = crate::wire::l2tp::Packet::new_checked(&buf[datagram]).unwrap();
                assert!(!packet.is_control());
            }
            Egress::Forward { shard } => assert_eq!(shard, 1),
            Egress::TooBig { mtu } => assert!(len > usize::from(mtu)),
            Egress::Drop(_) => {}
        }
    }
}

// ------------------------------------------------------------ renegotiation

#[test]
fn a_paused_session_holds_ip_both_ways_and_keeps_its_ns() {
    let mut table = table();
    assert!(table.pause((10, 101)));
    assert!(!table.pause((99, 99)), "unknown key");
    assert!(table.is_paused((10, 101)) && !table.is_paused((10, 100)));

    // Ingress IP is dropped and counted; the other sessions are untouched.
    let mut reply = [0u8; 64];
    let ip = ipv4_udp(SUB_B, Ipv4Addr::new(192, 0, 2, 9), 40);
    let mut datagram = data_message((10, 101), Form::default(), &ppp(&FULL_V4, &ip));
    assert_eq!(
        decap_vec(&mut table, &mut datagram, &mut reply),
        Ingress::Drop(DropReason::Renegotiating)
    );
    let ip_a = ipv4_udp(SUB_A, Ipv4Addr::new(192, 0, 2, 9), 40);
    let mut datagram = data_message((10, 100), Form::default(), &ppp(&FULL_V4, &ip_a));
    assert!(matches!(
        decap_vec(&mut table, &mut datagram, &mut reply),
        Ingress::ToTun { .. }
    ));
    // LCP (an Echo-Request included) is the control thread's meanwhile.
    let mut echo = data_message((10, 101), Form::default(), &ECHO_REQUEST);
    assert!(matches!(
        decap_vec(&mut table, &mut echo, &mut reply),
        Ingress::ToControl { key: (10, 101), .. }
    ));
    assert_eq!(table.counters().echo_replies, 0);

    // Egress is dropped too, and takes no Ns.
    let packet = ipv4_udp(Ipv4Addr::new(192, 0, 2, 80), SUB_B, 40);
    let mut buf = tun_buffer(DATA_HEADROOM, &packet);
    assert_eq!(
        encap(&mut table, &mut buf, DATA_HEADROOM, packet.len()),
        Egress::Drop(DropReason::Renegotiating)
    );
    assert_eq!(table.counters().dropped(DropReason::Renegotiating), 2);

    // The renegotiation's own frames are still numbered: 5, 6.
    let form = Form {
        sequence: Some(0),
        ..Form::default()
    };
    for ns in [5, 6] {
        let mut frame = data_message((7, 71), form, &ECHO_REQUEST);
        assert_eq!(
            stamp_ns(&mut table, (10, 101), &mut frame),
            Stamp::Stamped { ns }
        );
    }

    // Back up: the control thread installs the entry again with its own
    // (older) counter; the table's newer Ns wins and traffic passes.
    assert!(table.install(entry_b()).is_some());
    assert!(!table.is_paused((10, 101)));
    let mut buf = tun_buffer(DATA_HEADROOM, &packet);
    assert!(matches!(
        encap(&mut table, &mut buf, DATA_HEADROOM, packet.len()),
        Egress::Send { .. }
    ));
    assert_eq!(buf[8..10], [0, 7], "Ns continues after the renegotiation");
    let mut datagram = data_message((10, 101), Form::default(), &ppp(&FULL_V4, &ip));
    assert!(matches!(
        decap_vec(&mut table, &mut datagram, &mut reply),
        Ingress::ToTun { .. }
    ));
}

/// Every shard holds a slot per session; 128 bytes is what the memory
/// budget (docs/benchmarks.md, "Memory per session") was measured with.
#[test]
fn slot_stays_within_budget() {
    assert!(std::mem::size_of::<Option<table::Slot>>() <= 128);
    assert!(std::mem::size_of::<SessionEntry>() <= 92);
}
