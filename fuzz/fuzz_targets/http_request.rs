//! The metrics endpoint's request-head parser.
//!
//! Any bytes: `parse` gives a verdict without a panic; an accepted head is
//! an HTTP/1.x request line whose path starts with '/' and holds no query,
//! and it fitted the reader's buffer; `route` maps every verdict.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lns::metrics::http::{parse, route, HeadError, MAX_HEAD};

fuzz_target!(|data: &[u8]| {
    let parsed = parse(data);
    match parsed {
        Ok(request) => {
            assert!(request.path.starts_with('/'));
            assert!(!request.path.contains('?'));
            assert!(!request.method.is_empty());
            assert!(data.len() >= request.path.len());
        }
        Err(HeadError::TooLarge) => assert!(data.len() >= MAX_HEAD - 4),
        Err(HeadError::Incomplete) => assert!(data.len() < MAX_HEAD),
        Err(HeadError::Malformed) => {}
    }
    let _ = route(parsed);
});
