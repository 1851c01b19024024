//! The LNS endpoint against a peer played by hand: real xl2tpd messages from
//! `shared/captures/xl2tpd-lac_l2tpns-lns.pcap`, and crafted bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lns::proto::l2tp::auth::challenge_response;
use lns::proto::l2tp::{
    Dropped, Endpoint, Event, L2tpConfig, Role, SessionDownReason, TunnelDownReason,
};
use lns::wire::l2tp::avps::{cdn_result, error_code, stopccn_result};
use lns::wire::l2tp::{Avp, AvpHeader, ControlMessage, HeaderRepr, MessageType};
use support::{control_datagram, decode, raw_datagram};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Frame 1: xl2tpd's SCCRQ with a Challenge; Assigned Tunnel ID 0x5fa2.
const XL2TPD_SCCRQ: &str = "c8020079 0000 0000 0000 0000
    8008 0000 0000 0001
    8008 0000 0002 0100
    800a 0000 0003 00000003
    800a 0000 0004 00000000
    0008 0000 0006 0690
    8008 0000 0007 766d
    0013 0000 0008 78656c6572616e63652e636f6d
    8008 0000 0009 5fa2
    8008 0000 000a 0008
    8016 0000 000b 9147efd1f79b51bf604abe2145ac2623";
/// Frame 2: l2tpns's answer to it carries this Challenge Response (secret
/// "secret"); ours must be byte-identical.
const L2TPNS_CHALLENGE_RESPONSE: &str = "df85a5f818dd6235a6bfbedf39b6bcdb";
/// Frame 5: xl2tpd's ICRQ body (after the 12-byte header).
const XL2TPD_ICRQ_BODY: &str = "8008 0000 0000 000a
    8008 0000 000e 2ab3
    800a 0000 000f 00000001
    800a 0000 0012 00000000";
/// Frame 7: xl2tpd's ICCN body.
const XL2TPD_ICCN_BODY: &str = "8008 0000 0000 000c
    800a 0000 0018 00000000
    800a 0000 0013 00000001
    000a 0000 0026 00000000";
/// Frame 10: xl2tpd's CDN body after pppd failed (result 1, error 0).
const XL2TPD_CDN_BODY: &str = "8008 0000 0000 000e
    800a 0000 0001 0001 0000
    8008 0000 000e 2ab3";

struct Harness {
    now: Instant,
    lns: Endpoint,
    lac: SocketAddr,
    secret: Vec<u8>,
}

impl Harness {
    fn new(config: L2tpConfig) -> Self {
        Harness {
            now: Instant::now(),
            secret: config.secret.clone().unwrap_or_default(),
            lns: Endpoint::new(config, 11),
            lac: "10.99.0.2:1701".parse().unwrap(),
        }
    }

    fn with_secret() -> Self {
        let mut config = L2tpConfig::new(Role::Lns);
        config.secret = Some(b"secret".to_vec());
        Harness::new(config)
    }

    fn send(&mut self, datagram: &[u8]) -> Result<(), Dropped> {
        self.lns.handle_datagram(self.now, self.lac, datagram)
    }

    /// Everything the LNS sent, decoded.
    fn replies(&mut self) -> Vec<(HeaderRepr, Option<ControlMessage>)> {
        let mut out = Vec::new();
        while let Some(t) = self.lns.poll_transmit() {
            assert_eq!(t.remote, self.lac);
            out.push(decode(&t.payload, Some(&self.secret)));
        }
        out
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.lns.poll_event()).collect()
    }

    fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while let Some(at) = self.lns.poll_timeout() {
            if at > end {
                break;
            }
            self.now = at;
            self.lns.handle_timeout(at);
        }
        self.now = end;
    }

    /// Replay xl2tpd's SCCRQ and answer with a correct SCCCN. Returns our
    /// tunnel ID.
    fn tunnel_up(&mut self) -> u16 {
        self.send(&hex(XL2TPD_SCCRQ)).unwrap();
        let replies = self.replies();
        let (header, sccrp) = &replies[0];
        let sccrp = sccrp.as_ref().unwrap();
        let ours = sccrp.assigned_tunnel_id().unwrap();
        let challenge = sccrp.challenge().unwrap().to_vec();
        let scccn = ControlMessage::new(MessageType::Scccn).with(Avp::ChallengeResponse(
            challenge_response(MessageType::Scccn, b"secret", &challenge),
        ));
        assert_eq!(header.sequence, Some((0, 1)));
        self.send(&control_datagram(ours, 0, 1, 1, &scccn)).unwrap();
        assert!(self.events().iter().any(
            |e| matches!(e, Event::TunnelUp { tunnel, peer_tunnel: 0x5fa2, .. } if *tunnel == ours)
        ));
        ours
    }
}

#[test]
fn xl2tpd_sccrq_gets_the_challenge_response_l2tpns_gave() {
    let mut h = Harness::with_secret();
    h.send(&hex(XL2TPD_SCCRQ)).unwrap();
    let replies = h.replies();
    assert_eq!(replies.len(), 1);
    let (header, sccrp) = &replies[0];
    let sccrp = sccrp.as_ref().unwrap();
    assert_eq!(sccrp.message_type, MessageType::Sccrp);
    // Addressed to xl2tpd's tunnel, acking its SCCRQ.
    assert_eq!(header.tunnel_id, 0x5fa2);
    assert_eq!(header.sequence, Some((0, 1)));
    assert_eq!(
        sccrp.challenge_response().unwrap().to_vec(),
        hex(L2TPNS_CHALLENGE_RESPONSE)
    );
    // Mandatory SCCRP AVPs of §6.2.
    assert_eq!(sccrp.protocol_version(), Some((1, 0)));
    assert!(sccrp.host_name().is_some());
    assert!(sccrp.assigned_tunnel_id().is_some_and(|id| id != 0));
    assert!(sccrp
        .find(lns::wire::l2tp::AvpType::FramingCapabilities)
        .is_some());
    // We challenge back, since we have a secret.
    assert_eq!(sccrp.challenge().map(<[u8]>::len), Some(16));
}

#[test]
fn retransmitted_sccrq_does_not_open_a_second_tunnel() {
    let mut h = Harness::with_secret();
    h.send(&hex(XL2TPD_SCCRQ)).unwrap();
    h.send(&hex(XL2TPD_SCCRQ)).unwrap();
    assert_eq!(h.lns.tunnel_count(), 1);
    let replies = h.replies();
    // One SCCRP and a prompt ZLB re-acking the duplicate.
    assert_eq!(
        replies.iter().filter(|(_, m)| m.is_some()).count(),
        1,
        "{replies:?}"
    );
    assert!(replies.iter().any(|(_, m)| m.is_none()));
    assert_eq!(h.lns.stats().duplicates, 1);
}

#[test]
fn missing_challenge_response_in_scccn_is_refused() {
    let mut h = Harness::with_secret();
    h.send(&hex(XL2TPD_SCCRQ)).unwrap();
    let ours = h.replies()[0]
        .1
        .as_ref()
        .unwrap()
        .assigned_tunnel_id()
        .unwrap();
    // xl2tpd's SCCCN from the capture: no Challenge Response in it.
    let scccn = raw_datagram(ours, 0, 1, 1, &hex("8008 0000 0000 0003"));
    h.send(&scccn).unwrap();
    let replies = h.replies();
    let stop = replies.iter().find_map(|(_, m)| m.clone()).unwrap();
    assert_eq!(stop.message_type, MessageType::StopCcn);
    assert_eq!(
        stop.result_code().unwrap().result,
        stopccn_result::NOT_AUTHORIZED
    );
    assert_eq!(h.lns.stats().auth_failures, 1);
}

#[test]
fn xl2tpd_call_replayed_against_our_lns() {
    let mut h = Harness::with_secret();
    let tunnel = h.tunnel_up();
    // ICRQ (Ns 2) → ICRP addressed to xl2tpd's session 0x2ab3.
    h.send(&raw_datagram(tunnel, 0, 2, 1, &hex(XL2TPD_ICRQ_BODY)))
        .unwrap();
    let replies = h.replies();
    let (header, icrp) = replies.iter().find(|(_, m)| m.is_some()).unwrap();
    let icrp = icrp.as_ref().unwrap();
    assert_eq!(icrp.message_type, MessageType::Icrp);
    assert_eq!(header.tunnel_id, 0x5fa2);
    assert_eq!(header.session_id, 0x2ab3);
    let session = icrp.assigned_session_id().unwrap();
    // ICCN (Ns 3) → session up with xl2tpd's AVPs.
    h.send(&raw_datagram(tunnel, session, 3, 2, &hex(XL2TPD_ICCN_BODY)))
        .unwrap();
    let events = h.events();
    let call = events
        .iter()
        .find_map(|e| match e {
            Event::SessionUp {
                call,
                peer_session: 0x2ab3,
                ..
            } => Some(call.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(call.call_serial_number, Some(1));
    assert_eq!(call.framing_type, Some(1));
    assert_eq!(call.rx_connect_speed, Some(0));
    // CDN (Ns 4) → session down with result 1.
    h.send(&raw_datagram(tunnel, session, 4, 2, &hex(XL2TPD_CDN_BODY)))
        .unwrap();
    assert!(h.events().iter().any(|e| matches!(
        e,
        Event::SessionDown { reason: SessionDownReason::PeerDisconnect(rc), .. } if rc.result == 1
    )));
    assert_eq!(h.lns.session_count(), 0);
    // Nothing in flight needs more than a delayed ZLB.
    h.advance(Duration::from_secs(1));
    assert!(h.replies().iter().all(|(_, m)| m.is_none()));
}

fn unknown_mandatory() -> Avp {
    Avp::Unknown {
        header: AvpHeader {
            mandatory: true,
            hidden: false,
            reserved_bits: false,
            vendor_id: 9,
            attr_type: 1,
        },
        value: vec![1, 2, 3],
    }
}

fn sccrq(peer_tunnel: u16) -> ControlMessage {
    ControlMessage::new(MessageType::Sccrq)
        .with(Avp::ProtocolVersion {
            version: 1,
            revision: 0,
        })
        .with(Avp::HostName(b"lac".to_vec()))
        .with(Avp::FramingCapabilities(3))
        .with(Avp::AssignedTunnelId(peer_tunnel))
}

#[test]
fn sccrq_with_unknown_mandatory_avp_is_refused_statelessly() {
    let mut h = Harness::new(L2tpConfig::new(Role::Lns));
    let msg = sccrq(77).with(unknown_mandatory());
    assert_eq!(
        h.send(&control_datagram(0, 0, 0, 0, &msg)),
        Err(Dropped::Refused)
    );
    let (header, stop) = h.replies().remove(0);
    let stop = stop.unwrap();
    assert_eq!(header.tunnel_id, 77);
    assert_eq!(stop.message_type, MessageType::StopCcn);
    let rc = stop.result_code().unwrap();
    assert_eq!(rc.result, stopccn_result::GENERAL_ERROR);
    assert_eq!(rc.error, Some(error_code::UNKNOWN_MANDATORY_AVP));
    assert_eq!(h.lns.tunnel_count(), 0);
}

#[test]
fn vendor_avp_without_m_bit_is_ignored() {
    let mut h = Harness::new(L2tpConfig::new(Role::Lns));
    let msg = sccrq(78).with(Avp::Unknown {
        header: AvpHeader {
            mandatory: false,
            hidden: false,
            reserved_bits: false,
            vendor_id: 9,
            attr_type: 1,
        },
        value: vec![1],
    });
    h.send(&control_datagram(0, 0, 0, 0, &msg)).unwrap();
    assert_eq!(h.lns.tunnel_count(), 1);
}

#[test]
fn wrong_protocol_version_gets_result_5() {
    let mut h = Harness::new(L2tpConfig::new(Role::Lns));
    let mut msg = sccrq(79);
    msg.avps[0] = Avp::ProtocolVersion {
        version: 2,
        revision: 0,
    };
    assert_eq!(
        h.send(&control_datagram(0, 0, 0, 0, &msg)),
        Err(Dropped::Refused)
    );
    let stop = h.replies().remove(0).1.unwrap();
    assert_eq!(
        stop.result_code().unwrap().result,
        stopccn_result::BAD_PROTOCOL_VERSION
    );
}

#[test]
fn challenge_without_a_configured_secret_is_refused() {
    let mut h = Harness::new(L2tpConfig::new(Role::Lns));
    assert_eq!(h.send(&hex(XL2TPD_SCCRQ)), Err(Dropped::Refused));
    let stop = h.replies().remove(0).1.unwrap();
    assert_eq!(
        stop.result_code().unwrap().result,
        stopccn_result::NOT_AUTHORIZED
    );
}

#[test]
fn half_open_session_is_cleared_at_the_setup_timeout() {
    let mut h = Harness::with_secret();
    let tunnel = h.tunnel_up();
    h.send(&raw_datagram(tunnel, 0, 2, 1, &hex(XL2TPD_ICRQ_BODY)))
        .unwrap();
    let session = h
        .replies()
        .into_iter()
        .find_map(|(_, m)| m)
        .unwrap()
        .assigned_session_id()
        .unwrap();
    // Ack the ICRP so only the setup timer is left, then say nothing.
    h.send(&raw_datagram(tunnel, 0, 3, 2, &[])).unwrap();
    h.advance(Duration::from_secs(31));
    let cdn = h
        .replies()
        .into_iter()
        .find_map(|(_, m)| m.filter(|m| m.message_type == MessageType::Cdn))
        .unwrap();
    assert_eq!(cdn.result_code().unwrap().result, cdn_result::TIMEOUT);
    assert_eq!(cdn.assigned_session_id(), Some(session));
    assert!(h.events().iter().any(|e| matches!(
        e,
        Event::SessionDown {
            reason: SessionDownReason::SetupTimeout,
            ..
        }
    )));
    // The tunnel itself is fine.
    assert_eq!(h.lns.tunnel_count(), 1);
}

#[test]
fn icrq_with_unknown_mandatory_avp_refuses_only_that_call() {
    let mut h = Harness::with_secret();
    let tunnel = h.tunnel_up();
    let icrq = ControlMessage::new(MessageType::Icrq)
        .with(Avp::AssignedSessionId(0x1234))
        .with(Avp::CallSerialNumber(1))
        .with(unknown_mandatory());
    h.send(&control_datagram(tunnel, 0, 2, 1, &icrq)).unwrap();
    let (header, cdn) = h.replies().into_iter().find(|(_, m)| m.is_some()).unwrap();
    let cdn = cdn.unwrap();
    assert_eq!(cdn.message_type, MessageType::Cdn);
    assert_eq!(header.session_id, 0x1234);
    assert_eq!(
        cdn.result_code().unwrap().error,
        Some(error_code::UNKNOWN_MANDATORY_AVP)
    );
    assert_eq!(h.lns.tunnel_count(), 1);
    assert!(h.lns.tunnel(tunnel).unwrap().state == lns::proto::l2tp::TunnelState::Established);
}

#[test]
fn hello_with_unknown_mandatory_avp_clears_the_tunnel() {
    let mut h = Harness::with_secret();
    let tunnel = h.tunnel_up();
    let hello = ControlMessage::new(MessageType::Hello).with(unknown_mandatory());
    h.send(&control_datagram(tunnel, 0, 2, 1, &hello)).unwrap();
    let stop = h.replies().into_iter().find_map(|(_, m)| m).unwrap();
    assert_eq!(stop.message_type, MessageType::StopCcn);
    assert_eq!(
        stop.result_code().unwrap().error,
        Some(error_code::UNKNOWN_MANDATORY_AVP)
    );
    assert!(h.events().iter().any(|e| matches!(
        e,
        Event::TunnelDown {
            reason: TunnelDownReason::LocalStop(_),
            ..
        }
    )));
}

#[test]
fn malformed_tunnel_message_gets_stopccn_with_length_error() {
    let mut h = Harness::with_secret();
    let tunnel = h.tunnel_up();
    // HELLO followed by an AVP whose length runs past the end.
    let body = hex("8008 0000 0000 0006  8040 0000 0007 6162");
    h.send(&raw_datagram(tunnel, 0, 2, 1, &body)).unwrap();
    let stop = h.replies().into_iter().find_map(|(_, m)| m).unwrap();
    assert_eq!(stop.message_type, MessageType::StopCcn);
    assert_eq!(
        stop.result_code().unwrap().error,
        Some(error_code::BAD_LENGTH)
    );
    assert_eq!(h.lns.stats().malformed_messages, 1);
}

#[test]
fn unknown_message_type_clears_the_tunnel() {
    let mut h = Harness::with_secret();
    let tunnel = h.tunnel_up();
    h.send(&raw_datagram(tunnel, 0, 2, 1, &hex("8008 0000 0000 0063")))
        .unwrap();
    let stop = h.replies().into_iter().find_map(|(_, m)| m).unwrap();
    assert_eq!(stop.message_type, MessageType::StopCcn);
}

#[test]
fn message_for_an_unknown_session_costs_nothing() {
    let mut h = Harness::with_secret();
    let tunnel = h.tunnel_up();
    h.send(&raw_datagram(tunnel, 0x4444, 2, 1, &hex(XL2TPD_ICCN_BODY)))
        .unwrap();
    assert_eq!(h.lns.stats().unknown_session, 1);
    assert!(h.replies().iter().all(|(_, m)| m.is_none()));
    assert_eq!(
        h.lns.tunnel(tunnel).unwrap().state,
        lns::proto::l2tp::TunnelState::Established
    );
}

#[test]
fn stray_datagrams_are_dropped_with_a_reason() {
    let mut h = Harness::with_secret();
    let tunnel = h.tunnel_up();
    // A data message is the fast path's business.
    assert_eq!(
        h.send(&hex("0002 5fa2 2ab3 ff03 c021")),
        Err(Dropped::NotControl)
    );
    // Garbage.
    assert_eq!(h.send(&[0xc8]), Err(Dropped::MalformedHeader));
    // An unknown tunnel.
    assert_eq!(
        h.send(&raw_datagram(tunnel.wrapping_add(1), 0, 2, 1, &[])),
        Err(Dropped::UnknownTunnel)
    );
    // The right tunnel from the wrong address.
    let stranger: SocketAddr = "10.99.0.9:1701".parse().unwrap();
    assert_eq!(
        h.lns
            .handle_datagram(h.now, stranger, &raw_datagram(tunnel, 0, 2, 1, &[])),
        Err(Dropped::WrongPeer)
    );
    assert_eq!(h.lns.stats().dropped(Dropped::WrongPeer), 1);
    // A ZLB to tunnel 0.
    assert_eq!(
        h.send(&raw_datagram(0, 0, 0, 0, &[])),
        Err(Dropped::NotSccrq)
    );
}

#[test]
fn duplicate_message_is_re_acked() {
    let mut h = Harness::with_secret();
    let tunnel = h.tunnel_up();
    h.replies();
    let hello = control_datagram(tunnel, 0, 2, 1, &ControlMessage::new(MessageType::Hello));
    h.send(&hello).unwrap();
    h.send(&hello).unwrap();
    let replies = h.replies();
    // The duplicate is acked at once with a ZLB carrying Nr 3.
    assert!(replies
        .iter()
        .any(|(header, m)| m.is_none() && header.sequence.map(|(_, nr)| nr) == Some(3)));
    assert_eq!(h.lns.stats().duplicates, 1);
}

#[test]
fn sccrp_advertises_our_receive_window() {
    let mut h = Harness::with_secret();
    h.send(&hex(XL2TPD_SCCRQ)).unwrap();
    let sccrp = h.replies().remove(0).1.unwrap();
    assert_eq!(
        sccrp.receive_window_size(),
        Some(h.lns.config().reliable.receive_window)
    );
}

/// §8.1: the LNS may answer SCCRQ from another UDP port; the LAC follows
/// it there for the rest of the tunnel.
#[test]
fn lac_follows_the_lns_to_a_new_port() {
    let now = Instant::now();
    let mut lac = Endpoint::new(L2tpConfig::new(Role::Lac), 5);
    let lns_addr: SocketAddr = "10.99.0.1:1701".parse().unwrap();
    let moved: SocketAddr = "10.99.0.1:40000".parse().unwrap();
    let tunnel = lac.connect(now, lns_addr).unwrap();
    let sccrq = lac.poll_transmit().unwrap();
    assert_eq!(sccrq.remote, lns_addr);
    let sccrp = ControlMessage::new(MessageType::Sccrp)
        .with(Avp::ProtocolVersion {
            version: 1,
            revision: 0,
        })
        .with(Avp::HostName(b"lns".to_vec()))
        .with(Avp::FramingCapabilities(3))
        .with(Avp::AssignedTunnelId(900));
    lac.handle_datagram(now, moved, &control_datagram(tunnel, 0, 0, 1, &sccrp))
        .unwrap();
    let scccn = lac.poll_transmit().unwrap();
    assert_eq!(scccn.remote, moved);
    assert_eq!(decode(&scccn.payload, None).0.tunnel_id, 900);
    // The old port is now a stranger.
    assert_eq!(
        lac.handle_datagram(now, lns_addr, &raw_datagram(tunnel, 0, 1, 2, &[])),
        Err(Dropped::WrongPeer)
    );
    // And another host is never followed.
    let mut lac = Endpoint::new(L2tpConfig::new(Role::Lac), 6);
    let tunnel = lac.connect(now, lns_addr).unwrap();
    let stranger: SocketAddr = "10.99.0.7:1701".parse().unwrap();
    assert_eq!(
        lac.handle_datagram(now, stranger, &control_datagram(tunnel, 0, 0, 1, &sccrp)),
        Err(Dropped::WrongPeer)
    );
}

/// The hold after StopCCN ends only once the StopCCN is acked; a peer that
/// never acks is given up on when retransmissions run out.
#[test]
fn unacked_stopccn_outlives_the_hold_then_the_tunnel_goes() {
    let mut config = L2tpConfig::new(Role::Lns);
    config.secret = Some(b"secret".to_vec());
    config.stop_hold = Duration::from_secs(2);
    let mut h = Harness::new(config);
    let tunnel = h.tunnel_up();
    h.lns
        .close_tunnel(
            h.now,
            tunnel,
            lns::wire::l2tp::ResultCode {
                result: stopccn_result::CLEAR,
                error: None,
                message: None,
            },
        )
        .unwrap();
    h.advance(Duration::from_secs(10));
    assert!(matches!(
        h.lns.tunnel(tunnel).map(|t| t.state),
        Some(lns::proto::l2tp::TunnelState::Stopping { .. })
    ));
    // 1 + 2 + 4 + 8 + 8 + 8 s of retransmissions, then it is gone.
    h.advance(Duration::from_secs(25));
    assert_eq!(h.lns.tunnel_count(), 0);
    let stops = h
        .replies()
        .into_iter()
        .filter(|(_, m)| {
            m.as_ref()
                .is_some_and(|m| m.message_type == MessageType::StopCcn)
        })
        .count();
    assert_eq!(stops, 6, "first transmission and five retries");
}
