//! PAP packets (RFC 1334 §2.2).
//!
//! ```text
//! Authenticate-Request:  | 1 | Id | Length | Peer-ID Length | Peer-ID | Passwd-Length | Password |
//! Authenticate-Ack/Nak:  | 2/3 | Id | Length | Msg-Length | Message |
//! ```
//!
//! The header is the control-protocol header ([`super::cp`]); bytes beyond
//! Length are padding. Bytes inside Length after the last field are ignored
//! too, and an Ack/Nak with no Msg-Length octet at all reads as an empty
//! message: both are seen from lax peers and harm nothing.

use super::cp::{self, Packet};
use super::PppWireError;

/// PAP codes (RFC 1334 §2.2).
pub mod code {
    /// Authenticate-Request.
    pub const REQUEST: u8 = 1;
    /// Authenticate-Ack.
    pub const ACK: u8 = 2;
    /// Authenticate-Nak.
    pub const NAK: u8 = 3;
}

/// A PAP packet, borrowing its fields from the received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pap<'a> {
    /// §2.2.1: the peer's name and password, in the clear.
    Request {
        /// Identifier (echoed in the Ack/Nak).
        identifier: u8,
        /// Peer-ID.
        peer_id: &'a [u8],
        /// Password.
        password: &'a [u8],
    },
    /// §2.2.2: authentication succeeded.
    Ack {
        /// Identifier of the request.
        identifier: u8,
        /// Message for humans.
        message: &'a [u8],
    },
    /// §2.2.2: authentication failed.
    Nak {
        /// Identifier of the request.
        identifier: u8,
        /// Message for humans.
        message: &'a [u8],
    },
    /// Any other code; §2.2 leaves them undefined.
    Unknown {
        /// Code.
        code: u8,
        /// Identifier.
        identifier: u8,
        /// Data.
        data: &'a [u8],
    },
}

/// Split one length-prefixed field off the front of `data`.
fn prefixed(data: &[u8]) -> Result<(&[u8], &[u8]), PppWireError> {
    let (&len, rest) = data.split_first().ok_or(PppWireError::Truncated)?;
    rest.split_at_checked(usize::from(len))
        .ok_or(PppWireError::Truncated)
}

impl<'a> Pap<'a> {
    /// Parse a PAP packet (the Information field of a 0xc023 frame).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, PppWireError> {
        let packet = Packet::new_checked(bytes)?;
        let identifier = packet.identifier();
        let data = &bytes[cp::HEADER_LEN..usize::from(packet.length())];
        Ok(match packet.code_byte() {
            code::REQUEST => {
                let (peer_id, rest) = prefixed(data)?;
                let (password, _) = prefixed(rest)?;
                Pap::Request {
                    identifier,
                    peer_id,
                    password,
                }
            }
            code::ACK => Pap::Ack {
                identifier,
                message: Self::message(data)?,
            },
            code::NAK => Pap::Nak {
                identifier,
                message: Self::message(data)?,
            },
            code => Pap::Unknown {
                code,
                identifier,
                data,
            },
        })
    }

    fn message(data: &[u8]) -> Result<&[u8], PppWireError> {
        if data.is_empty() {
            return Ok(data);
        }
        prefixed(data).map(|(message, _)| message)
    }

    /// Append the packet to `out`; returns its length.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<usize, PppWireError> {
        let (code, identifier, fields): (u8, u8, &[&[u8]]) = match self {
            Pap::Request {
                identifier,
                peer_id,
                password,
            } => (code::REQUEST, *identifier, &[peer_id, password]),
            Pap::Ack {
                identifier,
                message,
            } => (code::ACK, *identifier, &[message]),
            Pap::Nak {
                identifier,
                message,
            } => (code::NAK, *identifier, &[message]),
            Pap::Unknown {
                code,
                identifier,
                data,
            } => return cp::emit_with(*code, *identifier, out, |out| out.extend_from_slice(data)),
        };
        if fields
            .iter()
            .any(|field| field.len() > usize::from(u8::MAX))
        {
            return Err(PppWireError::FieldTooLong);
        }
        cp::emit_with(code, identifier, out, |out| {
            for field in fields {
                out.push(field.len() as u8);
                out.extend_from_slice(field);
            }
        })
    }

    /// The Identifier.
    pub fn identifier(&self) -> u8 {
        match self {
            Pap::Request { identifier, .. }
            | Pap::Ack { identifier, .. }
            | Pap::Nak { identifier, .. }
            | Pap::Unknown { identifier, .. } => *identifier,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ppp::frame::{protocol, Frame};
    use crate::wire::ppp::hex;

    fn both_ways(frame_hex: &str, expected: Pap<'_>) {
        let bytes = hex(frame_hex);
        let frame = Frame::parse(&bytes).unwrap();
        assert_eq!(frame.protocol, protocol::PAP);
        assert_eq!(Pap::parse(frame.payload).unwrap(), expected);
        let mut out = vec![];
        frame.header().emit_vec(&mut out);
        expected.emit(&mut out).unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn capture_request_and_ack() {
        // Probe capture frame 667 (the scripted client).
        both_ways(
            concat!(
                "ff03c023", // frame header, PAP
                "01e60011", // Authenticate-Request, id 0xe6, length 17
                "05",
                "7465737430", // Peer-ID "test0"
                "06",
                "736563726574", // Password "secret"
            ),
            Pap::Request {
                identifier: 0xe6,
                peer_id: b"test0",
                password: b"secret",
            },
        );
        // Frame 672: l2tpns acks with an empty message (Msg-Length 0).
        both_ways(
            concat!("ff03c023", "02e60005", "00"),
            Pap::Ack {
                identifier: 0xe6,
                message: b"",
            },
        );
    }

    #[test]
    fn nak_unknown_and_lax_forms() {
        let nak = Pap::Nak {
            identifier: 9,
            message: b"no",
        };
        let mut out = vec![];
        nak.emit(&mut out).unwrap();
        assert_eq!(out, hex("03090007026e6f"));
        assert_eq!(Pap::parse(&out).unwrap(), nak);
        // Ack without a Msg-Length octet.
        assert_eq!(
            Pap::parse(&[2, 1, 0, 4]).unwrap(),
            Pap::Ack {
                identifier: 1,
                message: b""
            }
        );
        let unknown = [7, 1, 0, 5, 0xaa];
        let pap = Pap::parse(&unknown).unwrap();
        assert_eq!(pap.identifier(), 1);
        let mut out = vec![];
        pap.emit(&mut out).unwrap();
        assert_eq!(out, unknown);
    }

    #[test]
    fn malformed() {
        // Peer-ID longer than the packet.
        assert_eq!(
            Pap::parse(&hex("0101000609aa")),
            Err(PppWireError::Truncated)
        );
        // No Passwd-Length.
        assert_eq!(
            Pap::parse(&hex("0101000601aa")),
            Err(PppWireError::Truncated)
        );
        // Length cuts the password even though the buffer has it (padding).
        assert_eq!(
            Pap::parse(&hex("010100070161016200")),
            Err(PppWireError::Truncated)
        );
        assert_eq!(Pap::parse(&hex("0201")), Err(PppWireError::Truncated));
        let long = [0u8; 256];
        let request = Pap::Request {
            identifier: 1,
            peer_id: &long,
            password: b"",
        };
        assert_eq!(request.emit(&mut vec![]), Err(PppWireError::FieldTooLong));
    }
}
