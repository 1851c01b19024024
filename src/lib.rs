//! `lns`: a high-performance L2TPv2 Network Server.
//!
//! The crate is split along the sans-IO line (see `docs/ARCHITECTURE.md`):
//!
//! - [`wire`]: pure, total parsers and emitters for every packet format.
//! - [`crypto`]: pure cryptographic constructions (PPP authentication).
//! - [`proto`]: pure state machines driven by bytes and `now`, producing
//!   datagrams, events and deadlines; both the LNS and the LAC role.
//! - [`dataplane`]: the pure per-packet fast path of the shard workers
//!   (session tables, decapsulation and encapsulation in caller buffers).
//! - [`config`]: the daemon's TOML configuration, its defaults and checks,
//!   and the conversions into the cores' settings.
//! - [`metrics`]: the Prometheus exposition of the daemon's counters and
//!   the endpoint's HTTP request parser (pure; served by `io::metrics`).
//!
//! The runtime (io_uring shards, the control thread, TUN) is the only part that
//! touches sockets, threads or the clock; it arrives with the daemon.

pub mod config;
pub mod crypto;
pub mod dataplane;
pub mod io;
pub mod metrics;
pub mod proto;
pub mod sim;
#[cfg(test)]
pub(crate) mod testkit;
pub mod wire;
