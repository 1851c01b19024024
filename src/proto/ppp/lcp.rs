//! LCP option negotiation (RFC 1661 §6) for both ends of a PPP link.
//!
//! [`LcpNegotiator`] plugs into the generic automaton ([`super::fsm`]): it
//! builds our Configure-Requests, judges the peer's, and records what was
//! agreed in [`LcpAgreed`]. Echo keepalives and the LCP-only codes live in the
//! link ([`super::link`]), which owns the automaton.

use crate::wire::ppp::lcp::{kind, AuthMethod};
use crate::wire::ppp::options::{CpOption, OptionIter, OptionWriter};
use crate::wire::ppp::LcpOption;

use super::fsm::{is_option_subset, Negotiator, Verdict};

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
    /// (A byte: the list holds the few methods there are.)
    auth_index: Option<u8>,
    /// Agreed so far.
    agreed: LcpAgreed,
    /// The peer refused every authentication method we can demand.
    auth_refused: bool,
    /// Requests in a row that carried our own Magic-Number.
    loopback_suspicions: u32,
}

/// What an LCP negotiator carries past a settled negotiation. The options
/// of our next request are not part of it: every new negotiation starts
/// with [`Negotiator::reset`], which rebuilds them from the settings.
#[derive(Debug, Clone)]
pub struct IdleLcp {
    magic_source: MagicSource,
    agreed: LcpAgreed,
    loopback_suspicions: u32,
    auth_refused: bool,
}

impl LcpNegotiator {
    /// What must survive while the automaton is idle (see [`IdleLcp`]).
    pub fn idle(&self) -> IdleLcp {
        IdleLcp {
            magic_source: self.magic_source.clone(),
            agreed: self.agreed,
            loopback_suspicions: self.loopback_suspicions,
            auth_refused: self.auth_refused,
        }
    }

    /// The negotiator [`LcpNegotiator::idle`] reduced, with its settings.
    pub fn from_idle(config: LcpConfig, role: LcpRole, idle: IdleLcp) -> Self {
        LcpNegotiator {
            mru: config.mru,
            config,
            role,
            magic_source: idle.magic_source,
            // Drawn by the next `reset`, as every negotiation's is.
            magic: None,
            auth_index: None,
            agreed: idle.agreed,
            auth_refused: idle.auth_refused,
            loopback_suspicions: idle.loopback_suspicions,
        }
    }

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
            .and_then(|index| self.config.auth.get(usize::from(index)).copied())
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
        // §5.2: an Ack agrees to exactly the options of the request it
        // answers, so everything the peer asks of us starts from the
        // defaults here. Only what the peer acked of our own request
        // (`our_*`, and the method an authenticator demanded) carries over.
        // As peer, the method is the authenticator's to ask for in this
        // request: keeping the previous one would leave a method agreed
        // that the authenticator no longer asks for.
        let mut peer = LcpAgreed {
            our_mru: self.agreed.our_mru,
            our_magic: self.agreed.our_magic,
            auth: None,
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
                        .and_then(|m| self.config.auth.iter().position(|c| *c == m))
                        .and_then(|index| u8::try_from(index).ok());
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
        // §5.4: "the Configuration Options in a Configure-Reject MUST be a
        // subset of those in the last transmitted Configure-Request.
        // Invalid packets are silently discarded." Our request is rebuilt
        // from the same state that built it, so it is what we sent.
        if !is_option_subset(options, &self.build_request()) {
            return false;
        }
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
        let next = self.auth_index.map_or(Some(0), |i| i.checked_add(1));
        if let Some(next) = next.filter(|&n| usize::from(n) < self.config.auth.len()) {
            self.auth_index = Some(next);
        } else {
            self.auth_refused = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::proto::ppp::fsm::testing::{Pair, Side};
    use crate::proto::ppp::fsm::{Code, Fsm, FsmConfig, Output, State};

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    fn config(mru: Option<u16>, auth: &[AuthMethod]) -> LcpConfig {
        LcpConfig {
            mru,
            auth: auth.to_vec(),
            ..LcpConfig::default()
        }
    }

    fn authenticator(auth: &[AuthMethod]) -> LcpNegotiator {
        LcpNegotiator::new(config(Some(1400), auth), LcpRole::Authenticator, 0x1111)
    }

    fn peer(auth: &[AuthMethod]) -> LcpNegotiator {
        LcpNegotiator::new(config(Some(1450), auth), LcpRole::Peer, 0x2222)
    }

    fn pair(a: LcpNegotiator, b: LcpNegotiator) -> Pair<LcpNegotiator, LcpNegotiator> {
        let mut pair = Pair::new(Instant::now(), a, b);
        pair.start();
        pair.run();
        pair
    }

    /// The Magic-Number our next request carries.
    fn our_magic(n: &mut LcpNegotiator) -> u32 {
        OptionIter::new(&n.build_request())
            .map_while(Result::ok)
            .find_map(|raw| match LcpOption::parse(&raw) {
                Ok(LcpOption::MagicNumber(magic)) => Some(magic),
                _ => None,
            })
            .expect("a Magic-Number in our request")
    }

    fn magic_option(magic: u32) -> Vec<u8> {
        let mut out = vec![kind::MAGIC_NUMBER, 6];
        out.extend_from_slice(&magic.to_be_bytes());
        out
    }

    /// The l2tpns capture's first LCP Configure-Request, header included.
    const L2TPNS_REQUEST: &str = "01 01 00 1e  01 04 05 b6  03 05 c2 23 05  05 06 6b 09 00 f4  \
                                  11 04 06 4e  13 07 02 0a 62 00 fe";

    #[test]
    fn authenticator_and_peer_agree_on_mru_magic_and_chap() {
        let p = pair(
            authenticator(&[AuthMethod::ChapMd5, AuthMethod::Pap]),
            peer(&[AuthMethod::ChapMd5, AuthMethod::Pap]),
        );
        assert!(p.opened());
        let (a, b) = (p.na.agreed(), p.nb.agreed());
        assert_eq!((a.our_mru, a.peer_mru), (1400, 1450));
        assert_eq!((b.our_mru, b.peer_mru), (1450, 1400));
        assert_ne!(a.our_magic, 0);
        assert_ne!(b.our_magic, 0);
        assert_ne!(a.our_magic, b.our_magic);
        assert_eq!((a.our_magic, a.peer_magic), (b.peer_magic, b.our_magic));
        assert_eq!(a.auth, Some(AuthMethod::ChapMd5));
        assert_eq!(b.auth, Some(AuthMethod::ChapMd5));
        assert!(!p.na.auth_refused());
        // Nothing to argue about: no Nak or Reject either way.
        for side in [Side::A, Side::B] {
            assert!(p.sent(side, Code::ConfigureNak).is_empty());
            assert!(p.sent(side, Code::ConfigureReject).is_empty());
        }
        assert!(p.signals.contains(&(Side::A, Output::LayerUp)));
        assert!(p.signals.contains(&(Side::B, Output::LayerUp)));
    }

    #[test]
    fn peer_accepting_only_pap_naks_chap_and_the_authenticator_switches() {
        let p = pair(
            authenticator(&[AuthMethod::ChapMd5, AuthMethod::Pap]),
            peer(&[AuthMethod::Pap]),
        );
        assert!(p.opened());
        // §6.2: the Nak names the protocol the peer would rather use.
        let naks = p.sent(Side::B, Code::ConfigureNak);
        assert_eq!(naks.len(), 1);
        assert_eq!(naks[0].data, hex("03 04 c0 23"));
        assert_eq!(p.na.agreed().auth, Some(AuthMethod::Pap));
        assert_eq!(p.nb.agreed().auth, Some(AuthMethod::Pap));
        assert!(!p.na.auth_refused());
    }

    #[test]
    fn peer_accepting_nothing_rejects_auth_and_the_authenticator_gives_up() {
        let mut p = Pair::new(
            Instant::now(),
            authenticator(&[AuthMethod::ChapMd5, AuthMethod::Pap]),
            peer(&[]),
        );
        p.start();
        // The owner watches for the refusal after every packet, as the link
        // does: left alone, the two ends would keep restarting each other
        // (Stopped answers a new Configure-Request by negotiating again).
        while !p.na.auth_refused() {
            assert!(p.step(), "the Reject never came");
        }
        let rejects = p.sent(Side::B, Code::ConfigureReject);
        assert_eq!(rejects.len(), 1);
        assert_eq!(rejects[0].data, hex("03 05 c2 23 05"));
        // The Reject was not taken as an answer: nothing was dropped from
        // our request, and the authenticator cannot do without it.
        assert_eq!(p.a.stats().rejects_received, 0);
        assert_ne!(p.a.state(), State::Opened);
        p.a.close(p.now, b"no acceptable authentication".to_vec());
        p.run();
        assert_eq!(p.a.state(), State::Closed);
        assert_ne!(p.b.state(), State::Opened);
    }

    #[test]
    fn authenticator_naked_with_a_method_it_does_not_offer_tries_its_next() {
        let mut n = authenticator(&[AuthMethod::ChapMd5, AuthMethod::Pap]);
        // MS-CHAPv2 is not on our list: move on from CHAP-MD5 to PAP.
        assert!(n.on_nak(&hex("03 05 c2 23 81")));
        assert_eq!(n.requested_auth(), Some(AuthMethod::Pap));
        assert!(!n.auth_refused());
        // Nothing left after PAP.
        assert!(n.on_nak(&hex("03 05 c2 23 81")));
        assert!(n.auth_refused());
    }

    #[test]
    fn authenticator_rejects_an_auth_protocol_from_the_peer() {
        let mut n = authenticator(&[AuthMethod::Pap]);
        assert_eq!(
            n.judge_request(&hex("03 04 c0 23"), false),
            Verdict::Reject(hex("03 04 c0 23"))
        );
    }

    #[test]
    fn l2tpns_first_request_draws_a_reject_of_exactly_the_multilink_options() {
        let packet = hex(L2TPNS_REQUEST);
        assert_eq!(packet.len(), 0x1e);
        let options = &packet[4..];
        let mut n = peer(&[AuthMethod::ChapMd5, AuthMethod::Pap]);
        // §5.4: only the options we cannot take, byte for byte: MRRU (17)
        // and Endpoint Discriminator (19).
        assert_eq!(
            n.judge_request(options, false),
            Verdict::Reject(hex("11 04 06 4e  13 07 02 0a 62 00 fe"))
        );
        // l2tpns then sends the rest, which is fine as it is.
        let rest = hex("01 04 05 b6  03 05 c2 23 05  05 06 6b 09 00 f4");
        assert_eq!(n.judge_request(&rest, false), Verdict::Ack);
        let agreed = n.agreed();
        assert_eq!(agreed.peer_mru, 1462);
        assert_eq!(agreed.peer_magic, 0x6b09_00f4);
        assert_eq!(agreed.auth, Some(AuthMethod::ChapMd5));
    }

    #[test]
    fn a_small_mru_is_naked_with_our_minimum() {
        let mut n = peer(&[AuthMethod::Pap]);
        // 100 < 576: Nak with 576 (0x0240).
        assert_eq!(
            n.judge_request(&hex("01 04 00 64"), false),
            Verdict::Nak(hex("01 04 02 40"))
        );
        assert_eq!(n.judge_request(&hex("01 04 02 40"), false), Verdict::Ack);
        assert_eq!(n.agreed().peer_mru, 576);
    }

    #[test]
    fn max_failure_turns_naks_into_rejects() {
        let mut n = peer(&[AuthMethod::Pap]);
        let small_mru_and_magic = hex("01 04 00 64  05 06 00 00 00 00  07 02");
        // Both the MRU and the zero Magic-Number would be Nak'd; the
        // automaton now says Reject instead, so they come back verbatim.
        assert_eq!(
            n.judge_request(&small_mru_and_magic, true),
            Verdict::Reject(hex("01 04 00 64  05 06 00 00 00 00"))
        );
        // A method we would Nak (CHAP, when we only do PAP) is rejected too.
        assert_eq!(
            n.judge_request(&hex("03 05 c2 23 05"), true),
            Verdict::Reject(hex("03 05 c2 23 05"))
        );
    }

    #[test]
    fn our_own_magic_is_naked_with_another_and_a_loop_is_declared() {
        let mut n = peer(&[AuthMethod::Pap]);
        let ours = our_magic(&mut n);
        for round in 1..=LOOPBACK_LIMIT {
            assert!(!n.looped_back(), "round {round}");
            let Verdict::Nak(nak) = n.judge_request(&magic_option(ours), false) else {
                panic!("our own Magic-Number must be Nak'd");
            };
            let suggested = u32::from_be_bytes(nak[2..6].try_into().unwrap());
            assert_eq!(nak.len(), 6);
            assert_ne!(suggested, ours);
            assert_ne!(suggested, 0);
        }
        assert!(n.looped_back());
        // A request without our number clears the suspicion.
        assert_eq!(
            n.judge_request(&magic_option(ours ^ 1), false),
            Verdict::Ack
        );
        assert!(!n.looped_back());
    }

    #[test]
    fn a_link_looped_back_on_itself_is_detected() {
        // One automaton whose every packet comes straight back to it.
        let t0 = Instant::now();
        let mut n = peer(&[]);
        let mut fsm = Fsm::new(FsmConfig::default());
        fsm.open(t0, &mut n);
        fsm.up(t0, &mut n);
        let mut rounds = 0;
        while !n.looped_back() {
            rounds += 1;
            assert!(rounds < 100, "the loop was never noticed");
            let Some(output) = fsm.poll_output() else {
                let at = fsm.poll_timeout().expect("negotiating");
                fsm.handle_timeout(at, &mut n);
                continue;
            };
            if let Output::Send { code, id, data } = output {
                fsm.receive(t0, code, id, &data, &mut n);
            }
        }
        assert_ne!(fsm.state(), State::Opened);
    }

    #[test]
    fn a_zero_magic_is_naked() {
        let mut n = peer(&[AuthMethod::Pap]);
        let Verdict::Nak(nak) = n.judge_request(&magic_option(0), false) else {
            panic!("zero must be Nak'd");
        };
        assert_eq!(nak[..2], [kind::MAGIC_NUMBER, 6]);
        assert_ne!(nak[2..6], [0; 4]);
        // Zero is illegal, not a sign of a loop.
        assert_eq!(n.loopback_suspicions, 0);
    }

    #[test]
    fn malformed_option_lists_are_rejected() {
        let mut n = peer(&[AuthMethod::Pap]);
        // Length 1 is below the minimum of 2: the rest cannot be read.
        assert_eq!(
            n.judge_request(&hex("01 04 05 dc  05 01 00"), false),
            Verdict::Reject(hex("05 01 00"))
        );
        // An option running past the end of the packet.
        assert_eq!(
            n.judge_request(&hex("01 04 05 dc  05 06 00 00"), false),
            Verdict::Reject(hex("05 06 00 00"))
        );
        // A lone Type octet.
        assert_eq!(
            n.judge_request(&hex("01 04 05 dc  07"), false),
            Verdict::Reject(hex("07"))
        );
        // A known option with the wrong Length is rejected as it came.
        assert_eq!(
            n.judge_request(&hex("01 03 05  07 02"), false),
            Verdict::Reject(hex("01 03 05"))
        );
    }

    #[test]
    fn quality_protocol_is_rejected() {
        let mut n = peer(&[AuthMethod::Pap]);
        let lqr = hex("04 08 c0 25 00 00 00 0a");
        assert_eq!(n.judge_request(&lqr, false), Verdict::Reject(lqr.clone()));
        let mut with_mru = hex("01 04 05 dc");
        with_mru.extend_from_slice(&lqr);
        assert_eq!(n.judge_request(&with_mru, false), Verdict::Reject(lqr));
    }

    #[test]
    fn pfc_and_acfc_are_acked_and_recorded() {
        let mut n = peer(&[AuthMethod::Pap]);
        assert_eq!(n.judge_request(&hex("07 02  08 02"), false), Verdict::Ack);
        assert!(n.agreed().peer_pfc);
        assert!(n.agreed().peer_acfc);
        // A later request without them takes them back.
        assert_eq!(n.judge_request(&hex("01 04 05 dc"), false), Verdict::Ack);
        assert!(!n.agreed().peer_pfc);
        assert!(!n.agreed().peer_acfc);
        assert_eq!(n.agreed().peer_mru, 1500);
    }

    #[test]
    fn nak_adopts_the_mru_and_draws_a_new_magic() {
        let mut n = peer(&[AuthMethod::Pap]);
        let before = our_magic(&mut n);
        let mut nak = hex("01 04 05 78");
        nak.extend_from_slice(&magic_option(before));
        assert!(n.on_nak(&nak));
        let after = our_magic(&mut n);
        assert_ne!(after, before);
        assert_ne!(after, 0);
        let request = n.build_request();
        assert_eq!(request[..4], hex("01 04 05 78")[..]);
        n.on_ack(&request);
        assert_eq!(n.agreed().our_mru, 1400);
        assert_eq!(n.agreed().our_magic, after);
        // A Nak we cannot read is discarded.
        assert!(!n.on_nak(&hex("01 04 05")));
    }

    #[test]
    fn reject_of_mru_and_magic_drops_them() {
        let mut n = peer(&[AuthMethod::Pap]);
        let request = n.build_request();
        assert!(n.on_reject(&request));
        assert!(n.build_request().is_empty());
        n.on_ack(&[]);
        assert_eq!(n.agreed().our_mru, 1500);
        assert_eq!(n.agreed().our_magic, 0);
    }

    #[test]
    fn reset_restores_what_a_nak_or_reject_changed() {
        let mut n = authenticator(&[AuthMethod::ChapMd5, AuthMethod::Pap]);
        let first = n.build_request();
        assert!(n.on_reject(&hex("01 04 05 78")));
        assert!(n.on_nak(&hex("03 04 c0 23")));
        assert_ne!(n.build_request(), first);
        n.reset();
        let again = n.build_request();
        // Same options; only the Magic-Number is drawn anew.
        assert_eq!(again.len(), first.len());
        assert_eq!(again[..9], first[..9]);
    }

    #[test]
    fn peer_forgets_an_auth_protocol_the_authenticator_no_longer_asks_for() {
        let mut n = peer(&[AuthMethod::ChapMd5, AuthMethod::Pap]);
        assert_eq!(n.judge_request(&hex("03 05 c2 23 05"), false), Verdict::Ack);
        assert_eq!(n.agreed().auth, Some(AuthMethod::ChapMd5));
        // The authenticator's next request (its first Ack got lost, say)
        // asks for nothing: what we agree to is that request, not the last.
        assert_eq!(n.judge_request(&hex("01 04 05 dc"), false), Verdict::Ack);
        assert_eq!(n.agreed().auth, None);
    }

    #[test]
    fn a_reject_naming_options_we_did_not_send_is_discarded() {
        let mut n = peer(&[AuthMethod::Pap]);
        let request = n.build_request();
        // MRU with a value other than ours, and an option we never asked
        // for: not a subset of our request (§5.4).
        assert!(!n.on_reject(&hex("01 04 05 dc")));
        assert!(!n.on_reject(&hex("07 02")));
        assert_eq!(n.build_request(), request);
        // Our MRU as sent is a proper reject.
        assert!(n.on_reject(&request[..4]));
        assert_eq!(n.build_request(), request[4..]);
    }
}
