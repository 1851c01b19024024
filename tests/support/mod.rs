//! Helpers for tests that play a peer by hand.
#![allow(dead_code, clippy::unwrap_used)]

use lns::wire::l2tp::{ControlMessage, HeaderRepr, Packet};

/// A hand-built control datagram, for tests that play a peer by hand.
pub fn control_datagram(
    tunnel: u16,
    session: u16,
    ns: u16,
    nr: u16,
    msg: &ControlMessage,
) -> Vec<u8> {
    let mut body = Vec::new();
    msg.emit(&mut body, None).unwrap();
    raw_datagram(tunnel, session, ns, nr, &body)
}

/// A control datagram with an arbitrary body.
pub fn raw_datagram(tunnel: u16, session: u16, ns: u16, nr: u16, body: &[u8]) -> Vec<u8> {
    let header = HeaderRepr::control(tunnel, session, ns, nr);
    let mut out = vec![0; header.header_len() + body.len()];
    let at = header.emit(&mut out, body.len()).unwrap();
    out[at..].copy_from_slice(body);
    out
}

/// Parse a datagram we emitted: (header, message or None for a ZLB).
pub fn decode(datagram: &[u8], secret: Option<&[u8]>) -> (HeaderRepr, Option<ControlMessage>) {
    let packet = Packet::new_checked(datagram).unwrap();
    let header = HeaderRepr::parse(&packet);
    let body = packet.payload();
    if body.is_empty() {
        (header, None)
    } else {
        (header, Some(ControlMessage::parse(body, secret).unwrap()))
    }
}

pub mod daemon;
pub mod tools;
