//! Sans-IO protocol state machines.
//!
//! Nothing here reads the clock, touches a socket, spawns a thread or draws
//! from a thread-local RNG: time comes in as `now: Instant`, randomness from a
//! seeded generator the caller owns, and output leaves as datagrams, events and
//! the next deadline.
#![forbid(unsafe_code)]

pub mod aaa;
pub mod l2tp;
pub mod node;
pub mod ppp;
pub mod ra;
