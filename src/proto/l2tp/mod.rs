//! The L2TPv2 control plane (RFC 2661 §5–§7), both LNS and LAC roles.
//!
//! - [`seq`]: modulo-65536 sequence number arithmetic.
//! - [`reliable`]: the reliable delivery of control messages (§5.8, App. A).

pub mod reliable;
pub mod seq;
