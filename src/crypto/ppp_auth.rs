//! PPP authentication crypto: CHAP with MD5 (RFC 1994 §4.1) and MS-CHAPv2
//! (RFC 2759 §8), authenticator side and peer side.
//!
//! Every function is total: fixed-size inputs are arrays, variable-size ones
//! are slices of any length. Comparisons of secrets are constant-time in the
//! content (their lengths are not secret). MPPE key derivation (RFC 3079) is
//! deliberately absent: the LNS does not encrypt PPP payloads.
//!
//! # User names in MS-CHAPv2
//! RFC 2759 §8.2 hashes "the user name as presented by the peer, excluding any
//! prepended domain name". Windows peers may send `DOMAIN\user` in the
//! Response's Name field while hashing only `user`. [`challenge_hash`] (and
//! so every function built on it) therefore drops everything up to and
//! including the last backslash before hashing; see [`mschap_user_name`].
//! A realm *suffix* (`user@realm`) is part of the name the peer typed and is
//! hashed as is.

use des::cipher::{BlockEncrypt, KeyInit};
use des::Des;
use md4::Md4;
use md5::{Digest, Md5};
use sha1::Sha1;

/// RFC 1994 §4.1: the CHAP Response Value for the MD5 algorithm is the MD5
/// digest of the Identifier octet, the shared secret and the Challenge Value,
/// concatenated in that order.
pub fn chap_md5_response(id: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update([id]);
    md5.update(secret);
    md5.update(challenge);
    md5.finalize().into()
}

/// Check a CHAP-MD5 Response Value against the expected one in constant time.
/// A response of the wrong length (anything but 16 octets) never matches.
pub fn chap_md5_verify(id: u8, secret: &[u8], challenge: &[u8], response: &[u8]) -> bool {
    ct_eq(&chap_md5_response(id, secret, challenge), response)
}

/// Compare two byte strings without an early exit on the first difference.
/// The lengths are compared openly: they are public (fixed by the protocol).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Compare two secrets of any lengths (a PAP password against the stored
/// one) without revealing through timing where they differ or how long the
/// stored one is. A PAP password is at most 255 octets (RFC 1334 §2.2.1,
/// Passwd-Length is one octet), so both are zero-padded to one fixed block
/// and the blocks compared in full; longer secrets are hashed first.
pub fn secrets_match(a: &[u8], b: &[u8]) -> bool {
    const BLOCK: usize = 256;
    if a.len() >= BLOCK || b.len() >= BLOCK {
        return ct_eq(&Sha1::digest(a), &Sha1::digest(b));
    }
    let pad = |s: &[u8]| {
        let mut block = [0u8; BLOCK];
        block[..s.len()].copy_from_slice(s);
        // The length goes in the last octet, so "pw" and "pw\0" differ.
        block[BLOCK - 1] = s.len() as u8;
        block
    };
    ct_eq(&pad(a), &pad(b))
}

/// The part of a user name that RFC 2759 §8.2 feeds to SHA-1: the name with
/// any prepended `DOMAIN\` removed (everything up to the last backslash).
pub fn mschap_user_name(user_name: &[u8]) -> &[u8] {
    match user_name.iter().rposition(|&b| b == b'\\') {
        Some(at) => &user_name[at + 1..],
        None => user_name,
    }
}

/// RFC 2759 §8.3 NtPasswordHash: MD4 over the password in UTF-16 little
/// endian ("Unicode" in the RFC). The RFC caps passwords at 256 characters;
/// we hash whatever we are given, which agrees with the RFC for every
/// password a peer can actually use.
pub fn nt_password_hash(password: &str) -> [u8; 16] {
    let mut md4 = Md4::new();
    for unit in password.encode_utf16() {
        md4.update(unit.to_le_bytes());
    }
    md4.finalize().into()
}

/// RFC 2759 §8.4 HashNtPasswordHash: MD4 of the 16-octet password hash.
pub fn hash_nt_password_hash(password_hash: &[u8; 16]) -> [u8; 16] {
    Md4::digest(password_hash).into()
}

/// RFC 2759 §8.2 ChallengeHash: the first 8 octets of SHA-1 over the peer's
/// challenge, the authenticator's challenge and the user name (with any
/// `DOMAIN\` prefix removed, see the module doc).
pub fn challenge_hash(
    peer_challenge: &[u8; 16],
    authenticator_challenge: &[u8; 16],
    user_name: &[u8],
) -> [u8; 8] {
    let mut sha = Sha1::new();
    sha.update(peer_challenge);
    sha.update(authenticator_challenge);
    sha.update(mschap_user_name(user_name));
    let digest: [u8; 20] = sha.finalize().into();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// RFC 2759 §8.5 ChallengeResponse: the password hash, zero-padded to 21
/// octets, is cut into three 7-octet DES keys; each encrypts the 8-octet
/// challenge, and the three ciphertexts make the 24-octet response.
pub fn challenge_response(challenge: &[u8; 8], password_hash: &[u8; 16]) -> [u8; 24] {
    let mut padded = [0u8; 21];
    padded[..16].copy_from_slice(password_hash);
    let mut out = [0u8; 24];
    for (key7, block) in padded.chunks_exact(7).zip(out.chunks_exact_mut(8)) {
        let mut key = [0u8; 7];
        key.copy_from_slice(key7);
        block.copy_from_slice(&des_encrypt(challenge, &key));
    }
    out
}

/// RFC 2759 §8.6 DesEncrypt: DES-ECB of one block under a 7-octet key.
fn des_encrypt(clear: &[u8; 8], key7: &[u8; 7]) -> [u8; 8] {
    let cipher = Des::new(&des_key(key7).into());
    let mut block = (*clear).into();
    cipher.encrypt_block(&mut block);
    block.into()
}

/// Spread 56 key bits over 8 octets, 7 bits each in the high bits; DES ignores
/// the low (parity) bit of every key octet, so we leave it zero.
fn des_key(key7: &[u8; 7]) -> [u8; 8] {
    let bits = key7.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let mut key = [0u8; 8];
    for (i, octet) in key.iter_mut().enumerate() {
        let shift = 49 - 7 * i as u32;
        *octet = (((bits >> shift) & 0x7f) as u8) << 1;
    }
    key
}

/// RFC 2759 §8.1 GenerateNTResponse from the cleartext password (what a peer
/// computes, and what an authenticator recomputes to check it).
pub fn generate_nt_response(
    authenticator_challenge: &[u8; 16],
    peer_challenge: &[u8; 16],
    user_name: &[u8],
    password: &str,
) -> [u8; 24] {
    generate_nt_response_from_hash(
        authenticator_challenge,
        peer_challenge,
        user_name,
        &nt_password_hash(password),
    )
}

/// [`generate_nt_response`] for a secret stored as its NT hash (§8.3 output).
pub fn generate_nt_response_from_hash(
    authenticator_challenge: &[u8; 16],
    peer_challenge: &[u8; 16],
    user_name: &[u8],
    password_hash: &[u8; 16],
) -> [u8; 24] {
    let challenge = challenge_hash(peer_challenge, authenticator_challenge, user_name);
    challenge_response(&challenge, password_hash)
}

/// Authenticator side of §8.1: does the peer's NT-Response match the one the
/// password gives? Constant-time; a response of the wrong length is false.
pub fn verify_nt_response(
    authenticator_challenge: &[u8; 16],
    peer_challenge: &[u8; 16],
    user_name: &[u8],
    password: &str,
    nt_response: &[u8],
) -> bool {
    verify_nt_response_from_hash(
        authenticator_challenge,
        peer_challenge,
        user_name,
        &nt_password_hash(password),
        nt_response,
    )
}

/// [`verify_nt_response`] for a secret stored as its NT hash.
pub fn verify_nt_response_from_hash(
    authenticator_challenge: &[u8; 16],
    peer_challenge: &[u8; 16],
    user_name: &[u8],
    password_hash: &[u8; 16],
    nt_response: &[u8],
) -> bool {
    let expected = generate_nt_response_from_hash(
        authenticator_challenge,
        peer_challenge,
        user_name,
        password_hash,
    );
    ct_eq(&expected, nt_response)
}

/// RFC 2759 §8.7 Magic1, "Magic server to client signing constant" (39 octets).
const MAGIC1: &[u8; 39] = b"Magic server to client signing constant";
/// RFC 2759 §8.7 Magic2, "Pad to make it do more than one iteration" (41 octets).
const MAGIC2: &[u8; 41] = b"Pad to make it do more than one iteration";

/// RFC 2759 §8.7 GenerateAuthenticatorResponse from the cleartext password:
/// the `S=` string the authenticator puts in its Success packet so the peer
/// can check that the authenticator knew the password too.
pub fn generate_authenticator_response(
    password: &str,
    nt_response: &[u8; 24],
    peer_challenge: &[u8; 16],
    authenticator_challenge: &[u8; 16],
    user_name: &[u8],
) -> String {
    generate_authenticator_response_from_hash(
        &nt_password_hash(password),
        nt_response,
        peer_challenge,
        authenticator_challenge,
        user_name,
    )
}

/// [`generate_authenticator_response`] for a secret stored as its NT hash.
///
/// §8.7: Digest = SHA1(PasswordHashHash || NT-Response || Magic1), then
/// SHA1(Digest || ChallengeHash || Magic2), written as `S=` followed by 40
/// upper-case hexadecimal digits.
pub fn generate_authenticator_response_from_hash(
    password_hash: &[u8; 16],
    nt_response: &[u8; 24],
    peer_challenge: &[u8; 16],
    authenticator_challenge: &[u8; 16],
    user_name: &[u8],
) -> String {
    let mut sha = Sha1::new();
    sha.update(hash_nt_password_hash(password_hash));
    sha.update(nt_response);
    sha.update(MAGIC1);
    let digest = sha.finalize();

    let challenge = challenge_hash(peer_challenge, authenticator_challenge, user_name);
    let mut sha = Sha1::new();
    sha.update(digest);
    sha.update(challenge);
    sha.update(MAGIC2);
    let digest = sha.finalize();

    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(42);
    out.push_str("S=");
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

/// RFC 2759 §9.2 sample data, shared by the tests of everything that runs
/// MS-CHAPv2 (user "User", password "clientPass").
#[cfg(test)]
pub(crate) mod rfc2759 {
    /// AuthenticatorChallenge.
    pub(crate) const AUTH_CHALLENGE: [u8; 16] = [
        0x5B, 0x5D, 0x7C, 0x7D, 0x7B, 0x3F, 0x2F, 0x3E, 0x3C, 0x2C, 0x60, 0x21, 0x32, 0x26, 0x26,
        0x28,
    ];
    /// PeerChallenge.
    pub(crate) const PEER_CHALLENGE: [u8; 16] = [
        0x21, 0x40, 0x23, 0x24, 0x25, 0x5E, 0x26, 0x2A, 0x28, 0x29, 0x5F, 0x2B, 0x3A, 0x33, 0x7C,
        0x7E,
    ];
    /// NT-Response.
    pub(crate) const NT_RESPONSE: [u8; 24] = [
        0x82, 0x30, 0x9E, 0xCD, 0x8D, 0x70, 0x8B, 0x5E, 0xA0, 0x8F, 0xAA, 0x39, 0x81, 0xCD, 0x83,
        0x54, 0x42, 0x33, 0x11, 0x4A, 0x3D, 0x85, 0xD6, 0xDF,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex<const N: usize>(s: &str) -> [u8; N] {
        let s: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        assert_eq!(s.len(), 2 * N, "hex length");
        let mut out = [0u8; N];
        for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
            let text = std::str::from_utf8(pair).unwrap();
            *o = u8::from_str_radix(text, 16).unwrap();
        }
        out
    }

    // RFC 2759 §9.2, "Sample Data", grouped as the RFC prints it.
    const USER: &[u8] = b"User";
    const PASSWORD: &str = "clientPass";
    fn auth_challenge() -> [u8; 16] {
        hex("5B 5D 7C 7D 7B 3F 2F 3E 3C 2C 60 21 32 26 26 28")
    }
    fn peer_challenge() -> [u8; 16] {
        hex("21 40 23 24 25 5E 26 2A 28 29 5F 2B 3A 33 7C 7E")
    }
    fn password_hash() -> [u8; 16] {
        hex("44 EB BA 8D 53 12 B8 D6 11 47 44 11 F5 69 89 AE")
    }
    fn nt_response() -> [u8; 24] {
        hex("82 30 9E CD 8D 70 8B 5E A0 8F AA 39 81 CD 83 54 42 33 11 4A 3D 85 D6 DF")
    }
    const AUTHENTICATOR_RESPONSE: &str = "S=407A5589115FD0D6209F510FE9C04566932CDA56";

    #[test]
    fn rfc2759_vectors_step_by_step() {
        assert_eq!(
            challenge_hash(&peer_challenge(), &auth_challenge(), USER),
            hex::<8>("D0 2E 43 86 BC E9 12 26")
        );
        assert_eq!(nt_password_hash(PASSWORD), password_hash());
        assert_eq!(
            challenge_response(&hex("D0 2E 43 86 BC E9 12 26"), &password_hash()),
            nt_response()
        );
        assert_eq!(
            hash_nt_password_hash(&password_hash()),
            hex::<16>("41 C0 0C 58 4B D2 D9 1C 40 17 A2 A1 2F A5 9F 3F")
        );
    }

    #[test]
    fn rfc2759_vectors_end_to_end() {
        let (auth, peer) = (auth_challenge(), peer_challenge());
        assert_eq!(
            generate_nt_response(&auth, &peer, USER, PASSWORD),
            nt_response()
        );
        assert_eq!(
            generate_nt_response_from_hash(&auth, &peer, USER, &password_hash()),
            nt_response()
        );
        let s = generate_authenticator_response(PASSWORD, &nt_response(), &peer, &auth, USER);
        assert_eq!(s, AUTHENTICATOR_RESPONSE);
        assert_eq!(s.len(), 42);
        assert_eq!(
            generate_authenticator_response_from_hash(
                &password_hash(),
                &nt_response(),
                &peer,
                &auth,
                USER
            ),
            AUTHENTICATOR_RESPONSE
        );
    }

    #[test]
    fn verify_accepts_the_vector_and_nothing_near_it() {
        let (auth, peer) = (auth_challenge(), peer_challenge());
        let good = nt_response();
        assert!(verify_nt_response(&auth, &peer, USER, PASSWORD, &good));
        assert!(verify_nt_response_from_hash(
            &auth,
            &peer,
            USER,
            &password_hash(),
            &good
        ));
        assert!(!verify_nt_response(&auth, &peer, USER, "clientPasS", &good));
        assert!(!verify_nt_response(&auth, &peer, b"user", PASSWORD, &good));
        assert!(!verify_nt_response(
            &auth,
            &peer,
            USER,
            PASSWORD,
            &good[..23]
        ));
        assert!(!verify_nt_response(&auth, &peer, USER, PASSWORD, &[]));
        for i in 0..24 {
            let mut bad = good;
            bad[i] ^= 0x01;
            assert!(!verify_nt_response(&auth, &peer, USER, PASSWORD, &bad));
        }
    }

    #[test]
    fn prepended_domain_is_not_hashed() {
        let (auth, peer) = (auth_challenge(), peer_challenge());
        assert_eq!(mschap_user_name(b"CORP\\User"), b"User");
        assert_eq!(mschap_user_name(b"a\\b\\User"), b"User");
        assert_eq!(mschap_user_name(b"User@realm"), b"User@realm");
        assert_eq!(mschap_user_name(b"trailing\\"), b"");
        assert!(verify_nt_response(
            &auth,
            &peer,
            b"CORP\\User",
            PASSWORD,
            &nt_response()
        ));
        assert_eq!(
            generate_authenticator_response(PASSWORD, &nt_response(), &peer, &auth, b"CORP\\User"),
            AUTHENTICATOR_RESPONSE
        );
    }

    #[test]
    fn des_key_expansion_spreads_seven_bit_groups() {
        // All ones: every octet carries seven ones above a zero parity bit.
        assert_eq!(des_key(&[0xff; 7]), [0xfe; 8]);
        assert_eq!(des_key(&[0; 7]), [0; 8]);
        // A single top bit lands in the top of the first octet; the lowest
        // key bit lands just above the parity bit of the last octet.
        assert_eq!(
            des_key(&[0x80, 0, 0, 0, 0, 0, 0]),
            [0x80, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            des_key(&[0, 0, 0, 0, 0, 0, 0x01]),
            [0, 0, 0, 0, 0, 0, 0, 0x02]
        );
    }

    #[test]
    fn chap_md5_is_md5_of_id_secret_challenge() {
        let mut md5 = Md5::new();
        md5.update(b"\x2asecretchallenge");
        let expected: [u8; 16] = md5.finalize().into();
        assert_eq!(chap_md5_response(0x2a, b"secret", b"challenge"), expected);
        assert!(chap_md5_verify(0x2a, b"secret", b"challenge", &expected));
        assert!(!chap_md5_verify(0x2b, b"secret", b"challenge", &expected));
        assert!(!chap_md5_verify(0x2a, b"Secret", b"challenge", &expected));
        assert!(!chap_md5_verify(
            0x2a,
            b"secret",
            b"challenge",
            &expected[..15]
        ));
        // Known answer computed independently: MD5("\x00" "" "") = MD5 of one
        // zero octet.
        assert_eq!(
            chap_md5_response(0, b"", b""),
            hex::<16>("93b885adfe0da089cdf634904fd59f71")
        );
    }

    #[test]
    fn ct_eq_is_plain_equality() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(secrets_match(b"pw", b"pw"));
        assert!(secrets_match(b"", b""));
        assert!(!secrets_match(b"pw", b"pw "));
        assert!(!secrets_match(b"pw", b"Pw"));
        assert!(!secrets_match(b"pw", b"pw\0"));
        let long = [7u8; 300];
        assert!(secrets_match(&long, &long));
        assert!(!secrets_match(&long, &long[..299]));
        assert!(!secrets_match(&long[..255], &long[..256]));
    }

    #[test]
    fn non_ascii_passwords_hash_as_utf16() {
        // "é" is U+00E9: one UTF-16 unit, E9 00 little endian.
        let mut md4 = Md4::new();
        md4.update([0xe9, 0x00]);
        let expected: [u8; 16] = md4.finalize().into();
        assert_eq!(nt_password_hash("é"), expected);
        // Outside the BMP: a surrogate pair, four octets.
        let mut md4 = Md4::new();
        md4.update([0x3d, 0xd8, 0x00, 0xde]);
        let expected: [u8; 16] = md4.finalize().into();
        assert_eq!(nt_password_hash("\u{1F600}"), expected);
    }
}
