//! IPCP configuration options (RFC 1332 §3, DNS/NBNS from RFC 1877 §1).

use std::net::Ipv4Addr;

use super::options::{CpOption, OptionWriter, RawOption};
use super::PppWireError;

/// Option types of IPCP that this codec types.
pub mod kind {
    /// IP-Compression-Protocol (RFC 1332 §3.2).
    pub const IP_COMPRESSION_PROTOCOL: u8 = 2;
    /// IP-Address (RFC 1332 §3.3).
    pub const IP_ADDRESS: u8 = 3;
    /// Primary DNS Server Address (RFC 1877 §1.1).
    pub const PRIMARY_DNS: u8 = 129;
    /// Primary NBNS Server Address (RFC 1877 §1.2).
    pub const PRIMARY_NBNS: u8 = 130;
    /// Secondary DNS Server Address (RFC 1877 §1.3).
    pub const SECONDARY_DNS: u8 = 131;
    /// Secondary NBNS Server Address (RFC 1877 §1.4).
    pub const SECONDARY_NBNS: u8 = 132;
}

/// One IPCP configuration option.
///
/// The deprecated IP-Addresses option (type 1, RFC 1172) and anything else
/// not listed is `Unknown`, kept verbatim for a Configure-Reject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IpcpOption {
    /// RFC 1332 §3.2: header compression (Van Jacobson 0x002d) and its
    /// parameters, kept raw since an LNS rejects it.
    IpCompressionProtocol {
        /// Compression protocol number.
        protocol: u16,
        /// Its parameters.
        data: Vec<u8>,
    },
    /// RFC 1332 §3.3: the sender's address (0.0.0.0 asks the peer to
    /// assign one).
    IpAddress(Ipv4Addr),
    /// RFC 1877 §1.1.
    PrimaryDns(Ipv4Addr),
    /// RFC 1877 §1.2.
    PrimaryNbns(Ipv4Addr),
    /// RFC 1877 §1.3.
    SecondaryDns(Ipv4Addr),
    /// RFC 1877 §1.4.
    SecondaryNbns(Ipv4Addr),
    /// Any other type, kept verbatim.
    Unknown {
        /// Type octet.
        kind: u8,
        /// Data after Type and Length.
        data: Vec<u8>,
    },
}

impl CpOption for IpcpOption {
    fn parse(raw: &RawOption<'_>) -> Result<Self, PppWireError> {
        let data = raw.data;
        let address = <[u8; 4]>::try_from(data).map(Ipv4Addr::from);
        // Every address option is Length 6 (RFC 1332 §3.3, RFC 1877 §1);
        // IP-Compression-Protocol is at least 4 (RFC 1332 §3.2).
        Ok(match (raw.kind, address) {
            (kind::IP_ADDRESS, Ok(a)) => IpcpOption::IpAddress(a),
            (kind::PRIMARY_DNS, Ok(a)) => IpcpOption::PrimaryDns(a),
            (kind::PRIMARY_NBNS, Ok(a)) => IpcpOption::PrimaryNbns(a),
            (kind::SECONDARY_DNS, Ok(a)) => IpcpOption::SecondaryDns(a),
            (kind::SECONDARY_NBNS, Ok(a)) => IpcpOption::SecondaryNbns(a),
            (kind::IP_COMPRESSION_PROTOCOL, _) if data.len() >= 2 => {
                IpcpOption::IpCompressionProtocol {
                    protocol: u16::from_be_bytes([data[0], data[1]]),
                    data: data[2..].to_vec(),
                }
            }
            (
                kind @ (kind::IP_COMPRESSION_PROTOCOL
                | kind::IP_ADDRESS
                | kind::PRIMARY_DNS
                | kind::PRIMARY_NBNS
                | kind::SECONDARY_DNS
                | kind::SECONDARY_NBNS),
                _,
            ) => return Err(PppWireError::OptionLength { kind }),
            (kind, _) => IpcpOption::Unknown {
                kind,
                data: data.to_vec(),
            },
        })
    }

    fn kind(&self) -> u8 {
        match self {
            IpcpOption::IpCompressionProtocol { .. } => kind::IP_COMPRESSION_PROTOCOL,
            IpcpOption::IpAddress(_) => kind::IP_ADDRESS,
            IpcpOption::PrimaryDns(_) => kind::PRIMARY_DNS,
            IpcpOption::PrimaryNbns(_) => kind::PRIMARY_NBNS,
            IpcpOption::SecondaryDns(_) => kind::SECONDARY_DNS,
            IpcpOption::SecondaryNbns(_) => kind::SECONDARY_NBNS,
            IpcpOption::Unknown { kind, .. } => *kind,
        }
    }

    fn emit(&self, writer: &mut OptionWriter<'_>) -> Result<(), PppWireError> {
        let kind = self.kind();
        match self {
            IpcpOption::IpCompressionProtocol { protocol, data } => {
                let mut value = Vec::with_capacity(2 + data.len());
                value.extend_from_slice(&protocol.to_be_bytes());
                value.extend_from_slice(data);
                writer.push(kind, &value)
            }
            IpcpOption::IpAddress(a)
            | IpcpOption::PrimaryDns(a)
            | IpcpOption::PrimaryNbns(a)
            | IpcpOption::SecondaryDns(a)
            | IpcpOption::SecondaryNbns(a) => writer.push(kind, &a.octets()),
            IpcpOption::Unknown { data, .. } => writer.push(kind, data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ppp::cp::{self, Code, Repr};
    use crate::wire::ppp::frame::{protocol, Frame};
    use crate::wire::ppp::hex;
    use crate::wire::ppp::options::{emit_all, parse_all, OptionIter};

    fn round_trip(frame_hex: &str, code: Code, identifier: u8, expected: &[IpcpOption]) {
        let bytes = hex(frame_hex);
        let frame = Frame::parse(&bytes).unwrap();
        assert_eq!(frame.protocol, protocol::IPCP);
        let repr = Repr::parse_bytes(frame.payload).unwrap();
        assert_eq!((repr.code, repr.identifier), (code, identifier));
        let options: Vec<IpcpOption> = parse_all(repr.data).unwrap();
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
    fn client_request_and_l2tpns_nak() {
        // Probe capture frame 132 (the scripted client): address and primary
        // DNS both 0.0.0.0, asking the LNS to fill them in.
        round_trip(
            concat!(
                "ff038021",     // frame header, IPCP
                "01c40010",     // Configure-Request, id 0xc4, length 16
                "030600000000", // IP-Address 0.0.0.0
                "810600000000", // Primary DNS 0.0.0.0
            ),
            Code::ConfigureRequest,
            0xc4,
            &[
                IpcpOption::IpAddress(Ipv4Addr::UNSPECIFIED),
                IpcpOption::PrimaryDns(Ipv4Addr::UNSPECIFIED),
            ],
        );
        // Frame 141: l2tpns Naks with the address to use and its DNS server.
        round_trip(
            concat!(
                "ff038021",     // frame header
                "03c40010",     // Configure-Nak, same id, length 16
                "03060ac80003", // IP-Address 10.200.0.3
                "81060a620035", // Primary DNS 10.98.0.53
            ),
            Code::ConfigureNak,
            0xc4,
            &[
                IpcpOption::IpAddress(Ipv4Addr::new(10, 200, 0, 3)),
                IpcpOption::PrimaryDns(Ipv4Addr::new(10, 98, 0, 53)),
            ],
        );
        // Frame 133: l2tpns's own request, its address only.
        round_trip(
            concat!("ff038021", "0109000a", "03060a6200fe"),
            Code::ConfigureRequest,
            9,
            &[IpcpOption::IpAddress(Ipv4Addr::new(10, 98, 0, 254))],
        );
    }

    #[test]
    fn every_typed_option_both_ways() {
        let data = hex(concat!(
            "0206002d0f01",         // VJ compression, max slot 15, comp slot 1
            "8206c0a80001",         // primary NBNS
            "8306c0a80002",         // secondary DNS
            "8406c0a80003",         // secondary NBNS
            "010a0a0000010a000002", // IP-Addresses (RFC 1172): unknown
        ));
        let options: Vec<IpcpOption> = parse_all(&data).unwrap();
        assert_eq!(
            options,
            [
                IpcpOption::IpCompressionProtocol {
                    protocol: 0x002d,
                    data: vec![0x0f, 0x01]
                },
                IpcpOption::PrimaryNbns(Ipv4Addr::new(192, 168, 0, 1)),
                IpcpOption::SecondaryDns(Ipv4Addr::new(192, 168, 0, 2)),
                IpcpOption::SecondaryNbns(Ipv4Addr::new(192, 168, 0, 3)),
                IpcpOption::Unknown {
                    kind: 1,
                    data: hex("0a0000010a000002")
                },
            ]
        );
        let mut out = vec![];
        emit_all(&options, &mut out).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn wrong_lengths() {
        for bytes in [
            &[3u8, 5, 1, 2, 3][..],
            &[0x81, 2],
            &[0x84, 7, 0, 0, 0, 0, 0],
            &[2, 3, 0],
        ] {
            let raw = OptionIter::new(bytes).next().unwrap().unwrap();
            assert_eq!(
                IpcpOption::parse(&raw),
                Err(PppWireError::OptionLength { kind: bytes[0] })
            );
        }
    }
}
