//! The runtime's edge: the only part of the crate with system calls,
//! `unsafe`, threads and the clock. Everything here is a thin shell that
//! moves bytes between the kernel and the pure cores (`proto`, `dataplane`).

pub mod batch;
pub mod netlink;
#[cfg(test)]
pub(crate) mod testing;
pub mod tun;
pub mod udp;
