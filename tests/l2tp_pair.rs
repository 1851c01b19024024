//! LAC ⇄ LNS scenarios of RFC 2661 §5–§6 over a simulated link.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use lns::proto::l2tp::{
    CallInfo, CommandError, Event, L2tpConfig, Limits, ProxyAuth, ProxyLcp, SessionDownReason,
    SessionState, ShardSpec, TunnelDownReason, TunnelState,
};
use lns::sim::{lac_config, lns_config, Link, Pair};
use lns::wire::l2tp::avps::{cdn_result, error_code, stopccn_result, CallErrors};
use lns::wire::l2tp::{MessageType, ResultCode};
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
