//! LAC ⇄ LNS scenarios of RFC 2661 §5–§6 over a simulated link.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use lns::proto::l2tp::auth::challenge_response;
use lns::proto::l2tp::{
    CallInfo, CommandError, Endpoint, Event, L2tpConfig, Limits, PeerSecrets, ProxyAuth, ProxyLcp,
    SessionDownReason, SessionState, ShardSpec, TunnelDownReason, TunnelState,
};
use lns::sim::{lac_config, lns_config, Link, Pair};
use lns::wire::l2tp::avps::{cdn_result, error_code, stopccn_result, CallErrors};
use lns::wire::l2tp::message::AvpTypeSet;
use lns::wire::l2tp::{Avp, ControlMessage, MessageType, Packet, ResultCode};
use lns::wire::prefix::IpPrefix;
use std::time::Instant;

fn clear(result: u16) -> ResultCode {
    ResultCode {
        result,
        error: None,
        message: None,
    }
}

fn subscriber_call(n: u32) -> CallInfo {
    CallInfo {
        call_serial_number: Some(n),
        bearer_type: Some(2),
        framing_type: Some(1),
        calling_number: Some(format!("dsl-line-{n}").into_bytes()),
        called_number: Some(b"isp".to_vec()),
        tx_connect_speed: Some(16_000_000),
        rx_connect_speed: Some(1_000_000),
        proxy_lcp: ProxyLcp {
            initial_received: Some(vec![1, 4, 5, 0xd4, 5, 6, 1, 2, 3, 4]),
            last_sent: Some(vec![1, 4, 5, 0xd4, 3, 5, 0xc2, 0x23, 5]),
            last_received: Some(vec![1, 4, 5, 0xd4, 5, 6, 1, 2, 3, 4]),
        },
        proxy_auth: ProxyAuth {
            authen_type: Some(2),
            name: Some(format!("user{n}@isp").into_bytes()),
            challenge: Some(vec![7; 16]),
            id: Some(9),
            response: Some(vec![3; 16]),
        },
        ..CallInfo::default()
    }
}

#[test]
fn tunnel_and_session_lifecycle_on_a_clean_link() {
    let mut pair = Pair::clean(Instant::now());
    let (lac_t, lns_t) = pair.tunnel_up().unwrap();
    assert!(matches!(
        pair.lac_events[0],
        Event::TunnelUp { tunnel, peer_tunnel, .. } if tunnel == lac_t && peer_tunnel == lns_t
    ));
    assert!(matches!(
        &pair.lns_events[0],
        Event::TunnelUp { host_name, .. } if host_name == b"lac"
    ));

    let call = subscriber_call(1);
    let lac_s = pair
        .lac
        .open_session(pair.now, lac_t, call.clone())
        .unwrap();
    assert!(pair.run_until(Duration::from_secs(5), |p| p.lns_sessions_up() == 1));
    // Every ICRQ/ICCN AVP reached the LNS, proxy LCP and authentication too.
    let (lns_s, got) = pair
        .lns_events
        .iter()
        .find_map(|e| match e {
            Event::SessionUp {
                session,
                peer_session,
                call,
                ..
            } => {
                assert_eq!(*peer_session, lac_s);
                Some((*session, call.clone()))
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(*got, call);
    assert_eq!(pair.lac_sessions_up(), 1);
    assert_eq!(
        pair.lns.session_state(lns_t, lns_s),
        Some(SessionState::Established)
    );

    // LAC hangs up: CDN.
    pair.lac
        .close_session(pair.now, lac_t, lac_s, clear(cdn_result::LOST_CARRIER))
        .unwrap();
    assert!(pair.run_until(Duration::from_secs(5), |p| p
        .lns_events
        .iter()
        .any(|e| matches!(e, Event::SessionDown { .. }))));
    assert!(pair.lns_events.iter().any(|e| matches!(
        e,
        Event::SessionDown { reason: SessionDownReason::PeerDisconnect(rc), .. } if rc.result == cdn_result::LOST_CARRIER
    )));
    assert_eq!(pair.lns.session_count(), 0);

    // LNS clears the tunnel: StopCCN; both hold, then forget it.
    pair.lns
        .close_tunnel(pair.now, lns_t, clear(stopccn_result::CLEAR))
        .unwrap();
    assert!(pair.run_until(Duration::from_secs(5), |p| p
        .lac_events
        .iter()
        .any(|e| matches!(e, Event::TunnelDown { .. }))));
    assert!(matches!(
        pair.lns.tunnel(lns_t).unwrap().state,
        TunnelState::Stopping { .. }
    ));
    pair.run_for(Duration::from_secs(40));
    assert_eq!(pair.lns.tunnel_count(), 0);
    assert_eq!(pair.lac.tunnel_count(), 0);
    // The StopCCN was acked, so it was sent exactly once.
    assert_eq!(pair.lns.stats().sent(MessageType::StopCcn), 1);
    assert_eq!(pair.lac.stats().received(MessageType::StopCcn), 1);
}

#[test]
fn authenticated_tunnel_with_hidden_avps() {
    let secret = b"shared-secret".to_vec();
    let mut lac = lac_config();
    lac.secret = Some(secret.clone());
    lac.hidden_avps = L2tpConfig::sensitive_avps();
    let mut lns = lns_config();
    lns.secret = Some(secret.clone());
    lns.hidden_avps = L2tpConfig::sensitive_avps();
    let mut pair = Pair::new(lac, lns, Link::CLEAN, 3, Instant::now());
    let (lac_t, _) = pair.tunnel_up().unwrap();
    let call = subscriber_call(7);
    pair.lac
        .open_session(pair.now, lac_t, call.clone())
        .unwrap();
    assert!(pair.run_until(Duration::from_secs(5), |p| p.lns_sessions_up() == 1));
    let got = pair
        .lns_events
        .iter()
        .find_map(|e| match e {
            Event::SessionUp { call, .. } => Some(call.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(*got, call);
    // The user name really travelled hidden: it is not in clear on the wire.
    let iccn = pair
        .sent_by_lac
        .iter()
        .find(|d| {
            support::decode(d, Some(&secret))
                .1
                .is_some_and(|m| m.message_type == MessageType::Iccn)
        })
        .unwrap();
    assert!(!iccn.windows(9).any(|w| w == b"user7@isp"));
    // Both sides proved knowledge of the secret.
    assert_eq!(pair.lns.stats().auth_failures, 0);
    assert_eq!(pair.lac.stats().auth_failures, 0);
}

#[test]
fn wrong_secret_is_refused_with_result_4() {
    let mut lac = lac_config();
    lac.secret = Some(b"one".to_vec());
    let mut lns = lns_config();
    lns.secret = Some(b"two".to_vec());
    let mut pair = Pair::new(lac, lns, Link::CLEAN, 4, Instant::now());
    pair.lac.connect(pair.now, pair.lns_addr).unwrap();
    pair.run_for(Duration::from_secs(5));
    // The LAC checks the LNS's Challenge Response first and refuses.
    assert!(pair.lac_events.iter().any(|e| matches!(
        e,
        Event::TunnelDown { reason: TunnelDownReason::LocalStop(rc), .. } if rc.result == stopccn_result::NOT_AUTHORIZED
    )));
    assert!(pair.lns_events.iter().any(|e| matches!(
        e,
        Event::TunnelDown { reason: TunnelDownReason::PeerStop(rc), .. } if rc.result == stopccn_result::NOT_AUTHORIZED
    )));
    assert_eq!(pair.lac.stats().auth_failures, 1);
    assert!(!pair
        .lns_events
        .iter()
        .any(|e| matches!(e, Event::TunnelUp { .. })));
}

#[test]
fn lns_with_secret_refuses_a_lac_without_one() {
    let mut lns = lns_config();
    lns.secret = Some(b"two".to_vec());
    let mut pair = Pair::new(lac_config(), lns, Link::CLEAN, 5, Instant::now());
    pair.lac.connect(pair.now, pair.lns_addr).unwrap();
    pair.run_for(Duration::from_secs(5));
    // The LAC cannot answer the LNS's Challenge, so it refuses itself.
    assert!(pair.lac_events.iter().any(|e| matches!(
        e,
        Event::TunnelDown { reason: TunnelDownReason::LocalStop(rc), .. } if rc.result == stopccn_result::NOT_AUTHORIZED
    )));
    assert!(!pair
        .lns_events
        .iter()
        .any(|e| matches!(e, Event::TunnelUp { .. })));
}

/// Tunnels and sessions come up and go down correctly under heavy loss,
/// duplication and reordering, for several seeds.
#[test]
fn storm_under_twenty_percent_loss() {
    for seed in 1..=4u64 {
        let mut pair = Pair::new(
            lac_config(),
            lns_config(),
            Link::lossy(0.2),
            seed,
            Instant::now(),
        );
        let tunnels = 6;
        let sessions = 15;
        let mut lac_tunnels = Vec::new();
        for _ in 0..tunnels {
            lac_tunnels.push(pair.lac.connect(pair.now, pair.lns_addr).unwrap());
        }
        assert!(
            pair.run_until(Duration::from_secs(120), |p| p
                .lns_events
                .iter()
                .filter(|e| matches!(e, Event::TunnelUp { .. }))
                .count()
                == tunnels),
            "seed {seed}: tunnels did not all come up"
        );
        // The LAC may see its tunnel up before the LNS; wait for both.
        assert!(pair.run_until(Duration::from_secs(60), |p| p
            .lac_events
            .iter()
            .filter(|e| matches!(e, Event::TunnelUp { .. }))
            .count()
            == tunnels));
        let mut n = 0;
        for &t in &lac_tunnels {
            for _ in 0..sessions {
                n += 1;
                pair.lac
                    .open_session(pair.now, t, subscriber_call(n))
                    .unwrap();
            }
        }
        let total = tunnels * sessions;
        assert!(
            pair.run_until(Duration::from_secs(300), |p| p.lns_sessions_up() == total
                && p.lac_sessions_up() == total),
            "seed {seed}: {} of {total} sessions up on the LNS",
            pair.lns_sessions_up()
        );
        assert_eq!(pair.lns.session_count(), total);
        assert_eq!(pair.lns.stats().sessions_refused, 0);
        assert!(pair.lac.retransmissions() + pair.lns.retransmissions() > 0);

        // Tear everything down from the LAC side: half by CDN, then StopCCN.
        for &t in &lac_tunnels {
            pair.lac
                .close_tunnel(pair.now, t, clear(stopccn_result::CLEAR))
                .unwrap();
        }
        assert!(
            pair.run_until(Duration::from_secs(120), |p| p
                .lns_events
                .iter()
                .filter(|e| matches!(e, Event::TunnelDown { .. }))
                .count()
                == tunnels),
            "seed {seed}: tunnels not all down"
        );
        let down = pair
            .lns_events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Event::SessionDown {
                        reason: SessionDownReason::TunnelDown,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(down, total, "seed {seed}");
        pair.run_for(Duration::from_secs(60));
        assert_eq!(pair.lns.tunnel_count(), 0, "seed {seed}");
        assert_eq!(pair.lac.tunnel_count(), 0, "seed {seed}");
    }
}

#[test]
fn vanished_lac_is_detected_by_hello_and_retransmit_timeout() {
    let mut pair = Pair::clean(Instant::now());
    let (lac_t, _) = pair.tunnel_up().unwrap();
    pair.lac
        .open_session(pair.now, lac_t, subscriber_call(1))
        .unwrap();
    assert!(pair.run_until(Duration::from_secs(5), |p| p.lns_sessions_up() == 1));
    let states = pair.lns.tunnels_by_state();
    assert_eq!(states[TunnelState::Established.index()], 1);
    assert_eq!(states.iter().sum::<u64>(), 1);
    let started = pair
        .lns_events
        .iter()
        .find_map(|e| match e {
            Event::SessionUp { started, .. } => Some(*started),
            _ => None,
        })
        .unwrap();
    assert!(started >= pair.start && started <= pair.now);
    // The LAC disappears without a word.
    pair.link.loss = 1.0;
    let cut = pair.now;
    assert!(
        pair.run_until(Duration::from_secs(300), |p| p.lns_events.iter().any(
            |e| matches!(
                e,
                Event::TunnelDown {
                    reason: TunnelDownReason::PeerUnreachable,
                    ..
                }
            )
        ))
    );
    let detected = pair.now - cut;
    // HELLO after 60 s of silence, then 1+2+4+8+8+8 s of retransmissions.
    assert!(
        detected >= Duration::from_secs(85) && detected <= Duration::from_secs(95),
        "detected after {detected:?}"
    );
    assert!(pair.lns_events.iter().any(|e| matches!(
        e,
        Event::SessionDown {
            reason: SessionDownReason::TunnelDown,
            ..
        }
    )));
    assert_eq!(pair.lns.tunnel_count(), 0);
    assert!(pair.lns.stats().sent(MessageType::Hello) >= 1);
    // Metrics: one peer timeout; the HELLO's retransmissions outlive
    // the tunnel in the totals since start, not in the live ones.
    assert_eq!(pair.lns.stats().tunnel_timeouts, 1);
    assert_eq!(pair.lns.retransmissions(), 0);
    assert!(pair.lns.channel_counters().retransmitted >= 5);
}

#[test]
fn idle_tunnel_sends_hello_and_stays_up() {
    let mut pair = Pair::clean(Instant::now());
    pair.tunnel_up().unwrap();
    pair.run_for(Duration::from_secs(200));
    assert!(pair.lns.stats().sent(MessageType::Hello) >= 2);
    assert!(pair.lac.stats().received(MessageType::Hello) >= 2);
    assert!(!pair
        .lns_events
        .iter()
        .any(|e| matches!(e, Event::TunnelDown { .. })));
}

#[test]
fn tunnel_limit_is_answered_with_no_resources() {
    let mut lns = lns_config();
    lns.limits = Limits {
        max_tunnels: 1,
        ..Limits::default()
    };
    let mut pair = Pair::new(lac_config(), lns, Link::CLEAN, 6, Instant::now());
    pair.tunnel_up().unwrap();
    pair.lac.connect(pair.now, pair.lns_addr).unwrap();
    pair.run_for(Duration::from_secs(3));
    assert!(pair.lac_events.iter().any(|e| matches!(
        e,
        Event::TunnelDown { reason: TunnelDownReason::PeerStop(rc), .. }
            if rc.result == stopccn_result::GENERAL_ERROR && rc.error == Some(error_code::NO_RESOURCES)
    )));
    assert_eq!(pair.lns.stats().tunnels_refused, 1);
    assert_eq!(pair.lns.tunnel_count(), 1);
}

#[test]
fn session_limits_are_answered_with_cdn_result_4() {
    let mut lns = lns_config();
    lns.limits = Limits {
        max_sessions_per_tunnel: 2,
        ..Limits::default()
    };
    let mut pair = Pair::new(lac_config(), lns, Link::CLEAN, 7, Instant::now());
    let (lac_t, _) = pair.tunnel_up().unwrap();
    for n in 0..3 {
        pair.lac
            .open_session(pair.now, lac_t, subscriber_call(n))
            .unwrap();
    }
    pair.run_for(Duration::from_secs(3));
    assert_eq!(pair.lns_sessions_up(), 2);
    assert!(pair.lac_events.iter().any(|e| matches!(
        e,
        Event::SessionDown { reason: SessionDownReason::PeerDisconnect(rc), .. }
            if rc.result == cdn_result::TEMPORARY_NO_FACILITIES
    )));
    assert_eq!(pair.lns.stats().sessions_refused, 1);
}

#[test]
fn half_open_tunnel_limit() {
    let mut lns = lns_config();
    lns.limits = Limits {
        max_half_open_tunnels: 2,
        ..Limits::default()
    };
    // The LAC's SCCCNs never arrive: every LAC → LNS datagram after the
    // first SCCRQ of each tunnel is lost, so tunnels stay half-open.
    let mut pair = Pair::new(lac_config(), lns, Link::CLEAN, 8, Instant::now());
    for _ in 0..3 {
        pair.lac.connect(pair.now, pair.lns_addr).unwrap();
    }
    // Deliver only the three SCCRQs.
    pair.drain();
    pair.link.loss = 1.0;
    pair.run_for(Duration::from_millis(500));
    assert_eq!(pair.lns.tunnel_count(), 2);
    assert_eq!(pair.lns.stats().tunnels_refused, 1);
}

#[test]
fn half_open_tunnel_times_out() {
    let mut pair = Pair::clean(Instant::now());
    pair.lac.connect(pair.now, pair.lns_addr).unwrap();
    // SCCRQ goes through, nothing after it does.
    pair.drain();
    pair.link.loss = 1.0;
    pair.run_until(Duration::from_secs(120), |p| {
        p.lns_events
            .iter()
            .any(|e| matches!(e, Event::TunnelDown { .. }))
    });
    // Its SCCRP is never acked; the 30 s setup timer ends it just before
    // the 31 s retransmission cycle would.
    assert!(pair.lns_events.iter().any(|e| matches!(
        e,
        Event::TunnelDown {
            reason: TunnelDownReason::SetupTimeout,
            ..
        }
    )));
    assert_eq!(pair.lns.stats().setup_timeouts, 1);
    pair.run_for(Duration::from_secs(60));
    assert_eq!(pair.lns.tunnel_count(), 0);
}

#[test]
fn outgoing_call_placed_by_the_lns() {
    let mut pair = Pair::clean(Instant::now());
    let (_, lns_t) = pair.tunnel_up().unwrap();
    let call = CallInfo {
        call_serial_number: Some(42),
        called_number: Some(b"5551234".to_vec()),
        minimum_bps: Some(64_000),
        maximum_bps: Some(1_000_000),
        ..CallInfo::default()
    };
    let lns_s = pair.lns.place_call(pair.now, lns_t, call).unwrap();
    assert_eq!(
        pair.lns.session_state(lns_t, lns_s),
        Some(SessionState::WaitOcrp)
    );
    assert!(pair.run_until(Duration::from_secs(5), |p| p.lns_sessions_up() == 1));
    assert_eq!(pair.lac_sessions_up(), 1);
    let lac_call = pair
        .lac_events
        .iter()
        .find_map(|e| match e {
            Event::SessionUp { call, .. } => Some(call.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(lac_call.called_number.as_deref(), Some(&b"5551234"[..]));
    assert_eq!(lac_call.maximum_bps, Some(1_000_000));
}

#[test]
fn wen_and_sli_are_surfaced() {
    let mut pair = Pair::clean(Instant::now());
    let (lac_t, lns_t) = pair.tunnel_up().unwrap();
    let lac_s = pair
        .lac
        .open_session(pair.now, lac_t, subscriber_call(1))
        .unwrap();
    assert!(pair.run_until(Duration::from_secs(5), |p| p.lns_sessions_up() == 1));
    let lns_s = pair
        .lns_events
        .iter()
        .find_map(|e| match e {
            Event::SessionUp { session, .. } => Some(*session),
            _ => None,
        })
        .unwrap();
    let errors = CallErrors {
        crc: 1,
        framing: 2,
        hardware_overruns: 3,
        buffer_overruns: 4,
        timeouts: 5,
        alignment: 6,
    };
    pair.lac
        .wan_error_notify(pair.now, lac_t, lac_s, errors)
        .unwrap();
    pair.lns
        .set_link_info(pair.now, lns_t, lns_s, 0xffff_ffff, 0)
        .unwrap();
    // Each goes one way only.
    assert_eq!(
        pair.lns.wan_error_notify(pair.now, lns_t, lns_s, errors),
        Err(CommandError::WrongRole)
    );
    assert_eq!(
        pair.lac.set_link_info(pair.now, lac_t, lac_s, 0, 0),
        Err(CommandError::WrongRole)
    );
    pair.run_for(Duration::from_secs(1));
    assert!(pair.lns_events.contains(&Event::WanErrorNotify {
        tunnel: lns_t,
        session: lns_s,
        errors
    }));
    assert!(pair.lac_events.contains(&Event::SetLinkInfo {
        tunnel: lac_t,
        session: lac_s,
        send_accm: 0xffff_ffff,
        receive_accm: 0
    }));
}

#[test]
fn tunnel_ids_encode_the_shard() {
    let mut lns = lns_config();
    lns.shard = ShardSpec { index: 3, count: 4 };
    let mut pair = Pair::new(lac_config(), lns, Link::CLEAN, 9, Instant::now());
    for _ in 0..20 {
        pair.tunnel_up().unwrap();
    }
    let ids = pair.lns.tunnel_ids();
    assert_eq!(ids.len(), 20);
    assert!(ids.iter().all(|id| id % 4 == 3), "{ids:?}");
}

#[test]
fn graceful_shutdown_stops_every_tunnel() {
    let mut pair = Pair::clean(Instant::now());
    for _ in 0..3 {
        pair.tunnel_up().unwrap();
    }
    pair.lns.close_all(pair.now);
    pair.run_for(Duration::from_secs(2));
    let stopped = pair
        .lac_events
        .iter()
        .filter(|e| matches!(
            e,
            Event::TunnelDown { reason: TunnelDownReason::PeerStop(rc), .. } if rc.result == stopccn_result::SHUTTING_DOWN
        ))
        .count();
    assert_eq!(stopped, 3);
}

/// A LAC reboot: every call of several tunnels requested at once over a
/// lossy link. Calls queue behind the window for tens of seconds; none may
/// be lost to a setup timeout while the tunnel is still working through
/// its backlog, and loss is repaired without waiting out timeouts.
#[test]
fn setup_storm_on_a_lossy_link_loses_no_call() {
    for seed in 1..=3u64 {
        let mut pair = Pair::new(
            lac_config(),
            lns_config(),
            Link::lossy(0.05),
            seed,
            Instant::now(),
        );
        pair.record = false;
        let tunnels: Vec<u16> = (0..4).map(|_| pair.tunnel_up().unwrap().0).collect();
        assert!(pair.run_until(Duration::from_secs(60), |p| p
            .lac_events
            .iter()
            .filter(|e| matches!(e, Event::TunnelUp { .. }))
            .count()
            == 4));
        let mut n = 0;
        for &t in &tunnels {
            for _ in 0..500 {
                n += 1;
                pair.lac
                    .open_session(pair.now, t, subscriber_call(n))
                    .unwrap();
            }
        }
        assert!(
            pair.run_until(Duration::from_secs(600), |p| p.lns_sessions_up() == 2000
                && p.lac_sessions_up() == 2000),
            "seed {seed}: {} of 2000 up",
            pair.lns_sessions_up()
        );
        assert_eq!(pair.lns.stats().setup_timeouts, 0, "seed {seed}");
        assert_eq!(pair.lac.stats().setup_timeouts, 0, "seed {seed}");
        let channels = pair.lac.channel_totals();
        assert!(channels.fast_retransmits > 0, "seed {seed}: {channels:?}");
    }
}

#[test]
fn lns_disconnects_a_call_with_cdn() {
    let mut pair = Pair::clean(Instant::now());
    let (lac_t, lns_t) = pair.tunnel_up().unwrap();
    let mut call = subscriber_call(5);
    call.sequencing_required = true;
    let lac_s = pair.lac.open_session(pair.now, lac_t, call).unwrap();
    assert!(pair.run_until(Duration::from_secs(5), |p| p.lns_sessions_up() == 1));
    let (lns_s, sequencing) = pair
        .lns_events
        .iter()
        .find_map(|e| match e {
            Event::SessionUp { session, call, .. } => Some((*session, call.sequencing_required)),
            _ => None,
        })
        .unwrap();
    assert!(sequencing, "Sequencing Required reaches the LNS");
    let admin = ResultCode {
        result: cdn_result::ADMIN,
        error: Some(error_code::NONE),
        message: Some(b"idle timeout".to_vec()),
    };
    pair.lns
        .close_session(pair.now, lns_t, lns_s, admin.clone())
        .unwrap();
    assert!(pair.run_until(Duration::from_secs(5), |p| p
        .lac_events
        .iter()
        .any(|e| matches!(e, Event::SessionDown { .. }))));
    assert!(pair.lac_events.contains(&Event::SessionDown {
        tunnel: lac_t,
        session: lac_s,
        reason: SessionDownReason::PeerDisconnect(admin),
    }));
    assert_eq!(pair.lac.session_count(), 0);
    assert_eq!(pair.lns.session_count(), 0);
    // The tunnel stays.
    assert_eq!(
        pair.lns.tunnel(lns_t).map(|t| t.state),
        Some(TunnelState::Established)
    );
}

#[test]
fn half_open_session_limit_refuses_with_cdn_result_4() {
    let mut lns = lns_config();
    lns.limits = Limits {
        max_half_open_sessions: 3,
        ..Limits::default()
    };
    let mut pair = Pair::new(lac_config(), lns, Link::CLEAN, 12, Instant::now());
    let (lac_t, _) = pair.tunnel_up().unwrap();
    // Ten ICRQs arrive before any ICCN can: the LAC sends them in one burst.
    for n in 0..10 {
        pair.lac
            .open_session(pair.now, lac_t, subscriber_call(n))
            .unwrap();
    }
    pair.run_for(Duration::from_secs(3));
    let refused = pair.lns.stats().sessions_refused;
    assert!(refused > 0, "some ICRQs were refused");
    assert_eq!(pair.lns_sessions_up() as u64 + refused, 10);
    assert_eq!(
        pair.lac_events
            .iter()
            .filter(|e| matches!(
                e,
                Event::SessionDown { reason: SessionDownReason::PeerDisconnect(rc), .. }
                    if rc.result == cdn_result::TEMPORARY_NO_FACILITIES
            ))
            .count() as u64,
        refused
    );
}

#[test]
fn tunnels_and_calls_over_ipv6() {
    let mut pair = Pair::clean(Instant::now());
    pair.lac_addr = "[2001:db8::1]:1701".parse().unwrap();
    pair.lns_addr = "[2001:db8::2]:1701".parse().unwrap();
    let (lac_t, _) = pair.tunnel_up().unwrap();
    pair.lac
        .open_session(pair.now, lac_t, subscriber_call(1))
        .unwrap();
    assert!(pair.run_until(Duration::from_secs(5), |p| p.lns_sessions_up() == 1));
    assert!(pair.lns_events.iter().any(|e| matches!(
        e,
        Event::TunnelUp { remote, .. } if remote.is_ipv6()
    )));
}

/// Admission rates: an LNS taking 2 new tunnels and 3 new calls a second
/// refuses the rest of a burst at once with the RFC's answers (StopCCN
/// 2/4, CDN 4) and accepts again once the second has passed.
#[test]
fn admission_rates_refuse_the_excess_of_a_burst() {
    let mut lns = lns_config();
    lns.limits.new_tunnels_per_second = Some(2);
    lns.limits.new_sessions_per_second = Some(3);
    let mut pair = Pair::new(lac_config(), lns, Link::CLEAN, 5, Instant::now());
    let tunnels: Vec<u16> = (0..5)
        .map(|_| pair.lac.connect(pair.now, pair.lns_addr).unwrap())
        .collect();
    pair.run_for(Duration::from_millis(500));
    let up: Vec<u16> = pair
        .lac_events
        .iter()
        .filter_map(|e| match e {
            Event::TunnelUp { tunnel, .. } => Some(*tunnel),
            _ => None,
        })
        .collect();
    let refused = pair
        .lac_events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::TunnelDown { reason: TunnelDownReason::PeerStop(rc), .. }
                    if rc.result == stopccn_result::GENERAL_ERROR
                        && rc.error == Some(error_code::NO_RESOURCES)
            )
        })
        .count();
    assert_eq!((up.len(), refused), (2, 3), "{:?}", pair.lac_events);
    assert!(up.iter().all(|t| tunnels.contains(t)));

    // Six calls at once on a tunnel that is up: three connect.
    let tunnel = up[0];
    for _ in 0..6 {
        pair.lac
            .open_session(pair.now, tunnel, CallInfo::default())
            .unwrap();
    }
    pair.run_for(Duration::from_millis(500));
    let calls_up = |events: &[Event]| {
        events
            .iter()
            .filter(|e| matches!(e, Event::SessionUp { .. }))
            .count()
    };
    let calls_refused = pair
        .lac_events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::SessionDown { reason: SessionDownReason::PeerDisconnect(rc), .. }
                    if rc.result == cdn_result::TEMPORARY_NO_FACILITIES
            )
        })
        .count();
    assert_eq!((calls_up(&pair.lac_events), calls_refused), (3, 3));

    // A second later the buckets have refilled.
    pair.run_for(Duration::from_secs(1));
    pair.lac
        .open_session(pair.now, tunnel, CallInfo::default())
        .unwrap();
    pair.lac.connect(pair.now, pair.lns_addr).unwrap();
    pair.run_for(Duration::from_millis(500));
    assert_eq!(calls_up(&pair.lac_events), 4);
    let tunnels_up = pair
        .lac_events
        .iter()
        .filter(|e| matches!(e, Event::TunnelUp { .. }))
        .count();
    assert_eq!(tunnels_up, 3);
}

// ---------------------------------------------------------------------------
// Per-peer tunnel secrets: one LNS, several LACs at their own addresses.

/// One LNS and several LACs, each at its own address, on a clean link
/// without latency. Enough to see which secret each tunnel ends up with.
struct Star {
    now: Instant,
    lns: Endpoint,
    lns_addr: SocketAddr,
    lns_events: Vec<Event>,
    lacs: Vec<StarLac>,
}

struct StarLac {
    addr: SocketAddr,
    endpoint: Endpoint,
    events: Vec<Event>,
    /// Datagrams this LAC sent.
    sent: Vec<Vec<u8>>,
    /// Datagrams the LNS sent to this LAC.
    received: Vec<Vec<u8>>,
}

impl Star {
    fn new(lns: L2tpConfig, lacs: Vec<(&str, L2tpConfig)>) -> Self {
        Star {
            now: Instant::now(),
            lns: Endpoint::new(lns, 0x1d5),
            lns_addr: "192.0.2.2:1701".parse().unwrap(),
            lns_events: Vec::new(),
            lacs: lacs
                .into_iter()
                .enumerate()
                .map(|(i, (addr, config))| StarLac {
                    addr: addr.parse().unwrap(),
                    endpoint: Endpoint::new(config, 0x1ac + i as u64),
                    events: Vec::new(),
                    sent: Vec::new(),
                    received: Vec::new(),
                })
                .collect(),
        }
    }

    /// Deliver datagrams until nobody has anything left to send.
    fn exchange(&mut self) {
        loop {
            let mut moved = false;
            for lac in &mut self.lacs {
                while let Some(t) = lac.endpoint.poll_transmit() {
                    assert_eq!(t.remote, self.lns_addr);
                    let _ = self.lns.handle_datagram(self.now, lac.addr, &t.payload);
                    lac.sent.push(t.payload);
                    moved = true;
                }
                lac.events
                    .extend(std::iter::from_fn(|| lac.endpoint.poll_event()));
            }
            while let Some(t) = self.lns.poll_transmit() {
                let lac = self.lacs.iter_mut().find(|l| l.addr == t.remote).unwrap();
                let _ = lac
                    .endpoint
                    .handle_datagram(self.now, self.lns_addr, &t.payload);
                lac.received.push(t.payload);
                moved = true;
            }
            let lns = &mut self.lns;
            self.lns_events
                .extend(std::iter::from_fn(|| lns.poll_event()));
            if !moved {
                return;
            }
        }
    }

    fn run_for(&mut self, span: Duration) {
        let end = self.now + span;
        loop {
            self.exchange();
            let next = self
                .lacs
                .iter_mut()
                .filter_map(|l| l.endpoint.poll_timeout())
                .chain(self.lns.poll_timeout())
                .min();
            match next {
                Some(at) if at <= end => {
                    self.now = self.now.max(at);
                    for lac in &mut self.lacs {
                        lac.endpoint.handle_timeout(self.now);
                    }
                    self.lns.handle_timeout(self.now);
                }
                _ => break,
            }
        }
        self.now = end;
    }

    /// Every LAC opens a tunnel; a few seconds pass.
    fn connect_all(&mut self) -> Vec<u16> {
        let (now, lns_addr) = (self.now, self.lns_addr);
        let tunnels = self
            .lacs
            .iter_mut()
            .map(|l| l.endpoint.connect(now, lns_addr).unwrap())
            .collect();
        self.run_for(Duration::from_secs(5));
        tunnels
    }

    /// Whether LAC `i`'s tunnel came up on both ends.
    fn up(&self, i: usize) -> bool {
        let lac = &self.lacs[i];
        lac.events
            .iter()
            .any(|e| matches!(e, Event::TunnelUp { .. }))
            && self
                .lns_events
                .iter()
                .any(|e| matches!(e, Event::TunnelUp { remote, .. } if *remote == lac.addr))
    }

    /// The StopCCN result that ended LAC `i`'s tunnel, by either end.
    fn stopped_with(&self, i: usize) -> Option<u16> {
        self.lacs[i].events.iter().find_map(|e| match e {
            Event::TunnelDown {
                reason: TunnelDownReason::LocalStop(rc) | TunnelDownReason::PeerStop(rc),
                ..
            } => Some(rc.result),
            _ => None,
        })
    }

    /// The first message of `message_type` in `datagrams`, read with `secret`.
    fn find(
        datagrams: &[Vec<u8>],
        secret: Option<&[u8]>,
        message_type: MessageType,
    ) -> Option<ControlMessage> {
        datagrams
            .iter()
            .filter_map(|d| support::decode(d, secret).1)
            .find(|m| m.message_type == message_type)
    }
}

fn prefix(text: &str) -> IpPrefix {
    text.parse().unwrap()
}

fn lac_with_secret(secret: &[u8]) -> L2tpConfig {
    let mut lac = lac_config();
    lac.secret = Some(secret.to_vec());
    lac
}

/// An LNS that knows LAC alpha (192.0.2.1) and the beta network
/// (198.51.100.0/24), and has no secret for anyone else.
fn two_peer_lns() -> L2tpConfig {
    let mut lns = lns_config();
    lns.peer_secrets = PeerSecrets::new()
        .with(prefix("192.0.2.1"), &b"alpha"[..])
        .with(prefix("198.51.100.0/24"), &b"beta"[..]);
    lns
}

#[test]
fn two_lacs_each_authenticate_with_their_own_secret() {
    // LAC alpha picks its secret for the LNS from its own peer table (the
    // LAC side of the same lookup); beta has one secret for everyone.
    let mut alpha = lac_config();
    alpha.peer_secrets = PeerSecrets::new().with(prefix("192.0.2.0/24"), &b"alpha"[..]);
    let mut star = Star::new(
        two_peer_lns(),
        vec![
            ("192.0.2.1:1701", alpha),
            ("198.51.100.7:1701", lac_with_secret(b"beta")),
        ],
    );
    star.connect_all();
    assert!(star.up(0) && star.up(1), "{:?}", star.lns_events);
    assert_eq!(star.lns.stats().auth_failures, 0);
    assert_eq!(star.lns.stats().tunnels_established, 2);
    // Both ends were challenged, and each answered with its own secret.
    for (i, secret) in [(0, &b"alpha"[..]), (1, &b"beta"[..])] {
        let lac = &star.lacs[i];
        let sccrq = Star::find(&lac.sent, Some(secret), MessageType::Sccrq).unwrap();
        let sccrp = Star::find(&lac.received, Some(secret), MessageType::Sccrp).unwrap();
        let scccn = Star::find(&lac.sent, Some(secret), MessageType::Scccn).unwrap();
        assert_eq!(
            sccrp.challenge_response(),
            Some(&challenge_response(
                MessageType::Sccrp,
                secret,
                sccrq.challenge().unwrap()
            ))
        );
        assert_eq!(
            scccn.challenge_response(),
            Some(&challenge_response(
                MessageType::Scccn,
                secret,
                sccrp.challenge().unwrap()
            ))
        );
    }
    assert_eq!(
        star.lns.secret_for("192.0.2.1".parse().unwrap()),
        Some(&b"alpha"[..])
    );
    assert_eq!(star.lns.secret_for("192.0.2.3".parse().unwrap()), None);
}

#[test]
fn a_lac_with_the_other_peers_secret_is_refused() {
    let mut star = Star::new(
        two_peer_lns(),
        vec![
            ("192.0.2.1:1701", lac_with_secret(b"alpha")),
            // In the beta network, but holding alpha's secret.
            ("198.51.100.7:1701", lac_with_secret(b"alpha")),
        ],
    );
    star.connect_all();
    assert!(star.up(0));
    assert!(!star.up(1));
    // The LNS answered the impostor's challenge with beta's secret; the LAC
    // saw the wrong answer and stopped with result 4.
    assert_eq!(star.stopped_with(1), Some(stopccn_result::NOT_AUTHORIZED));
    assert_eq!(star.lacs[1].endpoint.stats().auth_failures, 1);
    // The LNS tunnel of that LAC went down on the LAC's StopCCN.
    assert!(star.lns_events.iter().any(|e| matches!(
        e,
        Event::TunnelDown { reason: TunnelDownReason::PeerStop(rc), .. }
            if rc.result == stopccn_result::NOT_AUTHORIZED
    )));
    assert_eq!(star.lns.stats().tunnels_established, 1);
}

/// A LAC that does not challenge the LNS (many do not) but answers the
/// LNS's challenge with another peer's secret, or not at all: the LNS
/// itself refuses it with StopCCN result 4 and counts the failure.
#[test]
fn lns_refuses_a_challenge_response_made_with_another_peers_secret() {
    let mut lns = Endpoint::new(two_peer_lns(), 21);
    let now = Instant::now();
    let sccrq = |peer_tunnel| {
        ControlMessage::new(MessageType::Sccrq)
            .with(Avp::ProtocolVersion {
                version: 1,
                revision: 0,
            })
            .with(Avp::HostName(b"impostor".to_vec()))
            .with(Avp::FramingCapabilities(3))
            .with(Avp::AssignedTunnelId(peer_tunnel))
    };
    for (n, (addr, response)) in [
        ("198.51.100.7:1701", Some(&b"alpha"[..])),
        ("198.51.100.8:1701", None),
    ]
    .into_iter()
    .enumerate()
    {
        let lac: SocketAddr = addr.parse().unwrap();
        let peer_tunnel = 40 + n as u16;
        lns.handle_datagram(
            now,
            lac,
            &support::control_datagram(0, 0, 0, 0, &sccrq(peer_tunnel)),
        )
        .unwrap();
        let sccrp = support::decode(&lns.poll_transmit().unwrap().payload, Some(b"beta"))
            .1
            .unwrap();
        let ours = sccrp.assigned_tunnel_id().unwrap();
        let mut scccn = ControlMessage::new(MessageType::Scccn);
        if let Some(secret) = response {
            scccn.avps.push(Avp::ChallengeResponse(challenge_response(
                MessageType::Scccn,
                secret,
                sccrp.challenge().unwrap(),
            )));
        }
        lns.handle_datagram(now, lac, &support::control_datagram(ours, 0, 1, 1, &scccn))
            .unwrap();
        let stop = std::iter::from_fn(|| lns.poll_transmit())
            .find_map(|t| support::decode(&t.payload, Some(b"beta")).1)
            .unwrap();
        assert_eq!(stop.message_type, MessageType::StopCcn);
        assert_eq!(
            stop.result_code().unwrap().result,
            stopccn_result::NOT_AUTHORIZED
        );
        assert_eq!(lns.stats().auth_failures, n as u64 + 1);
    }
    assert_eq!(lns.stats().tunnels_established, 0);
    assert!(!std::iter::from_fn(|| lns.poll_event()).any(|e| matches!(e, Event::TunnelUp { .. })));
}

#[test]
fn uncovered_lac_without_a_default_secret_is_not_authenticated() {
    let mut star = Star::new(
        two_peer_lns(),
        vec![
            ("203.0.113.9:1701", lac_config()),
            // Covered: the same LAC without a secret cannot get in there.
            ("198.51.100.9:1701", lac_config()),
        ],
    );
    star.connect_all();
    assert!(star.up(0));
    let sccrp = Star::find(&star.lacs[0].received, None, MessageType::Sccrp).unwrap();
    assert_eq!(sccrp.challenge(), None, "the LNS did not challenge");
    assert!(!star.up(1));
    assert_eq!(star.stopped_with(1), Some(stopccn_result::NOT_AUTHORIZED));
    assert_eq!(star.lns.stats().tunnels_established, 1);
}

#[test]
fn longest_prefix_wins_over_a_shorter_one_and_the_default() {
    let mut lns = lns_config();
    lns.secret = Some(b"default".to_vec());
    lns.peer_secrets = PeerSecrets::new()
        .with(prefix("192.0.2.0/24"), &b"net"[..])
        .with(prefix("192.0.2.7"), &b"host"[..])
        .with(prefix("2001:db8::/32"), &b"v6"[..]);
    let lacs = vec![
        ("192.0.2.7:1701", lac_with_secret(b"host")),
        ("192.0.2.8:1701", lac_with_secret(b"net")),
        ("203.0.113.1:1701", lac_with_secret(b"default")),
        ("[2001:db8::7]:1701", lac_with_secret(b"v6")),
        // An IPv4 LAC seen through an IPv6 socket is still 192.0.2.7.
        ("[::ffff:192.0.2.7]:1701", lac_with_secret(b"host")),
        // Holding the shorter prefix's secret, or the default, is not enough.
        ("192.0.2.7:1702", lac_with_secret(b"net")),
        ("192.0.2.8:1702", lac_with_secret(b"default")),
        ("[2001:db8::7]:1702", lac_with_secret(b"default")),
    ];
    let mut star = Star::new(lns, lacs);
    star.connect_all();
    let up: Vec<bool> = (0..star.lacs.len()).map(|i| star.up(i)).collect();
    assert_eq!(
        up,
        [true, true, true, true, true, false, false, false],
        "{:?}",
        star.lns_events
    );
    for i in 5..8 {
        assert_eq!(star.stopped_with(i), Some(stopccn_result::NOT_AUTHORIZED));
        assert_eq!(star.lacs[i].endpoint.stats().auth_failures, 1);
    }
    assert_eq!(star.lns.stats().tunnels_established, 5);
}

#[test]
fn hidden_avps_use_each_peers_secret() {
    let mut lns = two_peer_lns();
    lns.secret = Some(b"default".to_vec());
    lns.hidden_avps = AvpTypeSet(u64::MAX);
    let hiding = |secret: &[u8], host: &[u8]| {
        let mut lac = lac_with_secret(secret);
        lac.host_name = host.to_vec();
        // Everything the emitter may hide, SCCRQ's Host Name included: the
        // LNS must read the SCCRQ with this peer's secret.
        lac.hidden_avps = AvpTypeSet(u64::MAX);
        lac
    };
    let mut star = Star::new(
        lns,
        vec![
            ("192.0.2.1:1701", hiding(b"alpha", b"lac-alpha")),
            ("198.51.100.7:1701", hiding(b"beta", b"lac-beta")),
            ("203.0.113.1:1701", hiding(b"default", b"lac-other")),
        ],
    );
    let tunnels = star.connect_all();
    let secrets: [&[u8]; 3] = [b"alpha", b"beta", b"default"];
    for i in 0..secrets.len() {
        assert!(star.up(i), "LAC {i}: {:?}", star.lacs[i].events);
        let host = star.lacs[i].endpoint.config().host_name.clone();
        // The LNS recovered the hidden Host Name of each LAC.
        assert!(star.lns_events.iter().any(|e| matches!(
            e,
            Event::TunnelUp { remote, host_name, .. }
                if *remote == star.lacs[i].addr && *host_name == host
        )));
        let sccrq = &star.lacs[i].sent[0];
        assert!(!sccrq.windows(host.len()).any(|w| w == host));
        // Another peer's secret does not read this LAC's SCCRQ.
        let other = secrets[(i + 1) % 3];
        let body = Packet::new_checked(&sccrq[..]).unwrap().payload().to_vec();
        let wrong = ControlMessage::parse(&body, Some(other));
        assert!(wrong.is_err() || wrong.unwrap().host_name() != Some(&host[..]));
        assert_eq!(
            ControlMessage::parse(&body, Some(secrets[i]))
                .unwrap()
                .host_name(),
            Some(&host[..])
        );
        star.lacs[i]
            .endpoint
            .open_session(star.now, tunnels[i], subscriber_call(i as u32))
            .unwrap();
    }
    star.run_for(Duration::from_secs(5));
    let calls: Vec<Vec<u8>> = star
        .lns_events
        .iter()
        .filter_map(|e| match e {
            Event::SessionUp { call, .. } => call.proxy_auth.name.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 3);
    for (i, secret) in secrets.into_iter().enumerate() {
        let name = format!("user{i}@isp").into_bytes();
        assert!(calls.contains(&name));
        let iccn = star.lacs[i]
            .sent
            .iter()
            .find(|d| {
                support::decode(d, Some(secret))
                    .1
                    .is_some_and(|m| m.message_type == MessageType::Iccn)
            })
            .unwrap();
        assert!(!iccn.windows(name.len()).any(|w| w == &name[..]));
    }
    assert_eq!(star.lns.stats().auth_failures, 0);
    assert_eq!(star.lns.stats().malformed_messages, 0);
}
