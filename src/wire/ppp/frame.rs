//! The PPP frame header inside an L2TP data message.
//!
//! RFC 2661 §5.1 carries PPP frames without the HDLC flags and FCS, so what
//! is left is RFC 1662 §3.1's Address (0xff) and Control (0x03) fields —
//! absent when Address-and-Control-Field-Compression is in effect — then the
//! RFC 1661 §2 Protocol field, one octet when Protocol-Field-Compression is
//! in effect and the value fits.
//!
//! ```text
//! | 0xff | 0x03 | Protocol (1 or 2) | Information ... |
//! ```

use super::PppWireError;

/// RFC 1662 §3.1 All-Stations address.
pub const ADDRESS: u8 = 0xff;
/// RFC 1662 §3.1 Unnumbered Information control value.
pub const CONTROL: u8 = 0x03;

/// Protocol numbers used by an LNS (RFC 1661 §2 and the RFCs of each).
pub mod protocol {
    /// Internet Protocol version 4 (RFC 1332).
    pub const IPV4: u16 = 0x0021;
    /// Internet Protocol version 6 (RFC 5072).
    pub const IPV6: u16 = 0x0057;
    /// IP Control Protocol (RFC 1332).
    pub const IPCP: u16 = 0x8021;
    /// IPv6 Control Protocol (RFC 5072).
    pub const IPV6CP: u16 = 0x8057;
    /// Link Control Protocol (RFC 1661).
    pub const LCP: u16 = 0xc021;
    /// Password Authentication Protocol (RFC 1334).
    pub const PAP: u16 = 0xc023;
    /// Challenge Handshake Authentication Protocol (RFC 1994).
    pub const CHAP: u16 = 0xc223;
}

enum_with_unknown! {
    /// The PPP Protocol field (RFC 1661 §2).
    pub enum Protocol(u16) {
        /// IPv4 datagram.
        Ipv4 = 0x0021,
        /// IPv6 datagram.
        Ipv6 = 0x0057,
        /// IP Control Protocol.
        Ipcp = 0x8021,
        /// IPv6 Control Protocol.
        Ipv6cp = 0x8057,
        /// Link Control Protocol.
        Lcp = 0xc021,
        /// Password Authentication Protocol.
        Pap = 0xc023,
        /// Challenge Handshake Authentication Protocol.
        Chap = 0xc223,
    }
}

/// One received PPP frame, borrowed from the L2TP payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The Protocol field, widened to 16 bits when it came compressed.
    pub protocol: u16,
    /// Address and Control were present (not compressed away).
    pub address_control: bool,
    /// The Protocol field took one octet.
    pub protocol_compressed: bool,
    /// Everything after the Protocol field: Information plus any padding.
    pub payload: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Split a PPP frame into its header fields and payload.
    ///
    /// Accepts both forms of each field, as a receiver must: RFC 1661 §6.6
    /// says the first two octets are Address and Control when they are 0xff
    /// 0x03 and are otherwise taken as compressed away; §6.5 (and §2) say a
    /// Protocol field whose first octet is odd is a one-octet field.
    ///
    /// A two-octet value whose low octet is even breaks §2's rule; §2 says
    /// such frames are "treated as having an unrecognized Protocol", so they
    /// parse (and the caller answers with Protocol-Reject).
    pub fn parse(data: &'a [u8]) -> Result<Self, PppWireError> {
        let (address_control, rest) = match data {
            [ADDRESS, CONTROL, rest @ ..] => (true, rest),
            _ => (false, data),
        };
        match rest {
            [] => Err(PppWireError::Truncated),
            [first, payload @ ..] if first & 1 == 1 => Ok(Frame {
                protocol: u16::from(*first),
                address_control,
                protocol_compressed: true,
                payload,
            }),
            [high, low, payload @ ..] => Ok(Frame {
                protocol: u16::from_be_bytes([*high, *low]),
                address_control,
                protocol_compressed: false,
                payload,
            }),
            [_] => Err(PppWireError::Truncated),
        }
    }

    /// The protocol as an open enum.
    pub fn protocol(&self) -> Protocol {
        Protocol::from(self.protocol)
    }

    /// The header that reproduces this frame's framing.
    pub fn header(&self) -> FrameHeader {
        FrameHeader {
            protocol: self.protocol,
            acfc: !self.address_control,
            pfc: self.protocol_compressed,
        }
    }
}

/// What to write in front of an outgoing PPP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    /// The Protocol field value.
    pub protocol: u16,
    /// Leave out Address and Control (ACFC negotiated).
    pub acfc: bool,
    /// Write a one-octet Protocol field when the value allows (PFC
    /// negotiated).
    pub pfc: bool,
}

impl FrameHeader {
    /// Header for `protocol` under the negotiated compressions.
    ///
    /// LCP frames are never compressed: RFC 1661 §6.6 says Address and
    /// Control "MUST NOT be compressed when sending any LCP packet", and §6.5
    /// that the Protocol field of LCP packets is never compressed either, so
    /// LCP still works after compression was agreed.
    pub fn new(protocol: u16, acfc: bool, pfc: bool) -> Self {
        let lcp = protocol == self::protocol::LCP;
        FrameHeader {
            protocol,
            acfc: acfc && !lcp,
            pfc: pfc && !lcp,
        }
    }

    /// Whether the Protocol field goes out as one octet: PFC is on and
    /// (RFC 1661 §6.5) the most significant octet is zero. The remaining
    /// octet is odd for every valid protocol, which is what lets the
    /// receiver tell the forms apart. One corner stays uncompressed: a
    /// lone 0xff (protocol 0x00ff) without Address/Control would read back
    /// as an Address field when the Information starts with 0x03.
    fn one_octet_protocol(&self) -> bool {
        self.pfc
            && self.protocol < 0x100
            && self.protocol & 1 == 1
            && !(self.acfc && self.protocol == 0x00ff)
    }

    /// Bytes the header takes.
    pub fn header_len(&self) -> usize {
        let address_control = if self.acfc { 0 } else { 2 };
        let protocol = if self.one_octet_protocol() { 1 } else { 2 };
        address_control + protocol
    }

    /// Write the header into the front of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, PppWireError> {
        let len = self.header_len();
        let Some(out) = buf.get_mut(..len) else {
            return Err(PppWireError::BufferTooSmall);
        };
        let mut at = 0;
        if !self.acfc {
            out[0] = ADDRESS;
            out[1] = CONTROL;
            at = 2;
        }
        if self.one_octet_protocol() {
            out[at] = self.protocol as u8;
        } else {
            out[at..at + 2].copy_from_slice(&self.protocol.to_be_bytes());
        }
        Ok(len)
    }

    /// Append the header to `out`; returns its length.
    pub fn emit_vec(&self, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        out.resize(start + self.header_len(), 0);
        // The slice was just sized for the header, so emit cannot fail.
        self.emit(&mut out[start..]).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ppp::hex;

    #[test]
    fn full_header_from_capture() {
        // xl2tpd capture frame 9 after the 6-byte L2TP header: l2tpns's first
        // LCP Configure-Request.
        let bytes = hex(concat!(
            "ff03",     // address, control
            "c021",     // protocol LCP
            "0101001e", // code, id, length (payload, not parsed here)
            "010405b60305c2230505066b0900f41104064e1307020a6200fe",
        ));
        let frame = Frame::parse(&bytes).unwrap();
        assert_eq!(frame.protocol(), Protocol::Lcp);
        assert!(frame.address_control && !frame.protocol_compressed);
        assert_eq!(frame.payload, &bytes[4..]);
        let mut buf = [0xa5u8; 4];
        assert_eq!(frame.header().emit(&mut buf).unwrap(), 4);
        assert_eq!(buf, bytes[..4]);
    }

    #[test]
    fn compressed_forms() {
        // ACFC + PFC: IPv4 as a single odd octet.
        let frame = Frame::parse(&[0x21, 0x45, 0x00]).unwrap();
        assert_eq!(frame.protocol(), Protocol::Ipv4);
        assert!(!frame.address_control && frame.protocol_compressed);
        assert_eq!(frame.payload, &[0x45, 0x00]);
        // ACFC only.
        let frame = Frame::parse(&[0x80, 0x21, 0x01]).unwrap();
        assert_eq!(frame.protocol(), Protocol::Ipcp);
        assert!(!frame.address_control && !frame.protocol_compressed);
        // PFC only.
        let frame = Frame::parse(&[0xff, 0x03, 0x57]).unwrap();
        assert_eq!(frame.protocol(), Protocol::Ipv6);
        assert!(frame.address_control && frame.protocol_compressed);
        assert!(frame.payload.is_empty());
        // Uncompressed 0x0021 is also fine.
        assert_eq!(Frame::parse(&[0x00, 0x21]).unwrap().protocol, 0x0021);
    }

    #[test]
    fn emit_forms() {
        let cases: [(FrameHeader, &[u8]); 5] = [
            (
                FrameHeader::new(protocol::IPV4, false, false),
                &[0xff, 0x03, 0x00, 0x21],
            ),
            (FrameHeader::new(protocol::IPV4, true, true), &[0x21]),
            (
                FrameHeader::new(protocol::IPV6, false, true),
                &[0xff, 0x03, 0x57],
            ),
            (FrameHeader::new(protocol::IPCP, true, true), &[0x80, 0x21]),
            // LCP ignores both compressions.
            (
                FrameHeader::new(protocol::LCP, true, true),
                &[0xff, 0x03, 0xc0, 0x21],
            ),
        ];
        for (header, expected) in cases {
            let mut out = vec![0xa5];
            assert_eq!(header.emit_vec(&mut out), expected.len());
            assert_eq!(&out[1..], expected);
            // Parsing gives back a header that writes the same bytes.
            let frame = Frame::parse(expected).unwrap();
            assert_eq!(frame.protocol, header.protocol);
            let mut again = vec![];
            frame.header().emit_vec(&mut again);
            assert_eq!(again, expected);
        }
        assert_eq!(
            FrameHeader::new(protocol::LCP, false, false).emit(&mut [0; 3]),
            Err(PppWireError::BufferTooSmall)
        );
    }

    #[test]
    fn odd_and_short_inputs() {
        assert_eq!(Frame::parse(&[]), Err(PppWireError::Truncated));
        assert_eq!(Frame::parse(&[0xff, 0x03]), Err(PppWireError::Truncated));
        assert_eq!(
            Frame::parse(&[0xff, 0x03, 0xc0]),
            Err(PppWireError::Truncated)
        );
        // 0xff not followed by 0x03: compressed Address/Control, and 0xff is
        // odd, so a one-octet (unknown) protocol.
        let frame = Frame::parse(&[0xff, 0x05]).unwrap();
        assert_eq!(frame.protocol(), Protocol::Unknown(0xff));
        // Even low octet: unrecognized, not an error.
        let frame = Frame::parse(&[0xc0, 0x20]).unwrap();
        assert_eq!(frame.protocol(), Protocol::Unknown(0xc020));
    }
}
