//! The control-protocol packet of RFC 1661 §5, shared by LCP, IPCP
//! (RFC 1332 §2) and IPv6CP (RFC 5072 §3). PAP (RFC 1334 §2.2) and CHAP
//! (RFC 1994 §4) use the same four-octet header, so their parsers check it
//! through this view too.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |     Code      |  Identifier   |            Length             |
//! |    Data ...
//! ```
//!
//! §5: "Octets outside the range of the Length field are to be treated as
//! Data Link Layer padding and MUST be ignored on reception." A Length below
//! four or beyond the received bytes makes the packet malformed ("silently
//! discarded").

use super::PppWireError;

mod field {
    pub const CODE: usize = 0;
    pub const IDENTIFIER: usize = 1;
    pub const LENGTH: core::ops::Range<usize> = 2..4;
}

/// Size of the Code/Identifier/Length header.
pub const HEADER_LEN: usize = 4;

enum_with_unknown! {
    /// Codes of RFC 1661 §5 (1–7 for every NCP, 8–11 LCP only).
    pub enum Code(u8) {
        /// §5.1
        ConfigureRequest = 1,
        /// §5.2
        ConfigureAck = 2,
        /// §5.3
        ConfigureNak = 3,
        /// §5.4
        ConfigureReject = 4,
        /// §5.5
        TerminateRequest = 5,
        /// §5.5
        TerminateAck = 6,
        /// §5.6
        CodeReject = 7,
        /// §5.7 (LCP only)
        ProtocolReject = 8,
        /// §5.8 (LCP only)
        EchoRequest = 9,
        /// §5.8 (LCP only)
        EchoReply = 10,
        /// §5.9 (LCP only)
        DiscardRequest = 11,
    }
}

impl Code {
    /// Codes that carry a list of configuration options (§5.1–§5.4).
    pub fn carries_options(self) -> bool {
        matches!(
            self,
            Code::ConfigureRequest
                | Code::ConfigureAck
                | Code::ConfigureNak
                | Code::ConfigureReject
        )
    }

    /// Whether an NCP (IPCP, IPv6CP) knows this code; RFC 1332 §2 keeps
    /// only codes 1 through 7, anything else gets a Code-Reject.
    pub fn valid_for_ncp(self) -> bool {
        matches!(u8::from(self), 1..=7)
    }
}

/// Zero-copy view of a control-protocol packet.
///
/// After [`Packet::new_checked`] succeeds, no accessor panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without validation; accessors may panic on short input.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wrap a buffer and validate the Length field.
    pub fn new_checked(buffer: T) -> Result<Self, PppWireError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Check that the header is there, Length ≥ 4, and Length ≤ the buffer.
    pub fn check_len(&self) -> Result<(), PppWireError> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(PppWireError::Truncated);
        }
        let length = usize::from(self.length());
        if length < HEADER_LEN {
            return Err(PppWireError::BadLength);
        }
        if length > data.len() {
            return Err(PppWireError::Truncated);
        }
        Ok(())
    }

    /// Consume the view, giving back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The Code field.
    pub fn code(&self) -> Code {
        Code::from(self.code_byte())
    }

    /// The Code field as a raw octet (PAP and CHAP have their own codes).
    pub fn code_byte(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The Identifier field.
    pub fn identifier(&self) -> u8 {
        self.buffer.as_ref()[field::IDENTIFIER]
    }

    /// The Length field (header included).
    pub fn length(&self) -> u16 {
        let data = self.buffer.as_ref();
        u16::from_be_bytes([data[field::LENGTH.start], data[field::LENGTH.start + 1]])
    }

    /// The Data field: bytes after the header up to Length (padding
    /// excluded).
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.length())]
    }

    /// This packet exactly as Length delimits it (for Code-Reject and
    /// Protocol-Reject, which echo a packet back).
    pub fn packet_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.length())]
    }
}

/// Owned-header form of a control-protocol packet; the Data is borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    /// Code.
    pub code: Code,
    /// Identifier.
    pub identifier: u8,
    /// Data (options for Configure-*, Magic-Number + data for Echo, ...).
    pub data: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Read a checked packet.
    pub fn parse<T: AsRef<[u8]>>(packet: &'a Packet<T>) -> Self {
        Repr {
            code: packet.code(),
            identifier: packet.identifier(),
            data: packet.data(),
        }
    }

    /// Check and read `bytes` in one step.
    pub fn parse_bytes(bytes: &'a [u8]) -> Result<Self, PppWireError> {
        let packet = Packet::new_checked(bytes)?;
        Ok(Repr {
            code: packet.code(),
            identifier: packet.identifier(),
            data: &bytes[HEADER_LEN..usize::from(packet.length())],
        })
    }

    /// Bytes the packet takes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.data.len()
    }

    /// Write the packet into the front of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, PppWireError> {
        let len = self.buffer_len();
        let length = u16::try_from(len).map_err(|_| PppWireError::FieldTooLong)?;
        let Some(out) = buf.get_mut(..len) else {
            return Err(PppWireError::BufferTooSmall);
        };
        out[field::CODE] = self.code.into();
        out[field::IDENTIFIER] = self.identifier;
        out[field::LENGTH].copy_from_slice(&length.to_be_bytes());
        out[HEADER_LEN..].copy_from_slice(self.data);
        Ok(len)
    }

    /// Append the packet to `out`; returns its length.
    pub fn emit_vec(&self, out: &mut Vec<u8>) -> Result<usize, PppWireError> {
        emit_with(self.code.into(), self.identifier, out, |out| {
            out.extend_from_slice(self.data)
        })
    }
}

/// Append a packet whose Data `fill` writes, patching Length afterwards.
///
/// `code` is a raw octet so PAP and CHAP can use it too. On error (more than
/// 65535 octets) `out` is left as it was.
pub fn emit_with(
    code: u8,
    identifier: u8,
    out: &mut Vec<u8>,
    fill: impl FnOnce(&mut Vec<u8>),
) -> Result<usize, PppWireError> {
    let start = out.len();
    out.extend_from_slice(&[code, identifier, 0, 0]);
    fill(out);
    let len = out.len() - start;
    let Ok(length) = u16::try_from(len) else {
        out.truncate(start);
        return Err(PppWireError::FieldTooLong);
    };
    out[start + 2..start + 4].copy_from_slice(&length.to_be_bytes());
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ppp::hex;

    #[test]
    fn configure_ack_both_ways() {
        // Probe capture frame 36: the LNS acks the client's request.
        let bytes = hex(concat!(
            "02",           // Configure-Ack
            "c3",           // identifier
            "000e",         // length 14
            "010405b4",     // MRU 1460
            "050647c0f312", // magic number
        ));
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.code(), Code::ConfigureAck);
        assert_eq!(packet.identifier(), 0xc3);
        assert_eq!(packet.length(), 14);
        let repr = Repr::parse(&packet);
        assert_eq!(repr.data, &bytes[4..]);
        let mut buf = [0xa5u8; 14];
        assert_eq!(repr.emit(&mut buf).unwrap(), 14);
        assert_eq!(buf[..], bytes[..]);
        let mut out = vec![];
        repr.emit_vec(&mut out).unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn padding_is_ignored() {
        let bytes = [0x09, 0x07, 0x00, 0x08, 1, 2, 3, 4, 0xee, 0xee];
        let repr = Repr::parse_bytes(&bytes).unwrap();
        assert_eq!(repr.code, Code::EchoRequest);
        assert_eq!(repr.data, &[1, 2, 3, 4]);
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap().packet_bytes(),
            &bytes[..8]
        );
    }

    #[test]
    fn rejects_bad_lengths() {
        assert_eq!(Repr::parse_bytes(&[1, 2, 0]), Err(PppWireError::Truncated));
        assert_eq!(
            Repr::parse_bytes(&[1, 2, 0, 3]),
            Err(PppWireError::BadLength)
        );
        assert_eq!(
            Repr::parse_bytes(&[1, 2, 0, 5]),
            Err(PppWireError::Truncated)
        );
        let repr = Repr::parse_bytes(&[0x63, 2, 0, 4]).unwrap();
        assert_eq!(repr.code, Code::Unknown(0x63));
        assert!(repr.data.is_empty());
    }

    #[test]
    fn emit_limits() {
        let big = vec![0; 70_000];
        let repr = Repr {
            code: Code::EchoRequest,
            identifier: 1,
            data: &big,
        };
        let mut out = vec![7];
        assert_eq!(repr.emit_vec(&mut out), Err(PppWireError::FieldTooLong));
        assert_eq!(out, vec![7]);
        let repr = Repr {
            data: &big[..4],
            ..repr
        };
        assert_eq!(repr.emit(&mut [0; 7]), Err(PppWireError::BufferTooSmall));
    }
}
