//! AVP hiding (RFC 2661 §4.3).
//!
//! A hidden value is the "Hidden AVP Subformat" — a 2-byte original length,
//! the original value, then optional padding — XORed with an MD5 keystream
//! made from the attribute type, the tunnel secret and the Random Vector of
//! the nearest preceding Random Vector AVP.
//!
//! The keystream runs in 16-octet blocks, chained through the ciphertext
//! (§4.3):
//!
//! ```text
//! b(1) = MD5(Attribute Type + secret + RV)    c(1) = p(1) xor b(1)
//! b(i) = MD5(secret + c(i-1))                 c(i) = p(i) xor b(i)
//! ```
//!
//! The last block may be short: it uses the head of its keystream block.

use md5::{Digest, Md5};

use super::WireError;

/// Bytes of the original-length field at the front of the subformat.
const LENGTH_FIELD: usize = 2;
/// MD5 output, the keystream block size.
const BLOCK: usize = 16;

/// The keystream block for the first chunk: MD5(type + secret + RV).
fn first_block(attr_type: u16, secret: &[u8], random_vector: &[u8]) -> [u8; BLOCK] {
    let mut md5 = Md5::new();
    md5.update(attr_type.to_be_bytes());
    md5.update(secret);
    md5.update(random_vector);
    md5.finalize().into()
}

/// The keystream block after a full ciphertext chunk: MD5(secret + c(i-1)).
fn next_block(secret: &[u8], previous_cipher: &[u8]) -> [u8; BLOCK] {
    let mut md5 = Md5::new();
    md5.update(secret);
    md5.update(previous_cipher);
    md5.finalize().into()
}

/// Hide `value` of IETF attribute `attr_type`, appending the ciphertext to
/// `out`. `padding` extra zero bytes are hidden after the value (§4.3 allows
/// padding so the length of the original value is not revealed).
///
/// Fails with [`WireError::BadLength`] when the value does not fit the
/// 16-bit original-length field; `out` is then left unchanged.
pub fn hide(
    attr_type: u16,
    value: &[u8],
    secret: &[u8],
    random_vector: &[u8],
    padding: usize,
    out: &mut Vec<u8>,
) -> Result<(), WireError> {
    let original_len = u16::try_from(value.len()).map_err(|_| WireError::BadLength)?;
    let start = out.len();
    // §4.3: "Original Length" then "Original Attribute Value" then padding.
    out.extend_from_slice(&original_len.to_be_bytes());
    out.extend_from_slice(value);
    out.resize(out.len() + padding, 0);

    let mut key = first_block(attr_type, secret, random_vector);
    let mut chunks = out[start..].chunks_mut(BLOCK).peekable();
    while let Some(chunk) = chunks.next() {
        for (byte, k) in chunk.iter_mut().zip(key) {
            *byte ^= k;
        }
        if chunks.peek().is_some() {
            key = next_block(secret, chunk);
        }
    }
    Ok(())
}

/// Recover the original value of a hidden AVP.
///
/// Fails with [`WireError::HiddenBadLength`] when the data is too short for
/// the length field or the recovered original length exceeds what follows
/// it (a wrong secret or Random Vector usually shows up this way).
pub fn unhide(
    attr_type: u16,
    hidden: &[u8],
    secret: &[u8],
    random_vector: &[u8],
) -> Result<Vec<u8>, WireError> {
    if hidden.len() < LENGTH_FIELD {
        return Err(WireError::HiddenBadLength);
    }
    let mut plain = Vec::with_capacity(hidden.len());
    let mut key = first_block(attr_type, secret, random_vector);
    let mut chunks = hidden.chunks(BLOCK).peekable();
    while let Some(chunk) = chunks.next() {
        plain.extend(chunk.iter().zip(key).map(|(byte, k)| byte ^ k));
        if chunks.peek().is_some() {
            // The next block is keyed by this block's ciphertext, which is
            // what arrived on the wire.
            key = next_block(secret, chunk);
        }
    }
    let (length, rest) = plain
        .split_first_chunk::<LENGTH_FIELD>()
        .ok_or(WireError::HiddenBadLength)?;
    let original_len = usize::from(u16::from_be_bytes(*length));
    if original_len > rest.len() {
        return Err(WireError::HiddenBadLength);
    }
    // Drop the length field in front and any padding behind.
    plain.truncate(LENGTH_FIELD + original_len);
    plain.drain(..LENGTH_FIELD);
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"secret";
    /// Random Vector of the known-answer vectors: 0x10, 0x11, ..., 0x1f.
    const RV: [u8; 16] = [
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e,
        0x1f,
    ];

    fn hidden(attr: u16, value: &[u8], padding: usize) -> Vec<u8> {
        let mut out = vec![];
        hide(attr, value, SECRET, &RV, padding, &mut out).unwrap();
        out
    }

    // The expected ciphertexts below were computed once with a separate
    // Python script (hashlib.md5) following §4.3, not with this code.

    #[test]
    fn known_answer_single_block() {
        // Proxy Authen Name (30) "test1": subformat 00 05 't' 'e' 's' 't' '1'.
        let expected = [0xf3, 0xa0, 0x49, 0x8c, 0x3c, 0x04, 0xb7];
        assert_eq!(hidden(30, b"test1", 0), expected);
        assert_eq!(unhide(30, &expected, SECRET, &RV), Ok(b"test1".to_vec()));
    }

    #[test]
    fn known_answer_two_octets() {
        // Assigned Tunnel ID (9) 0x1234.
        let expected = [0xbb, 0x53, 0x35, 0xed];
        assert_eq!(hidden(9, &[0x12, 0x34], 0), expected);
    }

    #[test]
    fn known_answer_three_blocks_with_padding() {
        // Proxy Authen Response (33): octets 0..=32 and 3 octets of padding,
        // 38 bytes in all: two full chained blocks and a short third one.
        let value: Vec<u8> = (0..33).collect();
        let expected = [
            // c(1) = p(1) xor MD5(00 21 + secret + RV)
            0x10, 0x3f, 0x03, 0x7e, 0x7a, 0x84, 0xfd, 0xb3, 0xaf, 0xec, 0x92, 0x10, 0x19, 0x4c,
            0x42, 0x3e, // c(2) = p(2) xor MD5(secret + c(1))
            0xee, 0x02, 0xcd, 0xcb, 0xca, 0xd6, 0x4e, 0x8f, 0xf7, 0x4d, 0xd7, 0x37, 0x04, 0xf7,
            0x98, 0x3f, // c(3) = p(3) xor the head of MD5(secret + c(2))
            0xf6, 0x7b, 0x65, 0x6c, 0xbf, 0xb9,
        ];
        assert_eq!(hidden(33, &value, 3), expected);
        assert_eq!(unhide(33, &expected, SECRET, &RV), Ok(value));
    }

    #[test]
    fn round_trips() {
        for len in [0, 1, 15, 16, 17, 33, 200] {
            for padding in [0, 1, 7, 16] {
                let value: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let cipher = hidden(22, &value, padding);
                assert_eq!(cipher.len(), 2 + len + padding);
                assert_eq!(
                    unhide(22, &cipher, SECRET, &RV),
                    Ok(value),
                    "len {len} padding {padding}"
                );
            }
        }
    }

    #[test]
    fn keystream_depends_on_type_secret_and_vector() {
        let base = hidden(9, &[1, 2], 0);
        assert_ne!(hidden(14, &[1, 2], 0), base);
        let mut other = vec![];
        hide(9, &[1, 2], b"secreT", &RV, 0, &mut other).unwrap();
        assert_ne!(other, base);
        other.clear();
        hide(9, &[1, 2], SECRET, &RV[1..], 0, &mut other).unwrap();
        assert_ne!(other, base);
    }

    #[test]
    fn hide_appends() {
        let mut out = vec![0xa5; 3];
        hide(30, b"test1", SECRET, &RV, 0, &mut out).unwrap();
        assert_eq!(out[..3], [0xa5; 3]);
        assert_eq!(out[3..], hidden(30, b"test1", 0));
    }

    #[test]
    fn bad_lengths() {
        assert_eq!(unhide(9, &[], SECRET, &RV), Err(WireError::HiddenBadLength));
        assert_eq!(
            unhide(9, &[0xbb], SECRET, &RV),
            Err(WireError::HiddenBadLength)
        );
        // "test1" cut after one value byte: the length field still says 5.
        let cut = &hidden(30, b"test1", 0)[..3];
        assert_eq!(
            unhide(30, cut, SECRET, &RV),
            Err(WireError::HiddenBadLength)
        );
        // Too long for the 16-bit original length.
        let mut out = vec![];
        assert_eq!(
            hide(9, &vec![0; 70_000], SECRET, &RV, 0, &mut out),
            Err(WireError::BadLength)
        );
        assert!(out.is_empty());
    }
}
