//! The PPP frame header (Address/Control, Protocol with and without PFC).
//!
//! `Frame::parse` never panics; a parsed frame's header re-emits and reads
//! back to the same protocol and payload, and byte for byte except for the
//! one case the emitter refuses to compress (protocol 0x00ff without
//! Address/Control). Every `FrameHeader` built from the input emits exactly
//! `header_len()` bytes that parse back to its protocol.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lns::wire::ppp::{Frame, FrameHeader};

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = Frame::parse(data) {
        assert!(frame.payload.len() + 1 <= data.len());
        let _ = frame.protocol();
        let header = frame.header();
        let mut out = Vec::new();
        let len = header.emit_vec(&mut out);
        assert_eq!(len, header.header_len());
        out.extend_from_slice(frame.payload);
        let back = Frame::parse(&out).expect("re-emitted frame must parse");
        assert_eq!(back.protocol, frame.protocol);
        assert_eq!(back.payload, frame.payload);
        if frame.protocol != 0x00ff {
            assert_eq!(out, data);
        }
    }
    if data.len() >= 3 {
        let protocol = u16::from_be_bytes([data[0], data[1]]);
        let header = FrameHeader::new(protocol, data[2] & 1 != 0, data[2] & 2 != 0);
        let mut buf = [0u8; 4];
        let len = header.emit(&mut buf).expect("4 bytes always fit");
        assert_eq!(len, header.header_len());
        let mut out = buf[..len].to_vec();
        out.extend_from_slice(&data[3..]);
        // A protocol with an even low octet is invalid (RFC 1661 §2) and may
        // read back differently; valid ones must survive.
        if protocol & 1 == 1 && protocol >> 8 & 1 == 0 {
            let back = Frame::parse(&out).expect("emitted header must parse");
            assert_eq!(back.protocol, protocol);
            assert_eq!(back.payload, &data[3..]);
        }
    }
});
