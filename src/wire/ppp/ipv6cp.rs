//! IPv6CP configuration options (RFC 5072 §4).

use super::options::{CpOption, OptionWriter, RawOption};
use super::PppWireError;

/// Interface-Identifier option type (RFC 5072 §4.1).
pub const INTERFACE_IDENTIFIER: u8 = 1;

/// One IPv6CP configuration option.
///
/// IPv6-Compression-Protocol (type 2, §4.2) and anything else is `Unknown`,
/// kept verbatim for a Configure-Reject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ipv6cpOption {
    /// §4.1: the 64-bit identifier the sender wants for its link-local
    /// address (all zero asks the peer to suggest one).
    InterfaceIdentifier([u8; 8]),
    /// Any other type, kept verbatim.
    Unknown {
        /// Type octet.
        kind: u8,
        /// Data after Type and Length.
        data: Vec<u8>,
    },
}

impl CpOption for Ipv6cpOption {
    fn parse(raw: &RawOption<'_>) -> Result<Self, PppWireError> {
        match raw.kind {
            // §4.1: Length is 10.
            INTERFACE_IDENTIFIER => <[u8; 8]>::try_from(raw.data)
                .map(Ipv6cpOption::InterfaceIdentifier)
                .map_err(|_| PppWireError::OptionLength { kind: raw.kind }),
            kind => Ok(Ipv6cpOption::Unknown {
                kind,
                data: raw.data.to_vec(),
            }),
        }
    }

    fn kind(&self) -> u8 {
        match self {
            Ipv6cpOption::InterfaceIdentifier(_) => INTERFACE_IDENTIFIER,
            Ipv6cpOption::Unknown { kind, .. } => *kind,
        }
    }

    fn emit(&self, writer: &mut OptionWriter<'_>) -> Result<(), PppWireError> {
        match self {
            Ipv6cpOption::InterfaceIdentifier(id) => writer.push(INTERFACE_IDENTIFIER, id),
            Ipv6cpOption::Unknown { kind, data } => writer.push(*kind, data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ppp::cp::{self, Code, Repr};
    use crate::wire::ppp::hex;
    use crate::wire::ppp::options::{emit_all, parse_all, OptionIter};

    #[test]
    fn configure_request_both_ways() {
        // No IPv6CP in the captures; this follows RFC 5072 §4 by hand.
        let bytes = hex(concat!(
            "01",                   // Configure-Request
            "05",                   // identifier
            "0012",                 // length 18
            "010a0211223344556677", // Interface-Identifier
            "0204004f",             // IPv6-Compression-Protocol: unknown
        ));
        let repr = Repr::parse_bytes(&bytes).unwrap();
        let options: Vec<Ipv6cpOption> = parse_all(repr.data).unwrap();
        assert_eq!(
            options,
            [
                Ipv6cpOption::InterfaceIdentifier([2, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]),
                Ipv6cpOption::Unknown {
                    kind: 2,
                    data: vec![0x00, 0x4f]
                },
            ]
        );
        let mut out = vec![];
        cp::emit_with(Code::ConfigureRequest.into(), 5, &mut out, |d| {
            emit_all(&options, d).unwrap()
        })
        .unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn wrong_length() {
        let raw = OptionIter::new(&[1, 6, 0, 0, 0, 0])
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(
            Ipv6cpOption::parse(&raw),
            Err(PppWireError::OptionLength { kind: 1 })
        );
    }
}
