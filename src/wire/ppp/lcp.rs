//! LCP: typed configuration options (RFC 1661 §6, ACCM from RFC 1662 §7.1)
//! and the Data of the LCP-only codes (RFC 1661 §5.6–§5.9).

use super::cp::{Code, Packet, HEADER_LEN};
use super::frame::protocol;
use super::options::{CpOption, OptionWriter, RawOption};
use super::PppWireError;

/// Option types of LCP that this codec types.
pub mod kind {
    /// Maximum-Receive-Unit (RFC 1661 §6.1).
    pub const MRU: u8 = 1;
    /// Async-Control-Character-Map (RFC 1662 §7.1).
    pub const ACCM: u8 = 2;
    /// Authentication-Protocol (RFC 1661 §6.2).
    pub const AUTH_PROTOCOL: u8 = 3;
    /// Quality-Protocol (RFC 1661 §6.3).
    pub const QUALITY_PROTOCOL: u8 = 4;
    /// Magic-Number (RFC 1661 §6.4).
    pub const MAGIC_NUMBER: u8 = 5;
    /// Protocol-Field-Compression (RFC 1661 §6.5).
    pub const PFC: u8 = 7;
    /// Address-and-Control-Field-Compression (RFC 1661 §6.6).
    pub const ACFC: u8 = 8;
}

/// CHAP algorithm octet for MD5 (RFC 1994 §3).
pub const CHAP_MD5: u8 = 5;
/// CHAP algorithm octet for MS-CHAPv2 (RFC 2759 §2).
pub const CHAP_MSCHAPV2: u8 = 0x81;

/// One LCP configuration option.
///
/// Options this codec does not type (Multilink MRRU 17, Endpoint
/// Discriminator 19, Callback, ...) are `Unknown` and emit back byte for
/// byte, ready for a Configure-Reject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LcpOption {
    /// §6.1: the largest Information field the sender can receive.
    Mru(u16),
    /// RFC 1662 §7.1: control characters to escape on async links.
    Accm(u32),
    /// §6.2: the authentication protocol the sender wants the peer to use,
    /// plus protocol-specific data (for CHAP the algorithm octet).
    AuthProtocol {
        /// PAP 0xc023, CHAP 0xc223, ...
        protocol: u16,
        /// The rest of the option.
        data: Vec<u8>,
    },
    /// §6.3: link quality monitoring protocol.
    QualityProtocol {
        /// Protocol number (LQR 0xc025).
        protocol: u16,
        /// The rest of the option.
        data: Vec<u8>,
    },
    /// §6.4: loopback detection.
    MagicNumber(u32),
    /// §6.5: the sender can receive one-octet Protocol fields.
    Pfc,
    /// §6.6: the sender can receive frames without Address/Control.
    Acfc,
    /// Any other type, kept verbatim.
    Unknown {
        /// Type octet.
        kind: u8,
        /// Data after Type and Length.
        data: Vec<u8>,
    },
}

/// The authentication methods an LNS negotiates, read from or written to an
/// Authentication-Protocol option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// RFC 1334 PAP (no data).
    Pap,
    /// RFC 1994 CHAP with MD5 (algorithm 5).
    ChapMd5,
    /// RFC 2759 MS-CHAPv2 (CHAP with algorithm 0x81).
    MsChapV2,
}

impl AuthMethod {
    /// The method an Authentication-Protocol option names, if we know it.
    pub fn from_option(protocol: u16, data: &[u8]) -> Option<Self> {
        match (protocol, data) {
            (protocol::PAP, []) => Some(AuthMethod::Pap),
            (protocol::CHAP, [CHAP_MD5]) => Some(AuthMethod::ChapMd5),
            (protocol::CHAP, [CHAP_MSCHAPV2]) => Some(AuthMethod::MsChapV2),
            _ => None,
        }
    }

    /// The Authentication-Protocol option that asks for this method.
    pub fn option(self) -> LcpOption {
        let (protocol, data) = match self {
            AuthMethod::Pap => (protocol::PAP, vec![]),
            AuthMethod::ChapMd5 => (protocol::CHAP, vec![CHAP_MD5]),
            AuthMethod::MsChapV2 => (protocol::CHAP, vec![CHAP_MSCHAPV2]),
        };
        LcpOption::AuthProtocol { protocol, data }
    }
}

fn be_u16(data: &[u8]) -> u16 {
    u16::from_be_bytes([data[0], data[1]])
}

fn be_u32(data: &[u8]) -> u32 {
    u32::from_be_bytes([data[0], data[1], data[2], data[3]])
}

impl LcpOption {
    /// The authentication method of an Authentication-Protocol option.
    pub fn auth_method(&self) -> Option<AuthMethod> {
        match self {
            LcpOption::AuthProtocol { protocol, data } => AuthMethod::from_option(*protocol, data),
            _ => None,
        }
    }
}

impl CpOption for LcpOption {
    fn parse(raw: &RawOption<'_>) -> Result<Self, PppWireError> {
        let data = raw.data;
        let wrong = PppWireError::OptionLength { kind: raw.kind };
        // Each arm checks the exact (or minimum) Length its section gives.
        Ok(match raw.kind {
            kind::MRU if data.len() == 2 => LcpOption::Mru(be_u16(data)),
            kind::ACCM if data.len() == 4 => LcpOption::Accm(be_u32(data)),
            kind::AUTH_PROTOCOL if data.len() >= 2 => LcpOption::AuthProtocol {
                protocol: be_u16(data),
                data: data[2..].to_vec(),
            },
            kind::QUALITY_PROTOCOL if data.len() >= 2 => LcpOption::QualityProtocol {
                protocol: be_u16(data),
                data: data[2..].to_vec(),
            },
            kind::MAGIC_NUMBER if data.len() == 4 => LcpOption::MagicNumber(be_u32(data)),
            kind::PFC if data.is_empty() => LcpOption::Pfc,
            kind::ACFC if data.is_empty() => LcpOption::Acfc,
            kind::MRU
            | kind::ACCM
            | kind::AUTH_PROTOCOL
            | kind::QUALITY_PROTOCOL
            | kind::MAGIC_NUMBER
            | kind::PFC
            | kind::ACFC => return Err(wrong),
            kind => LcpOption::Unknown {
                kind,
                data: data.to_vec(),
            },
        })
    }

    fn kind(&self) -> u8 {
        match self {
            LcpOption::Mru(_) => kind::MRU,
            LcpOption::Accm(_) => kind::ACCM,
            LcpOption::AuthProtocol { .. } => kind::AUTH_PROTOCOL,
            LcpOption::QualityProtocol { .. } => kind::QUALITY_PROTOCOL,
            LcpOption::MagicNumber(_) => kind::MAGIC_NUMBER,
            LcpOption::Pfc => kind::PFC,
            LcpOption::Acfc => kind::ACFC,
            LcpOption::Unknown { kind, .. } => *kind,
        }
    }

    fn emit(&self, writer: &mut OptionWriter<'_>) -> Result<(), PppWireError> {
        let kind = self.kind();
        match self {
            LcpOption::Mru(mru) => writer.push(kind, &mru.to_be_bytes()),
            LcpOption::Accm(value) | LcpOption::MagicNumber(value) => {
                writer.push(kind, &value.to_be_bytes())
            }
            LcpOption::AuthProtocol { protocol, data }
            | LcpOption::QualityProtocol { protocol, data } => {
                let mut value = Vec::with_capacity(2 + data.len());
                value.extend_from_slice(&protocol.to_be_bytes());
                value.extend_from_slice(data);
                writer.push(kind, &value)
            }
            LcpOption::Pfc | LcpOption::Acfc => writer.push(kind, &[]),
            LcpOption::Unknown { data, .. } => writer.push(kind, data),
        }
    }
}

/// Data of Echo-Request, Echo-Reply (§5.8) and Discard-Request (§5.9):
/// the sender's Magic-Number (zero when none was negotiated), then anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoData<'a> {
    /// The sender's Magic-Number.
    pub magic: u32,
    /// Uninterpreted data after it.
    pub data: &'a [u8],
}

impl<'a> EchoData<'a> {
    /// Read the Data field of an Echo or Discard packet.
    pub fn parse(data: &'a [u8]) -> Result<Self, PppWireError> {
        match data.split_first_chunk::<4>() {
            Some((magic, rest)) => Ok(EchoData {
                magic: u32::from_be_bytes(*magic),
                data: rest,
            }),
            None => Err(PppWireError::Truncated),
        }
    }

    /// Append the Data field.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.magic.to_be_bytes());
        out.extend_from_slice(self.data);
    }

    /// The Echo-Reply to this Echo-Request's data: §5.8 has the replier put
    /// its own Magic-Number and copy the rest of the Data unchanged.
    pub fn reply(&self, own_magic: u32) -> EchoData<'a> {
        EchoData {
            magic: own_magic,
            data: self.data,
        }
    }
}

/// Data of a Protocol-Reject (§5.7): the rejected protocol, then a copy of
/// the rejected packet's Information field (truncated to fit the peer's MRU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolRejectData<'a> {
    /// The PPP Protocol field of the rejected frame.
    pub protocol: u16,
    /// Its Information field (as much as fits).
    pub information: &'a [u8],
}

impl<'a> ProtocolRejectData<'a> {
    /// Read the Data field of a Protocol-Reject.
    pub fn parse(data: &'a [u8]) -> Result<Self, PppWireError> {
        match data.split_first_chunk::<2>() {
            Some((protocol, rest)) => Ok(ProtocolRejectData {
                protocol: u16::from_be_bytes(*protocol),
                information: rest,
            }),
            None => Err(PppWireError::Truncated),
        }
    }

    /// Append the Data field, cutting the Information so the whole Data is
    /// at most `max_data` octets (§5.7: the rejected information "MUST be
    /// truncated to comply with the peer's established MRU").
    pub fn emit(&self, out: &mut Vec<u8>, max_data: usize) {
        out.extend_from_slice(&self.protocol.to_be_bytes());
        let room = max_data.saturating_sub(2).min(self.information.len());
        out.extend_from_slice(&self.information[..room]);
    }
}

/// Data of a Code-Reject (§5.6): a copy of the rejected packet, from its
/// Code field on, possibly truncated to fit the MRU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeRejectData<'a> {
    /// The rejected packet's bytes.
    pub rejected: &'a [u8],
}

impl<'a> CodeRejectData<'a> {
    /// Read the Data field of a Code-Reject; any bytes are valid.
    pub fn parse(data: &'a [u8]) -> Self {
        CodeRejectData { rejected: data }
    }

    /// The Code of the rejected packet, when one is there.
    pub fn rejected_code(&self) -> Option<Code> {
        self.rejected.first().map(|&code| Code::from(code))
    }

    /// The Identifier of the rejected packet, when one is there.
    pub fn rejected_identifier(&self) -> Option<u8> {
        self.rejected.get(1).copied()
    }

    /// Data of a Code-Reject for `packet`, cut to at most `max_data` octets.
    pub fn for_packet<T: AsRef<[u8]>>(packet: &'a Packet<T>, max_data: usize) -> Self {
        let bytes = packet.packet_bytes();
        CodeRejectData {
            rejected: &bytes[..max_data.max(HEADER_LEN).min(bytes.len())],
        }
    }

    /// Append the Data field.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.rejected);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ppp::cp::{self, Repr};
    use crate::wire::ppp::frame::Frame;
    use crate::wire::ppp::hex;
    use crate::wire::ppp::options::{emit_all, parse_all, OptionIter};

    /// Frame → control packet → typed options, then all the way back.
    fn round_trip(frame_hex: &str, code: Code, identifier: u8, expected: &[LcpOption]) {
        let bytes = hex(frame_hex);
        let frame = Frame::parse(&bytes).unwrap();
        assert_eq!(frame.protocol, protocol::LCP);
        let repr = Repr::parse_bytes(frame.payload).unwrap();
        assert_eq!((repr.code, repr.identifier), (code, identifier));
        let options: Vec<LcpOption> = parse_all(repr.data).unwrap();
        assert_eq!(options, expected);

        let mut out = vec![];
        frame.header().emit_vec(&mut out);
        cp::emit_with(code.into(), identifier, &mut out, |data| {
            emit_all(&options, data).unwrap()
        })
        .unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn l2tpns_request_with_multilink_options() {
        // xl2tpd capture frame 9, after the 6-byte L2TP data header.
        round_trip(
            concat!(
                "ff03c021",       // frame header, LCP
                "0101001e",       // Configure-Request, id 1, length 30
                "010405b6",       // MRU 1462
                "0305c22305",     // Authentication-Protocol CHAP, MD5
                "05066b0900f4",   // Magic-Number
                "1104064e",       // MRRU 1614 (RFC 1990): not typed here
                "1307020a6200fe", // Endpoint Discriminator (RFC 1990), class 2
            ),
            Code::ConfigureRequest,
            1,
            &[
                LcpOption::Mru(1462),
                AuthMethod::ChapMd5.option(),
                LcpOption::MagicNumber(0x6b09_00f4),
                LcpOption::Unknown {
                    kind: 0x11,
                    data: vec![0x06, 0x4e],
                },
                LcpOption::Unknown {
                    kind: 0x13,
                    data: hex("020a6200fe"),
                },
            ],
        );
    }

    #[test]
    fn probe_reject_of_multilink_options() {
        // Probe capture frame 64 (the scripted client): Configure-Reject of
        // exactly the two options l2tpns's request carried unknown.
        round_trip(
            concat!(
                "ff03c021",       // frame header
                "0401000f",       // Configure-Reject, id 1, length 15
                "1104064e",       // MRRU, verbatim
                "1307020a6200fe", // Endpoint Discriminator, verbatim
            ),
            Code::ConfigureReject,
            1,
            &[
                LcpOption::Unknown {
                    kind: 0x11,
                    data: vec![0x06, 0x4e],
                },
                LcpOption::Unknown {
                    kind: 0x13,
                    data: hex("020a6200fe"),
                },
            ],
        );
    }

    #[test]
    fn reject_built_from_raw_options_is_byte_exact() {
        // What an LNS does with a request it cannot fully accept: copy the
        // raw bytes of every untyped option into the Configure-Reject.
        let request = hex("010405b60305c2230505066b0901101104064e1307020a6200fe");
        let mut reject = vec![];
        let mut writer = crate::wire::ppp::OptionWriter::new(&mut reject);
        for raw in OptionIter::new(&request) {
            let raw = raw.unwrap();
            if let Ok(LcpOption::Unknown { .. }) = LcpOption::parse(&raw) {
                writer.push_raw(&raw);
            }
        }
        assert_eq!(reject, hex("1104064e1307020a6200fe"));
    }

    #[test]
    fn l2tpns_pap_request_and_client_nak() {
        // Probe frame 661: l2tpns asks for PAP after the client's Nak.
        round_trip(
            concat!(
                "ff03c021",     // frame header
                "01030012",     // Configure-Request, id 3, length 18
                "010405b6",     // MRU 1462
                "0304c023",     // Authentication-Protocol PAP
                "05066b090113", // Magic-Number
            ),
            Code::ConfigureRequest,
            3,
            &[
                LcpOption::Mru(1462),
                AuthMethod::Pap.option(),
                LcpOption::MagicNumber(0x6b09_0113),
            ],
        );
        // Probe frame 660 (the client): Configure-Nak suggesting PAP.
        round_trip(
            concat!(
                "ff03c021", // frame header
                "03020008", // Configure-Nak, id 2, length 8
                "0304c023", // Authentication-Protocol PAP
            ),
            Code::ConfigureNak,
            2,
            &[AuthMethod::Pap.option()],
        );
    }

    #[test]
    fn every_typed_option_both_ways() {
        let data = hex(concat!(
            "010405dc",         // MRU 1500
            "020600000000",     // ACCM 0
            "0305c22381",       // CHAP MS-CHAPv2
            "0408c025000003e8", // Quality-Protocol LQR, period 1000
            "050612345678",     // Magic-Number
            "0702",             // PFC
            "0802",             // ACFC
            "0d0306",           // Callback (RFC 1570): unknown here
        ));
        let options: Vec<LcpOption> = parse_all(&data).unwrap();
        assert_eq!(
            options,
            [
                LcpOption::Mru(1500),
                LcpOption::Accm(0),
                LcpOption::AuthProtocol {
                    protocol: protocol::CHAP,
                    data: vec![CHAP_MSCHAPV2]
                },
                LcpOption::QualityProtocol {
                    protocol: 0xc025,
                    data: vec![0, 0, 3, 0xe8]
                },
                LcpOption::MagicNumber(0x1234_5678),
                LcpOption::Pfc,
                LcpOption::Acfc,
                LcpOption::Unknown {
                    kind: 13,
                    data: vec![6]
                },
            ]
        );
        assert_eq!(options[2].auth_method(), Some(AuthMethod::MsChapV2));
        let mut out = vec![];
        emit_all(&options, &mut out).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn wrong_lengths_are_errors_with_raw_bytes_kept() {
        for (bytes, kind) in [
            (&[1u8, 3, 5][..], 1u8),
            (&[2, 4, 0, 0], 2),
            (&[3, 3, 0xc0], 3),
            (&[4, 2], 4),
            (&[5, 5, 1, 2, 3], 5),
            (&[7, 3, 0], 7),
            (&[8, 4, 0, 0], 8),
        ] {
            let raw = OptionIter::new(bytes).next().unwrap().unwrap();
            assert_eq!(
                LcpOption::parse(&raw),
                Err(PppWireError::OptionLength { kind })
            );
            assert_eq!(raw.bytes, bytes);
        }
    }

    #[test]
    fn echo_and_rejects() {
        // Echo-Request id 7, magic 0x6b090110, 3 bytes of data.
        let packet = hex(concat!("0907", "000b", "6b090110", "616263"));
        let repr = Repr::parse_bytes(&packet).unwrap();
        assert_eq!(repr.code, Code::EchoRequest);
        let echo = EchoData::parse(repr.data).unwrap();
        assert_eq!(echo.magic, 0x6b09_0110);
        assert_eq!(echo.data, b"abc");
        let mut out = vec![];
        cp::emit_with(Code::EchoReply.into(), 7, &mut out, |d| {
            echo.reply(0x47c0_f312).emit(d)
        })
        .unwrap();
        assert_eq!(out, hex("0a07000b47c0f312616263"));
        assert_eq!(EchoData::parse(&[1, 2, 3]), Err(PppWireError::Truncated));

        // Protocol-Reject of an IPv6CP packet (id 1, length 4).
        let data = hex(concat!("8057", "01010004"));
        let reject = ProtocolRejectData::parse(&data).unwrap();
        assert_eq!(reject.protocol, protocol::IPV6CP);
        assert_eq!(reject.information, &data[2..]);
        let mut out = vec![];
        reject.emit(&mut out, 1500);
        assert_eq!(out, data);
        let mut out = vec![];
        reject.emit(&mut out, 4);
        assert_eq!(out, data[..4]);
        assert_eq!(
            ProtocolRejectData::parse(&[0x80]),
            Err(PppWireError::Truncated)
        );

        // Code-Reject of an unknown code 0x20 with padding after Length.
        let unknown = [0x20, 0x05, 0x00, 0x06, 0xaa, 0xbb, 0x00];
        let view = cp::Packet::new_checked(&unknown[..]).unwrap();
        let reject = CodeRejectData::for_packet(&view, 1500);
        assert_eq!(reject.rejected, &unknown[..6]);
        assert_eq!(reject.rejected_code(), Some(Code::Unknown(0x20)));
        assert_eq!(reject.rejected_identifier(), Some(5));
        assert_eq!(CodeRejectData::for_packet(&view, 5).rejected, &unknown[..5]);
        let mut out = vec![];
        reject.emit(&mut out);
        assert_eq!(CodeRejectData::parse(&out), reject);
        assert_eq!(CodeRejectData::parse(&[]).rejected_code(), None);
    }
}
