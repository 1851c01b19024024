//! AVP hiding (RFC 2661 §4.3).
//!
//! A hidden value is the "Hidden AVP Subformat" — a 2-byte original length,
//! the original value, then optional padding — XORed with an MD5 keystream
//! made from the attribute type, the tunnel secret and the Random Vector of
//! the nearest preceding Random Vector AVP.

use super::WireError;

/// Hide `value` of IETF attribute `attr_type`, appending the ciphertext to
/// `out`. `padding` extra zero bytes are hidden after the value (§4.3 allows
/// padding so the length of the original value is not revealed).
pub fn hide(
    attr_type: u16,
    value: &[u8],
    secret: &[u8],
    random_vector: &[u8],
    padding: usize,
    out: &mut Vec<u8>,
) -> Result<(), WireError> {
    let _ = (attr_type, value, secret, random_vector, padding, out);
    todo!("hidden AVP encode")
}

/// Recover the original value of a hidden AVP.
pub fn unhide(
    attr_type: u16,
    hidden: &[u8],
    secret: &[u8],
    random_vector: &[u8],
) -> Result<Vec<u8>, WireError> {
    let _ = (attr_type, hidden, secret, random_vector);
    todo!("hidden AVP decode")
}
