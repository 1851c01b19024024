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
