//! The local backend: requests checked against a [`UsersFile`] on the spot.
//!
//! Answers are still queued and handed out by `poll_result`, so the PPP layer
//! drives this backend exactly as it will drive RADIUS.

use std::collections::VecDeque;
use std::time::Instant;

use crate::crypto::ppp_auth;

use super::users::{Credential, UsersFile};
use super::{Aaa, AuthOutcome, AuthRequest, AuthStats, AuthTicket, RejectReason};

/// Checks PAP, CHAP-MD5 and MS-CHAPv2 against the users file.
#[derive(Debug, Default)]
pub struct LocalAaa {
    users: UsersFile,
    ready: VecDeque<(AuthTicket, AuthOutcome)>,
    stats: AuthStats,
}

impl LocalAaa {
    /// A backend over `users`.
    pub fn new(users: UsersFile) -> Self {
        LocalAaa {
            users,
            ready: VecDeque::new(),
            stats: AuthStats::default(),
        }
    }

    /// Swap in a freshly parsed users file (reload). Answers already queued
    /// keep what the old file said.
    pub fn set_users(&mut self, users: UsersFile) {
        self.users = users;
    }

    /// The users file in force.
    pub fn users(&self) -> &UsersFile {
        &self.users
    }

    /// The answer to `request`, computed now.
    pub fn check(&self, request: &AuthRequest) -> AuthOutcome {
        match self.verify(request) {
            Ok(outcome) => outcome,
            Err(reason) => AuthOutcome::Reject { reason },
        }
    }

    fn verify(&self, request: &AuthRequest) -> Result<AuthOutcome, RejectReason> {
        let name = std::str::from_utf8(request.user()).map_err(|_| RejectReason::Malformed)?;
        let entry = self.users.user(name).ok_or(RejectReason::UnknownUser)?;
        let mut attributes = entry.attributes.clone();
        let accepted = match (request, &entry.credential) {
            // RFC 1334 §2.2.1: PAP sends the password itself.
            (AuthRequest::Pap { password, .. }, Credential::Password(stored)) => {
                ppp_auth::secrets_match(stored.as_bytes(), password)
            }
            (AuthRequest::Pap { password, .. }, Credential::NtHash(stored)) => {
                std::str::from_utf8(password)
                    .is_ok_and(|p| ppp_auth::ct_eq(&ppp_auth::nt_password_hash(p), stored))
            }
            // RFC 1994 §4.1: an MD5 Response Value is 16 octets, and §4.1
            // asks for a Challenge Value of at least one octet.
            (
                AuthRequest::Chap {
                    id,
                    challenge,
                    response,
                    ..
                },
                Credential::Password(stored),
            ) => {
                if response.len() != 16 || challenge.is_empty() {
                    return Err(RejectReason::Malformed);
                }
                ppp_auth::chap_md5_verify(*id, stored.as_bytes(), challenge, response)
            }
            (AuthRequest::Chap { .. }, Credential::NtHash(_)) => {
                return Err(RejectReason::MethodUnavailable);
            }
            // RFC 2759 §5: on success the Success packet carries the
            // authenticator response computed from the same secret.
            (
                AuthRequest::MsChapV2 {
                    user,
                    authenticator_challenge,
                    peer_challenge,
                    nt_response,
                },
                credential,
            ) => {
                let hash = match credential {
                    Credential::Password(p) => ppp_auth::nt_password_hash(p),
                    Credential::NtHash(h) => *h,
                };
                let ok = ppp_auth::verify_nt_response_from_hash(
                    authenticator_challenge,
                    peer_challenge,
                    user,
                    &hash,
                    nt_response,
                );
                if ok {
                    attributes.mschapv2_success =
                        Some(ppp_auth::generate_authenticator_response_from_hash(
                            &hash,
                            nt_response,
                            peer_challenge,
                            authenticator_challenge,
                            user,
                        ));
                }
                ok
            }
        };
        if accepted {
            Ok(AuthOutcome::Accept { attributes })
        } else {
            Err(RejectReason::BadCredential)
        }
    }
}

impl Aaa for LocalAaa {
    fn start(&mut self, _now: Instant, ticket: AuthTicket, request: AuthRequest) {
        let outcome = self.check(&request);
        self.stats.count(&request, &outcome);
        self.ready.push_back((ticket, outcome));
    }

    fn auth_stats(&self) -> AuthStats {
        self.stats
    }

    fn cancel(&mut self, ticket: AuthTicket) {
        self.ready.retain(|(t, _)| *t != ticket);
    }

    fn poll_result(&mut self) -> Option<(AuthTicket, AuthOutcome)> {
        self.ready.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::aaa::users::parse;
    use crate::proto::aaa::Attributes;
    use std::time::Duration;

    const USERS: &str = r#"
User                password=clientPass   ip=100.64.0.9
hashed@isp.example  nthash=44EBBA8D5312B8D611474411F56989AE
*@isp.example       password=realm-secret
@isp.example        pool=residential dns=192.0.2.53 session-timeout=3600
"#;

    fn aaa() -> LocalAaa {
        LocalAaa::new(parse(USERS).unwrap())
    }

    fn run(aaa: &mut LocalAaa, request: AuthRequest) -> AuthOutcome {
        let ticket = AuthTicket(42);
        aaa.start(Instant::now(), ticket, request);
        let (t, outcome) = aaa.poll_result().unwrap();
        assert_eq!(t, ticket);
        assert_eq!(aaa.poll_result(), None);
        outcome
    }

    fn pap(user: &str, password: &[u8]) -> AuthRequest {
        AuthRequest::Pap {
            user: user.as_bytes().to_vec(),
            password: password.to_vec(),
        }
    }

    #[test]
    fn verdicts_are_counted_by_method_and_reason() {
        let mut aaa = aaa();
        assert_eq!(aaa.auth_stats(), AuthStats::default());
        run(&mut aaa, pap("User", b"clientPass"));
        run(&mut aaa, pap("User", b"wrong"));
        run(&mut aaa, pap("nobody", b"x"));
        run(&mut aaa, mschap("User", [0; 24]));
        let stats = aaa.auth_stats();
        assert_eq!(stats.accepted, [1, 0, 0]);
        assert_eq!(stats.rejected_total(0), 2);
        assert_eq!(stats.rejected[0][RejectReason::BadCredential.index()], 1);
        assert_eq!(stats.rejected[0][RejectReason::UnknownUser.index()], 1);
        assert_eq!(stats.rejected_total(2), 1);
        assert_eq!(AuthStats::METHODS[2], "mschapv2");
        assert_eq!(
            RejectReason::NAMES[RejectReason::Malformed.index()],
            "malformed"
        );
    }

    fn reject(reason: RejectReason) -> AuthOutcome {
        AuthOutcome::Reject { reason }
    }

    use crate::crypto::ppp_auth::rfc2759::{AUTH_CHALLENGE, NT_RESPONSE, PEER_CHALLENGE};

    fn mschap(user: &str, nt_response: [u8; 24]) -> AuthRequest {
        AuthRequest::MsChapV2 {
            user: user.as_bytes().to_vec(),
            authenticator_challenge: AUTH_CHALLENGE,
            peer_challenge: PEER_CHALLENGE,
            nt_response,
        }
    }

    #[test]
    fn pap_against_password_and_nt_hash() {
        let mut a = aaa();
        let ok = run(&mut a, pap("User", b"clientPass"));
        assert_eq!(
            ok,
            AuthOutcome::Accept {
                attributes: Attributes {
                    framed_ip: Some("100.64.0.9".parse().unwrap()),
                    ..Attributes::default()
                }
            }
        );
        assert_eq!(
            run(&mut a, pap("User", b"clientpass")),
            reject(RejectReason::BadCredential)
        );
        assert_eq!(
            run(&mut a, pap("User", b"")),
            reject(RejectReason::BadCredential)
        );
        assert_eq!(
            run(&mut a, pap("nobody", b"x")),
            reject(RejectReason::UnknownUser)
        );
        assert!(matches!(
            run(&mut a, pap("hashed@ISP.example", b"clientPass")),
            AuthOutcome::Accept { .. }
        ));
        assert_eq!(
            run(&mut a, pap("hashed@isp.example", b"\xff\xfe")),
            reject(RejectReason::BadCredential)
        );
        assert_eq!(
            run(
                &mut a,
                AuthRequest::Pap {
                    user: vec![0xff],
                    password: vec![]
                }
            ),
            reject(RejectReason::Malformed)
        );
    }

    #[test]
    fn realm_wildcard_gets_realm_defaults() {
        let mut a = aaa();
        let AuthOutcome::Accept { attributes } =
            run(&mut a, pap("zoe@isp.example", b"realm-secret"))
        else {
            panic!("wildcard user rejected");
        };
        assert_eq!(attributes.pool.as_deref(), Some("residential"));
        assert_eq!(attributes.dns, [Some("192.0.2.53".parse().unwrap()), None]);
        assert_eq!(attributes.session_timeout, Some(Duration::from_secs(3600)));
    }

    #[test]
    fn chap_md5_verifies_and_rejects() {
        let mut a = aaa();
        let challenge = b"0123456789abcdef".to_vec();
        let good = ppp_auth::chap_md5_response(9, b"clientPass", &challenge);
        let chap = |id: u8, response: &[u8], challenge: &[u8]| AuthRequest::Chap {
            user: b"User".to_vec(),
            id,
            challenge: challenge.to_vec(),
            response: response.to_vec(),
        };
        assert!(matches!(
            run(&mut a, chap(9, &good, &challenge)),
            AuthOutcome::Accept { .. }
        ));
        assert_eq!(
            run(&mut a, chap(10, &good, &challenge)),
            reject(RejectReason::BadCredential)
        );
        assert_eq!(
            run(&mut a, chap(9, &good[..15], &challenge)),
            reject(RejectReason::Malformed)
        );
        assert_eq!(
            run(&mut a, chap(9, &good, &[])),
            reject(RejectReason::Malformed)
        );
        // Only the NT hash is stored: CHAP-MD5 cannot be checked.
        let hashed = AuthRequest::Chap {
            user: b"hashed@isp.example".to_vec(),
            id: 9,
            challenge,
            response: good.to_vec(),
        };
        assert_eq!(run(&mut a, hashed), reject(RejectReason::MethodUnavailable));
    }

    #[test]
    fn mschapv2_accepts_rfc_vector_with_authenticator_response() {
        let mut a = aaa();
        let AuthOutcome::Accept { attributes } = run(&mut a, mschap("User", NT_RESPONSE)) else {
            panic!("RFC 2759 vector rejected");
        };
        assert_eq!(
            attributes.mschapv2_success.as_deref(),
            Some("S=407A5589115FD0D6209F510FE9C04566932CDA56")
        );
        let mut bad = NT_RESPONSE;
        bad[23] ^= 1;
        assert_eq!(
            run(&mut a, mschap("User", bad)),
            reject(RejectReason::BadCredential)
        );
    }

    #[test]
    fn mschapv2_against_a_stored_nt_hash() {
        let mut a = aaa();
        let user = "hashed@isp.example";
        let nt = ppp_auth::generate_nt_response(
            &AUTH_CHALLENGE,
            &PEER_CHALLENGE,
            user.as_bytes(),
            "clientPass",
        );
        let AuthOutcome::Accept { attributes } = run(&mut a, mschap(user, nt)) else {
            panic!("NT-hash user rejected");
        };
        let expected = ppp_auth::generate_authenticator_response(
            "clientPass",
            &nt,
            &PEER_CHALLENGE,
            &AUTH_CHALLENGE,
            user.as_bytes(),
        );
        assert_eq!(attributes.mschapv2_success, Some(expected));
        assert_eq!(attributes.pool.as_deref(), Some("residential"));
    }

    #[test]
    fn answers_queue_in_order_and_cancel_drops_one() {
        let mut a = aaa();
        let now = Instant::now();
        a.start(now, AuthTicket(1), pap("User", b"clientPass"));
        a.start(now, AuthTicket(2), pap("User", b"wrong"));
        a.start(now, AuthTicket(3), pap("nobody", b"x"));
        a.cancel(AuthTicket(2));
        assert_eq!(a.poll_timeout(), None);
        let order: Vec<u64> = std::iter::from_fn(|| a.poll_result())
            .map(|(t, _)| t.0)
            .collect();
        assert_eq!(order, [1, 3]);
    }

    #[test]
    fn reload_swaps_the_users() {
        let mut a = aaa();
        assert!(matches!(
            run(&mut a, pap("User", b"clientPass")),
            AuthOutcome::Accept { .. }
        ));
        a.set_users(parse("User password=newPass").unwrap());
        assert_eq!(a.users().len(), 1);
        assert_eq!(
            run(&mut a, pap("User", b"clientPass")),
            reject(RejectReason::BadCredential)
        );
        assert!(matches!(
            run(&mut a, pap("User", b"newPass")),
            AuthOutcome::Accept { .. }
        ));
    }
}
