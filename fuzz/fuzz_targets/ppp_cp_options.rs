//! The RFC 1661 §5 control packet and the option codecs of LCP, IPCP and
//! IPv6CP, plus the LCP-only data helpers.
//!
//! Input: a control packet (Code, Identifier, Length, Data, padding). The
//! view never panics; an accepted packet re-emits to the same Repr. The raw
//! option iterator yields at most one error and otherwise covers the Data
//! exactly, each raw option's bytes being its Type, Length and data. Every
//! raw option that a typed parser accepts re-emits byte for byte (that is
//! what makes Configure-Ack and Configure-Reject exact), and a whole list
//! that parses re-emits as the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lns::wire::ppp::lcp::{CodeRejectData, EchoData, ProtocolRejectData};
use lns::wire::ppp::options::{emit_all, parse_all};
use lns::wire::ppp::{
    CpOption, CpPacket, CpRepr, IpcpOption, Ipv6cpOption, LcpOption, OptionIter, OptionWriter,
    RawOption,
};

fn typed<O: CpOption + PartialEq + core::fmt::Debug>(raw: &RawOption<'_>) {
    if let Ok(option) = O::parse(raw) {
        assert_eq!(option.kind(), raw.kind);
        let mut out = Vec::new();
        option
            .emit(&mut OptionWriter::new(&mut out))
            .expect("a parsed option fits");
        assert_eq!(out, raw.bytes, "typed option must re-emit verbatim");
    }
}

fn list<O: CpOption + PartialEq + core::fmt::Debug>(data: &[u8]) {
    if let Ok(options) = parse_all::<O>(data) {
        let mut out = Vec::new();
        emit_all(&options, &mut out).expect("parsed options fit");
        assert_eq!(out, data);
        assert_eq!(parse_all::<O>(&out).expect("re-parse"), options);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = CpPacket::new_checked(data) else {
        return;
    };
    let repr = CpRepr::parse(&packet);
    assert_eq!(repr.buffer_len(), usize::from(packet.length()));
    let mut out = vec![0xa5; repr.buffer_len()];
    repr.emit(&mut out).expect("sized buffer");
    assert_eq!(out, packet.packet_bytes());
    assert_eq!(CpRepr::parse_bytes(&out).expect("re-parse"), repr);

    let mut consumed = 0;
    let mut errors = 0;
    let mut rebuilt = Vec::new();
    for item in OptionIter::new(repr.data) {
        let raw = match item {
            Ok(raw) => raw,
            Err(_) => {
                errors += 1;
                continue;
            }
        };
        assert_eq!(raw.bytes.len(), raw.data.len() + 2);
        assert_eq!(raw.bytes[0], raw.kind);
        consumed += raw.bytes.len();
        OptionWriter::new(&mut rebuilt).push_raw(&raw);
        typed::<LcpOption>(&raw);
        typed::<IpcpOption>(&raw);
        typed::<Ipv6cpOption>(&raw);
    }
    assert!(errors <= 1);
    assert_eq!(rebuilt, repr.data[..consumed]);
    if errors == 0 {
        assert_eq!(consumed, repr.data.len());
    }
    list::<LcpOption>(repr.data);
    list::<IpcpOption>(repr.data);
    list::<Ipv6cpOption>(repr.data);

    if let Ok(echo) = EchoData::parse(repr.data) {
        let mut out = Vec::new();
        echo.emit(&mut out);
        assert_eq!(out, repr.data);
    }
    if let Ok(reject) = ProtocolRejectData::parse(repr.data) {
        let mut out = Vec::new();
        reject.emit(&mut out, usize::MAX);
        assert_eq!(out, repr.data);
        let mut cut = Vec::new();
        reject.emit(&mut cut, 6);
        assert!(cut.len() <= 6.max(2) && repr.data.starts_with(&cut));
    }
    let reject = CodeRejectData::for_packet(&packet, 1500);
    assert!(packet.packet_bytes().starts_with(reject.rejected));
    assert_eq!(reject.rejected_code(), Some(packet.code()));
    let _ = CodeRejectData::parse(repr.data).rejected_identifier();
});
