//! Sequence numbers modulo 2^16 (RFC 2661 §5.8). STUB: replaced by branch `reliable`.

/// Signed distance from `a` to `b`: positive when `b` is after `a`.
pub fn distance(a: u16, b: u16) -> i16 {
    b.wrapping_sub(a) as i16
}

/// `a` comes strictly before `b`.
pub fn before(a: u16, b: u16) -> bool {
    distance(a, b) > 0
}
