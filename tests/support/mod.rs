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

/// An LCP Configure-Request (MRU 1400, a Magic-Number) from the
/// subscriber's side of the LNS session `(tunnel, session)`: on an open
/// link it starts a renegotiation (RFC 1661 §3.2).
pub fn lcp_configure_request(tunnel: u16, session: u16) -> Vec<u8> {
    use lns::wire::ppp::cp::emit_with;
    use lns::wire::ppp::frame::{protocol, FrameHeader};
    let mut ppp = Vec::new();
    FrameHeader::new(protocol::LCP, false, false).emit_vec(&mut ppp);
    emit_with(1, 0x77, &mut ppp, |b| {
        b.extend_from_slice(&[1, 4, 0x05, 0x78, 5, 6, 0x12, 0x34, 0x56, 0x78])
    })
    .unwrap();
    let header = HeaderRepr::data(tunnel, session);
    let mut datagram = vec![0; header.header_len()];
    header.emit(&mut datagram, ppp.len()).unwrap();
    datagram.extend_from_slice(&ppp);
    datagram
}

pub mod daemon;
pub mod l2tpns;
pub mod netns;
pub mod tools;
