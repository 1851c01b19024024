//! Sequence numbers modulo 2^16 (RFC 2661 §5.8).

/// Signed distance from `a` to `b`: positive when `b` is after `a`.
pub fn distance(a: u16, b: u16) -> i16 {
    let _ = (a, b);
    todo!("seq distance")
}
