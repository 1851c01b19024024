//! CHAP packets (RFC 1994 §4) and the MS-CHAPv2 pieces carried inside them
//! (RFC 2759 §4–§6).
//!
//! ```text
//! Challenge/Response: | 1/2 | Id | Length | Value-Size | Value | Name |
//! Success/Failure:    | 3/4 | Id | Length | Message |
//! ```

use super::cp::{self, Packet};
use super::PppWireError;

/// CHAP codes (RFC 1994 §4).
pub mod code {
    /// Challenge.
    pub const CHALLENGE: u8 = 1;
    /// Response.
    pub const RESPONSE: u8 = 2;
    /// Success.
    pub const SUCCESS: u8 = 3;
    /// Failure.
    pub const FAILURE: u8 = 4;
}

/// A CHAP packet, borrowing its fields from the received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chap<'a> {
    /// §4.1: the authenticator's challenge value and its name.
    Challenge {
        /// Identifier (the Response must echo it).
        identifier: u8,
        /// Challenge value.
        value: &'a [u8],
        /// The authenticator's name (the rest of the packet).
        name: &'a [u8],
    },
    /// §4.1: the peer's hash (or, for MS-CHAPv2, a 49-octet structure) and
    /// its name.
    Response {
        /// Identifier of the challenge.
        identifier: u8,
        /// Response value.
        value: &'a [u8],
        /// The peer's name (the rest of the packet).
        name: &'a [u8],
    },
    /// §4.2: authentication succeeded.
    Success {
        /// Identifier of the response.
        identifier: u8,
        /// Message (for MS-CHAPv2, see [`MsChapV2Success`]).
        message: &'a [u8],
    },
    /// §4.2: authentication failed.
    Failure {
        /// Identifier of the response.
        identifier: u8,
        /// Message (for MS-CHAPv2, see [`MsChapV2Failure`]).
        message: &'a [u8],
    },
    /// Any other code.
    Unknown {
        /// Code.
        code: u8,
        /// Identifier.
        identifier: u8,
        /// Data.
        data: &'a [u8],
    },
}

impl<'a> Chap<'a> {
    /// Parse a CHAP packet (the Information field of a 0xc223 frame).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, PppWireError> {
        let packet = Packet::new_checked(bytes)?;
        let identifier = packet.identifier();
        let data = &bytes[cp::HEADER_LEN..usize::from(packet.length())];
        let value_and_name = || -> Result<(&'a [u8], &'a [u8]), PppWireError> {
            let (&size, rest) = data.split_first().ok_or(PppWireError::Truncated)?;
            rest.split_at_checked(usize::from(size))
                .ok_or(PppWireError::Truncated)
        };
        Ok(match packet.code_byte() {
            code::CHALLENGE => {
                let (value, name) = value_and_name()?;
                Chap::Challenge {
                    identifier,
                    value,
                    name,
                }
            }
            code::RESPONSE => {
                let (value, name) = value_and_name()?;
                Chap::Response {
                    identifier,
                    value,
                    name,
                }
            }
            code::SUCCESS => Chap::Success {
                identifier,
                message: data,
            },
            code::FAILURE => Chap::Failure {
                identifier,
                message: data,
            },
            code => Chap::Unknown {
                code,
                identifier,
                data,
            },
        })
    }

    /// Append the packet to `out`; returns its length.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<usize, PppWireError> {
        let (code, identifier, value, rest) = match *self {
            Chap::Challenge {
                identifier,
                value,
                name,
            } => (code::CHALLENGE, identifier, Some(value), name),
            Chap::Response {
                identifier,
                value,
                name,
            } => (code::RESPONSE, identifier, Some(value), name),
            Chap::Success {
                identifier,
                message,
            } => (code::SUCCESS, identifier, None, message),
            Chap::Failure {
                identifier,
                message,
            } => (code::FAILURE, identifier, None, message),
            Chap::Unknown {
                code,
                identifier,
                data,
            } => (code, identifier, None, data),
        };
        let size = match value {
            Some(value) => Some(u8::try_from(value.len()).map_err(|_| PppWireError::FieldTooLong)?),
            None => None,
        };
        cp::emit_with(code, identifier, out, |out| {
            if let (Some(size), Some(value)) = (size, value) {
                out.push(size);
                out.extend_from_slice(value);
            }
            out.extend_from_slice(rest);
        })
    }

    /// The Identifier.
    pub fn identifier(&self) -> u8 {
        match self {
            Chap::Challenge { identifier, .. }
            | Chap::Response { identifier, .. }
            | Chap::Success { identifier, .. }
            | Chap::Failure { identifier, .. }
            | Chap::Unknown { identifier, .. } => *identifier,
        }
    }
}

/// Length of an MS-CHAPv2 Response value (RFC 2759 §4).
pub const MSCHAPV2_RESPONSE_LEN: usize = 49;

/// The Value of an MS-CHAPv2 Response packet (RFC 2759 §4).
///
/// ```text
/// | Peer-Challenge (16) | Reserved (8, zero) | NT-Response (24) | Flags (1, zero) |
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MsChapV2Response {
    /// Random challenge chosen by the peer.
    pub peer_challenge: [u8; 16],
    /// Must be zero; kept as received.
    pub reserved: [u8; 8],
    /// The hash proving the password.
    pub nt_response: [u8; 24],
    /// Must be zero; kept as received.
    pub flags: u8,
}

impl MsChapV2Response {
    /// A response with the reserved octets and flags zero.
    pub fn new(peer_challenge: [u8; 16], nt_response: [u8; 24]) -> Self {
        MsChapV2Response {
            peer_challenge,
            reserved: [0; 8],
            nt_response,
            flags: 0,
        }
    }

    /// Read a Response value; it must be exactly 49 octets.
    pub fn parse(value: &[u8]) -> Result<Self, PppWireError> {
        let value: &[u8; MSCHAPV2_RESPONSE_LEN] =
            value.try_into().map_err(|_| PppWireError::BadLength)?;
        let mut response = MsChapV2Response::new([0; 16], [0; 24]);
        response.peer_challenge.copy_from_slice(&value[0..16]);
        response.reserved.copy_from_slice(&value[16..24]);
        response.nt_response.copy_from_slice(&value[24..48]);
        response.flags = value[48];
        Ok(response)
    }

    /// The 49-octet Response value.
    pub fn to_bytes(&self) -> [u8; MSCHAPV2_RESPONSE_LEN] {
        let mut value = [0; MSCHAPV2_RESPONSE_LEN];
        value[0..16].copy_from_slice(&self.peer_challenge);
        value[16..24].copy_from_slice(&self.reserved);
        value[24..48].copy_from_slice(&self.nt_response);
        value[48] = self.flags;
        value
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    for b in bytes {
        out.push(HEX_UPPER[usize::from(b >> 4)]);
        out.push(HEX_UPPER[usize::from(b & 0x0f)]);
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decode exactly `N` bytes of hex (either case).
fn parse_hex<const N: usize>(text: &[u8]) -> Result<[u8; N], PppWireError> {
    if text.len() != 2 * N {
        return Err(PppWireError::BadMessage);
    }
    let mut out = [0; N];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        match (hex_digit(pair[0]), hex_digit(pair[1])) {
            (Some(high), Some(low)) => *byte = high << 4 | low,
            _ => return Err(PppWireError::BadMessage),
        }
    }
    Ok(out)
}

/// Decode a decimal number that fits a u32.
fn parse_decimal(text: &[u8]) -> Result<u32, PppWireError> {
    if text.is_empty() {
        return Err(PppWireError::BadMessage);
    }
    text.iter().try_fold(0u32, |acc, &c| {
        let digit = c.checked_sub(b'0').filter(|d| *d < 10);
        digit
            .and_then(|d| acc.checked_mul(10)?.checked_add(u32::from(d)))
            .ok_or(PppWireError::BadMessage)
    })
}

/// The Message of an MS-CHAPv2 Success packet (RFC 2759 §5):
/// `S=<auth_string> M=<message>`, where auth_string is the 20-octet
/// Authenticator Response in 40 upper-case hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsChapV2Success<'a> {
    /// The Authenticator Response that proves the server knew the password.
    pub authenticator_response: [u8; 20],
    /// Text after ` M=`; `None` when the peer sent only `S=...` (some
    /// servers do).
    pub message: Option<&'a [u8]>,
}

impl<'a> MsChapV2Success<'a> {
    /// Parse a Success message. Hex digits of either case are accepted.
    pub fn parse(text: &'a [u8]) -> Result<Self, PppWireError> {
        let rest = text.strip_prefix(b"S=").ok_or(PppWireError::BadMessage)?;
        let (auth, rest) = rest.split_at_checked(40).ok_or(PppWireError::BadMessage)?;
        let message = match rest {
            [] => None,
            _ => Some(rest.strip_prefix(b" M=").ok_or(PppWireError::BadMessage)?),
        };
        Ok(MsChapV2Success {
            authenticator_response: parse_hex(auth)?,
            message,
        })
    }

    /// Append the message text.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"S=");
        push_hex(out, &self.authenticator_response);
        if let Some(message) = self.message {
            out.extend_from_slice(b" M=");
            out.extend_from_slice(message);
        }
    }
}

/// MS-CHAPv2 failure codes (RFC 2759 §6).
pub mod failure {
    /// Logon outside the allowed hours.
    pub const RESTRICTED_LOGON_HOURS: u32 = 646;
    /// Account disabled.
    pub const ACCT_DISABLED: u32 = 647;
    /// Password expired.
    pub const PASSWD_EXPIRED: u32 = 648;
    /// No dial-in permission.
    pub const NO_DIALIN_PERMISSION: u32 = 649;
    /// Wrong name or password.
    pub const AUTHENTICATION_FAILURE: u32 = 691;
    /// Password change failed.
    pub const CHANGING_PASSWORD: u32 = 709;
}

/// The Message of an MS-CHAPv2 Failure packet (RFC 2759 §6):
/// `E=eeeeeeeeee R=r C=cccccccccccccccccccccccccccccccc V=vvvvvvvvvv M=<msg>`.
///
/// Only `E=` is required on receive: older servers leave out `C=`, `V=` or
/// `M=`. Fields come in the RFC's order; `M=` takes the rest of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsChapV2Failure<'a> {
    /// E: the error code (see [`failure`]).
    pub error: u32,
    /// R: whether the peer may retry (absent reads as false).
    pub retry: bool,
    /// C: a new 16-octet challenge for the retry.
    pub challenge: Option<[u8; 16]>,
    /// V: the password-change protocol version (3 in RFC 2759).
    pub version: Option<u32>,
    /// M: text for humans.
    pub message: Option<&'a [u8]>,
}

impl<'a> MsChapV2Failure<'a> {
    /// Parse a Failure message.
    pub fn parse(text: &'a [u8]) -> Result<Self, PppWireError> {
        let mut failure = MsChapV2Failure {
            error: 0,
            retry: false,
            challenge: None,
            version: None,
            message: None,
        };
        let mut rest = text;
        // Position of the last field seen, to insist on the RFC's order (so
        // that every accepted text has one meaning).
        let mut last = 0;
        let mut first = true;
        while !rest.is_empty() || first {
            if !first {
                rest = rest.strip_prefix(b" ").ok_or(PppWireError::BadMessage)?;
            }
            if let Some(message) = rest.strip_prefix(b"M=") {
                if first {
                    return Err(PppWireError::BadMessage);
                }
                failure.message = Some(message);
                break;
            }
            let end = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
            let (field, after) = rest.split_at(end);
            rest = after;
            // E= comes first and only first.
            let (order, value) = match (first, field) {
                (true, [b'E', b'=', value @ ..]) => (1, value),
                (false, [b'R', b'=', value @ ..]) => (2, value),
                (false, [b'C', b'=', value @ ..]) => (3, value),
                (false, [b'V', b'=', value @ ..]) => (4, value),
                _ => return Err(PppWireError::BadMessage),
            };
            if order <= last {
                return Err(PppWireError::BadMessage);
            }
            last = order;
            first = false;
            match order {
                1 => failure.error = parse_decimal(value)?,
                2 => {
                    failure.retry = match value {
                        b"0" => false,
                        b"1" => true,
                        _ => return Err(PppWireError::BadMessage),
                    }
                }
                3 => failure.challenge = Some(parse_hex(value)?),
                _ => failure.version = Some(parse_decimal(value)?),
            }
        }
        Ok(failure)
    }

    /// Append the message text.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(format!("E={} R={}", self.error, u8::from(self.retry)).as_bytes());
        if let Some(challenge) = self.challenge {
            out.extend_from_slice(b" C=");
            push_hex(out, &challenge);
        }
        if let Some(version) = self.version {
            out.extend_from_slice(format!(" V={version}").as_bytes());
        }
        if let Some(message) = self.message {
            out.extend_from_slice(b" M=");
            out.extend_from_slice(message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ppp::frame::{protocol, Frame};
    use crate::wire::ppp::hex;

    fn both_ways(frame_hex: &str, expected: Chap<'_>) {
        let bytes = hex(frame_hex);
        let frame = Frame::parse(&bytes).unwrap();
        assert_eq!(frame.protocol, protocol::CHAP);
        assert_eq!(Chap::parse(frame.payload).unwrap(), expected);
        let mut out = vec![];
        frame.header().emit_vec(&mut out);
        expected.emit(&mut out).unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn capture_challenge_response_success() {
        // Probe capture frame 106: l2tpns's challenge.
        both_ways(
            concat!(
                "ff03c223",                         // frame header, CHAP
                "0101001f",                         // Challenge, id 1, length 31
                "10",                               // Value-Size 16
                "1fc9720484f2fe8f8a0184a747d4d001", // Value
                "6c3274706e732d726566",             // Name "l2tpns-ref"
            ),
            Chap::Challenge {
                identifier: 1,
                value: &hex("1fc9720484f2fe8f8a0184a747d4d001"),
                name: b"l2tpns-ref",
            },
        );
        // Frame 113: the scripted client's MD5 response.
        both_ways(
            concat!(
                "ff03c223",                         // frame header
                "0201001a",                         // Response, id 1, length 26
                "10",                               // Value-Size 16
                "5222fcd3d9f3739705b508a2d2f1f673", // MD5(id, secret, challenge)
                "7465737430",                       // Name "test0"
            ),
            Chap::Response {
                identifier: 1,
                value: &hex("5222fcd3d9f3739705b508a2d2f1f673"),
                name: b"test0",
            },
        );
        // Frame 131: l2tpns's Success has no message at all.
        both_ways(
            concat!("ff03c223", "03010004"),
            Chap::Success {
                identifier: 1,
                message: b"",
            },
        );
    }

    #[test]
    fn failure_unknown_and_malformed() {
        let failure = Chap::Failure {
            identifier: 3,
            message: b"bad",
        };
        let mut out = vec![];
        failure.emit(&mut out).unwrap();
        assert_eq!(out, hex("04030007626164"));
        assert_eq!(Chap::parse(&out).unwrap(), failure);
        let unknown = Chap::parse(&[9, 1, 0, 5, 7]).unwrap();
        assert_eq!(unknown.identifier(), 1);
        let mut out = vec![];
        unknown.emit(&mut out).unwrap();
        assert_eq!(out, [9, 1, 0, 5, 7]);
        // Value-Size beyond Length.
        assert_eq!(
            Chap::parse(&hex("010100060501")),
            Err(PppWireError::Truncated)
        );
        // No Value-Size.
        assert_eq!(Chap::parse(&hex("02010004")), Err(PppWireError::Truncated));
        let long = [0u8; 256];
        let challenge = Chap::Challenge {
            identifier: 1,
            value: &long,
            name: b"",
        };
        assert_eq!(challenge.emit(&mut vec![]), Err(PppWireError::FieldTooLong));
    }

    #[test]
    fn mschapv2_response_value() {
        // RFC 2759 §9.2 sample values: Peer-Challenge and NT-Response.
        let value = hex(concat!(
            "21402324255E262A28295F2B3A337C7E", // Peer-Challenge
            "0000000000000000",                 // Reserved
            "82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF", // NT-Response
            "00",                               // Flags
        ));
        let response = MsChapV2Response::parse(&value).unwrap();
        assert_eq!(response.peer_challenge[..2], [0x21, 0x40]);
        assert_eq!(response.nt_response[23], 0xdf);
        assert_eq!(
            response,
            MsChapV2Response::new(response.peer_challenge, response.nt_response)
        );
        assert_eq!(response.to_bytes()[..], value[..]);
        let packet = Chap::Response {
            identifier: 7,
            value: &response.to_bytes(),
            name: b"User",
        };
        let mut out = vec![];
        packet.emit(&mut out).unwrap();
        assert_eq!(out[..5], [2, 7, 0, 58, 49]);
        assert_eq!(
            MsChapV2Response::parse(&value[1..]),
            Err(PppWireError::BadLength)
        );
    }

    #[test]
    fn mschapv2_success_message() {
        // RFC 2759 §9.2: the sample AuthenticatorResponse.
        let text = b"S=407A5589115FD0D6209F510FE9C04566932CDA56 M=Access granted";
        let success = MsChapV2Success::parse(text).unwrap();
        assert_eq!(success.authenticator_response[..2], [0x40, 0x7a]);
        assert_eq!(success.message, Some(&b"Access granted"[..]));
        let mut out = vec![];
        success.emit(&mut out);
        assert_eq!(out, text);
        // Lower-case hex parses; S= alone parses.
        let lower = MsChapV2Success::parse(b"S=407a5589115fd0d6209f510fe9c04566932cda56").unwrap();
        assert_eq!(lower.authenticator_response, success.authenticator_response);
        assert_eq!(lower.message, None);
        for bad in [
            &b""[..],
            b"S=407A",
            b"S=407A5589115FD0D6209F510FE9C04566932CDA5G",
            b"S=407A5589115FD0D6209F510FE9C04566932CDA56M=x",
            b"X=407A5589115FD0D6209F510FE9C04566932CDA56",
        ] {
            assert_eq!(MsChapV2Success::parse(bad), Err(PppWireError::BadMessage));
        }
    }

    #[test]
    fn mschapv2_failure_message() {
        let text = b"E=691 R=1 C=00112233445566778899AABBCCDDEEFF V=3 M=Authentication failure";
        let failure = MsChapV2Failure::parse(text).unwrap();
        assert_eq!(
            failure,
            MsChapV2Failure {
                error: failure::AUTHENTICATION_FAILURE,
                retry: true,
                challenge: Some(hex("00112233445566778899AABBCCDDEEFF").try_into().unwrap()),
                version: Some(3),
                message: Some(b"Authentication failure"),
            }
        );
        let mut out = vec![];
        failure.emit(&mut out);
        assert_eq!(out, text);
        // Short forms from older servers.
        let short = MsChapV2Failure::parse(b"E=646 R=0").unwrap();
        assert_eq!(
            (short.error, short.retry, short.challenge),
            (646, false, None)
        );
        let message_with_spaces = MsChapV2Failure::parse(b"E=1 M=a M=b  c").unwrap();
        assert_eq!(message_with_spaces.message, Some(&b"a M=b  c"[..]));
        for bad in [
            &b""[..],
            b"M=x",
            b"R=1",
            b"E=",
            b"E=12a",
            b"E=99999999999",
            b"E=1 R=2",
            b"E=1 V=3 C=00112233445566778899AABBCCDDEEFF",
            b"E=1 R=1 R=1",
            b"E=1  R=1",
            b"E=1 C=0011",
            b"E=1 X=1",
            b"E=1 ",
        ] {
            assert_eq!(
                MsChapV2Failure::parse(bad),
                Err(PppWireError::BadMessage),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
