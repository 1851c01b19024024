//! PAP, CHAP and the MS-CHAPv2 Response value and Success/Failure texts.
//!
//! The first input byte picks how the rest is read: as a PAP packet, a CHAP
//! packet, or an MS-CHAPv2 message text. Nothing panics; whatever parses
//! emits and parses back equal. A CHAP Response value of 49 octets goes
//! through the MS-CHAPv2 view and back byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lns::wire::ppp::chap::{Chap, MsChapV2Failure, MsChapV2Response, MsChapV2Success};
use lns::wire::ppp::pap::Pap;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => {
            if let Ok(pap) = Pap::parse(rest) {
                let mut out = Vec::new();
                pap.emit(&mut out).expect("parsed PAP fits");
                assert_eq!(Pap::parse(&out).expect("re-parse"), pap);
                assert_eq!(pap.identifier(), rest[1]);
            }
        }
        1 => {
            if let Ok(chap) = Chap::parse(rest) {
                let mut out = Vec::new();
                chap.emit(&mut out).expect("parsed CHAP fits");
                assert_eq!(Chap::parse(&out).expect("re-parse"), chap);
                if let Chap::Response { value, .. } = chap {
                    if let Ok(response) = MsChapV2Response::parse(value) {
                        assert_eq!(response.to_bytes()[..], value[..]);
                    }
                }
                if let Chap::Success { message, .. } = chap {
                    let _ = MsChapV2Success::parse(message);
                }
                if let Chap::Failure { message, .. } = chap {
                    let _ = MsChapV2Failure::parse(message);
                }
            }
        }
        _ => {
            if let Ok(success) = MsChapV2Success::parse(rest) {
                let mut out = Vec::new();
                success.emit(&mut out);
                assert_eq!(MsChapV2Success::parse(&out).expect("re-parse"), success);
            }
            if let Ok(failure) = MsChapV2Failure::parse(rest) {
                let mut out = Vec::new();
                failure.emit(&mut out);
                assert_eq!(MsChapV2Failure::parse(&out).expect("re-parse"), failure);
            }
            if let Ok(response) = MsChapV2Response::parse(rest) {
                assert_eq!(response.to_bytes()[..], rest[..]);
            }
        }
    }
});
