//! Helpers shared by unit tests across modules.

use rand::rngs::StdRng;
use rand::Rng;

/// A test input: with probability `random`, up to `max_len` random bytes;
/// otherwise one of `seeds` with up to three random edits (overwrite,
/// truncate, insert, bit flip).
pub(crate) fn mutated_input(
    rng: &mut StdRng,
    seeds: &[Vec<u8>],
    random: f64,
    max_len: usize,
) -> Vec<u8> {
    let mut bytes: Vec<u8> = if seeds.is_empty() || rng.random_bool(random) {
        let len = rng.random_range(0..max_len);
        (0..len).map(|_| rng.random::<u8>()).collect()
    } else {
        seeds[rng.random_range(0..seeds.len())].clone()
    };
    for _ in 0..rng.random_range(0..4) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.random_range(0..bytes.len());
        match rng.random_range(0..4) {
            0 => bytes[at] = rng.random(),
            1 => bytes.truncate(at),
            2 => bytes.insert(at, rng.random()),
            _ => bytes[at] ^= 1 << rng.random_range(0..8),
        }
    }
    bytes
}
