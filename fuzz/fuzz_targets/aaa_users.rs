//! The users-file parser.
//!
//! Any text: `parse` either names a line that exists or yields a file in
//! which every name on an accepted line can be looked up without a panic,
//! with the realm in any case.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lns::proto::aaa::users::parse;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(text) {
        Err(e) => {
            assert!(e.line >= 1 && e.line <= text.lines().count().max(1));
            assert!(!e.message.is_empty());
        }
        Ok(file) => {
            for word in text.split_whitespace() {
                let _ = file.user(word);
                let _ = file.user(&word.to_ascii_uppercase());
                let _ = file.realm_defaults(word);
            }
        }
    }
});
