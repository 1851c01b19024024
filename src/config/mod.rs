//! The daemon's configuration: a TOML file, its embedded defaults, and the
//! conversions into the settings of the protocol cores.
//!
//! Pure apart from reading files: [`Config::load`] reads the config file and
//! [`Config::load_users`] the users file; everything else works on text and
//! values. No sockets are opened and no threads started here.
//!
//! ```no_run
//! # fn main() -> Result<(), lns::config::ConfigError> {
//! use lns::config::Config;
//! use lns::proto::l2tp::ShardSpec;
//! use lns::proto::node::Node;
//!
//! let config = Config::load("/etc/lns/lns.toml".as_ref())?; // or Config::default()
//! let shards = config.shard_count(4);
//! let node = Node::new(
//!     config.l2tp_config(ShardSpec { index: 0, count: shards }),
//!     config.link_config(false),
//!     config.local_aaa()?,
//!     config.pools()?,
//!     0x5eed,
//! );
//! # let _ = node; Ok(()) }
//! ```
//!
//! Every key has a default (see [`sections`] and `deploy/lns.toml`), so
//! `Config::default()` runs a complete demo LNS: UDP 1701 on every address,
//! one shard per core, the [`DEMO_USERS`] and a demo pool. Every error names
//! the key and, when the file sets it, the line and column
//! ([`ConfigError`]).
#![forbid(unsafe_code)]

pub mod error;
pub mod sections;
mod validate;
pub mod value;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::de::DeTable;

pub use error::{ConfigError, ErrorKind};
pub use sections::{
    AaaSection, Config, HiddenAvps, IoMode, Ipv6Section, L2tpSection, LogFormat, LogLevel,
    LogSection, ManagementSection, MetricsSection, PeerSecret, PoolSection, PppSection,
    RuntimeSection, DEMO_GATEWAY, DEMO_IPV6_GATEWAY, DEMO_IPV6_PREFIX, DEMO_POOL_NAME,
    DEMO_POOL_RANGE,
};
pub use value::{IpPrefix, Mru, MssClamp, Secret, Shards};

use crate::proto::aaa::{users, LocalAaa, Pool, PrefixPool, UsersFile};
use crate::proto::l2tp::config::full_retransmit_cycle;
use crate::proto::l2tp::reliable::ReliableConfig;
use crate::proto::l2tp::{L2tpConfig, Limits, Role, ShardSpec};
use crate::proto::ppp::auth::AuthSettings;
use crate::proto::ppp::fsm::FsmConfig;
use crate::proto::ppp::link::{mru_for_path, LinkConfig};
use crate::proto::ra::RaConfig;
use crate::wire::l2tp::message::AvpTypeSet;
use error::Located;

/// The users file that `lns run` uses when `aaa.users_file` is not set:
/// a few demo subscribers for trying the daemon with `loadgen` or a test
/// LAC. Anyone who reads this source knows the passwords, so a real
/// deployment sets its own file.
pub const DEMO_USERS: &str = "\
# The embedded demo users of lns, used when aaa.users_file is not set.
# Anyone can read these passwords: set aaa.users_file before carrying real
# subscribers. Format: see the README (\"Local users file\").
#
# name                  settings
alice@demo.example      password=alice-demo
bob@demo.example        password=bob-demo      ip=100.64.0.10
carol@demo.example      nthash=A5EB3D56FAD64F8BD929AFC5371EE07E
dave@demo.example       password=dave-demo     session-timeout=3600
# Any name in this realm, with one shared password (loadgen's default).
*@loadgen.example       password=loadgen
";

/// The MSS values clamping writes into SYNs: one per inner IP version,
/// since the IPv6 header is 20 bytes longer than IPv4's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MssLimits {
    /// For TCP over IPv4.
    pub ipv4: u16,
    /// For TCP over IPv6.
    pub ipv6: u16,
}

impl From<MssLimits> for crate::dataplane::MssClamp {
    fn from(limits: MssLimits) -> Self {
        crate::dataplane::MssClamp {
            ipv4: limits.ipv4,
            ipv6: limits.ipv6,
        }
    }
}

impl Config {
    /// Parse and check a configuration file's text. Keys left out take
    /// their defaults.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let root = match DeTable::parse(text) {
            Ok(root) => root,
            Err(e) => {
                // The partial tree still tells which key the mistake is in.
                let (partial, _) = DeTable::parse_recoverable(text);
                let located = Located::new(text, partial.get_ref());
                return Err(located.error_at_span(ErrorKind::Syntax, e.span(), e.message()));
            }
        };
        let located = Located::new(text, root.get_ref());
        let config = Config::deserialize(toml::de::Deserializer::from(root)).map_err(|e| {
            located.error_at_span(ErrorKind::Schema, e.span(), error::reword(e.message()))
        })?;
        validate::validate(&config).map_err(|problem| {
            let key = problem
                .keys
                .iter()
                .find(|k| located.span_of(k).is_some())
                .or(problem.keys.first())
                .cloned()
                .unwrap_or_default();
            located.error_at(ErrorKind::Invalid, &key, problem.message)
        })?;
        Ok(config)
    }

    /// Read, parse and check the file at `path`. A relative
    /// `aaa.users_file` is taken from the config file's directory. Errors
    /// name `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: Some(path.to_path_buf()),
            ..ConfigError::unplaced(ErrorKind::Io, "", format!("cannot read: {e}"))
        })?;
        let mut config = Config::from_toml_str(&text).map_err(|e| ConfigError {
            file: Some(path.to_path_buf()),
            ..e
        })?;
        if let Some(users) = &mut config.aaa.users_file {
            if users.is_relative() {
                let dir = path.parent().unwrap_or(Path::new(""));
                *users = dir.join(&*users);
            }
        }
        Ok(config)
    }

    /// Check a configuration built or changed in code (`from_toml_str` and
    /// `load` already did). Errors carry the key but no line.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate::validate(self).map_err(|p| {
            ConfigError::unplaced(
                ErrorKind::Invalid,
                p.keys.first().cloned().unwrap_or_default(),
                p.message,
            )
        })
    }

    /// Read and parse the users file (or [`DEMO_USERS`] when none is set)
    /// and check that every pool it names is configured. The runtime calls
    /// this at start and on reload; a failed reload keeps the old users.
    pub fn load_users(&self) -> Result<UsersFile, ConfigError> {
        let key = "aaa.users_file";
        let path = self.aaa.users_file.as_deref();
        let text = match path {
            Some(path) => std::fs::read_to_string(path).map_err(|e| ConfigError {
                file: Some(path.to_path_buf()),
                ..ConfigError::unplaced(ErrorKind::Io, key, format!("cannot read: {e}"))
            })?,
            None => DEMO_USERS.to_string(),
        };
        let at = |line: usize, message: String| ConfigError {
            file: Some(path.map_or_else(|| PathBuf::from("<demo users>"), Path::to_path_buf)),
            line: Some(line),
            ..ConfigError::unplaced(ErrorKind::Users, key, message)
        };
        let users = users::parse(&text).map_err(|e| at(e.line, e.message))?;
        let mut unknown: Vec<_> = users
            .entries()
            .filter_map(|entry| {
                let pool = entry.attributes.pool.as_deref()?;
                (!self.pool.iter().any(|p| p.name == pool)).then_some((entry.line, pool))
            })
            .collect();
        unknown.sort();
        if let Some((line, pool)) = unknown.first() {
            let known: Vec<&str> = self.pool.iter().map(|p| p.name.as_str()).collect();
            return Err(at(
                *line,
                format!(
                    "pool {pool:?} is not configured (pools: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
        Ok(users)
    }

    /// The local AAA backend over [`Config::load_users`].
    pub fn local_aaa(&self) -> Result<LocalAaa, ConfigError> {
        self.load_users().map(LocalAaa::new)
    }

    /// How many shards to run on a machine with `cores` usable cores.
    pub fn shard_count(&self, cores: usize) -> u16 {
        match self.runtime.shards {
            Shards::Auto => u16::try_from(cores.clamp(1, 1024)).unwrap_or(1),
            Shards::Count(n) => n,
        }
    }

    /// The L2TP endpoint settings of one shard, LNS role. Tunnel secrets
    /// come from `[[l2tp.peer]]` by longest prefix, then `l2tp.secret`: the
    /// endpoint's choice for a peer equals [`Config::secret_for`].
    pub fn l2tp_config(&self, shard: ShardSpec) -> L2tpConfig {
        let s = &self.l2tp;
        let mut c = L2tpConfig::new(Role::Lns);
        c.host_name = s.host_name.as_bytes().to_vec();
        c.secret = s.secret.as_ref().map(|x| x.as_bytes().to_vec());
        for peer in &s.peer {
            c.peer_secrets.insert(peer.address, peer.secret.as_bytes());
        }
        c.hidden_avps = match s.hidden_avps {
            HiddenAvps::Off => AvpTypeSet::EMPTY,
            HiddenAvps::Sensitive => L2tpConfig::sensitive_avps(),
            // The emitter never hides Message Type or Random Vector.
            HiddenAvps::All => AvpTypeSet(u64::MAX),
        };
        c.reliable = ReliableConfig {
            receive_window: s.receive_window,
            retransmit_initial: s.retransmit_initial,
            retransmit_cap: s.retransmit_cap,
            max_retries: s.max_retries,
            ack_delay: s.ack_delay,
            slow_start: s.slow_start,
            fast_retransmit_after: s.fast_retransmit_after,
        };
        c.hello_interval = s.hello_interval;
        c.setup_timeout = s.setup_timeout;
        // §5.7: hold a stopped tunnel (and keep its IDs out of use) for one
        // full retransmission cycle of the configured timers.
        c.stop_hold = full_retransmit_cycle(&c.reliable);
        c.id_hold = c.stop_hold;
        c.limits = Limits {
            max_tunnels: s.max_tunnels,
            max_sessions_per_tunnel: s.max_sessions_per_tunnel,
            max_half_open_tunnels: s.max_half_open_tunnels,
            max_half_open_sessions: s.max_half_open_sessions,
            new_tunnels_per_second: self.runtime.new_tunnels_per_second,
            tunnel_rate_result: self.runtime.tunnel_refusal_result,
            new_sessions_per_second: self.runtime.new_sessions_per_second,
            session_rate_result: self.runtime.session_refusal_result,
        };
        c.shard = shard;
        c
    }

    /// The MRU we ask for on tunnels over IPv6 (`true`) or IPv4 transport.
    pub fn mru(&self, ipv6_transport: bool) -> u16 {
        match self.ppp.mru {
            Mru::Auto => mru_for_path(self.ppp.path_mtu, ipv6_transport),
            Mru::Fixed(mru) => mru,
        }
    }

    /// The MSS clamp for sessions over IPv6 (`true`) or IPv4 transport, or
    /// `None` when clamping is off.
    pub fn mss_clamp(&self, ipv6_transport: bool) -> Option<MssLimits> {
        match self.ppp.mss_clamp {
            MssClamp::Off => None,
            MssClamp::Auto => {
                let mru = self.mru(ipv6_transport);
                Some(MssLimits {
                    ipv4: mru.saturating_sub(40),
                    ipv6: mru.saturating_sub(60),
                })
            }
            MssClamp::Fixed(mss) => Some(MssLimits {
                ipv4: mss,
                ipv6: mss.saturating_sub(20),
            }),
        }
    }

    /// The PPP settings of server-role links on tunnels over IPv6 (`true`)
    /// or IPv4 transport (they differ only in the automatic MRU).
    pub fn link_config(&self, ipv6_transport: bool) -> LinkConfig {
        let p = &self.ppp;
        let dns = [p.dns.first().copied(), p.dns.get(1).copied()];
        let mut c = LinkConfig::server(p.gateway, dns);
        c.lcp.mru = Some(self.mru(ipv6_transport));
        c.lcp.min_peer_mru = p.min_peer_mru;
        c.lcp.auth = p.auth.clone();
        c.lcp.magic = p.magic_number;
        c.fsm = std::sync::Arc::new(FsmConfig {
            restart: p.restart_timer,
            max_terminate: p.max_terminate,
            max_configure: p.max_configure,
            max_failure: p.max_failure,
            passive: false,
        });
        c.auth = AuthSettings {
            restart: p.auth_restart,
            max_transmissions: p.auth_max_transmissions,
            name: self.l2tp.host_name.as_bytes().to_vec(),
        };
        // The link treats a zero interval as "no echo".
        c.echo_interval = p.echo_interval.unwrap_or(Duration::ZERO);
        c.echo_failures = p.echo_failures;
        c.ipcp = p.ipcp;
        c.ipv6cp = p.ipv6cp;
        c.accept_proxy = p.accept_proxy;
        c
    }

    /// The address pools, in configured order. Building a pool allocates
    /// its bitmaps (about 3 bits per address).
    pub fn pools(&self) -> Result<Vec<Pool>, ConfigError> {
        self.pool
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Pool::new(p.name.clone(), p.ranges.clone(), p.quarantine).map_err(|e| {
                    ConfigError::unplaced(ErrorKind::Invalid, format!("pool[{i}]"), e.to_string())
                })
            })
            .collect()
    }

    /// The IPv6 prefix pools (named after the `[[pool]]` that declares
    /// them), in configured order; none when `ppp.ipv6cp` is off.
    pub fn prefix_pools(&self) -> Result<Vec<PrefixPool>, ConfigError> {
        if !self.ppp.ipv6cp {
            return Ok(Vec::new());
        }
        self.pool
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some((i, p, p.ipv6_prefix?)))
            .map(|(i, p, prefix)| {
                let IpAddr::V6(network) = prefix.addr() else {
                    return Err(ConfigError::unplaced(
                        ErrorKind::Invalid,
                        format!("pool[{i}].ipv6_prefix"),
                        "not an IPv6 prefix",
                    ));
                };
                PrefixPool::new(p.name.clone(), network, prefix.prefix_len(), p.quarantine).map_err(
                    |e| {
                        ConfigError::unplaced(
                            ErrorKind::Invalid,
                            format!("pool[{i}].ipv6_prefix"),
                            e.to_string(),
                        )
                    },
                )
            })
            .collect()
    }

    /// What the Router Advertisements say.
    pub fn ra_config(&self) -> RaConfig {
        let s = &self.ipv6;
        let secs = |d: Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX - 1);
        RaConfig {
            interval: s.ra_interval,
            router_lifetime: u16::try_from(s.router_lifetime.as_secs()).unwrap_or(9000),
            valid_lifetime: secs(s.valid_lifetime),
            preferred_lifetime: secs(s.preferred_lifetime),
            dns: s.dns.clone(),
        }
    }

    /// The tunnel secret for a LAC at `peer` (see
    /// [`L2tpSection::secret_for`]).
    pub fn secret_for(&self, peer: IpAddr) -> Option<&[u8]> {
        self.l2tp.secret_for(peer).map(Secret::as_bytes)
    }

    /// A paragraph on what this configuration runs, for `lns check-config`
    /// and the daemon's start-up log. `cores` resolves `shards = "auto"`.
    pub fn summary(&self, users: &UsersFile, cores: usize) -> String {
        let listen: Vec<String> = self.l2tp.listen.iter().map(ToString::to_string).collect();
        let shards = match self.runtime.shards {
            Shards::Auto => format!("{} shards (one per core)", self.shard_count(cores)),
            Shards::Count(n) => format!("{n} shards"),
        };
        let auth = match (&self.l2tp.secret, self.l2tp.peer.len()) {
            (None, 0) => "no tunnel authentication".to_string(),
            (Some(_), 0) => "tunnel authentication with a shared secret".to_string(),
            (None, 1) => "tunnel authentication for one [[l2tp.peer]] prefix only".to_string(),
            (None, n) => format!("tunnel authentication for {n} [[l2tp.peer]] prefixes only"),
            (Some(_), n) => {
                format!("tunnel authentication with a shared secret and {n} per-peer secrets")
            }
        };
        let methods: Vec<&str> = self
            .ppp
            .auth
            .iter()
            .map(|m| value::auth_method_name(*m))
            .collect();
        let methods = if methods.is_empty() {
            "no PPP authentication".to_string()
        } else {
            format!("PPP authentication {}", methods.join(", then "))
        };
        let pools: Vec<String> = self
            .pool
            .iter()
            .map(|p| match p.ipv6_prefix.filter(|_| self.ppp.ipv6cp) {
                Some(prefix) => format!("{} ({} addresses, /64s of {prefix})", p.name, p.size()),
                None => format!("{} ({} addresses)", p.name, p.size()),
            })
            .collect();
        let pools = if pools.is_empty() {
            "no address pools".to_string()
        } else {
            format!("pools {}", pools.join(", "))
        };
        let users_from = match &self.aaa.users_file {
            Some(path) => format!("from {}", path.display()),
            None => "from the embedded demo file".to_string(),
        };
        let metrics = match self.metrics.listen {
            Some(addr) => format!("Prometheus metrics on http://{addr}/metrics"),
            None => "metrics off".to_string(),
        };
        format!(
            "Listens for L2TP on {} with {shards}, {auth}; {methods}, MRU {} (IPv4 transport) \
             / {} (IPv6), gateway {}; {pools}; {} user{} {users_from}; management socket {}; \
             {metrics}.",
            listen.join(" and "),
            self.mru(false),
            self.mru(true),
            self.ppp.gateway,
            users.len(),
            if users.len() == 1 { "" } else { "s" },
            self.management.socket.display(),
        )
    }
}

#[cfg(test)]
mod tests;
