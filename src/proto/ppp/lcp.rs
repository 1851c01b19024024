//! LCP option negotiation (RFC 1661 §6) for both ends of a PPP link.
//!
//! [`LcpNegotiator`] plugs into the generic automaton ([`super::fsm`]): it
//! builds our Configure-Requests, judges the peer's, and records what was
//! agreed in [`LcpAgreed`]. Echo keepalives and the LCP-only codes live in the
//! link ([`super::link`]), which owns the automaton.

use crate::wire::ppp::frame::protocol;
use crate::wire::ppp::lcp::{kind, AuthMethod};
use crate::wire::ppp::options::{CpOption, OptionIter, OptionWriter};
use crate::wire::ppp::LcpOption;

use super::fsm::{Negotiator, Verdict};

/// Which end of the link we are, for authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LcpRole {
    /// We ask the peer to authenticate with one of these, in order of
    /// preference (the LNS). Empty: no authentication.
    Authenticator,
    /// We authenticate ourselves with one of the methods we accept (a
    /// subscriber, in tests and loadgen).
    Peer,
}

/// LCP settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LcpConfig {
    /// The MRU we ask for. An LNS derives it from the tunnel's path MTU
    /// minus the IP, UDP, L2TP and PPP overhead. `None`: don't ask (1500).
    pub mru: Option<u16>,
    /// The smallest MRU we let the peer ask for; below it we Nak with this.
    pub min_peer_mru: u16,
    /// Authentication methods, most preferred first: the ones we demand as
    /// authenticator, or the ones we agree to as peer.
    pub auth: Vec<AuthMethod>,
    /// Ask for a Magic-Number (loopback detection, §6.4).
    pub magic: bool,
}

impl Default for LcpConfig {
    fn default() -> Self {
        LcpConfig {
            mru: None,
            min_peer_mru: 576,
            auth: vec![AuthMethod::ChapMd5, AuthMethod::Pap],
            magic: true,
        }
    }
}

/// What the two ends agreed (§6): valid once LCP is Opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LcpAgreed {
    /// The MRU the peer acked for us: the largest frame we will receive.
    pub our_mru: u16,
    /// The MRU the peer asked for: the largest frame we may send it.
    pub peer_mru: u16,
    /// Our Magic-Number (0 when none was agreed).
    pub our_magic: u32,
    /// The peer's Magic-Number (0 when none was agreed).
    pub peer_magic: u32,
    /// The authentication protocol in use, if any.
    pub auth: Option<AuthMethod>,
    /// The peer accepts frames with a compressed Protocol field (§6.5).
    pub peer_pfc: bool,
    /// The peer accepts frames without Address and Control (§6.6).
    pub peer_acfc: bool,
}

impl Default for LcpAgreed {
    fn default() -> Self {
        LcpAgreed {
            our_mru: 1500,
            peer_mru: 1500,
            our_magic: 0,
            peer_magic: 0,
            auth: None,
            peer_pfc: false,
            peer_acfc: false,
        }
    }
}

/// A small xorshift generator for Magic-Numbers: they need to differ between
/// the two ends and between restarts, not to be secret (§6.4).
#[derive(Debug, Clone)]
pub struct MagicSource(u64);

impl MagicSource {
    /// Seeded by the link's owner.
    pub fn new(seed: u64) -> Self {
        MagicSource(seed | 1)
    }

    /// A fresh non-zero Magic-Number.
    pub fn draw(&mut self) -> u32 {
        loop {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let magic = (self.0 >> 16) as u32;
            if magic != 0 {
                return magic;
            }
        }
    }
}

/// Consecutive Configure-Requests carrying our own Magic-Number after which
/// the link is declared looped back (§6.4 leaves the count to us).
pub const LOOPBACK_LIMIT: u32 = 5;

/// The LCP side of [`Negotiator`].
#[derive(Debug, Clone)]
pub struct LcpNegotiator {
    config: LcpConfig,
    role: LcpRole,
    magic_source: MagicSource,
    // What the next Configure-Request asks for.
    mru: Option<u16>,
    magic: Option<u32>,
    /// Index into `config.auth` of the method we ask for (authenticator).
    auth_index: Option<usize>,
    /// Agreed so far.
    agreed: LcpAgreed,
    /// The peer refused every authentication method we can demand.
    auth_refused: bool,
    /// Requests in a row that carried our own Magic-Number.
    loopback_suspicions: u32,
}

impl LcpNegotiator {
    /// A negotiator for `role`, drawing Magic-Numbers from `magic_seed`.
    pub fn new(config: LcpConfig, role: LcpRole, magic_seed: u64) -> Self {
        let mut negotiator = LcpNegotiator {
            config,
            role,
            magic_source: MagicSource::new(magic_seed),
            mru: None,
            magic: None,
            auth_index: None,
            agreed: LcpAgreed::default(),
            auth_refused: false,
            loopback_suspicions: 0,
        };
        negotiator.reset();
        negotiator
    }

    /// What was agreed.
    pub fn agreed(&self) -> LcpAgreed {
        self.agreed
    }

    /// Adopt an agreement made elsewhere (proxy LCP from the LAC).
    pub fn adopt(&mut self, agreed: LcpAgreed) {
        self.agreed = agreed;
    }

    /// The peer would not authenticate with any method we demand: the link
    /// must be closed (§6.2: the authenticator cannot do without).
    pub fn auth_refused(&self) -> bool {
        self.auth_refused
    }

    /// The peer keeps sending our own Magic-Number: the link is looped back.
    pub fn looped_back(&self) -> bool {
        self.loopback_suspicions >= LOOPBACK_LIMIT
    }

    /// Our role.
    pub fn role(&self) -> LcpRole {
        self.role
    }

    /// Settings.
    pub fn config(&self) -> &LcpConfig {
        &self.config
    }

    fn requested_auth(&self) -> Option<AuthMethod> {
        self.auth_index
            .and_then(|index| self.config.auth.get(index).copied())
    }

    /// Judge one option of the peer's request.
    fn judge(&mut self, option: &LcpOption) -> Judgement {
        match option {
            // §6.1: any MRU is allowed, but we will not shrink below what
            // IP needs; a smaller request gets our minimum back.
            LcpOption::Mru(mru) if *mru >= self.config.min_peer_mru => Judgement::Ack,
            LcpOption::Mru(_) => Judgement::Nak(LcpOption::Mru(self.config.min_peer_mru)),
            // RFC 1662 §7.1: the ACCM matters on async links only; over L2TP
            // the LAC does the async framing, so any value is fine.
            LcpOption::Accm(_) => Judgement::Ack,
            LcpOption::AuthProtocol { .. } => match self.role {
                // We authenticate nobody's way to the peer.
                LcpRole::Authenticator => Judgement::Reject,
                LcpRole::Peer => match option.auth_method() {
                    Some(method) if self.config.auth.contains(&method) => Judgement::Ack,
                    // §6.2: Nak with the protocol we would rather use.
                    _ => match self.config.auth.first() {
                        Some(preferred) => Judgement::Nak(preferred.option()),
                        None => Judgement::Reject,
                    },
                },
            },
            // §6.4: our own number coming back means a loop — or a peer that
            // picked the same number. Nak with a fresh one either way.
            LcpOption::MagicNumber(magic) if Some(*magic) == self.magic || *magic == 0 => {
                if *magic != 0 {
                    self.loopback_suspicions += 1;
                }
                Judgement::Nak(LcpOption::MagicNumber(self.magic_source.draw()))
            }
            LcpOption::MagicNumber(_) => Judgement::Ack,
            LcpOption::Pfc | LcpOption::Acfc => Judgement::Ack,
            // Quality monitoring, multilink (MRRU, endpoint discriminator),
            // callback and the rest: not offered.
            LcpOption::QualityProtocol { .. } | LcpOption::Unknown { .. } => Judgement::Reject,
        }
    }
}

enum Judgement {
    Ack,
    Nak(LcpOption),
    Reject,
}

impl Negotiator for LcpNegotiator {
    fn reset(&mut self) {
        self.mru = self.config.mru;
        self.magic = self.config.magic.then(|| self.magic_source.draw());
        self.auth_index = match self.role {
            LcpRole::Authenticator if !self.config.auth.is_empty() => Some(0),
            _ => None,
        };
        self.auth_refused = false;
        self.agreed = LcpAgreed::default();
    }

    fn build_request(&mut self) -> Vec<u8> {
        let mut options = Vec::with_capacity(4);
        if let Some(mru) = self.mru {
            options.push(LcpOption::Mru(mru));
        }
        if let Some(method) = self.requested_auth() {
            options.push(method.option());
        }
        if let Some(magic) = self.magic {
            options.push(LcpOption::MagicNumber(magic));
        }
        let mut out = Vec::with_capacity(16);
        let mut writer = OptionWriter::new(&mut out);
        for option in &options {
            // Our own options always fit their length fields.
            let _ = option.emit(&mut writer);
        }
        out
    }

    fn judge_request(&mut self, options: &[u8], reject_instead_of_nak: bool) -> Verdict {
        let mut naks = Vec::new();
        let mut rejects = Vec::new();
        let mut peer = LcpAgreed {
            our_mru: self.agreed.our_mru,
            our_magic: self.agreed.our_magic,
            auth: self.agreed.auth,
            ..LcpAgreed::default()
        };
        for raw in OptionIter::new(options) {
            let Ok(raw) = raw else {
                // A broken option list: nothing after the break can be
                // trusted, so reject what we cannot read (§5.4 wants the
                // options verbatim; the tail is the closest we have).
                let read: usize = OptionIter::new(options)
                    .map_while(Result::ok)
                    .map(|o| o.bytes.len())
                    .sum();
                rejects.extend_from_slice(options.get(read..).unwrap_or_default());
                break;
            };
            let option = match LcpOption::parse(&raw) {
                Ok(option) => option,
                // A known option with the wrong length cannot be honoured.
                Err(_) => {
                    rejects.extend_from_slice(raw.bytes);
                    continue;
                }
            };
            match self.judge(&option) {
                Judgement::Ack => match option {
                    LcpOption::Mru(mru) => peer.peer_mru = mru,
                    LcpOption::MagicNumber(magic) => peer.peer_magic = magic,
                    LcpOption::Pfc => peer.peer_pfc = true,
                    LcpOption::Acfc => peer.peer_acfc = true,
                    LcpOption::AuthProtocol { .. } => peer.auth = option.auth_method(),
                    _ => {}
                },
                Judgement::Nak(suggestion) if !reject_instead_of_nak => {
                    let mut writer = OptionWriter::new(&mut naks);
                    let _ = suggestion.emit(&mut writer);
                }
                Judgement::Nak(_) | Judgement::Reject => rejects.extend_from_slice(raw.bytes),
            }
        }
        if !rejects.is_empty() {
            // §5.4: a Configure-Reject lists only the rejected options.
            return Verdict::Reject(rejects);
        }
        if !naks.is_empty() {
            return Verdict::Nak(naks);
        }
        // A request we can ack does not carry our own Magic-Number.
        self.loopback_suspicions = 0;
        // An authenticator only learns the method from the peer's Ack of our
        // request; a peer learns it here.
        if self.role == LcpRole::Authenticator {
            peer.auth = self.agreed.auth;
        }
        self.agreed = peer;
        Verdict::Ack
    }

    fn on_ack(&mut self, _options: &[u8]) {
        // The automaton has checked the Ack echoes our request exactly.
        self.agreed.our_mru = self.mru.unwrap_or(1500);
        self.agreed.our_magic = self.magic.unwrap_or(0);
        if self.role == LcpRole::Authenticator {
            self.agreed.auth = self.requested_auth();
        }
    }

    fn on_nak(&mut self, options: &[u8]) -> bool {
        for raw in OptionIter::new(options) {
            let Ok(raw) = raw else { return false };
            match LcpOption::parse(&raw) {
                // §6.1: the peer suggests an MRU it can live with; take it
                // unless it is below what IP needs.
                Ok(LcpOption::Mru(mru)) => {
                    self.mru = Some(mru.max(self.config.min_peer_mru.min(mru.max(68))));
                }
                // §6.4: a Nak'd Magic-Number means "pick another".
                Ok(LcpOption::MagicNumber(_)) => self.magic = Some(self.magic_source.draw()),
                // §6.2: the peer names a method it prefers; use it if we
                // accept it, otherwise try our next one.
                Ok(option @ LcpOption::AuthProtocol { .. }) => {
                    if self.role != LcpRole::Authenticator {
                        continue;
                    }
                    let wanted = option
                        .auth_method()
                        .and_then(|m| self.config.auth.iter().position(|c| *c == m));
                    match wanted {
                        Some(index) => self.auth_index = Some(index),
                        None => self.next_auth(),
                    }
                }
                // The peer may Nak with options we did not ask for, hinting
                // that we should; we have nothing more to offer.
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        true
    }

    fn on_reject(&mut self, options: &[u8]) -> bool {
        for raw in OptionIter::new(options) {
            let Ok(raw) = raw else { return false };
            match raw.kind {
                kind::MRU => self.mru = None,
                kind::MAGIC_NUMBER => self.magic = None,
                kind::AUTH_PROTOCOL if self.requested_auth().is_some() => {
                    // §6.2: an authenticator cannot drop its demand.
                    self.auth_refused = true;
                    return false;
                }
                _ => {}
            }
        }
        true
    }
}

impl LcpNegotiator {
    fn next_auth(&mut self) {
        let next = self.auth_index.map_or(0, |i| i + 1);
        if next < self.config.auth.len() {
            self.auth_index = Some(next);
        } else {
            self.auth_refused = true;
        }
    }
}

/// Whether `protocol` is an authentication protocol LCP can negotiate.
pub fn is_auth_protocol(value: u16) -> bool {
    value == protocol::PAP || value == protocol::CHAP
}
