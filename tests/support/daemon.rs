//! The daemon under test, in a private network namespace: its settings,
//! a control plane, and the library's LAC on a real socket (shared by the
//! end-to-end tests and the throughput bench).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, Ipv6Addr, UdpSocket};
use std::time::{Duration, Instant};

use lns::config::IoMode;
use lns::io::daemon::RuntimeSettings;
use lns::io::netns::ipv4_checksum;
use lns::proto::aaa::{users, LocalAaa, Pool, PrefixPool};
use lns::proto::l2tp::{Event, L2tpConfig, Role, TunnelDownReason};
use lns::proto::node::{NoAaa, Node, NodeEvent, SessionKey};
use lns::proto::ppp::link::LinkConfig;
use lns::proto::ra::RaConfig;
use lns::wire::ip::checksum;
use lns::wire::l2tp::Packet;
use lns::wire::ppp::lcp::AuthMethod;

pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
pub const SESSIONS: usize = 6;
/// The daemon's IPv6 address on its TUN device.
pub const GATEWAY6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1);
/// The subscribers' /64s come from this /48.
pub const PREFIX_POOL6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0);

pub fn lns_node(shards: u16) -> Node<LocalAaa> {
    let mut l2tp = L2tpConfig::new(Role::Lns);
    l2tp.spread = shards;
    let mut link = LinkConfig::server(GATEWAY, [Some(Ipv4Addr::new(192, 0, 2, 53)), None]);
    link.lcp.auth = vec![AuthMethod::ChapMd5, AuthMethod::Pap];
    link.ipv6cp = false;
    let aaa = LocalAaa::new(users::parse("*@isp.example password=secret\n").unwrap());
    let pool = Pool::new(
        "subscribers",
        vec!["100.64.1.0/24".parse().unwrap()],
        Duration::from_secs(60),
    )
    .unwrap();
    Node::new(l2tp, link, aaa, vec![pool], 11)
}

/// [`lns_node`] with IPv6CP on and a /64 for every session out of
/// [`PREFIX_POOL6`]/48.
pub fn lns_node_with_ipv6(shards: u16) -> Node<LocalAaa> {
    let mut node = lns_node(shards);
    node.link_config_mut().ipv6cp = true;
    let prefixes =
        PrefixPool::new("subscribers", PREFIX_POOL6, 48, Duration::from_secs(60)).unwrap();
    node.set_ipv6(vec![prefixes], RaConfig::default());
    node
}

pub fn settings(shards: u16, io: IoMode) -> RuntimeSettings {
    RuntimeSettings {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        shards,
        pin: false,
        tun_name: "lnse2e0".into(),
        tun_queue_len: 4096,
        tun_mtu: 1456,
        gateway: GATEWAY,
        routes: vec![(Ipv4Addr::new(100, 64, 1, 0), 24)],
        ipv6_gateway: Some(GATEWAY6),
        ipv6_routes: vec![(PREFIX_POOL6, 48)],
        mss_clamp: Some(lns::dataplane::MssClamp {
            ipv4: 1416,
            ipv6: 1396,
        }),
        mss_clamp_v6: Some(lns::dataplane::MssClamp {
            ipv4: 1396,
            ipv6: 1376,
        }),
        socket_buffer: 1 << 20,
        management: Some(manage_path(io)),
        io,
        batching: Default::default(),
        metrics: None,
    }
}

/// One socket per test: the two paths' tests run side by side.
pub fn manage_path(io: IoMode) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("lns-e2e-{}-{io:?}/lns.sock", std::process::id()))
}

/// The library's LAC on a real socket, driven in real time.
pub struct Lac {
    pub node: Node<NoAaa>,
    pub socket: UdpSocket,
    pub events: Vec<NodeEvent>,
    /// Ns of every sequenced data message received, per (tunnel, session).
    pub data_ns: std::collections::HashMap<(u16, u16), Vec<u16>>,
}

impl Lac {
    pub fn new() -> Lac {
        Lac::bind("127.0.0.1:0")
    }

    /// A LAC on a socket bound to `addr` (IPv4 or IPv6).
    pub fn bind(addr: &str) -> Lac {
        Lac::with_socket(UdpSocket::bind(addr).unwrap(), L2tpConfig::new(Role::Lac))
    }

    /// A LAC with L2TP settings `l2tp` (a tunnel secret, say) on a socket
    /// the caller bound (in another network namespace, say).
    pub fn with_socket(socket: UdpSocket, l2tp: L2tpConfig) -> Lac {
        socket
            .set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let node = Node::new(
            l2tp,
            LinkConfig::client(b"", b""),
            NoAaa::default(),
            vec![],
            12,
        );
        Lac {
            node,
            socket,
            events: Vec::new(),
            data_ns: Default::default(),
        }
    }

    /// Exchange datagrams and run timers until `done` or `limit`.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Lac) -> bool) -> bool {
        let end = Instant::now() + limit;
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            let now = Instant::now();
            while let Some(t) = self.node.poll_transmit() {
                self.socket.send_to(&t.payload, t.remote).unwrap();
            }
            while let Some(e) = self.node.poll_event() {
                self.events.push(e);
            }
            if done(self) {
                return true;
            }
            if let Ok((n, from)) = self.socket.recv_from(&mut buf) {
                if let Ok(packet) = Packet::new_checked(&buf[..n]) {
                    if let (false, Some(ns)) = (packet.is_control(), packet.ns()) {
                        let key = (packet.tunnel_id(), packet.session_id());
                        self.data_ns.entry(key).or_default().push(ns);
                    }
                }
                self.node.handle_datagram(now, from, &buf[..n]);
            }
            if self.node.poll_timeout().is_some_and(|at| at <= now) {
                self.node.handle_timeout(now);
            }
        }
        done(self)
    }

    /// Open a tunnel to the LNS at `lns` and wait (≤ 10 s) until it is up.
    pub fn open_tunnel(&mut self, lns: std::net::SocketAddr) -> u16 {
        let tunnel = self.node.endpoint().connect(Instant::now(), lns).unwrap();
        assert!(self.run_until(Duration::from_secs(10), |l| l
            .events
            .iter()
            .any(|e| matches!(e, NodeEvent::L2tp(Event::TunnelUp { .. })))));
        tunnel
    }

    /// The LNS closed the tunnel (StopCCN).
    pub fn stopped_by_peer(&self) -> bool {
        self.events.iter().any(|e| {
            matches!(
                e,
                NodeEvent::L2tp(Event::TunnelDown {
                    reason: TunnelDownReason::PeerStop(_),
                    ..
                })
            )
        })
    }

    /// Router Advertisements received on `key`.
    pub fn adverts(&self, key: SessionKey) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, NodeEvent::RouterAdvert { key: k, .. } if *k == key))
            .count()
    }

    pub fn ups(&self) -> Vec<(SessionKey, Ipv4Addr)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                NodeEvent::SessionUp { key, up } => Some((*key, up.ipv4?)),
                _ => None,
            })
            .collect()
    }
}

/// Every session sends `up` from its address, port 7, to `server` (a UDP
/// socket on the gateway, port 5000) and the server answers each with
/// `down`: both must cross the TUN, upstream from the subscriber's own
/// address, downstream on the right session.
pub fn ipv4_both_ways(
    lac: &mut Lac,
    ups: &[(SessionKey, Ipv4Addr)],
    server: &UdpSocket,
    up: &[u8],
    down: &[u8],
) {
    ipv4_both_ways_to(lac, ups, server, GATEWAY, up, down);
}

/// [`ipv4_both_ways`] with the server at `server_addr` (port 5000).
pub fn ipv4_both_ways_to(
    lac: &mut Lac,
    ups: &[(SessionKey, Ipv4Addr)],
    server: &UdpSocket,
    server_addr: Ipv4Addr,
    up: &[u8],
    down: &[u8],
) {
    use lns::wire::ppp::frame::protocol;
    use std::net::SocketAddr;
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for (key, ip) in ups {
        let packet = udp_packet(*ip, server_addr, 7, 5000, up);
        assert!(lac.node.send_data(*key, protocol::IPV4, &packet));
    }
    lac.run_until(Duration::from_millis(50), |_| false);
    let mut buf = [0u8; 2048];
    let mut senders = Vec::new();
    for _ in ups {
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], up);
        senders.push(from);
    }
    senders.sort();
    let mut expected: Vec<SocketAddr> = ups
        .iter()
        .map(|(_, ip)| SocketAddr::from((*ip, 7)))
        .collect();
    expected.sort();
    assert_eq!(senders, expected);

    for (_, ip) in ups {
        server.send_to(down, (*ip, 7)).unwrap();
    }
    let arrived = |lac: &Lac, key: SessionKey| {
        lac.events.iter().find_map(|e| match e {
            NodeEvent::Data {
                key: k,
                protocol: p,
                packet,
            } if *k == key && *p == protocol::IPV4 && packet.ends_with(down) => {
                Some(packet.clone())
            }
            _ => None,
        })
    };
    assert!(lac.run_until(Duration::from_secs(5), |l| ups
        .iter()
        .all(|(key, _)| arrived(l, *key).is_some())));
    for (key, ip) in ups {
        let packet = arrived(lac, *key).unwrap();
        assert_eq!(&packet[16..20], &ip.octets(), "to the session's address");
    }
}

/// An IPv4/UDP packet with a valid header checksum (UDP checksum 0).
pub fn udp_packet(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, body: &[u8]) -> Vec<u8> {
    let total = u16::try_from(28 + body.len()).unwrap();
    let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let sum = ipv4_checksum(&p);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&(total - 20).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(body);
    p
}

/// An IPv6/UDP packet with a valid UDP checksum (mandatory over IPv6,
/// RFC 8200 §8.1).
pub fn udp6_packet(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16, body: &[u8]) -> Vec<u8> {
    let udp_len = u16::try_from(8 + body.len()).unwrap();
    let mut udp = Vec::new();
    udp.extend_from_slice(&sport.to_be_bytes());
    udp.extend_from_slice(&dport.to_be_bytes());
    udp.extend_from_slice(&udp_len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(body);
    let mut sum = checksum::add(0, &src.octets());
    sum = checksum::add(sum, &dst.octets());
    sum += u64::from(udp_len) + 17;
    sum = checksum::add(sum, &udp);
    let mut value = checksum::finish(sum);
    if value == 0 {
        value = 0xffff;
    }
    udp[6..8].copy_from_slice(&value.to_be_bytes());
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&udp_len.to_be_bytes());
    p.extend_from_slice(&[17, 64]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&udp);
    p
}
