//! Settings of an L2TP endpoint.

use std::time::Duration;

use super::ids::ShardSpec;
use super::reliable::ReliableConfig;
use super::secrets::PeerSecrets;
use crate::wire::l2tp::avps::caps;
use crate::wire::l2tp::message::AvpTypeSet;
use crate::wire::l2tp::AvpType;

/// Which end of the tunnel this endpoint plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// L2TP Network Server: accepts tunnels and incoming calls.
    Lns,
    /// L2TP Access Concentrator: opens tunnels and places incoming calls
    /// (used by tests and by loadgen).
    Lac,
}

/// Explicit resource limits; beyond them requests are refused with the RFC
/// result code instead of being dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Tunnels in any state.
    pub max_tunnels: usize,
    /// Sessions in one tunnel.
    pub max_sessions_per_tunnel: usize,
    /// Tunnels still in setup (SCCRQ seen, SCCCN not yet).
    pub max_half_open_tunnels: usize,
    /// Sessions still in setup across the endpoint.
    pub max_half_open_sessions: usize,
    /// New tunnels accepted per second (`None`: no limit); SCCRQs beyond
    /// it are refused with StopCCN `tunnel_rate_result` (error 4, no
    /// resources).
    pub new_tunnels_per_second: Option<u32>,
    /// StopCCN Result Code for an SCCRQ over the rate (default 2).
    pub tunnel_rate_result: u16,
    /// New calls accepted per second (`None`: no limit); ICRQs and OCRQs
    /// beyond it are refused with CDN `session_rate_result`.
    pub new_sessions_per_second: Option<u32>,
    /// CDN Result Code for a call over the rate (default 4, temporary lack
    /// of facilities: the LAC may try again).
    pub session_rate_result: u16,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tunnels: 16_384,
            max_sessions_per_tunnel: 65_535,
            max_half_open_tunnels: 1_024,
            max_half_open_sessions: 65_536,
            new_tunnels_per_second: None,
            tunnel_rate_result: 2,
            new_sessions_per_second: None,
            session_rate_result: 4,
        }
    }
}

/// Everything an [`Endpoint`](super::Endpoint) needs to know up front.
/// (`Debug` leaves the default secret out.)
#[derive(Clone)]
pub struct L2tpConfig {
    /// LNS or LAC.
    pub role: Role,
    /// Host Name AVP we send.
    pub host_name: Vec<u8>,
    /// Vendor Name AVP we send (omitted when empty).
    pub vendor_name: Vec<u8>,
    /// Firmware Revision AVP we send.
    pub firmware_revision: u16,
    /// Framing Capabilities AVP we send.
    pub framing_capabilities: u32,
    /// Bearer Capabilities AVP we send.
    pub bearer_capabilities: u32,
    /// Tunnel secret for peers that `peer_secrets` does not cover. A tunnel
    /// with a secret is authenticated (§5.1.1): we send a Challenge and
    /// require a correct Challenge Response. A tunnel without one is not.
    pub secret: Option<Vec<u8>>,
    /// Secrets of particular peers or networks of peers (longest prefix
    /// wins over a shorter one and over `secret`). Each tunnel takes its
    /// secret from here, by the peer's address, when it is created.
    pub peer_secrets: PeerSecrets,
    /// AVPs to hide (§4.3) in tunnels that have a secret.
    pub hidden_avps: AvpTypeSet,
    /// Reliable delivery timers and windows.
    pub reliable: ReliableConfig,
    /// Send a HELLO after this long without hearing from the peer (§6.5).
    pub hello_interval: Duration,
    /// How long a tunnel is kept after StopCCN to ack retransmissions (§5.7).
    pub stop_hold: Duration,
    /// Half-open tunnels and sessions are torn down after this long.
    pub setup_timeout: Duration,
    /// Released IDs are not reused for this long.
    pub id_hold: Duration,
    /// Resource limits.
    pub limits: Limits,
    /// Residue class of the tunnel IDs this endpoint allocates (one
    /// endpoint per shard).
    pub shard: ShardSpec,
    /// One endpoint serving this many shards (the daemon's control
    /// thread): new tunnels take IDs from every class `id % spread` in
    /// turn, so each shard owns an even share. Used when `shard` is
    /// [`ShardSpec::SINGLE`]; 1 means no spreading.
    pub spread: u16,
}

impl std::fmt::Debug for L2tpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("L2tpConfig")
            .field("role", &self.role)
            .field("host_name", &String::from_utf8_lossy(&self.host_name))
            .field("secret", &self.secret.as_ref().map(|_| "(set)"))
            .field("peer_secrets", &self.peer_secrets)
            .field("hidden_avps", &self.hidden_avps)
            .field("reliable", &self.reliable)
            .field("hello_interval", &self.hello_interval)
            .field("limits", &self.limits)
            .field("shard", &self.shard)
            .field("spread", &self.spread)
            .finish_non_exhaustive()
    }
}

impl L2tpConfig {
    /// Defaults for the given role.
    pub fn new(role: Role) -> Self {
        let reliable = ReliableConfig::default();
        // §5.7: hold state for one full retransmission cycle.
        let stop_hold = full_retransmit_cycle(&reliable);
        L2tpConfig {
            role,
            host_name: match role {
                Role::Lns => b"lns".to_vec(),
                Role::Lac => b"lac".to_vec(),
            },
            vendor_name: b"lns-rs".to_vec(),
            firmware_revision: 0x0100,
            framing_capabilities: caps::FRAMING_SYNC | caps::FRAMING_ASYNC,
            bearer_capabilities: caps::BEARER_DIGITAL | caps::BEARER_ANALOG,
            secret: None,
            peer_secrets: PeerSecrets::new(),
            hidden_avps: AvpTypeSet::EMPTY,
            reliable,
            hello_interval: Duration::from_secs(60),
            stop_hold,
            setup_timeout: Duration::from_secs(30),
            id_hold: stop_hold,
            limits: Limits::default(),
            shard: ShardSpec::SINGLE,
            spread: 1,
        }
    }

    /// The AVPs that carry subscriber secrets: what an operator hides when
    /// hiding is on.
    pub fn sensitive_avps() -> AvpTypeSet {
        [
            AvpType::ProxyAuthenName,
            AvpType::ProxyAuthenChallenge,
            AvpType::ProxyAuthenResponse,
            AvpType::CallingNumber,
            AvpType::CalledNumber,
            AvpType::SubAddress,
        ]
        .into_iter()
        .fold(AvpTypeSet::EMPTY, |set, attr| set.with(u16::from(attr)))
    }
}

/// Time from the first transmission to giving up: every retransmission
/// timeout plus the final one.
pub fn full_retransmit_cycle(reliable: &ReliableConfig) -> Duration {
    let mut timeout = reliable.retransmit_initial;
    let mut total = Duration::ZERO;
    for _ in 0..=reliable.max_retries {
        total += timeout;
        timeout = (timeout * 2).min(reliable.retransmit_cap);
    }
    total
}
