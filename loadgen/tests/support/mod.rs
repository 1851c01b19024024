//! Our daemon as the LNS under test, in the private network namespace the
//! calling test made: a pool big enough for thousands of subscribers and
//! the users loadgen dials by default (`user{n}@loadgen.example`,
//! password `loadgen`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use lns::config::IoMode;
use lns::io::daemon::{self, Running, RuntimeSettings};
use lns::proto::aaa::{users, LocalAaa, Pool, PrefixPool};
use lns::proto::l2tp::{L2tpConfig, Role};
use lns::proto::node::Node;
use lns::proto::ppp::link::LinkConfig;
use lns::proto::ra::RaConfig;
use lns::wire::ppp::lcp::AuthMethod;
use loadgen::socket_io::{self, IoChoice};

pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
/// The daemon's IPv6 address on its TUN (with [`Lns::ipv6_sessions`]).
pub const GATEWAY6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1);
/// The subscribers' /64s come from this /40 (65,536 of them).
pub const PREFIX_POOL6: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0), 40);
/// 65,534 subscriber addresses.
pub const POOL: (Ipv4Addr, u8) = (Ipv4Addr::new(100, 65, 0, 0), 16);

/// A reflector with `workers` threads on the daemon's IPv4 gateway
/// address (on its TUN once the daemon runs): its handle and the address
/// loadgen's probes go to.
pub fn gateway_reflector(workers: usize) -> (loadgen::reflect::Running, SocketAddrV4) {
    let reflector = loadgen::reflect::Reflector::bind(SocketAddr::from((GATEWAY, 0)), workers)
        .unwrap()
        .spawn()
        .unwrap();
    let SocketAddr::V4(addr) = reflector.local_addr() else {
        panic!("the reflector is on IPv4");
    };
    (reflector, addr)
}

/// What the LNS is configured with.
#[derive(Default)]
pub struct Lns {
    /// Extra lines for the users file (before the realm wildcard).
    pub users: String,
    /// Tunnel secret.
    pub secret: Option<&'static [u8]>,
    /// Listen on `[::1]` instead of `127.0.0.1`.
    pub ipv6: bool,
    /// IPv6CP and a /64 for every session (Router Advertisements), the
    /// TUN with [`GATEWAY6`].
    pub ipv6_sessions: bool,
    /// Serve Prometheus metrics on a loopback port (`Running::metrics`).
    pub metrics: bool,
}

impl Lns {
    /// Start the daemon on a loopback port with two shards.
    pub fn start(&self) -> (Running, SocketAddr) {
        self.start_with_management(None)
    }

    /// The same with a management socket at `management`.
    pub fn start_with_management(
        &self,
        management: Option<std::path::PathBuf>,
    ) -> (Running, SocketAddr) {
        lns::io::netns::link_up("lo").unwrap();
        let shards = 2;
        let mut l2tp = L2tpConfig::new(Role::Lns);
        l2tp.spread = shards;
        l2tp.secret = self.secret.map(<[u8]>::to_vec);
        let mut link = LinkConfig::server(GATEWAY, [None, None]);
        link.lcp.auth = vec![AuthMethod::ChapMd5, AuthMethod::Pap];
        link.ipv6cp = self.ipv6_sessions;
        let users_file = format!("{}*@loadgen.example password=loadgen\n", self.users);
        let aaa = LocalAaa::new(users::parse(&users_file).unwrap());
        let network = format!("{}/{}", POOL.0, POOL.1);
        let pool = Pool::new(
            "subscribers",
            vec![network.parse().unwrap()],
            Duration::from_secs(1),
        )
        .unwrap();
        let mut node = Node::new(l2tp, link, aaa, vec![pool], 7);
        if self.ipv6_sessions {
            let prefixes = PrefixPool::new(
                "subscribers6",
                PREFIX_POOL6.0,
                PREFIX_POOL6.1,
                Duration::from_secs(1),
            )
            .unwrap();
            node.set_ipv6(vec![prefixes], RaConfig::default());
        }
        let settings = RuntimeSettings {
            listen: vec![if self.ipv6 {
                "[::1]:0".parse().unwrap()
            } else {
                "127.0.0.1:0".parse().unwrap()
            }],
            shards,
            pin: false,
            tun_name: "lnslg0".into(),
            tun_queue_len: 4096,
            tun_mtu: 1456,
            gateway: GATEWAY,
            routes: vec![POOL],
            ipv6_gateway: self.ipv6_sessions.then_some(GATEWAY6),
            ipv6_routes: if self.ipv6_sessions {
                vec![PREFIX_POOL6]
            } else {
                vec![]
            },
            mss_clamp: None,
            mss_clamp_v6: None,
            socket_buffer: 4 << 20,
            management,
            io: IoMode::Auto,
            batching: Default::default(),
            metrics: self.metrics.then(|| "127.0.0.1:0".parse().unwrap()),
        };
        let running = daemon::start(&settings, node, None).unwrap();
        let addr = running.bound[0];
        (running, addr)
    }
}

/// Say loudly that a test could not run here.
pub fn skipped(name: &str) {
    eprintln!("SKIPPED {name}: needs root with network namespaces and /dev/net/tun");
}

/// A management socket path of this test's own.
pub fn management(test: &str) -> std::path::PathBuf {
    std::env::temp_dir()
        .join(format!("loadgen-{test}-{}", std::process::id()))
        .join("lns.sock")
}

/// A counter from the daemon's `show stats`.
pub fn stat(socket: &std::path::Path, name: &str) -> u64 {
    let stats = lns::io::manage::request(socket, "show stats").unwrap();
    stats
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {stats}"))
}

/// The I/O paths a test runs loadgen on: both, or only the fallback
/// (saying so loudly) where io_uring cannot run here.
pub fn io_modes(name: &str) -> Vec<IoChoice> {
    match socket_io::probe() {
        Ok(()) => vec![IoChoice::Uring, IoChoice::Fallback],
        Err(reason) => {
            eprintln!("SKIPPED {name} on io_uring: {reason}");
            vec![IoChoice::Fallback]
        }
    }
}

/// The report's name of the path `mode` forces.
pub fn path_name(mode: IoChoice) -> &'static str {
    match mode {
        IoChoice::Uring => "io_uring",
        IoChoice::Fallback | IoChoice::Auto => "fallback",
    }
}

/// A report's setup latency is there, positive, and its percentiles are
/// in order.
pub fn check_latency(report: &loadgen::Report) -> &loadgen::report::Latency {
    let l = report
        .setup_latency_ms
        .as_ref()
        .expect("latency percentiles");
    assert!(l.p50 > 0.0, "{l:?}");
    assert!(
        l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p99_9 && l.p99_9 <= l.max,
        "{l:?}"
    );
    l
}
