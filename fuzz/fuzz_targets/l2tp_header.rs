//! The L2TP header view and its owned form.
//!
//! Any byte string: `Packet::new_checked` either refuses it or yields a view
//! whose every accessor works. An accepted header, parsed into a `Repr` and
//! emitted again, must read back as the same `Repr` and carry the same
//! payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lns::wire::l2tp::{HeaderRepr, Packet};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::new_checked(data) else {
        return;
    };

    // After a successful check no accessor may panic.
    let _ = packet.flags_word();
    let _ = packet.is_control();
    let _ = packet.has_length();
    let _ = packet.has_sequence();
    let _ = packet.has_offset();
    let _ = packet.priority();
    let _ = packet.length();
    let _ = packet.tunnel_id();
    let _ = packet.session_id();
    let _ = packet.ns();
    let _ = packet.nr();
    let _ = packet.offset_size();
    let _ = packet.is_zlb();
    let header_len = packet.header_len();
    let payload = packet.payload();
    assert!(header_len + payload.len() <= data.len());
    if let Some(length) = packet.length() {
        assert_eq!(header_len + payload.len(), usize::from(length));
    } else {
        assert_eq!(header_len + payload.len(), data.len());
    }

    // Round trip: Repr -> bytes -> Repr.
    let repr = HeaderRepr::parse(&packet);
    assert_eq!(repr.header_len(), header_len);
    let mut buf = vec![0xa5; header_len + payload.len()];
    let written = repr
        .emit(&mut buf, payload.len())
        .expect("a header that parsed must fit its own length");
    assert_eq!(written, header_len);
    buf[written..].copy_from_slice(payload);

    let again = Packet::new_checked(&buf[..]).expect("emitted header must re-parse");
    assert_eq!(HeaderRepr::parse(&again), repr);
    assert_eq!(again.header_len(), header_len);
    assert_eq!(again.payload(), payload);
    // The offset pad is written as zeros.
    if let Some(pad) = repr.offset {
        let pad = usize::from(pad);
        assert!(buf[header_len - pad..header_len].iter().all(|&b| b == 0));
    }
});
