//! Cryptographic building blocks the protocol cores call.
//!
//! Pure functions over byte slices: no clock, no RNG, no I/O. The PPP
//! authentication constructions (CHAP-MD5, MS-CHAPv2) live in [`ppp_auth`];
//! the AEAD trait for the ESP fast path will join them here.
#![forbid(unsafe_code)]

pub mod ppp_auth;
