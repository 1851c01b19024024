//! AVP hiding (RFC 2661 §4.3).
//!
//! `unhide` of any byte string under a fixed secret and Random Vector must
//! return a value or an error, never panic, and a value it returns must fit
//! in what it was given. `hide` of any value (with any padding, any secret,
//! any Random Vector) must `unhide` back to the same value.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use lns::wire::l2tp::hidden::{hide, unhide};
use lns::wire::l2tp::WireError;

const SECRET: &[u8] = b"secret";
const RANDOM_VECTOR: [u8; 16] = [
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
];

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    attr_type: u16,
    /// Arbitrary bytes to unhide.
    cipher: &'a [u8],
    /// A value to hide and recover.
    value: &'a [u8],
    secret: &'a [u8],
    random_vector: &'a [u8],
    padding: u8,
}

fuzz_target!(|input: Input<'_>| {
    // Arbitrary ciphertext under the fixed key.
    match unhide(input.attr_type, input.cipher, SECRET, &RANDOM_VECTOR) {
        Ok(value) => assert!(value.len() + 2 <= input.cipher.len()),
        Err(error) => assert_eq!(error, WireError::HiddenBadLength),
    }
    // And under a fuzzed key, including empty secrets and vectors.
    let _ = unhide(
        input.attr_type,
        input.cipher,
        input.secret,
        input.random_vector,
    );

    // Round trip.
    let padding = usize::from(input.padding);
    let mut out = vec![0xa5; 3];
    if input.value.len() > usize::from(u16::MAX) {
        let result = hide(
            input.attr_type,
            input.value,
            input.secret,
            input.random_vector,
            padding,
            &mut out,
        );
        assert_eq!(result, Err(WireError::BadLength));
        assert_eq!(out, [0xa5; 3]);
        return;
    }
    hide(
        input.attr_type,
        input.value,
        input.secret,
        input.random_vector,
        padding,
        &mut out,
    )
    .expect("a value below 64 KiB must hide");
    assert_eq!(out[..3], [0xa5; 3], "hide must only append");
    let cipher = &out[3..];
    assert_eq!(cipher.len(), 2 + input.value.len() + padding);
    let back = unhide(input.attr_type, cipher, input.secret, input.random_vector)
        .expect("hidden value must unhide");
    assert_eq!(back, input.value);
});
