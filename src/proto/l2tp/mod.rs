//! The L2TPv2 control plane (RFC 2661 §5–§7), both LNS and LAC roles.
//!
//! - [`seq`]: modulo-65536 sequence number arithmetic.
//! - [`reliable`]: reliable delivery of control messages (§5.8, App. A).
//! - [`tunnel`]: the control connection state machine (§7.2).
//! - [`session`]: incoming and outgoing calls (§7.3–§7.4).
//! - [`endpoint`]: every tunnel of a shard behind one sans-IO interface.
//! - [`ids`]: tunnel and session ID allocation with shard encoding and hold.
//! - [`auth`]: tunnel authentication (§5.1.1).
//! - [`secrets`]: tunnel secrets by peer address.

pub mod admission;
pub mod auth;
pub mod config;
pub mod endpoint;
pub mod event;
pub mod ids;
pub mod reliable;
pub mod secrets;
pub mod seq;
pub mod session;
pub mod tunnel;

pub use config::{L2tpConfig, Limits, Role};
pub use endpoint::{CommandError, Dropped, Endpoint, EndpointStats, Transmit, TunnelSummary};
pub use event::{CallInfo, Event, ProxyAuth, ProxyLcp, SessionDownReason, TunnelDownReason};
pub use ids::ShardSpec;
pub use secrets::{PeerSecrets, SharedSecret};
pub use session::SessionState;
pub use tunnel::TunnelState;
