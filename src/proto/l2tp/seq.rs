//! Sequence numbers modulo 2^16 (RFC 2661 §5.8).
//!
//! Ns and Nr are free-running 16-bit counters that wrap from 65535 to 0. The
//! RFC orders them the way TCP orders its sequence numbers: a value is later
//! than another when it lies less than half the space (32768) ahead of it.
//! Every comparison of Ns/Nr in this crate goes through these two functions so
//! that wrap-around is handled in one place.

/// Signed distance from `a` to `b` modulo 2^16: positive when `b` is after `a`.
///
/// Values exactly half the space apart give `i16::MIN`; neither is then
/// [`before`] the other.
pub fn distance(a: u16, b: u16) -> i16 {
    // Two's complement does the modular arithmetic for us: the difference
    // mod 2^16, read as signed, is the shortest way round the circle.
    b.wrapping_sub(a) as i16
}

/// `a` comes strictly before `b` modulo 2^16.
pub fn before(a: u16, b: u16) -> bool {
    distance(a, b) > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_without_wrap() {
        assert_eq!(distance(0, 0), 0);
        assert_eq!(distance(1, 5), 4);
        assert_eq!(distance(5, 1), -4);
        assert_eq!(distance(100, 32867), 32767);
    }

    #[test]
    fn distance_across_wrap() {
        assert_eq!(distance(65535, 0), 1);
        assert_eq!(distance(0, 65535), -1);
        assert_eq!(distance(65530, 4), 10);
        assert_eq!(distance(4, 65530), -10);
    }

    #[test]
    fn half_space_is_neither_before_nor_after() {
        assert_eq!(distance(0, 32768), i16::MIN);
        assert_eq!(distance(32768, 0), i16::MIN);
        assert!(!before(0, 32768));
        assert!(!before(32768, 0));
    }

    #[test]
    fn before_is_strict_and_wraps() {
        assert!(!before(7, 7));
        assert!(before(7, 8));
        assert!(!before(8, 7));
        assert!(before(65535, 0));
        assert!(!before(0, 65535));
        assert!(before(65000, 200));
    }
}
