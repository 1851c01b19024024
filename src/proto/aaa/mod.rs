//! Authentication, authorisation and address assignment for PPP sessions.
#![forbid(unsafe_code)]

pub mod pool;
