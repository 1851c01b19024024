//! The authentication phase (RFC 1661 §3.5): PAP (RFC 1334), CHAP-MD5
//! (RFC 1994) and MS-CHAPv2 (RFC 2759), as authenticator and as peer.
//!
//! The authenticator never decides itself: it hands an [`AuthRequest`] to
//! AAA and waits for the verdict, so a RADIUS round trip fits in without
//! changing this code.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::crypto::ppp_auth;
use crate::proto::aaa::{AuthOutcome, AuthRequest};
use crate::wire::ppp::chap::{failure, Chap, MsChapV2Failure, MsChapV2Response, MsChapV2Success};
use crate::wire::ppp::lcp::AuthMethod;
use crate::wire::ppp::pap::Pap;

/// Timers and names of the authentication phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// Retransmission interval of Challenge (authenticator) and
    /// Authenticate-Request (peer).
    pub restart: Duration,
    /// Transmissions before giving up.
    pub max_transmissions: u32,
    /// Our name in CHAP Challenges.
    pub name: Vec<u8>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            restart: Duration::from_secs(3),
            max_transmissions: 10,
            name: b"lns".to_vec(),
        }
    }
}

/// Why authentication did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthFailure {
    /// AAA said no (authenticator) or the authenticator said no (peer).
    Rejected,
    /// No answer within the retransmissions.
    Timeout,
    /// The authenticator's MS-CHAPv2 success did not prove it knows the
    /// password (peer only).
    BadAuthenticator,
}

/// What an authentication machine wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutput {
    /// Send this packet (PAP or CHAP, per the method).
    Send(Vec<u8>),
    /// Ask AAA (authenticator only); answer with `verdict`.
    Verify(AuthRequest),
    /// The phase is over.
    Done(Result<(), AuthFailure>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ServerState {
    /// Waiting for the peer's credentials.
    Waiting,
    /// AAA is deciding about the packet with this identifier.
    Verifying { id: u8 },
    /// Finished; a repeat of the peer's last packet gets `reply` again.
    Finished { id: u8, reply: Vec<u8> },
}

/// The authenticator side (the LNS).
#[derive(Debug, Clone)]
pub struct AuthServer {
    method: AuthMethod,
    settings: AuthSettings,
    id: u8,
    challenge: [u8; 16],
    state: ServerState,
    sent: u32,
    deadline: Option<Instant>,
    out: VecDeque<AuthOutput>,
}

impl AuthServer {
    /// Start authenticating with `method`. CHAP methods send their
    /// Challenge at once; PAP waits for the peer (RFC 1334 §2).
    /// `challenge` must come from a good random source; `id` too.
    pub fn start(
        now: Instant,
        method: AuthMethod,
        settings: AuthSettings,
        challenge: [u8; 16],
        id: u8,
    ) -> Self {
        let mut server = AuthServer {
            method,
            settings,
            id,
            challenge,
            state: ServerState::Waiting,
            sent: 0,
            deadline: None,
            out: VecDeque::new(),
        };
        match method {
            AuthMethod::Pap => {
                // Give the peer as long as a CHAP exchange would get.
                let wait = server.settings.restart * server.settings.max_transmissions;
                server.deadline = Some(now + wait);
            }
            AuthMethod::ChapMd5 | AuthMethod::MsChapV2 => server.send_challenge(now),
        }
        server
    }

    /// The method in use.
    pub fn method(&self) -> AuthMethod {
        self.method
    }

    /// RFC 1994 §4.1: Challenge with our value and name.
    fn send_challenge(&mut self, now: Instant) {
        let packet = Chap::Challenge {
            identifier: self.id,
            value: &self.challenge,
            name: &self.settings.name,
        };
        let mut bytes = Vec::with_capacity(21 + self.settings.name.len());
        if packet.emit(&mut bytes).is_ok() {
            self.out.push_back(AuthOutput::Send(bytes));
        }
        self.sent += 1;
        self.deadline = Some(now + self.settings.restart);
    }

    /// A PAP or CHAP packet from the peer.
    pub fn receive(&mut self, _now: Instant, packet: &[u8]) {
        match self.method {
            AuthMethod::Pap => self.receive_pap(packet),
            AuthMethod::ChapMd5 | AuthMethod::MsChapV2 => self.receive_chap(packet),
        }
    }

    fn receive_pap(&mut self, packet: &[u8]) {
        let Ok(Pap::Request {
            identifier,
            peer_id,
            password,
        }) = Pap::parse(packet)
        else {
            return;
        };
        match &self.state {
            ServerState::Waiting => {
                self.state = ServerState::Verifying { id: identifier };
                self.deadline = None;
                self.out.push_back(AuthOutput::Verify(AuthRequest::Pap {
                    user: peer_id.to_vec(),
                    password: password.to_vec(),
                }));
            }
            // RFC 1334 §2.2.1: every Authenticate-Request gets an answer, so a
            // peer that lost our Ack hears it again (with its new id).
            ServerState::Finished { reply, .. } => {
                let mut reply = reply.clone();
                if let Some(id) = reply.get_mut(1) {
                    *id = identifier;
                }
                self.out.push_back(AuthOutput::Send(reply));
            }
            ServerState::Verifying { .. } => {}
        }
    }

    fn receive_chap(&mut self, packet: &[u8]) {
        let Ok(Chap::Response {
            identifier,
            value,
            name,
        }) = Chap::parse(packet)
        else {
            return;
        };
        match &self.state {
            // RFC 1994 §4.1: a Response must carry the Challenge's id.
            ServerState::Waiting if identifier == self.id => {
                let request = match self.method {
                    AuthMethod::MsChapV2 => match MsChapV2Response::parse(value) {
                        Ok(response) => AuthRequest::MsChapV2 {
                            user: name.to_vec(),
                            authenticator_challenge: self.challenge,
                            peer_challenge: response.peer_challenge,
                            nt_response: response.nt_response,
                        },
                        Err(_) => return self.finish_chap(false, None),
                    },
                    _ => AuthRequest::Chap {
                        user: name.to_vec(),
                        id: identifier,
                        challenge: self.challenge.to_vec(),
                        response: value.to_vec(),
                    },
                };
                self.state = ServerState::Verifying { id: identifier };
                self.deadline = None;
                self.out.push_back(AuthOutput::Verify(request));
            }
            // RFC 1994 §4.2: a repeated Response (our Success was lost)
            // gets the same answer again.
            ServerState::Finished { id, reply } if *id == identifier => {
                self.out.push_back(AuthOutput::Send(reply.clone()));
            }
            _ => {}
        }
    }

    /// AAA's answer to the last [`AuthOutput::Verify`].
    pub fn verdict(&mut self, _now: Instant, outcome: &AuthOutcome) {
        let ServerState::Verifying { id } = self.state else {
            return;
        };
        let accepted = matches!(outcome, AuthOutcome::Accept { .. });
        match self.method {
            AuthMethod::Pap => {
                let message: &[u8] = if accepted {
                    b"Welcome"
                } else {
                    b"Authentication failed"
                };
                let packet = if accepted {
                    Pap::Ack {
                        identifier: id,
                        message,
                    }
                } else {
                    Pap::Nak {
                        identifier: id,
                        message,
                    }
                };
                let mut reply = Vec::with_capacity(32);
                let _ = packet.emit(&mut reply);
                self.out.push_back(AuthOutput::Send(reply.clone()));
                self.state = ServerState::Finished { id, reply };
                self.out.push_back(AuthOutput::Done(if accepted {
                    Ok(())
                } else {
                    Err(AuthFailure::Rejected)
                }));
            }
            AuthMethod::ChapMd5 | AuthMethod::MsChapV2 => {
                let success = match outcome {
                    AuthOutcome::Accept { attributes } => attributes.mschapv2_success.clone(),
                    AuthOutcome::Reject { .. } => None,
                };
                self.finish_chap(accepted, success);
            }
        }
    }

    /// RFC 1994 §4.2 Success/Failure; RFC 2759 §5/§6 message formats.
    fn finish_chap(&mut self, accepted: bool, mschapv2_success: Option<String>) {
        let id = match self.state {
            ServerState::Verifying { id } => id,
            _ => self.id,
        };
        let mut message = Vec::with_capacity(64);
        match (self.method, accepted) {
            (AuthMethod::MsChapV2, true) => {
                // The authenticator response proves we know the password too;
                // without it the peer must refuse us, so send a Failure.
                match mschapv2_success.as_deref().map(str::as_bytes) {
                    Some(text) => match MsChapV2Success::parse(text) {
                        Ok(success) => MsChapV2Success {
                            message: Some(b"Welcome"),
                            ..success
                        }
                        .emit(&mut message),
                        Err(_) => return self.finish_chap(false, None),
                    },
                    None => return self.finish_chap(false, None),
                }
            }
            (AuthMethod::MsChapV2, false) => MsChapV2Failure {
                error: failure::AUTHENTICATION_FAILURE,
                retry: false,
                challenge: Some(self.challenge),
                version: Some(3),
                message: Some(b"Authentication failed"),
            }
            .emit(&mut message),
            (_, true) => message.extend_from_slice(b"Welcome"),
            (_, false) => message.extend_from_slice(b"Authentication failed"),
        }
        let packet = if accepted {
            Chap::Success {
                identifier: id,
                message: &message,
            }
        } else {
            Chap::Failure {
                identifier: id,
                message: &message,
            }
        };
        let mut reply = Vec::with_capacity(8 + message.len());
        let _ = packet.emit(&mut reply);
        self.out.push_back(AuthOutput::Send(reply.clone()));
        self.state = ServerState::Finished { id, reply };
        self.deadline = None;
        self.out.push_back(AuthOutput::Done(if accepted {
            Ok(())
        } else {
            Err(AuthFailure::Rejected)
        }));
    }

    /// Next thing to do.
    pub fn poll_output(&mut self) -> Option<AuthOutput> {
        self.out.pop_front()
    }

    /// When `handle_timeout` has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Retransmit the Challenge, or give up.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_none_or(|at| at > now) || self.state != ServerState::Waiting {
            return;
        }
        let chap = self.method != AuthMethod::Pap;
        if chap && self.sent < self.settings.max_transmissions {
            self.send_challenge(now);
            return;
        }
        self.deadline = None;
        self.state = ServerState::Finished {
            id: self.id,
            reply: Vec::new(),
        };
        self.out
            .push_back(AuthOutput::Done(Err(AuthFailure::Timeout)));
    }
}

/// The peer side (a subscriber: tests and loadgen).
#[derive(Debug, Clone)]
pub struct AuthClient {
    method: AuthMethod,
    settings: AuthSettings,
    user: Vec<u8>,
    password: Vec<u8>,
    /// MS-CHAPv2 peer challenge (random, from the owner).
    peer_challenge: [u8; 16],
    id: u8,
    /// Expected authenticator response (MS-CHAPv2), once we answered.
    expected: Option<String>,
    answered: Option<u8>,
    done: bool,
    sent: u32,
    deadline: Option<Instant>,
    out: VecDeque<AuthOutput>,
}

impl AuthClient {
    /// Start authenticating as `user`. PAP sends at once (RFC 1334 §2.1);
    /// CHAP waits for the Challenge.
    pub fn start(
        now: Instant,
        method: AuthMethod,
        settings: AuthSettings,
        user: &[u8],
        password: &[u8],
        peer_challenge: [u8; 16],
        id: u8,
    ) -> Self {
        let mut client = AuthClient {
            method,
            settings,
            user: user.to_vec(),
            password: password.to_vec(),
            peer_challenge,
            id,
            expected: None,
            answered: None,
            done: false,
            sent: 0,
            deadline: None,
            out: VecDeque::new(),
        };
        match method {
            AuthMethod::Pap => client.send_pap(now),
            _ => {
                let wait = client.settings.restart * client.settings.max_transmissions;
                client.deadline = Some(now + wait);
            }
        }
        client
    }

    fn send_pap(&mut self, now: Instant) {
        let packet = Pap::Request {
            identifier: self.id,
            peer_id: &self.user,
            password: &self.password,
        };
        let mut bytes = Vec::with_capacity(6 + self.user.len() + self.password.len());
        if packet.emit(&mut bytes).is_ok() {
            self.out.push_back(AuthOutput::Send(bytes));
        }
        self.sent += 1;
        self.deadline = Some(now + self.settings.restart);
    }

    /// A PAP or CHAP packet from the authenticator.
    pub fn receive(&mut self, now: Instant, packet: &[u8]) {
        if self.done {
            return;
        }
        match self.method {
            AuthMethod::Pap => match Pap::parse(packet) {
                Ok(Pap::Ack { identifier, .. }) if identifier == self.id => self.finish(Ok(())),
                Ok(Pap::Nak { identifier, .. }) if identifier == self.id => {
                    self.finish(Err(AuthFailure::Rejected))
                }
                _ => {}
            },
            _ => match Chap::parse(packet) {
                Ok(Chap::Challenge {
                    identifier, value, ..
                }) => self.answer(now, identifier, value),
                Ok(Chap::Success {
                    identifier,
                    message,
                }) if Some(identifier) == self.answered => {
                    let proven = match &self.expected {
                        // RFC 2759 §5: check the authenticator knows the
                        // password before trusting the link.
                        Some(expected) => MsChapV2Success::parse(message).is_ok_and(|s| {
                            let mut text = Vec::with_capacity(42);
                            MsChapV2Success { message: None, ..s }.emit(&mut text);
                            ppp_auth::ct_eq(&text, expected.as_bytes())
                        }),
                        None => true,
                    };
                    self.finish(if proven {
                        Ok(())
                    } else {
                        Err(AuthFailure::BadAuthenticator)
                    });
                }
                Ok(Chap::Failure { identifier, .. }) if Some(identifier) == self.answered => {
                    self.finish(Err(AuthFailure::Rejected))
                }
                _ => {}
            },
        }
    }

    /// RFC 1994 §4.1 / RFC 2759 §4: answer a Challenge.
    fn answer(&mut self, now: Instant, identifier: u8, challenge: &[u8]) {
        let value: Vec<u8> = match self.method {
            AuthMethod::MsChapV2 => {
                let Ok(auth_challenge) = <[u8; 16]>::try_from(challenge) else {
                    return;
                };
                let password = String::from_utf8_lossy(&self.password).into_owned();
                let nt = ppp_auth::generate_nt_response(
                    &auth_challenge,
                    &self.peer_challenge,
                    &self.user,
                    &password,
                );
                self.expected = Some(ppp_auth::generate_authenticator_response(
                    &password,
                    &nt,
                    &self.peer_challenge,
                    &auth_challenge,
                    &self.user,
                ));
                MsChapV2Response::new(self.peer_challenge, nt)
                    .to_bytes()
                    .to_vec()
            }
            _ => ppp_auth::chap_md5_response(identifier, &self.password, challenge).to_vec(),
        };
        let packet = Chap::Response {
            identifier,
            value: &value,
            name: &self.user,
        };
        let mut bytes = Vec::with_capacity(5 + value.len() + self.user.len());
        if packet.emit(&mut bytes).is_ok() {
            self.out.push_back(AuthOutput::Send(bytes));
        }
        self.answered = Some(identifier);
        let wait = self.settings.restart * self.settings.max_transmissions;
        self.deadline = Some(now + wait);
    }

    fn finish(&mut self, result: Result<(), AuthFailure>) {
        self.done = true;
        self.deadline = None;
        self.out.push_back(AuthOutput::Done(result));
    }

    /// Next thing to do.
    pub fn poll_output(&mut self) -> Option<AuthOutput> {
        self.out.pop_front()
    }

    /// When `handle_timeout` has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Retransmit the PAP request, or give up.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.done || self.deadline.is_none_or(|at| at > now) {
            return;
        }
        if self.method == AuthMethod::Pap && self.sent < self.settings.max_transmissions {
            self.send_pap(now);
            return;
        }
        self.finish(Err(AuthFailure::Timeout));
    }
}
