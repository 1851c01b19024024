//! PPP control protocols over L2TP sessions (RFC 1661 and the NCPs).
//!
//! [`fsm`] is the one option-negotiation automaton that LCP, IPCP and IPv6CP
//! share; the protocols supply option semantics through
//! [`fsm::Negotiator`] and never touch the automaton's states themselves.
#![forbid(unsafe_code)]

pub mod auth;
pub mod fsm;
pub mod ipcp;
pub mod ipv6cp;
pub mod lcp;
pub mod link;
