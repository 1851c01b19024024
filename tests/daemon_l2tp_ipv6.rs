//! L2TP over IPv6 transport: the daemon listening on `[::1]`, the library's
//! LAC on an IPv6 socket. Tunnels, PPP sessions and IPv4 subscriber data
//! both ways through the TUN, the management view, and a graceful stop,
//! in a private network namespace (needs root and TUN; says so loudly
//! when it has to skip).

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use lns::config::IoMode;
use lns::io::netns::{in_private_netns, link_up};
use lns::io::{daemon, manage};
use lns::proto::l2tp::CallInfo;
use lns::proto::node::{NodeEvent, Subscriber};

mod support;
use support::daemon::*;

const CALLS: usize = 3;

#[test]
fn tunnels_sessions_and_data_over_ipv6_transport() {
    let ran = in_private_netns(|| {
        link_up("lo").unwrap();
        let mut settings = settings(2, IoMode::Auto);
        settings.listen = vec!["[::1]:0".parse().unwrap()];
        let socket_path = std::env::temp_dir()
            .join(format!("lns-e2e-v6-{}", std::process::id()))
            .join("lns.sock");
        settings.management = Some(socket_path.clone());
        // Links of IPv6 LACs ask for 20 bytes less MRU (as `lns run` sets
        // up from `ppp.mru = "auto"`).
        let mut node = lns_node(2);
        let mut over_v6 = node.link_config_mut().clone();
        over_v6.lcp.mru = Some(1436);
        node.set_ipv6_transport_link_config(over_v6);
        let running = daemon::start(&settings, node, None).unwrap();
        let lns_addr: SocketAddr = running.bound[0];
        assert!(lns_addr.is_ipv6(), "{lns_addr}");

        let mut lac = Lac::bind("[::1]:0");
        let tunnel = lac.open_tunnel(lns_addr);
        for n in 0..CALLS {
            let subscriber = Subscriber {
                user: format!("v6lac{n}@isp.example").into_bytes(),
                password: b"secret".to_vec(),
                proxy: n == 1,
            };
            // One sequenced call: its Ns are numbered by an IPv6 shard.
            let call = CallInfo {
                sequencing_required: n == 2,
                ..CallInfo::default()
            };
            lac.node
                .dial(Instant::now(), tunnel, call, subscriber)
                .unwrap();
        }
        assert!(
            lac.run_until(Duration::from_secs(20), |l| l.ups().len() == CALLS),
            "sessions up: {:?}",
            lac.ups()
        );
        let ups = lac.ups();
        // The LNS negotiated LCP itself on the two calls without proxy
        // LCP (on the proxied one, the LAC's own negotiation stands).
        let mrus: Vec<(bool, u16)> = lac
            .events
            .iter()
            .filter_map(|e| match e {
                NodeEvent::SessionUp { up, .. } => Some((up.proxied, up.lcp.peer_mru)),
                _ => None,
            })
            .collect();
        let negotiated: Vec<u16> = mrus.iter().filter(|(p, _)| !p).map(|m| m.1).collect();
        assert_eq!(negotiated, [1436, 1436], "{mrus:?}");

        let server = UdpSocket::bind((GATEWAY, 5000)).unwrap();
        ipv4_both_ways(&mut lac, &ups, &server, b"up over v6", b"down over v6");
        let sequenced: Vec<_> = lac.data_ns.values().collect();
        assert_eq!(sequenced.len(), 1, "{:?}", lac.data_ns);
        let expected: Vec<u16> = (0..sequenced[0].len() as u16).collect();
        assert_eq!(sequenced[0], &expected);

        // The management view names the LAC by its IPv6 address.
        let tunnels = manage::request(&socket_path, "show tunnels").unwrap();
        assert!(tunnels.contains("::1"), "{tunnels}");
        let stats = manage::request(&socket_path, "show stats").unwrap();
        assert!(
            stats.contains(&format!("sessions_online {CALLS}")),
            "{stats}"
        );

        running.stop();
        assert!(lac.run_until(Duration::from_secs(10), Lac::stopped_by_peer));
        let counters = running.wait();
        assert_eq!(counters.sessions_up, CALLS as u64);
    });
    if !ran {
        eprintln!(
            "\n*** SKIPPED tunnels_sessions_and_data_over_ipv6_transport: \
             needs root with network namespaces and /dev/net/tun ***\n"
        );
    }
}
