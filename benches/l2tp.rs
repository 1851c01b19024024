//! Criterion benchmarks of the L2TP wire codecs and the sans-IO control
//! endpoint.
//!
//! - `header/*`: the L2TP header view and its owned form.
//! - `message/*`: whole control message bodies, parsed and emitted.
//! - `endpoint/*`: setup storms through an in-memory LAC/LNS pair, counted
//!   in control messages (and ZLBs) the LNS endpoint handled.
//!
//! `docs/benchmarks.md` has the commands, the figures and what they mean.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use lns::proto::l2tp::{CallInfo, Endpoint, Event, L2tpConfig, ProxyAuth, ProxyLcp, Role};
use lns::wire::l2tp::message::Hiding;
use lns::wire::l2tp::{Avp, ControlMessage, HeaderRepr, MessageType, Packet};

const SECRET: &[u8] = b"bench-tunnel-secret";

// ---------------------------------------------------------------- header --

/// A whole control packet: header (T L S, tunnel 0x1234, session 0x5678,
/// Ns 7, Nr 3) followed by an ICRP body.
fn control_packet() -> Vec<u8> {
    let msg = ControlMessage::new(MessageType::Icrp).with(Avp::AssignedSessionId(0x4321));
    datagram(0x1234, 0x5678, 7, 3, &msg)
}

/// A data packet with the Length bit and a 64-byte PPP IPv4 payload, the
/// shape xl2tpd sends.
fn data_packet() -> Vec<u8> {
    let header = HeaderRepr {
        with_length: true,
        ..HeaderRepr::data(0x1234, 0x5678)
    };
    let payload = [0x45u8; 64];
    let mut out = vec![0; header.header_len() + 4 + payload.len()];
    let at = header.emit(&mut out, 4 + payload.len()).unwrap();
    out[at..at + 4].copy_from_slice(&[0xff, 0x03, 0x00, 0x21]);
    out[at + 4..].copy_from_slice(&payload);
    out
}

fn datagram(tunnel: u16, session: u16, ns: u16, nr: u16, msg: &ControlMessage) -> Vec<u8> {
    let mut body = Vec::new();
    msg.emit(&mut body, None).unwrap();
    let header = HeaderRepr::control(tunnel, session, ns, nr);
    let mut out = vec![0; header.header_len() + body.len()];
    let at = header.emit(&mut out, body.len()).unwrap();
    out[at..].copy_from_slice(&body);
    out
}

fn bench_header(c: &mut Criterion) {
    let mut group = c.benchmark_group("header");
    group.throughput(Throughput::Elements(1));
    for (name, bytes) in [
        ("parse_control", control_packet()),
        ("parse_data", data_packet()),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let packet = Packet::new_checked(black_box(&bytes[..])).unwrap();
                let repr = HeaderRepr::parse(&packet);
                black_box((repr, packet.payload().len()))
            })
        });
    }
    group.finish();
}

// --------------------------------------------------------------- message --

/// What a BNG typically reports for one DSL subscriber: the line ID in
/// Calling Number, proxy LCP and proxy CHAP authentication.
fn subscriber_call(n: u32) -> CallInfo {
    CallInfo {
        call_serial_number: Some(n),
        bearer_type: Some(2),
        framing_type: Some(1),
        physical_channel_id: Some(0x0001_0000 | n),
        // ~20 bytes, like "DSLAM-07 atm 1/2:8.35".
        calling_number: Some(format!("bng1 eth 1/2:{:07}", n % 10_000_000).into_bytes()),
        called_number: Some(b"isp-l2tp".to_vec()),
        tx_connect_speed: Some(16_000_000),
        rx_connect_speed: Some(1_000_000),
        proxy_lcp: ProxyLcp {
            initial_received: Some(vec![1, 4, 5, 0xd4, 5, 6, 1, 2, 3, 4]),
            last_sent: Some(vec![1, 4, 5, 0xd4, 3, 5, 0xc2, 0x23, 5, 5, 6, 9, 8, 7, 6]),
            last_received: Some(vec![1, 4, 5, 0xd4, 5, 6, 1, 2, 3, 4]),
        },
        proxy_auth: ProxyAuth {
            authen_type: Some(2),
            name: Some(format!("user{n}@isp.example").into_bytes()),
            challenge: Some(vec![7; 16]),
            id: Some(9),
            response: Some(vec![3; 16]),
        },
        ..CallInfo::default()
    }
}

/// ICRQ as the LAC endpoint builds it (§6.6).
pub(crate) fn icrq() -> ControlMessage {
    let call = subscriber_call(4242);
    ControlMessage::new(MessageType::Icrq)
        .with(Avp::AssignedSessionId(0x2a2a))
        .with(Avp::CallSerialNumber(4242))
        .with(Avp::BearerType(2))
        .with(Avp::PhysicalChannelId(0x0001_1092))
        .with(Avp::CallingNumber(call.calling_number.unwrap()))
        .with(Avp::CalledNumber(call.called_number.unwrap()))
}

/// ICCN with proxy LCP and proxy authentication (§6.8, §4.4.5).
pub(crate) fn iccn_proxy() -> ControlMessage {
    let call = subscriber_call(4242);
    let lcp = call.proxy_lcp;
    let auth = call.proxy_auth;
    ControlMessage::new(MessageType::Iccn)
        .with(Avp::TxConnectSpeed(16_000_000))
        .with(Avp::FramingType(1))
        .with(Avp::RxConnectSpeed(1_000_000))
        .with(Avp::InitialReceivedLcpConfreq(
            lcp.initial_received.unwrap(),
        ))
        .with(Avp::LastSentLcpConfreq(lcp.last_sent.unwrap()))
        .with(Avp::LastReceivedLcpConfreq(lcp.last_received.unwrap()))
        .with(Avp::ProxyAuthenType(2))
        .with(Avp::ProxyAuthenName(auth.name.unwrap()))
        .with(Avp::ProxyAuthenChallenge(auth.challenge.unwrap()))
        .with(Avp::ProxyAuthenId(9))
        .with(Avp::ProxyAuthenResponse(auth.response.unwrap()))
}

fn body(msg: &ControlMessage, hiding: Option<&Hiding<'_>>) -> Vec<u8> {
    let mut out = Vec::new();
    msg.emit(&mut out, hiding).unwrap();
    out
}

fn bench_message(c: &mut Criterion) {
    let hiding = Hiding {
        secret: SECRET,
        random_vector: [0x5a; 16],
        attrs: L2tpConfig::sensitive_avps(),
    };
    let icrq_body = body(&icrq(), None);
    let iccn_body = body(&iccn_proxy(), None);
    let icrq_hidden = body(&icrq(), Some(&hiding));
    let iccn_hidden = body(&iccn_proxy(), Some(&hiding));
    // Every hidden body must round-trip, or the benchmark measures errors.
    let unhidden = ControlMessage::parse(&icrq_hidden, Some(SECRET)).unwrap();
    assert!(unhidden.random_vector().is_some());
    assert_eq!(unhidden.calling_number(), icrq().calling_number());
    let unhidden = ControlMessage::parse(&iccn_hidden, Some(SECRET)).unwrap();
    assert_eq!(
        unhidden.proxy_authen_name(),
        iccn_proxy().proxy_authen_name()
    );

    let mut group = c.benchmark_group("message");
    group.throughput(Throughput::Elements(1));
    type Case<'a> = (&'a str, &'a [u8], Option<&'a [u8]>);
    let parses: [Case<'_>; 4] = [
        ("parse_icrq", &icrq_body, None),
        ("parse_iccn_proxy", &iccn_body, None),
        ("parse_hidden", &icrq_hidden, Some(SECRET)),
        ("parse_hidden_iccn_proxy", &iccn_hidden, Some(SECRET)),
    ];
    for (name, bytes, secret) in parses {
        group.bench_function(name, |b| {
            b.iter(|| ControlMessage::parse(black_box(bytes), secret).unwrap())
        });
    }
    let msg = icrq();
    let mut out = Vec::with_capacity(256);
    group.bench_function("emit_icrq", |b| {
        b.iter(|| {
            out.clear();
            black_box(&msg).emit(&mut out, None).unwrap();
            black_box(out.len())
        })
    });
    group.finish();
}

// -------------------------------------------------------------- endpoint --

fn lac_addr() -> SocketAddr {
    "192.0.2.1:1701".parse().unwrap()
}

fn lns_addr() -> SocketAddr {
    "192.0.2.2:1701".parse().unwrap()
}

/// What the LNS endpoint saw during one storm, in order: every datagram
/// the LAC sent it and every timer call, with the simulated instant.
#[derive(Debug, Clone)]
pub(crate) enum LnsInput {
    Datagram(Instant, Vec<u8>),
    Timeout(Instant),
}

/// Totals of one storm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StormCount {
    /// Datagrams handed to the LNS (control messages and ZLBs).
    pub(crate) lns_datagrams: u64,
    /// Sessions the LNS reported up.
    pub(crate) sessions: u64,
}

/// Bring `tunnels` × `sessions` up between a fresh LAC and LNS over a
/// lossless, zero-latency link: every transmit of one side goes straight
/// into the other's `handle_datagram`; when neither has anything to send,
/// the simulated clock jumps to the earliest `poll_timeout` (delayed acks),
/// until every session is up on both sides and no ack is pending.
///
/// With `record`, every input of the LNS is appended to it.
pub(crate) fn storm(
    t0: Instant,
    tunnels: usize,
    sessions: usize,
    mut record: Option<&mut Vec<LnsInput>>,
) -> StormCount {
    let mut lac = Endpoint::new(L2tpConfig::new(Role::Lac), 0x1ac);
    let mut lns = Endpoint::new(L2tpConfig::new(Role::Lns), 0x1d5);
    let (lac_addr, lns_addr) = (lac_addr(), lns_addr());
    let mut now = t0;
    for _ in 0..tunnels {
        lac.connect(now, lns_addr).unwrap();
    }
    let total = (tunnels * sessions) as u64;
    let mut count = StormCount {
        lns_datagrams: 0,
        sessions: 0,
    };
    let mut serial = 0;
    loop {
        let mut moved = false;
        while let Some(t) = lac.poll_transmit() {
            moved = true;
            count.lns_datagrams += 1;
            let _ = lns.handle_datagram(now, lac_addr, &t.payload);
            if let Some(record) = record.as_deref_mut() {
                record.push(LnsInput::Datagram(now, t.payload));
            }
        }
        while let Some(t) = lns.poll_transmit() {
            moved = true;
            let _ = lac.handle_datagram(now, lns_addr, &t.payload);
        }
        while let Some(event) = lac.poll_event() {
            if let Event::TunnelUp { tunnel, .. } = event {
                // The LAC's ICRQs queue behind its SCCCN on the channel.
                for _ in 0..sessions {
                    serial += 1;
                    lac.open_session(now, tunnel, subscriber_call(serial))
                        .unwrap();
                }
            }
        }
        while let Some(event) = lns.poll_event() {
            if matches!(event, Event::SessionUp { .. }) {
                count.sessions += 1;
            }
        }
        if moved {
            continue;
        }
        let next = [lac.poll_timeout(), lns.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = next else { break };
        // Done once every session is up and only far-off timers (HELLO,
        // setup expiry) remain: every message has been acked.
        if count.sessions == total && next > now + Duration::from_millis(500) {
            break;
        }
        now = now.max(next);
        lac.handle_timeout(now);
        lns.handle_timeout(now);
        if let Some(record) = record.as_deref_mut() {
            record.push(LnsInput::Timeout(now));
        }
    }
    assert_eq!(count.sessions, total, "storm did not complete");
    let stats = lns.stats();
    let handled = stats.messages_in.iter().sum::<u64>() + stats.zlb_in;
    assert_eq!(
        handled, count.lns_datagrams,
        "every datagram is one message"
    );
    count
}

/// Feed a recorded storm to a fresh LNS (same seed, so it allocates the same
/// IDs the recorded LAC datagrams address), draining and dropping its output.
pub(crate) fn replay(inputs: &[LnsInput]) -> u64 {
    let mut lns = Endpoint::new(L2tpConfig::new(Role::Lns), 0x1d5);
    let lac_addr = lac_addr();
    let mut up = 0;
    for input in inputs {
        match input {
            LnsInput::Datagram(now, bytes) => {
                let _ = lns.handle_datagram(*now, lac_addr, bytes);
            }
            LnsInput::Timeout(now) => lns.handle_timeout(*now),
        }
        while let Some(t) = lns.poll_transmit() {
            black_box(t);
        }
        while let Some(event) = lns.poll_event() {
            if matches!(event, Event::SessionUp { .. }) {
                up += 1;
            }
        }
    }
    up
}

fn bench_endpoint(c: &mut Criterion) {
    let mut group = c.benchmark_group("endpoint");
    group.sample_size(20);
    for (tunnels, sessions) in [(1, 1000), (100, 10)] {
        let t0 = Instant::now();
        let mut inputs = Vec::new();
        let count = storm(t0, tunnels, sessions, Some(&mut inputs));
        let total = (tunnels * sessions) as u64;
        assert_eq!(replay(&inputs), total, "replay diverged from the storm");
        eprintln!(
            "endpoint {tunnels}x{sessions}: {} datagrams to the LNS per storm",
            count.lns_datagrams
        );
        group.throughput(Throughput::Elements(count.lns_datagrams));
        let shape = format!("{tunnels}x{sessions}");
        group.bench_function(format!("tunnel_and_session_setup/{shape}"), |b| {
            b.iter(|| storm(Instant::now(), tunnels, sessions, None))
        });
        group.bench_function(format!("lns_only_replay/{shape}"), |b| {
            b.iter(|| replay(&inputs))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_header, bench_message, bench_endpoint);
criterion_main!(benches);
