//! The raw AVP reader and the typed AVP codec.
//!
//! `AvpIter` walks any byte string without panicking and stops after its
//! first error. Every raw AVP goes through `Avp::parse`; an AVP that parses
//! is emitted and must parse back to the same value, and a raw AVP written
//! back through `AvpWriter` must reproduce its own bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lns::wire::l2tp::avp::{HEADER_LEN, MAX_LEN};
use lns::wire::l2tp::{Avp, AvpIter, AvpWriter, RawAvp};

/// The single AVP in `bytes`, which must hold exactly one.
fn only_avp(bytes: &[u8]) -> RawAvp<'_> {
    let mut iter = AvpIter::new(bytes);
    let raw = iter
        .next()
        .expect("emitted AVP is missing")
        .expect("emitted AVP does not read back");
    assert!(iter.next().is_none(), "emitted AVP left trailing bytes");
    raw
}

fuzz_target!(|data: &[u8]| {
    let mut consumed = 0;
    let mut errors = 0;
    for item in AvpIter::new(data) {
        let raw = match item {
            Ok(raw) => raw,
            Err(_) => {
                errors += 1;
                continue;
            }
        };
        // The reader only yields AVPs that fit the 10-bit length.
        assert!(raw.value.len() + HEADER_LEN <= MAX_LEN);
        consumed += HEADER_LEN + raw.value.len();

        // The raw writer reproduces the AVP byte for byte except for the
        // reserved bits, which it writes back as all-ones when any was set.
        let mut out = Vec::new();
        AvpWriter::new(&mut out)
            .push(raw.header, raw.value)
            .expect("a raw AVP that was read fits the writer");
        let back = only_avp(&out);
        assert_eq!(back, raw);

        let Ok(avp) = Avp::parse(&raw, raw.value) else {
            continue;
        };
        let _ = avp.attr_type();
        let _ = avp.mandatory();

        let mut out = Vec::new();
        avp.emit(&mut AvpWriter::new(&mut out))
            .expect("a typed AVP that parsed must emit");
        let emitted = only_avp(&out);
        assert!(!emitted.header.hidden, "emit never hides");
        assert_eq!(emitted.header, avp.header());
        let again = Avp::parse(&emitted, emitted.value).expect("emitted AVP must re-parse");
        assert_eq!(again, avp);
    }
    // The iterator stops after an error, and it only stops early on one.
    assert!(errors <= 1);
    if errors == 0 {
        assert_eq!(consumed, data.len());
    }
});
