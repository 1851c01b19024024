//! Tunnel authentication (RFC 2661 §4.4.3 Challenge / Challenge Response,
//! §5.1.1).

use md5::{Digest, Md5};

use crate::wire::l2tp::MessageType;

/// §4.4.3: the response is the MD5 digest of the Message Type of the message
/// that carries it (one octet: 2 for SCCRP, 3 for SCCCN), the shared secret
/// and the challenge, concatenated in that order — CHAP's construction with
/// the message type standing in for the CHAP identifier.
pub fn challenge_response(carrier: MessageType, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update([u16::from(carrier) as u8]);
    md5.update(secret);
    md5.update(challenge);
    md5.finalize().into()
}

/// Constant-time comparison, so a forged response learns nothing from timing.
pub fn responses_match(a: &[u8; 16], b: &[u8; 16]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_depends_on_every_input() {
        let base = challenge_response(MessageType::Sccrp, b"secret", b"0123456789abcdef");
        assert_ne!(
            base,
            challenge_response(MessageType::Scccn, b"secret", b"0123456789abcdef")
        );
        assert_ne!(
            base,
            challenge_response(MessageType::Sccrp, b"secreT", b"0123456789abcdef")
        );
        assert_ne!(
            base,
            challenge_response(MessageType::Sccrp, b"secret", b"0123456789abcdeF")
        );
        // Known answer: MD5(0x02 || "secret" || "abc") computed independently.
        let expected: [u8; 16] = {
            let mut md5 = Md5::new();
            md5.update(b"\x02secretabc");
            md5.finalize().into()
        };
        assert_eq!(
            challenge_response(MessageType::Sccrp, b"secret", b"abc"),
            expected
        );
        assert!(responses_match(&base, &base));
        assert!(!responses_match(&base, &expected));
    }
}
