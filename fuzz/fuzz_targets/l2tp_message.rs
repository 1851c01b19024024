//! Whole control message bodies: parse, emit (plain and hidden), re-parse.
//!
//! `ControlMessage::parse` must refuse or accept any byte string without
//! panicking, with or without a tunnel secret. A message that parses is
//! emitted in the clear and with every hideable attribute hidden; both
//! encodings must parse back to the same message (plus the Random Vector
//! the emitter adds when the message brought none early enough).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lns::wire::l2tp::message::{AvpTypeSet, Hiding};
use lns::wire::l2tp::{Avp, AvpType, ControlMessage, WireError};

const SECRET: &[u8] = b"secret";
const RANDOM_VECTOR: [u8; 16] = *b"0123456789abcdef";

/// Every attribute number the typed codec knows (0..=39) except the two
/// that are never hidden; the emitter skips those by itself anyway.
fn hide_everything() -> AvpTypeSet {
    (0..64).fold(AvpTypeSet::EMPTY, |set, attr| set.with(attr))
}

/// Whether the emitter will hide `avp` under `attrs`: the same rule as
/// `ControlMessage::emit` documents (never Message Type, Random Vector or
/// unknown AVPs).
fn hidden_by_emit(avp: &Avp, attrs: AvpTypeSet) -> bool {
    !matches!(
        avp,
        Avp::MessageType(_) | Avp::RandomVector(_) | Avp::Unknown { .. }
    ) && attrs.contains(u16::from(avp.attr_type()))
}

fn check(msg: &ControlMessage, secret_for_parse: Option<&[u8]>) {
    // In the clear: every AVP keeps its length, so emitting cannot fail.
    let mut plain = Vec::new();
    msg.emit(&mut plain, None)
        .expect("a parsed message must emit in the clear");
    let again = ControlMessage::parse(&plain, secret_for_parse)
        .expect("a message emitted in the clear must re-parse");
    assert_eq!(&again, msg);
    // Without a secret the clear encoding parses too.
    assert_eq!(ControlMessage::parse(&plain, None).as_ref(), Ok(msg));

    // Hidden: each hidden value grows by the 2-byte original length, which
    // may push a near-maximal AVP past the 10-bit length field.
    let hiding = Hiding {
        secret: SECRET,
        random_vector: RANDOM_VECTOR,
        attrs: hide_everything(),
    };
    let mut hidden = Vec::new();
    match msg.emit(&mut hidden, Some(&hiding)) {
        Ok(()) => {}
        Err(WireError::BadLength) => return,
        Err(other) => panic!("hidden emit failed with {other:?}"),
    }
    let mut expected = msg.clone();
    let needs_own_rv = msg
        .avps
        .iter()
        .take_while(|avp| !matches!(avp, Avp::RandomVector(_)))
        .any(|avp| hidden_by_emit(avp, hiding.attrs));
    if needs_own_rv {
        expected
            .avps
            .insert(0, Avp::RandomVector(RANDOM_VECTOR.to_vec()));
    }
    let again = ControlMessage::parse(&hidden, Some(SECRET))
        .expect("a message emitted with hiding must re-parse with the secret");
    assert_eq!(again, expected);
    // Without the secret it parses only when nothing was hidden.
    let any_hidden = expected
        .avps
        .iter()
        .any(|avp| hidden_by_emit(avp, hiding.attrs));
    match ControlMessage::parse(&hidden, None) {
        Ok(m) => {
            assert!(!any_hidden);
            assert_eq!(m, expected);
        }
        Err(e) => {
            assert!(any_hidden);
            assert_eq!(e, WireError::HiddenWithoutKey);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let with_secret = ControlMessage::parse(data, Some(SECRET));
    let without = ControlMessage::parse(data, None);
    // A secret only ever helps: whatever parses without one parses the
    // same with one (the secret is used for hidden AVPs alone).
    if let Ok(msg) = &without {
        assert_eq!(with_secret.as_ref(), Ok(msg));
    }
    if let Ok(msg) = &with_secret {
        // Exercise the accessors.
        let _ = msg.find(AvpType::HostName);
        let _ = msg.unknown_mandatory();
        let _ = msg.assigned_tunnel_id();
        let _ = msg.assigned_session_id();
        let _ = msg.result_code();
        let _ = msg.challenge_response();
        let _ = msg.random_vector();
        let _ = msg.message_type.is_session_message();
        let _ = msg.message_type.name();
        check(msg, Some(SECRET));
    }
});
