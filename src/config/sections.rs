//! The sections of the configuration file, one struct each, with the
//! embedded defaults. Every field is documented with its key, its default
//! and its meaning; `deploy/lns.toml` shows the same in file form.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::value::{self, IpPrefix, Mru, MssClamp, Secret, Shards, L2TP_PORT, METRICS_PORT};
use crate::proto::aaa::AddrRange;
use crate::proto::l2tp::reliable::ReliableConfig;
use crate::proto::l2tp::Limits;
use crate::wire::l2tp::avps::{cdn_result, stopccn_result};
use crate::wire::ppp::lcp::AuthMethod;

/// The whole configuration: what `lns run` starts from.
///
/// Every key has a default, so an empty file (or none at all, see
/// [`Config::default`]) is a complete configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[l2tp]`: the tunnel side.
    pub l2tp: L2tpSection,
    /// `[ppp]`: the subscriber sessions.
    pub ppp: PppSection,
    /// `[aaa]`: who may connect.
    pub aaa: AaaSection,
    /// `[[pool]]`: IPv4 address pools, tried in order when AAA names none.
    /// Default: one pool, [`DEMO_POOL_NAME`], over [`DEMO_POOL_RANGE`].
    /// Pools given in a file replace the default one.
    pub pool: Vec<PoolSection>,
    /// `[ipv6]`: the IPv6 gateway and Router Advertisements.
    pub ipv6: Ipv6Section,
    /// `[runtime]`: threads, I/O and admission.
    pub runtime: RuntimeSection,
    /// `[management]`: the local control socket.
    pub management: ManagementSection,
    /// `[metrics]`: the Prometheus endpoint.
    pub metrics: MetricsSection,
    /// `[log]`: logging.
    pub log: LogSection,
}

/// Name of the embedded demo pool.
pub const DEMO_POOL_NAME: &str = "demo";

/// Addresses of the embedded demo pool: the RFC 6598 shared address space
/// that ISPs use for subscribers, less the network address and the gateway.
pub const DEMO_POOL_RANGE: &str = "100.64.0.2-100.64.255.254";

/// The embedded gateway (our IPCP address), just below the demo pool.
pub const DEMO_GATEWAY: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);

/// The embedded demo pool's IPv6 prefix: unique-local space (RFC 4193),
/// one /64 per session out of a /48.
pub const DEMO_IPV6_PREFIX: &str = "fd00:64:1::/48";

/// The embedded IPv6 gateway address (given to the TUN device), outside
/// the demo prefix.
pub const DEMO_IPV6_GATEWAY: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x64, 0, 0, 0, 0, 0, 1);

impl Default for Config {
    fn default() -> Self {
        Config {
            l2tp: L2tpSection::default(),
            ppp: PppSection::default(),
            aaa: AaaSection::default(),
            pool: vec![PoolSection::demo()],
            ipv6: Ipv6Section::default(),
            runtime: RuntimeSection::default(),
            management: ManagementSection::default(),
            metrics: MetricsSection::default(),
            log: LogSection::default(),
        }
    }
}

/// Which AVPs are hidden (RFC 2661 §4.3) when a tunnel secret is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HiddenAvps {
    /// Nothing is hidden.
    Off,
    /// The AVPs that carry subscriber identity and credentials: proxy
    /// authentication name, challenge and response, calling and called
    /// number, sub-address.
    Sensitive,
    /// Every AVP the RFC allows to be hidden.
    All,
}

/// `[l2tp]`: the L2TP control plane (RFC 2661).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct L2tpSection {
    /// `listen`: UDP addresses to receive tunnels on; an address without a
    /// port gets 1701. Default `["0.0.0.0:1701", "[::]:1701"]`: every
    /// IPv4 and IPv6 address.
    #[serde(deserialize_with = "value::listen_addrs")]
    pub listen: Vec<SocketAddr>,
    /// `host_name`: our Host Name AVP, also our CHAP name towards
    /// subscribers. Default `"lns"`.
    pub host_name: String,
    /// `secret`: the tunnel secret for peers without a `[[l2tp.peer]]`
    /// entry. When a peer has a secret, its tunnels are authenticated both
    /// ways (§5.1.1) and may hide AVPs. Default: none (no authentication).
    pub secret: Option<Secret>,
    /// `[[l2tp.peer]]`: per-LAC secrets by source address or prefix; the
    /// longest matching prefix wins over `secret`. A tunnel takes its
    /// secret when it is set up (see [`L2tpSection::secret_for`]); a
    /// reload does not change it. Default: none.
    pub peer: Vec<PeerSecret>,
    /// `hidden_avps`: `"off"`, `"sensitive"` or `"all"`. Only tunnels with a
    /// secret hide anything. Default `"sensitive"`: subscriber names and
    /// credentials in proxy authentication never cross the wire in clear
    /// where hiding is possible.
    pub hidden_avps: HiddenAvps,
    /// `hello_interval`: send a HELLO after this long without hearing from
    /// the peer (§6.5). Default 60 s.
    #[serde(deserialize_with = "value::duration")]
    pub hello_interval: Duration,
    /// `retransmit_initial`: first retransmission timeout of a control
    /// message (§5.8). Default 1 s.
    #[serde(deserialize_with = "value::duration")]
    pub retransmit_initial: Duration,
    /// `retransmit_cap`: ceiling of the doubling timeout; the RFC requires
    /// at least 8 s. Default 8 s.
    #[serde(deserialize_with = "value::duration")]
    pub retransmit_cap: Duration,
    /// `max_retries`: retransmissions before the tunnel is declared dead.
    /// Default 5.
    pub max_retries: u32,
    /// `ack_delay`: how long an acknowledgement waits for a reply to carry
    /// it before a ZLB is sent. Default 100 ms.
    #[serde(deserialize_with = "value::duration")]
    pub ack_delay: Duration,
    /// `receive_window`: our Receive Window Size AVP. Default 64.
    pub receive_window: u16,
    /// `slow_start`: Appendix A slow start and congestion avoidance.
    /// Default on.
    pub slow_start: bool,
    /// `fast_retransmit_after`: resend early after this many repeated ZLB
    /// acks (0: never). Default 3.
    pub fast_retransmit_after: u32,
    /// `setup_timeout`: half-open tunnels and calls are cleared after this
    /// long. Default 30 s.
    #[serde(deserialize_with = "value::duration")]
    pub setup_timeout: Duration,
    /// `max_tunnels`: tunnels in any state; more are refused with StopCCN.
    /// Default 16384.
    pub max_tunnels: usize,
    /// `max_sessions_per_tunnel`: calls in one tunnel; more are refused with
    /// CDN. Default 65535.
    pub max_sessions_per_tunnel: usize,
    /// `max_half_open_tunnels`: tunnels still in setup. Default 1024.
    pub max_half_open_tunnels: usize,
    /// `max_half_open_sessions`: calls still in setup, over all tunnels.
    /// Default 65536.
    pub max_half_open_sessions: usize,
}

impl Default for L2tpSection {
    fn default() -> Self {
        let reliable = ReliableConfig::default();
        let limits = Limits::default();
        L2tpSection {
            listen: vec![
                SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), L2TP_PORT),
                SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), L2TP_PORT),
            ],
            host_name: "lns".into(),
            secret: None,
            peer: Vec::new(),
            hidden_avps: HiddenAvps::Sensitive,
            hello_interval: Duration::from_secs(60),
            retransmit_initial: reliable.retransmit_initial,
            retransmit_cap: reliable.retransmit_cap,
            max_retries: reliable.max_retries,
            ack_delay: reliable.ack_delay,
            receive_window: reliable.receive_window,
            slow_start: reliable.slow_start,
            fast_retransmit_after: reliable.fast_retransmit_after,
            setup_timeout: Duration::from_secs(30),
            max_tunnels: limits.max_tunnels,
            max_sessions_per_tunnel: limits.max_sessions_per_tunnel,
            max_half_open_tunnels: limits.max_half_open_tunnels,
            max_half_open_sessions: limits.max_half_open_sessions,
        }
    }
}

impl L2tpSection {
    /// The tunnel secret for a LAC at `peer`: the longest `[[l2tp.peer]]`
    /// prefix that covers it, else `secret`, else none.
    pub fn secret_for(&self, peer: IpAddr) -> Option<&Secret> {
        // An IPv4 LAC reaching an IPv6 socket shows up as ::ffff:a.b.c.d;
        // a prefix may be written that way too. Both match as IPv4.
        let peer = peer.to_canonical();
        self.peer
            .iter()
            .map(|p| (p.address.canonical(), p))
            .filter(|(prefix, _)| prefix.contains(peer))
            .max_by_key(|(prefix, _)| prefix.prefix_len())
            .map(|(_, p)| p)
            .map(|p| &p.secret)
            .or(self.secret.as_ref())
    }
}

/// `[[l2tp.peer]]`: the secret of one LAC or a network of LACs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSecret {
    /// `address`: the LAC's address or prefix (`"192.0.2.7"`,
    /// `"192.0.2.0/24"`, `"2001:db8::/48"`).
    pub address: IpPrefix,
    /// `secret`: the shared secret.
    pub secret: Secret,
}

/// `[ppp]`: PPP sessions (RFC 1661 and friends).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PppSection {
    /// `auth`: authentication methods demanded, most preferred first:
    /// `"chap-md5"`, `"mschapv2"`, `"pap"`; `[]` lets subscribers in
    /// without authentication. Default `["chap-md5", "pap"]`.
    #[serde(deserialize_with = "value::auth_methods")]
    pub auth: Vec<AuthMethod>,
    /// `mru`: the MRU we ask for, or `"auto"`: `path_mtu` less the outer IP,
    /// UDP, L2TP and PPP headers. Default `"auto"` (1456 over IPv4, 1436
    /// over IPv6 with the default path MTU).
    pub mru: Mru,
    /// `path_mtu`: the MTU of the path to the LACs, for `mru = "auto"`.
    /// Default 1500.
    pub path_mtu: u16,
    /// `min_peer_mru`: the smallest MRU a subscriber may ask for; lower
    /// requests are Nak'd up to it. Default 576.
    pub min_peer_mru: u16,
    /// `magic_number`: negotiate a Magic-Number to detect looped links
    /// (§6.4). Default on.
    pub magic_number: bool,
    /// `echo_interval`: LCP Echo-Request interval once the link is up, or
    /// `"off"`. Default 30 s.
    #[serde(deserialize_with = "value::duration_or_off")]
    pub echo_interval: Option<Duration>,
    /// `echo_failures`: unanswered Echo-Requests in a row before the link is
    /// declared dead. Default 5.
    pub echo_failures: u32,
    /// `restart_timer`: the RFC 1661 §4.6 Restart timer of LCP, IPCP and
    /// IPv6CP. Default 3 s.
    #[serde(deserialize_with = "value::duration")]
    pub restart_timer: Duration,
    /// `max_configure`: Configure-Requests without an answer before giving
    /// up (§4.6). Default 10.
    pub max_configure: u32,
    /// `max_terminate`: Terminate-Requests without an answer (§4.6).
    /// Default 2.
    pub max_terminate: u32,
    /// `max_failure`: Configure-Naks before Naks turn into Rejects (§4.6).
    /// Default 5.
    pub max_failure: u32,
    /// `auth_restart`: retransmission interval of CHAP Challenges. Default
    /// 3 s.
    #[serde(deserialize_with = "value::duration")]
    pub auth_restart: Duration,
    /// `auth_max_transmissions`: Challenges sent before authentication
    /// fails. Default 10.
    pub auth_max_transmissions: u32,
    /// `gateway`: our own IPCP address, the subscribers' next hop. It must
    /// not fall inside a pool. Default 100.64.0.1.
    pub gateway: Ipv4Addr,
    /// `dns`: up to two DNS servers handed out in IPCP (RFC 1877), primary
    /// first; users-file and RADIUS attributes win. Default: none.
    pub dns: Vec<Ipv4Addr>,
    /// `ipcp`: run IPCP (IPv4). Default on.
    pub ipcp: bool,
    /// `ipv6cp`: run IPv6CP (IPv6 interface identifiers). Default on.
    pub ipv6cp: bool,
    /// `accept_proxy`: adopt the LAC's proxy LCP and proxy authentication
    /// when acceptable, saving a renegotiation. Default on.
    pub accept_proxy: bool,
    /// `mss_clamp`: TCP MSS clamping on SYNs in both directions: `"auto"`
    /// (to fit the MRU), `"off"`, or an MSS. Default `"auto"`.
    pub mss_clamp: MssClamp,
}

impl Default for PppSection {
    fn default() -> Self {
        PppSection {
            auth: vec![AuthMethod::ChapMd5, AuthMethod::Pap],
            mru: Mru::Auto,
            path_mtu: 1500,
            min_peer_mru: 576,
            magic_number: true,
            echo_interval: Some(Duration::from_secs(30)),
            echo_failures: 5,
            restart_timer: Duration::from_secs(3),
            max_configure: 10,
            max_terminate: 2,
            max_failure: 5,
            auth_restart: Duration::from_secs(3),
            auth_max_transmissions: 10,
            gateway: DEMO_GATEWAY,
            dns: Vec::new(),
            ipcp: true,
            ipv6cp: true,
            accept_proxy: true,
            mss_clamp: MssClamp::Auto,
        }
    }
}

/// `[aaa]`: authentication and authorisation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AaaSection {
    /// `users_file`: the local users file (format in
    /// [`users`](crate::proto::aaa::users)); a relative path is taken from
    /// the config file's directory. Default: none, and the embedded
    /// [`DEMO_USERS`](super::DEMO_USERS) are used.
    pub users_file: Option<PathBuf>,
}

/// `[[pool]]`: one IPv4 address pool.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSection {
    /// `name`: what users files (`pool=`) and RADIUS refer to. Required.
    pub name: String,
    /// `ranges`: `"100.64.0.0/16"` (network and broadcast left out),
    /// `"100.64.0.10-100.64.0.99"` or one address. Required.
    #[serde(deserialize_with = "value::addr_ranges")]
    pub ranges: Vec<AddrRange>,
    /// `quarantine`: how long a released address rests before reuse, so a
    /// late packet or accounting record never reaches the next subscriber.
    /// Default 60 s.
    #[serde(default = "default_quarantine", deserialize_with = "value::duration")]
    pub quarantine: Duration,
    /// `ipv6_prefix`: an IPv6 prefix, /40 to /64, out of which each
    /// session of this pool gets one /64 (announced in Router
    /// Advertisements for SLAAC) with the same quarantine. Default: none
    /// (the embedded demo pool has [`DEMO_IPV6_PREFIX`]).
    #[serde(default)]
    pub ipv6_prefix: Option<IpPrefix>,
}

fn default_quarantine() -> Duration {
    Duration::from_secs(60)
}

impl PoolSection {
    /// The embedded demo pool.
    pub fn demo() -> Self {
        PoolSection {
            name: DEMO_POOL_NAME.into(),
            // A constant that parses; an empty list cannot happen.
            ranges: DEMO_POOL_RANGE.parse().into_iter().collect(),
            quarantine: default_quarantine(),
            ipv6_prefix: DEMO_IPV6_PREFIX.parse().ok(),
        }
    }

    /// Number of addresses in the pool.
    pub fn size(&self) -> u64 {
        self.ranges.iter().map(AddrRange::len).sum()
    }
}

/// `[ipv6]`: IPv6 for subscribers: the gateway address and what the
/// Router Advertisements (RFC 4861 §6.2.1) on every session say. Sessions
/// get IPv6 when `ppp.ipv6cp` is on and their pool has an `ipv6_prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ipv6Section {
    /// `gateway`: an address given to the TUN device, so the LNS itself is
    /// reachable over IPv6 (subscribers route through our link-local
    /// address, fe80::<IPv6CP identifier>). Must not lie in a pool's
    /// prefix. Default fd00:64::1.
    pub gateway: Ipv6Addr,
    /// `ra_interval`: MaxRtrAdvInterval, 4 s to 1800 s: an unsolicited
    /// advertisement goes out every 0.75-1 times this, after three initial
    /// ones at most 16 s apart. Default 300 s.
    #[serde(deserialize_with = "value::duration")]
    pub ra_interval: Duration,
    /// `router_lifetime`: how long subscribers keep us as default router,
    /// from `ra_interval` to 9000 s. Default 1800 s.
    #[serde(deserialize_with = "value::duration")]
    pub router_lifetime: Duration,
    /// `valid_lifetime`: the prefix's valid lifetime. Default 1 day.
    #[serde(deserialize_with = "value::duration")]
    pub valid_lifetime: Duration,
    /// `preferred_lifetime`: the prefix's preferred lifetime, at most the
    /// valid one. Default 4 h.
    #[serde(deserialize_with = "value::duration")]
    pub preferred_lifetime: Duration,
    /// `dns`: up to three recursive DNS servers announced in the RDNSS
    /// option (RFC 8106), valid for twice `ra_interval`. Default: none.
    pub dns: Vec<Ipv6Addr>,
}

impl Default for Ipv6Section {
    fn default() -> Self {
        Ipv6Section {
            gateway: DEMO_IPV6_GATEWAY,
            ra_interval: Duration::from_secs(300),
            router_lifetime: Duration::from_secs(1800),
            valid_lifetime: Duration::from_secs(86_400),
            preferred_lifetime: Duration::from_secs(14_400),
            dns: Vec::new(),
        }
    }
}

/// `runtime.io`: which I/O path the shards use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IoMode {
    /// io_uring where the kernel offers it, else the fallback.
    Auto,
    /// io_uring, and fail to start without it.
    IoUring,
    /// recvmmsg/sendmmsg and plain TUN read/write, even where io_uring works.
    Fallback,
}

/// `[runtime]`: threads, I/O and admission control.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSection {
    /// `shards`: shard threads, `"auto"` (one per core) or a number.
    /// Default `"auto"`.
    pub shards: Shards,
    /// `io`: `"auto"`, `"io-uring"` or `"fallback"`. Default `"auto"`.
    pub io: IoMode,
    /// `tun_name`: the TUN device name. Default `"lns0"`.
    pub tun_name: String,
    /// `tun_queue_len`: the TUN device's transmit queue length; the kernel's
    /// 500 drops under bursts. Default 4096.
    pub tun_queue_len: u32,
    /// `batch_size`: datagrams per `recvmmsg`/`sendmmsg` and TUN packets
    /// read per wakeup on the portable path; on io_uring, 4× as many
    /// completions per ring round, a quarter as many TUN reads in flight
    /// and 8× as many provided receive buffers. Default 64, 1 to 4096.
    pub batch_size: u32,
    /// `new_tunnels_per_second`: admission rate of new tunnels (SCCRQ), or
    /// `"off"`. Default 500.
    #[serde(deserialize_with = "value::rate_or_off")]
    pub new_tunnels_per_second: Option<u32>,
    /// `tunnel_refusal_result`: StopCCN Result Code (§4.4.2) for an SCCRQ
    /// over the rate. Default 2 (general error; the error code says
    /// "insufficient resources").
    pub tunnel_refusal_result: u16,
    /// `new_sessions_per_second`: admission rate of new sessions (ICRQ), or
    /// `"off"`. Default 20000.
    #[serde(deserialize_with = "value::rate_or_off")]
    pub new_sessions_per_second: Option<u32>,
    /// `session_refusal_result`: CDN Result Code (§4.4.2) for an ICRQ over
    /// the rate. Default 4 (temporary lack of facilities), which tells the
    /// LAC to try again.
    pub session_refusal_result: u16,
}

impl Default for RuntimeSection {
    fn default() -> Self {
        RuntimeSection {
            shards: Shards::Auto,
            io: IoMode::Auto,
            tun_name: "lns0".into(),
            tun_queue_len: 4096,
            batch_size: 64,
            new_tunnels_per_second: Some(500),
            tunnel_refusal_result: stopccn_result::GENERAL_ERROR,
            new_sessions_per_second: Some(20_000),
            session_refusal_result: cdn_result::TEMPORARY_NO_FACILITIES,
        }
    }
}

/// `[management]`: the local socket `lns show` and `lns kill` talk to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ManagementSection {
    /// `socket`: the Unix socket path. Default `/run/lns/lns.sock`.
    pub socket: PathBuf,
}

impl Default for ManagementSection {
    fn default() -> Self {
        ManagementSection {
            socket: PathBuf::from("/run/lns/lns.sock"),
        }
    }
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    /// `listen`: the HTTP address to serve `/metrics` on (an address alone
    /// gets port 9701), or `"off"`. Default `"127.0.0.1:9701"`: local
    /// only until the operator opens it up.
    #[serde(deserialize_with = "value::addr_or_off")]
    pub listen: Option<SocketAddr>,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            listen: Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                METRICS_PORT,
            )),
        }
    }
}

/// `log.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// Plus tunnel and session events.
    Info,
    /// Plus protocol detail.
    Debug,
    /// Everything.
    Trace,
}

/// `log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// `[log]`: logging.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// `level`: `"error"`, `"warn"`, `"info"`, `"debug"` or `"trace"`.
    /// Default `"info"`.
    pub level: LogLevel,
    /// `format`: `"text"` or `"json"`. Default `"text"`.
    pub format: LogFormat,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: LogLevel::Info,
            format: LogFormat::Text,
        }
    }
}
