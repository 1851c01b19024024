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
    /// Gave up waiting; nothing was decided, so nothing is ever answered.
    TimedOut,
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
            // RFC 1994 §4.1 (the same holds for PAP): Responses received
            // "during any other phase MUST be silently discarded"; after a
            // timeout there is no reply to repeat.
            ServerState::Verifying { .. } | ServerState::TimedOut => {}
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
            // RFC 1994 §4.1: "Any Response packets received during any
            // other phase MUST be silently discarded": a wrong Identifier,
            // a Response while AAA decides, or after we timed out.
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
        self.state = ServerState::TimedOut;
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
    /// Our last Response, resent while no Success or Failure comes.
    last_response: Vec<u8>,
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
            last_response: Vec::new(),
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
            self.out.push_back(AuthOutput::Send(bytes.clone()));
        }
        self.last_response = bytes;
        self.answered = Some(identifier);
        self.sent = 1;
        self.deadline = Some(now + self.settings.restart);
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

    /// Retransmit the PAP request or the CHAP Response, or give up.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.done || self.deadline.is_none_or(|at| at > now) {
            return;
        }
        if self.method == AuthMethod::Pap && self.sent < self.settings.max_transmissions {
            self.send_pap(now);
            return;
        }
        // RFC 1994 leaves retransmission to the authenticator's Challenge,
        // but an authenticator that already sent Success moves on and never
        // challenges again: if that Success was lost, only our repeating the
        // Response (which §4.2 has it answer again) recovers the link.
        if self.answered.is_some() && self.sent < self.settings.max_transmissions {
            self.sent += 1;
            self.out
                .push_back(AuthOutput::Send(self.last_response.clone()));
            self.deadline = Some(now + self.settings.restart);
            return;
        }
        self.finish(Err(AuthFailure::Timeout));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::proto::aaa::users::parse;
    use crate::proto::aaa::{Aaa, AuthTicket, LocalAaa};

    const SEC: Duration = Duration::from_secs(1);

    const USERS: &str = "\
User    password=clientPass
alice   password=s3cret
";

    use crate::crypto::ppp_auth::rfc2759::{AUTH_CHALLENGE, NT_RESPONSE, PEER_CHALLENGE};

    fn settings(max_transmissions: u32) -> AuthSettings {
        AuthSettings {
            restart: 3 * SEC,
            max_transmissions,
            name: b"lns".to_vec(),
        }
    }

    /// An authenticator and a peer joined back to back, the authenticator's
    /// Verify answered by a LocalAaa over `USERS`, on a simulated clock.
    struct Exchange {
        server: AuthServer,
        client: AuthClient,
        aaa: LocalAaa,
        now: Instant,
        to_client: VecDeque<Vec<u8>>,
        to_server: VecDeque<Vec<u8>>,
        server_sent: Vec<Vec<u8>>,
        client_sent: Vec<Vec<u8>>,
        verifies: Vec<AuthRequest>,
        server_done: Vec<Outcome>,
        client_done: Vec<Outcome>,
    }

    impl Exchange {
        fn new(method: AuthMethod, user: &str, password: &str) -> Self {
            Self::with_challenges(method, user, password, [0x42; 16], [0x17; 16])
        }

        fn with_challenges(
            method: AuthMethod,
            user: &str,
            password: &str,
            challenge: [u8; 16],
            peer_challenge: [u8; 16],
        ) -> Self {
            let now = Instant::now();
            let mut exchange = Exchange {
                server: AuthServer::start(now, method, settings(10), challenge, 0x20),
                client: AuthClient::start(
                    now,
                    method,
                    settings(10),
                    user.as_bytes(),
                    password.as_bytes(),
                    peer_challenge,
                    0x60,
                ),
                aaa: LocalAaa::new(parse(USERS).unwrap()),
                now,
                to_client: VecDeque::new(),
                to_server: VecDeque::new(),
                server_sent: Vec::new(),
                client_sent: Vec::new(),
                verifies: Vec::new(),
                server_done: Vec::new(),
                client_done: Vec::new(),
            };
            exchange.drain();
            exchange
        }

        fn drain(&mut self) {
            loop {
                let mut busy = false;
                while let Some(output) = self.server.poll_output() {
                    busy = true;
                    match output {
                        AuthOutput::Send(bytes) => {
                            self.server_sent.push(bytes.clone());
                            self.to_client.push_back(bytes);
                        }
                        AuthOutput::Verify(request) => {
                            self.verifies.push(request.clone());
                            self.aaa.start(self.now, AuthTicket(1), request);
                            let (_, outcome) = self.aaa.poll_result().unwrap();
                            self.server.verdict(self.now, &outcome);
                        }
                        AuthOutput::Done(result) => self.server_done.push(result),
                    }
                }
                while let Some(output) = self.client.poll_output() {
                    busy = true;
                    match output {
                        AuthOutput::Send(bytes) => {
                            self.client_sent.push(bytes.clone());
                            self.to_server.push_back(bytes);
                        }
                        AuthOutput::Verify(_) => panic!("the peer never asks AAA"),
                        AuthOutput::Done(result) => self.client_done.push(result),
                    }
                }
                if !busy {
                    return;
                }
            }
        }

        /// Deliver everything, firing timers when quiet, until both settle.
        fn run(&mut self) {
            for _ in 0..1000 {
                if let Some(bytes) = self.to_server.pop_front() {
                    self.server.receive(self.now, &bytes);
                } else if let Some(bytes) = self.to_client.pop_front() {
                    self.client.receive(self.now, &bytes);
                } else {
                    let next = [self.server.poll_timeout(), self.client.poll_timeout()]
                        .into_iter()
                        .flatten()
                        .min();
                    let Some(at) = next else {
                        return;
                    };
                    self.now = at;
                    self.server.handle_timeout(at);
                    self.client.handle_timeout(at);
                }
                self.drain();
            }
            panic!("the exchange never settled");
        }

        fn outcomes(&self) -> (&[Outcome], &[Outcome]) {
            (&self.server_done, &self.client_done)
        }
    }

    type Outcome = Result<(), AuthFailure>;

    const METHODS: [AuthMethod; 3] = [AuthMethod::Pap, AuthMethod::ChapMd5, AuthMethod::MsChapV2];

    #[test]
    fn the_right_password_succeeds_on_both_sides() {
        for method in METHODS {
            let mut x = Exchange::new(method, "alice", "s3cret");
            x.run();
            assert_eq!(x.outcomes(), (&[Ok(())][..], &[Ok(())][..]), "{method:?}");
            assert_eq!(x.verifies.len(), 1, "{method:?}");
            assert_eq!(x.verifies[0].user(), b"alice");
            // Nothing left running.
            assert_eq!(x.server.poll_timeout(), None);
            assert_eq!(x.client.poll_timeout(), None);
        }
    }

    #[test]
    fn a_wrong_password_is_rejected_on_both_sides() {
        for method in METHODS {
            let mut x = Exchange::new(method, "alice", "guess");
            x.run();
            let rejected = [Err(AuthFailure::Rejected)];
            assert_eq!(x.outcomes(), (&rejected[..], &rejected[..]), "{method:?}");
        }
        // An unknown user too.
        let mut x = Exchange::new(AuthMethod::ChapMd5, "mallory", "s3cret");
        x.run();
        assert_eq!(x.server_done, [Err(AuthFailure::Rejected)]);
    }

    #[test]
    fn mschapv2_rfc2759_vector_through_the_whole_exchange() {
        let mut x = Exchange::with_challenges(
            AuthMethod::MsChapV2,
            "User",
            "clientPass",
            AUTH_CHALLENGE,
            PEER_CHALLENGE,
        );
        x.run();
        assert_eq!(x.outcomes(), (&[Ok(())][..], &[Ok(())][..]));
        // §9.2: the NT-Response the peer sent ...
        let Ok(Chap::Response { value, name, .. }) = Chap::parse(&x.client_sent[0]) else {
            panic!("the peer answers with a Response");
        };
        assert_eq!(name, b"User");
        let response = MsChapV2Response::parse(value).unwrap();
        assert_eq!(response.peer_challenge, PEER_CHALLENGE);
        assert_eq!(response.nt_response, NT_RESPONSE);
        // ... and the authenticator response in our Success.
        let success = x.server_sent.last().unwrap();
        let Ok(Chap::Success { message, .. }) = Chap::parse(success) else {
            panic!("the authenticator answers with a Success");
        };
        let text = String::from_utf8_lossy(message);
        assert!(
            text.starts_with("S=407A5589115FD0D6209F510FE9C04566932CDA56"),
            "{text}"
        );
    }

    /// A peer that has answered a Challenge, and the Response it sent.
    fn answered_client(method: AuthMethod, t0: Instant) -> (AuthClient, u8) {
        let mut client = AuthClient::start(
            t0,
            method,
            settings(10),
            b"User",
            b"clientPass",
            PEER_CHALLENGE,
            0,
        );
        let mut challenge = Vec::new();
        Chap::Challenge {
            identifier: 9,
            value: &AUTH_CHALLENGE,
            name: b"lns",
        }
        .emit(&mut challenge)
        .unwrap();
        client.receive(t0, &challenge);
        assert!(matches!(client.poll_output(), Some(AuthOutput::Send(_))));
        (client, 9)
    }

    fn chap_packet(packet: Chap<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        packet.emit(&mut out).unwrap();
        out
    }

    #[test]
    fn mschapv2_peer_refuses_a_forged_authenticator_response() {
        let t0 = Instant::now();
        let (mut client, id) = answered_client(AuthMethod::MsChapV2, t0);
        let forged = format!("S={} M=Welcome", "0".repeat(40));
        client.receive(
            t0,
            &chap_packet(Chap::Success {
                identifier: id,
                message: forged.as_bytes(),
            }),
        );
        assert_eq!(
            client.poll_output(),
            Some(AuthOutput::Done(Err(AuthFailure::BadAuthenticator)))
        );
        assert_eq!(client.poll_timeout(), None);
        // A Success without any authenticator response proves nothing either.
        let (mut client, id) = answered_client(AuthMethod::MsChapV2, t0);
        client.receive(
            t0,
            &chap_packet(Chap::Success {
                identifier: id,
                message: b"Welcome",
            }),
        );
        assert_eq!(
            client.poll_output(),
            Some(AuthOutput::Done(Err(AuthFailure::BadAuthenticator)))
        );
        // The genuine one (lower-case hex is the same number) is accepted.
        let (mut client, id) = answered_client(AuthMethod::MsChapV2, t0);
        let genuine = "S=407a5589115fd0d6209f510fe9c04566932cda56 M=hi";
        client.receive(
            t0,
            &chap_packet(Chap::Success {
                identifier: id,
                message: genuine.as_bytes(),
            }),
        );
        assert_eq!(client.poll_output(), Some(AuthOutput::Done(Ok(()))));
    }

    #[test]
    fn peer_ignores_replies_for_another_identifier() {
        let t0 = Instant::now();
        let (mut client, id) = answered_client(AuthMethod::ChapMd5, t0);
        let other = id.wrapping_add(1);
        for packet in [
            Chap::Success {
                identifier: other,
                message: b"",
            },
            Chap::Failure {
                identifier: other,
                message: b"",
            },
        ] {
            client.receive(t0, &chap_packet(packet));
            assert_eq!(client.poll_output(), None);
        }
        client.receive(
            t0,
            &chap_packet(Chap::Failure {
                identifier: id,
                message: b"no",
            }),
        );
        assert_eq!(
            client.poll_output(),
            Some(AuthOutput::Done(Err(AuthFailure::Rejected)))
        );
    }

    #[test]
    fn chap_challenge_is_retransmitted_then_times_out() {
        let t0 = Instant::now();
        let max = 4;
        let mut server = AuthServer::start(t0, AuthMethod::ChapMd5, settings(max), [7; 16], 3);
        let Some(AuthOutput::Send(first)) = server.poll_output() else {
            panic!("CHAP starts with a Challenge");
        };
        assert!(matches!(Chap::parse(&first), Ok(Chap::Challenge { .. })));
        let mut sends = 1;
        let mut now = t0;
        loop {
            let at = server.poll_timeout().expect("the Restart timer runs");
            assert_eq!(at, now + 3 * SEC);
            // Early calls do nothing.
            server.handle_timeout(at - SEC);
            assert_eq!(server.poll_output(), None);
            now = at;
            server.handle_timeout(now);
            match server.poll_output() {
                Some(AuthOutput::Send(again)) => {
                    assert_eq!(again, first, "a retransmission repeats the Challenge");
                    sends += 1;
                }
                Some(AuthOutput::Done(result)) => {
                    assert_eq!(result, Err(AuthFailure::Timeout));
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(sends, max);
        assert_eq!(now, t0 + 3 * SEC * max);
        assert_eq!(server.poll_timeout(), None);
        assert_eq!(server.poll_output(), None);
    }

    #[test]
    fn pap_request_is_retransmitted_then_times_out() {
        let t0 = Instant::now();
        let max = 3;
        let mut client = AuthClient::start(
            t0,
            AuthMethod::Pap,
            settings(max),
            b"alice",
            b"s3cret",
            [0; 16],
            5,
        );
        let Some(AuthOutput::Send(first)) = client.poll_output() else {
            panic!("PAP starts with a Request");
        };
        let mut sends = 1;
        while let Some(at) = client.poll_timeout() {
            client.handle_timeout(at);
            match client.poll_output() {
                Some(AuthOutput::Send(again)) => {
                    assert_eq!(again, first);
                    sends += 1;
                }
                Some(AuthOutput::Done(result)) => {
                    assert_eq!(result, Err(AuthFailure::Timeout));
                    assert_eq!(at, t0 + 3 * SEC * max);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(sends, max);
        // The PAP authenticator waits as long as a CHAP exchange would.
        let mut server = AuthServer::start(t0, AuthMethod::Pap, settings(max), [0; 16], 0);
        assert_eq!(server.poll_output(), None);
        assert_eq!(server.poll_timeout(), Some(t0 + 3 * SEC * max));
        server.handle_timeout(t0 + 3 * SEC * max);
        assert_eq!(
            server.poll_output(),
            Some(AuthOutput::Done(Err(AuthFailure::Timeout)))
        );
    }

    #[test]
    fn a_lost_pap_request_is_recovered_by_retransmission() {
        let mut x = Exchange::new(AuthMethod::Pap, "alice", "s3cret");
        // The first Request is lost on the way.
        assert_eq!(x.to_server.len(), 1);
        x.to_server.clear();
        x.run();
        assert_eq!(x.client_sent.len(), 2);
        assert_eq!(x.outcomes(), (&[Ok(())][..], &[Ok(())][..]));
    }

    #[test]
    fn a_repeated_chap_response_gets_the_same_reply() {
        for (method, password) in [
            (AuthMethod::ChapMd5, "s3cret"),
            (AuthMethod::ChapMd5, "guess"),
            (AuthMethod::MsChapV2, "s3cret"),
        ] {
            let mut x = Exchange::new(method, "alice", password);
            x.run();
            let reply = x.server_sent.last().unwrap().clone();
            let response = x.client_sent[0].clone();
            // Our Success (or Failure) was lost: the peer sends its
            // Response again.
            x.server.receive(x.now, &response);
            assert_eq!(x.server.poll_output(), Some(AuthOutput::Send(reply)));
            assert_eq!(x.server.poll_output(), None, "no second verdict");
            assert_eq!(x.verifies.len(), 1);
        }
    }

    #[test]
    fn a_repeated_pap_request_gets_the_same_reply_under_its_own_id() {
        for password in ["s3cret", "guess"] {
            let mut x = Exchange::new(AuthMethod::Pap, "alice", password);
            x.run();
            let reply = x.server_sent.last().unwrap().clone();
            let mut again = Vec::new();
            Pap::Request {
                identifier: 0x61,
                peer_id: b"alice",
                password: password.as_bytes(),
            }
            .emit(&mut again)
            .unwrap();
            x.server.receive(x.now, &again);
            let Some(AuthOutput::Send(repeated)) = x.server.poll_output() else {
                panic!("the Request must be answered again");
            };
            assert_eq!(repeated[1], 0x61);
            assert_eq!(repeated[0], reply[0]);
            assert_eq!(repeated[2..], reply[2..]);
            assert_eq!(x.server.poll_output(), None);
            assert_eq!(x.verifies.len(), 1);
        }
    }

    #[test]
    fn a_response_with_the_wrong_identifier_is_ignored() {
        let t0 = Instant::now();
        let mut server = AuthServer::start(t0, AuthMethod::ChapMd5, settings(10), [7; 16], 3);
        let _challenge = server.poll_output();
        let value = ppp_auth::chap_md5_response(4, b"s3cret", &[7; 16]);
        server.receive(
            t0,
            &chap_packet(Chap::Response {
                identifier: 4,
                value: &value,
                name: b"alice",
            }),
        );
        assert_eq!(server.poll_output(), None);
        // Still waiting, still retransmitting.
        assert_eq!(server.poll_timeout(), Some(t0 + 3 * SEC));
        let value = ppp_auth::chap_md5_response(3, b"s3cret", &[7; 16]);
        server.receive(
            t0,
            &chap_packet(Chap::Response {
                identifier: 3,
                value: &value,
                name: b"alice",
            }),
        );
        assert!(matches!(
            server.poll_output(),
            Some(AuthOutput::Verify(AuthRequest::Chap { id: 3, .. }))
        ));
        assert_eq!(server.poll_timeout(), None);
    }

    #[test]
    fn mschapv2_accept_without_an_authenticator_response_becomes_a_failure() {
        let mut x = Exchange::new(AuthMethod::MsChapV2, "alice", "s3cret");
        // Answer the Verify by hand with an Accept that lacks the S= string
        // (a backend that cannot compute it).
        let response = x.to_client.pop_front().unwrap();
        x.client.receive(x.now, &response);
        let Some(AuthOutput::Send(answer)) = x.client.poll_output() else {
            panic!("the peer answers");
        };
        x.server.receive(x.now, &answer);
        assert!(matches!(
            x.server.poll_output(),
            Some(AuthOutput::Verify(_))
        ));
        x.server.verdict(
            x.now,
            &crate::proto::aaa::AuthOutcome::Accept {
                attributes: Default::default(),
            },
        );
        let Some(AuthOutput::Send(reply)) = x.server.poll_output() else {
            panic!("a reply is sent");
        };
        assert!(matches!(Chap::parse(&reply), Ok(Chap::Failure { .. })));
        assert_eq!(
            x.server.poll_output(),
            Some(AuthOutput::Done(Err(AuthFailure::Rejected)))
        );
    }

    #[test]
    fn a_late_response_after_a_timeout_is_not_answered() {
        let t0 = Instant::now();
        let mut server = AuthServer::start(t0, AuthMethod::ChapMd5, settings(1), [7; 16], 3);
        let _challenge = server.poll_output();
        server.handle_timeout(t0 + 3 * SEC);
        assert_eq!(
            server.poll_output(),
            Some(AuthOutput::Done(Err(AuthFailure::Timeout)))
        );
        let value = ppp_auth::chap_md5_response(3, b"s3cret", &[7; 16]);
        server.receive(
            t0 + 4 * SEC,
            &chap_packet(Chap::Response {
                identifier: 3,
                value: &value,
                name: b"alice",
            }),
        );
        assert_eq!(server.poll_output(), None);
        // PAP likewise: nothing was decided, so there is nothing to repeat.
        let mut server = AuthServer::start(t0, AuthMethod::Pap, settings(1), [0; 16], 0);
        server.handle_timeout(t0 + 3 * SEC);
        assert!(matches!(server.poll_output(), Some(AuthOutput::Done(_))));
        let mut request = Vec::new();
        Pap::Request {
            identifier: 1,
            peer_id: b"alice",
            password: b"s3cret",
        }
        .emit(&mut request)
        .unwrap();
        server.receive(t0 + 4 * SEC, &request);
        assert_eq!(server.poll_output(), None);
    }
}
