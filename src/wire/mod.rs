//! Pure wire formats: zero-copy views and owned representations.
//!
//! The contract, borrowed from smoltcp: `Packet::new_checked` validates every
//! length an accessor reads, after which no accessor panics; an owned `Repr`
//! has `parse` and `emit`. Every parser here is total — any byte string gives a
//! value or an error — and has a fuzz target under `fuzz/`.
#![forbid(unsafe_code)]

pub mod l2tp;
