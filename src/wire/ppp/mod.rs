//! PPP wire formats carried in L2TP data messages (RFC 1661, RFC 1662,
//! RFC 1332, RFC 1877, RFC 5072, RFC 1334, RFC 1994, RFC 2759).
//!
//! - [`frame`]: Address/Control and Protocol fields in front of every PPP
//!   packet, with and without ACFC/PFC.
//! - [`cp`]: the Code/Identifier/Length packet shared by LCP, IPCP, IPv6CP
//!   (and, for the header, PAP and CHAP).
//! - [`options`]: the raw Type/Length/Data option reader and writer.
//! - [`lcp`], [`ipcp`], [`ipv6cp`]: typed options of each control protocol,
//!   plus the LCP-only Echo/Discard/Protocol-Reject/Code-Reject data.
//! - [`pap`], [`chap`]: authentication packets, including the MS-CHAPv2
//!   Response value and Success/Failure messages.
//!
//! Everything here is total: any byte string gives a value or an error.

pub mod chap;
pub mod cp;
pub mod frame;
pub mod ipcp;
pub mod ipv6cp;
pub mod lcp;
pub mod options;
pub mod pap;

pub use cp::{Code, Packet as CpPacket, Repr as CpRepr};
pub use frame::{Frame, FrameHeader, Protocol};
pub use ipcp::IpcpOption;
pub use ipv6cp::Ipv6cpOption;
pub use lcp::LcpOption;
pub use options::{CpOption, OptionIter, OptionWriter, RawOption};

/// Why a byte string is not a valid PPP packet, option or message.
///
/// Flat and `Copy` so a variant can be a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PppWireError {
    /// Fewer bytes than a field needs.
    Truncated,
    /// A length field disagrees with the data or with its own minimum.
    BadLength,
    /// A known option has the wrong length for its type; the raw option is
    /// still there for a Configure-Reject.
    OptionLength {
        /// The option type.
        kind: u8,
    },
    /// A text message (MS-CHAPv2 Success/Failure) does not follow its format.
    BadMessage,
    /// Emit: a field is longer than its length prefix can say.
    FieldTooLong,
    /// Emit: the caller's buffer is too small.
    BufferTooSmall,
}

impl core::fmt::Display for PppWireError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PppWireError::Truncated => f.write_str("truncated"),
            PppWireError::BadLength => f.write_str("length field disagrees with data"),
            PppWireError::OptionLength { kind } => write!(f, "option {kind}: wrong length"),
            PppWireError::BadMessage => f.write_str("malformed message text"),
            PppWireError::FieldTooLong => f.write_str("field too long for its length prefix"),
            PppWireError::BufferTooSmall => f.write_str("output buffer too small"),
        }
    }
}

impl std::error::Error for PppWireError {}

/// Parse a hex string (test vectors), ignoring whitespace.
#[cfg(test)]
pub(crate) fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).unwrap_or("00");
            u8::from_str_radix(s, 16).unwrap_or(0)
        })
        .collect()
}

#[cfg(test)]
mod totality {
    //! Every parser over random, truncated and mutated inputs: no panic, and
    //! whatever parses emits and parses back to the same value.

    use super::chap::{Chap, MsChapV2Failure, MsChapV2Response, MsChapV2Success};
    use super::lcp::{CodeRejectData, EchoData, ProtocolRejectData};
    use super::options::{emit_all, parse_all};
    use super::pap::Pap;
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// PPP frames from the captures (after the L2TP data header) and a few
    /// hand-made ones, as seeds for mutation.
    const SEEDS: &[&str] = &[
        "ff03c0210101001e010405b60305c2230505066b0900f41104064e1307020a6200fe",
        "ff03c0210401000f1104064e1307020a6200fe",
        "ff03c021030200080304c023",
        "ff03c02101030012010405b60304c02305066b090113",
        "ff03c2230101001f101fc9720484f2fe8f8a0184a747d4d0016c3274706e732d726566",
        "ff03c2230201001a105222fcd3d9f3739705b508a2d2f1f6737465737430",
        "ff03c22303010004",
        "ff03c02301e6001105746573743006736563726574",
        "ff03c02302e6000500",
        "ff03802101c40010030600000000810600000000",
        "ff03802103c4001003060ac8000381060a620035",
        "8057010500120a0a021122334455667702040000",
        "ff03c0210907000b6b090110616263",
        "21450000",
    ];

    fn exercise(bytes: &[u8]) {
        let Ok(frame) = Frame::parse(bytes) else {
            return;
        };
        let mut again = vec![];
        frame.header().emit_vec(&mut again);
        again.extend_from_slice(frame.payload);
        let back = Frame::parse(&again).unwrap();
        assert_eq!(
            (back.protocol, back.payload),
            (frame.protocol, frame.payload)
        );
        exercise_packet(frame.payload);
    }

    fn check_options<O: CpOption + PartialEq + core::fmt::Debug>(data: &[u8]) {
        if let Ok(options) = parse_all::<O>(data) {
            let mut out = vec![];
            emit_all(&options, &mut out).unwrap();
            assert_eq!(out, data, "typed options must re-emit byte for byte");
        }
    }

    fn exercise_packet(payload: &[u8]) {
        if let Ok(repr) = CpRepr::parse_bytes(payload) {
            let mut out = vec![];
            repr.emit_vec(&mut out).unwrap();
            assert_eq!(CpRepr::parse_bytes(&out).unwrap(), repr);
            for raw in OptionIter::new(repr.data).flatten() {
                assert_eq!(raw.bytes.len(), raw.data.len() + 2);
            }
            check_options::<LcpOption>(repr.data);
            check_options::<IpcpOption>(repr.data);
            check_options::<Ipv6cpOption>(repr.data);
            let _ = EchoData::parse(repr.data);
            let _ = ProtocolRejectData::parse(repr.data);
            let _ = CodeRejectData::parse(repr.data).rejected_code();
        }
        if let Ok(pap) = Pap::parse(payload) {
            let mut out = vec![];
            pap.emit(&mut out).unwrap();
            assert_eq!(Pap::parse(&out).unwrap(), pap);
        }
        if let Ok(chap) = Chap::parse(payload) {
            let mut out = vec![];
            chap.emit(&mut out).unwrap();
            assert_eq!(Chap::parse(&out).unwrap(), chap);
            if let Chap::Response { value, .. } = chap {
                if let Ok(r) = MsChapV2Response::parse(value) {
                    assert_eq!(r.to_bytes()[..], value[..]);
                }
            }
        }
        exercise_text(payload);
    }

    fn exercise_text(text: &[u8]) {
        if let Ok(success) = MsChapV2Success::parse(text) {
            let mut out = vec![];
            success.emit(&mut out);
            assert_eq!(MsChapV2Success::parse(&out).unwrap(), success);
        }
        if let Ok(failure) = MsChapV2Failure::parse(text) {
            let mut out = vec![];
            failure.emit(&mut out);
            assert_eq!(MsChapV2Failure::parse(&out).unwrap(), failure);
        }
    }

    #[test]
    fn seeds_and_every_prefix() {
        for seed in SEEDS {
            let bytes = hex(seed);
            for len in 0..=bytes.len() {
                exercise(&bytes[..len]);
                exercise_packet(&bytes[len..]);
            }
        }
    }

    #[test]
    fn random_and_mutated_inputs() {
        let mut rng = StdRng::seed_from_u64(0x1661_1662);
        let seeds: Vec<Vec<u8>> = SEEDS.iter().map(|s| hex(s)).collect();
        for _ in 0..20_000 {
            let bytes = crate::testkit::mutated_input(&mut rng, &seeds, 0.3, 64);
            exercise(&bytes);
            exercise_packet(&bytes);
        }
    }

    #[test]
    fn random_mschapv2_texts() {
        let mut rng = StdRng::seed_from_u64(2759);
        let alphabet = b"SERCVM= 0123456789ABCDEFabcdefx";
        let seeds: [&[u8]; 2] = [
            b"S=407A5589115FD0D6209F510FE9C04566932CDA56 M=ok",
            b"E=691 R=1 C=00112233445566778899AABBCCDDEEFF V=3 M=no",
        ];
        for _ in 0..20_000 {
            let mut text = seeds[rng.random_range(0..2)].to_vec();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..text.len());
                let c = alphabet[rng.random_range(0..alphabet.len())];
                match rng.random_range(0..3) {
                    0 => text[at] = c,
                    1 => text.truncate(at),
                    _ => text.insert(at, c),
                }
                if text.is_empty() {
                    break;
                }
            }
            exercise_text(&text);
        }
    }
}
