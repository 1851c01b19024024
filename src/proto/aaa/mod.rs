//! Authentication, authorisation and address assignment for PPP sessions.
//!
//! The PPP layer asks; an [`Aaa`] backend answers later. A request goes in
//! with [`Aaa::start`] under a ticket the caller chose, and the answer comes
//! out of [`Aaa::poll_result`] whenever the backend has it — at once for the
//! local users file ([`LocalAaa`]), after a round trip for RADIUS. Sessions
//! therefore never wait on a backend, and a RADIUS client plugs in behind the
//! same trait.
//!
//! - [`users`]: the local users file (format in its module doc).
//! - [`pool`]: IPv4 address pools.
//! - [`prefix`]: IPv6 prefix pools (one /64 per session).
//! - [`local`]: the backend that checks requests against a users file.
#![forbid(unsafe_code)]

pub mod local;
pub mod pool;
pub mod prefix;
pub mod users;

use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::proto::l2tp::ProxyAuth;
use crate::wire::l2tp::avps::proxy_authen_type;

pub use local::LocalAaa;
pub use pool::{AddrRange, Pool, PoolError, PoolStats, ReleaseError};
pub use prefix::{PrefixPool, PrefixPoolError};
pub use users::{Credential, ParseError, UserEntry, UsersFile};

/// The caller's handle on one request; answers carry it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuthTicket(pub u64);

/// What the peer presented, in the form each protocol defines.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthRequest {
    /// PAP Authenticate-Request (RFC 1334 §2.2.1): name and cleartext
    /// password.
    Pap {
        /// Peer-ID.
        user: Vec<u8>,
        /// Password.
        password: Vec<u8>,
    },
    /// CHAP Response to our Challenge (RFC 1994 §4.1), MD5 algorithm.
    Chap {
        /// Name field of the Response.
        user: Vec<u8>,
        /// Identifier of the Challenge (and Response).
        id: u8,
        /// The Challenge Value we sent.
        challenge: Vec<u8>,
        /// The Response Value received (16 octets for MD5).
        response: Vec<u8>,
    },
    /// MS-CHAPv2 Response (RFC 2759 §4).
    MsChapV2 {
        /// Name field of the Response, as sent (a `DOMAIN\` prefix included).
        user: Vec<u8>,
        /// The 16-octet challenge we sent.
        authenticator_challenge: [u8; 16],
        /// Peer-Challenge from the Response.
        peer_challenge: [u8; 16],
        /// NT-Response from the Response.
        nt_response: [u8; 24],
    },
}

impl AuthRequest {
    /// Index of its method in [`AuthStats`] (see [`AuthStats::METHODS`]).
    pub const fn method_index(&self) -> usize {
        match self {
            AuthRequest::Pap { .. } => 0,
            AuthRequest::Chap { .. } => 1,
            AuthRequest::MsChapV2 { .. } => 2,
        }
    }

    /// The name the peer gave.
    pub fn user(&self) -> &[u8] {
        match self {
            AuthRequest::Pap { user, .. }
            | AuthRequest::Chap { user, .. }
            | AuthRequest::MsChapV2 { user, .. } => user,
        }
    }

    /// Turn the proxy authentication AVPs a LAC forwarded in ICCN (RFC 2661
    /// §4.4.5) into the request the LNS would have built had it run the
    /// exchange itself. For PAP (and the textual exchange, which carries the
    /// same name and password) the Proxy Authen Response holds the
    /// password; for CHAP it holds the Response Value, with the Challenge
    /// and the Identifier in their own AVPs.
    pub fn from_proxy(proxy: &ProxyAuth) -> Result<AuthRequest, ProxyAuthError> {
        let kind = proxy.authen_type.ok_or(ProxyAuthError::MissingType)?;
        let user = || proxy.name.clone().ok_or(ProxyAuthError::MissingName);
        let response = || {
            proxy
                .response
                .clone()
                .ok_or(ProxyAuthError::MissingResponse)
        };
        match kind {
            proxy_authen_type::PAP | proxy_authen_type::TEXTUAL => Ok(AuthRequest::Pap {
                user: user()?,
                password: response()?,
            }),
            proxy_authen_type::CHAP => Ok(AuthRequest::Chap {
                user: user()?,
                id: proxy.id.ok_or(ProxyAuthError::MissingId)?,
                challenge: proxy
                    .challenge
                    .clone()
                    .ok_or(ProxyAuthError::MissingChallenge)?,
                response: response()?,
            }),
            proxy_authen_type::NONE => Err(ProxyAuthError::NoneRequested),
            other => Err(ProxyAuthError::UnsupportedType(other)),
        }
    }
}

/// Passwords stay out of logs; CHAP values are not secrets on their own but
/// are left out too, to keep log lines short.
impl fmt::Debug for AuthRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (method, user) = match self {
            AuthRequest::Pap { user, .. } => ("Pap", user),
            AuthRequest::Chap { user, .. } => ("Chap", user),
            AuthRequest::MsChapV2 { user, .. } => ("MsChapV2", user),
        };
        f.debug_struct(method)
            .field("user", &String::from_utf8_lossy(user))
            .finish_non_exhaustive()
    }
}

/// Why proxy authentication data could not become a request. The LNS then
/// authenticates the peer itself (RFC 2661 §4.4.5 leaves that choice to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyAuthError {
    /// No Proxy Authen Type AVP.
    MissingType,
    /// Proxy Authen Type 4: the LAC did not authenticate.
    NoneRequested,
    /// A type we cannot check (MS-CHAPv1, reserved or unknown values).
    UnsupportedType(u16),
    /// No Proxy Authen Name.
    MissingName,
    /// CHAP without Proxy Authen Challenge.
    MissingChallenge,
    /// CHAP without Proxy Authen ID.
    MissingId,
    /// No Proxy Authen Response.
    MissingResponse,
}

/// What an accepted subscriber gets. Every field is optional: the session
/// falls back to its configured defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// A static address (RADIUS Framed-IP-Address).
    pub framed_ip: Option<Ipv4Addr>,
    /// The pool to allocate from (RADIUS Framed-Pool).
    pub pool: Option<String>,
    /// A static IPv6 /64 (upper 64 bits) for the session's Router
    /// Advertisements (RADIUS Framed-IPv6-Prefix, RFC 3162 §2.3, limited
    /// to /64).
    pub ipv6_prefix: Option<[u8; 8]>,
    /// Primary and secondary DNS server for IPCP (RFC 1877 §1.1, §1.3).
    pub dns: [Option<Ipv4Addr>; 2],
    /// Disconnect after this long (RADIUS Session-Timeout).
    pub session_timeout: Option<Duration>,
    /// For MS-CHAPv2: the `S=<40 hex>` authenticator response (RFC 2759
    /// §8.7) to put in the Success packet.
    pub mschapv2_success: Option<String>,
}

/// Why a request was refused. Flat so each variant can be a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// No entry for the name.
    UnknownUser,
    /// The password or response does not match.
    BadCredential,
    /// The method cannot be checked against what is stored (CHAP-MD5 needs
    /// the cleartext secret; only an NT hash is known).
    MethodUnavailable,
    /// The request itself is malformed (a CHAP-MD5 response that is not 16
    /// octets, an empty challenge, a name that is not UTF-8).
    Malformed,
    /// The backend could not answer (RADIUS servers unreachable).
    BackendUnavailable,
}

impl RejectReason {
    /// Number of reasons.
    pub const COUNT: usize = 5;

    /// Metric label of each reason, by [`RejectReason::index`].
    pub const NAMES: [&'static str; RejectReason::COUNT] = [
        "unknown_user",
        "bad_credential",
        "method_unavailable",
        "malformed",
        "backend_unavailable",
    ];

    /// A dense index for per-reason counts.
    pub const fn index(self) -> usize {
        match self {
            RejectReason::UnknownUser => 0,
            RejectReason::BadCredential => 1,
            RejectReason::MethodUnavailable => 2,
            RejectReason::Malformed => 3,
            RejectReason::BackendUnavailable => 4,
        }
    }
}

/// A backend's verdicts so far, by method (plain integers: a backend
/// lives on one thread; the owner copies them out for metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthStats {
    /// Accepted requests, by [`AuthRequest::method_index`].
    pub accepted: [u64; AuthStats::METHOD_COUNT],
    /// Rejected requests, by method and [`RejectReason::index`].
    pub rejected: [[u64; RejectReason::COUNT]; AuthStats::METHOD_COUNT],
}

impl AuthStats {
    /// Number of methods.
    pub const METHOD_COUNT: usize = 3;

    /// Metric label of each method, by [`AuthRequest::method_index`].
    pub const METHODS: [&'static str; AuthStats::METHOD_COUNT] = ["pap", "chap", "mschapv2"];

    /// Count the verdict on `request`.
    pub fn count(&mut self, request: &AuthRequest, outcome: &AuthOutcome) {
        let method = request.method_index();
        match outcome {
            AuthOutcome::Accept { .. } => self.accepted[method] += 1,
            AuthOutcome::Reject { reason } => self.rejected[method][reason.index()] += 1,
        }
    }

    /// Rejections of one method, whatever the reason.
    pub fn rejected_total(&self, method: usize) -> u64 {
        self.rejected.get(method).map_or(0, |r| r.iter().sum())
    }
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Authenticated; what the session gets.
    Accept {
        /// Addresses, DNS, timeouts, MS-CHAPv2 success string.
        attributes: Attributes,
    },
    /// Refused.
    Reject {
        /// Why.
        reason: RejectReason,
    },
}

/// An authentication backend, driven like every other sans-IO core: requests
/// and time in, results and the next deadline out.
pub trait Aaa {
    /// Begin checking `request`; its answer will carry `ticket`.
    fn start(&mut self, now: Instant, ticket: AuthTicket, request: AuthRequest);

    /// Forget a request whose session went away; no answer will come for it.
    fn cancel(&mut self, ticket: AuthTicket);

    /// The next finished answer, if any.
    fn poll_result(&mut self) -> Option<(AuthTicket, AuthOutcome)>;

    /// When the backend next needs [`Aaa::handle_timeout`] (RADIUS
    /// retransmissions); never for a backend that answers at once.
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// Let time-driven work happen (retransmit, give up, fail over).
    fn handle_timeout(&mut self, _now: Instant) {}

    /// Verdicts so far (a backend that keeps none reports zeros).
    fn auth_stats(&self) -> AuthStats {
        AuthStats::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(kind: u16) -> ProxyAuth {
        ProxyAuth {
            authen_type: Some(kind),
            name: Some(b"alice@isp.example".to_vec()),
            challenge: Some(vec![1, 2, 3, 4]),
            id: Some(7),
            response: Some(b"resp".to_vec()),
        }
    }

    #[test]
    fn proxy_pap_and_textual_become_pap() {
        for kind in [proxy_authen_type::PAP, proxy_authen_type::TEXTUAL] {
            assert_eq!(
                AuthRequest::from_proxy(&proxy(kind)),
                Ok(AuthRequest::Pap {
                    user: b"alice@isp.example".to_vec(),
                    password: b"resp".to_vec(),
                })
            );
        }
    }

    #[test]
    fn proxy_chap_carries_id_and_challenge() {
        assert_eq!(
            AuthRequest::from_proxy(&proxy(proxy_authen_type::CHAP)),
            Ok(AuthRequest::Chap {
                user: b"alice@isp.example".to_vec(),
                id: 7,
                challenge: vec![1, 2, 3, 4],
                response: b"resp".to_vec(),
            })
        );
    }

    #[test]
    fn proxy_gaps_are_reported() {
        use ProxyAuthError::*;
        assert_eq!(
            AuthRequest::from_proxy(&ProxyAuth::default()),
            Err(MissingType)
        );
        assert_eq!(
            AuthRequest::from_proxy(&proxy(proxy_authen_type::NONE)),
            Err(NoneRequested)
        );
        assert_eq!(
            AuthRequest::from_proxy(&proxy(proxy_authen_type::MSCHAP_V1)),
            Err(UnsupportedType(5))
        );
        assert_eq!(AuthRequest::from_proxy(&proxy(0)), Err(UnsupportedType(0)));
        let cut = |f: fn(&mut ProxyAuth)| {
            let mut p = proxy(proxy_authen_type::CHAP);
            f(&mut p);
            AuthRequest::from_proxy(&p)
        };
        assert_eq!(cut(|p| p.name = None), Err(MissingName));
        assert_eq!(cut(|p| p.challenge = None), Err(MissingChallenge));
        assert_eq!(cut(|p| p.id = None), Err(MissingId));
        assert_eq!(cut(|p| p.response = None), Err(MissingResponse));
    }

    #[test]
    fn debug_output_hides_the_password() {
        let r = AuthRequest::Pap {
            user: b"alice".to_vec(),
            password: b"hunter2".to_vec(),
        };
        let text = format!("{r:?}");
        assert!(
            text.contains("alice") && !text.contains("hunter2"),
            "{text}"
        );
        assert_eq!(r.user(), b"alice");
    }
}
