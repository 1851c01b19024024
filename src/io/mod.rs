//! The runtime's edge: the only part of the crate with system calls,
//! `unsafe`, threads and the clock. Everything here is a thin shell that
//! moves bytes between the kernel and the pure cores (`proto`, `dataplane`).

pub mod alloc;
pub mod batch;
pub mod control;
pub mod daemon;
pub mod launch;
pub mod manage;
pub mod metrics;
pub mod netlink;
pub mod netns;
pub mod notify;
pub mod queue;
pub mod ring;
pub mod shard;
pub mod signals;
pub mod stats;
pub mod tun;
pub mod udp;
pub mod uring;
pub mod wake;
