//! IPv6CP option negotiation (RFC 5072): interface identifiers, from which
//! each end forms its link-local address.

use crate::wire::ppp::ipv6cp::INTERFACE_IDENTIFIER;
use crate::wire::ppp::options::{CpOption, OptionIter, OptionWriter};
use crate::wire::ppp::Ipv6cpOption;

use super::fsm::{is_option_subset, Negotiator, Verdict};
use super::lcp::MagicSource;

/// What IPv6CP agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ipv6cpAgreed {
    /// Our interface identifier.
    pub local: Option<[u8; 8]>,
    /// The peer's interface identifier.
    pub peer: Option<[u8; 8]>,
}

/// An idle IPv6CP negotiator (see [`Ipv6cpNegotiator::idle`]).
#[derive(Debug, Clone)]
pub struct IdleIpv6cp {
    source: MagicSource,
    ours: Option<[u8; 8]>,
    agreed: Ipv6cpAgreed,
}

/// The IPv6CP side of [`Negotiator`]; both ends behave alike.
#[derive(Debug, Clone)]
pub struct Ipv6cpNegotiator {
    source: MagicSource,
    ours: Option<[u8; 8]>,
    agreed: Ipv6cpAgreed,
}

impl Ipv6cpNegotiator {
    /// A negotiator drawing identifiers from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut negotiator = Ipv6cpNegotiator {
            source: MagicSource::new(seed),
            ours: None,
            agreed: Ipv6cpAgreed::default(),
        };
        negotiator.reset();
        negotiator
    }

    /// What must survive while the automaton is idle: the identifier
    /// source, our last identifier (the next must differ) and what was
    /// agreed.
    pub fn idle(&self) -> IdleIpv6cp {
        IdleIpv6cp {
            source: self.source.clone(),
            ours: self.ours,
            agreed: self.agreed,
        }
    }

    /// The negotiator [`Ipv6cpNegotiator::idle`] reduced.
    pub fn from_idle(idle: IdleIpv6cp) -> Self {
        Ipv6cpNegotiator {
            source: idle.source,
            ours: idle.ours,
            agreed: idle.agreed,
        }
    }

    /// What was agreed.
    pub fn agreed(&self) -> Ipv6cpAgreed {
        self.agreed
    }

    /// A random non-zero identifier different from ours (§4.1).
    fn fresh(&mut self) -> [u8; 8] {
        loop {
            let high = u64::from(self.source.draw()) << 32;
            let id = (high | u64::from(self.source.draw())).to_be_bytes();
            if Some(id) != self.ours {
                return id;
            }
        }
    }
}

impl Negotiator for Ipv6cpNegotiator {
    fn reset(&mut self) {
        let id = self.fresh();
        self.ours = Some(id);
        self.agreed = Ipv6cpAgreed::default();
    }

    fn build_request(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(10);
        if let Some(id) = self.ours {
            let mut writer = OptionWriter::new(&mut out);
            let _ = Ipv6cpOption::InterfaceIdentifier(id).emit(&mut writer);
        }
        out
    }

    fn judge_request(&mut self, options: &[u8], reject_instead_of_nak: bool) -> Verdict {
        let mut naks = Vec::new();
        let mut rejects = Vec::new();
        let mut peer = None;
        for raw in OptionIter::new(options) {
            let Ok(raw) = raw else {
                return Verdict::Reject(options.to_vec());
            };
            match Ipv6cpOption::parse(&raw) {
                // §4.1: an all-zero identifier, or one equal to ours, is
                // answered with a Nak carrying a fresh identifier.
                Ok(Ipv6cpOption::InterfaceIdentifier(id))
                    if id == [0; 8] || Some(id) == self.ours =>
                {
                    if reject_instead_of_nak {
                        rejects.extend_from_slice(raw.bytes);
                    } else {
                        let suggestion = self.fresh();
                        let mut writer = OptionWriter::new(&mut naks);
                        let _ = Ipv6cpOption::InterfaceIdentifier(suggestion).emit(&mut writer);
                    }
                }
                Ok(Ipv6cpOption::InterfaceIdentifier(id)) => peer = Some(id),
                _ => rejects.extend_from_slice(raw.bytes),
            }
        }
        if !rejects.is_empty() {
            return Verdict::Reject(rejects);
        }
        if !naks.is_empty() {
            return Verdict::Nak(naks);
        }
        self.agreed.peer = peer;
        Verdict::Ack
    }

    fn on_ack(&mut self, _options: &[u8]) {
        self.agreed.local = self.ours;
    }

    fn on_nak(&mut self, options: &[u8]) -> bool {
        for raw in OptionIter::new(options) {
            let Ok(raw) = raw else { return false };
            if let Ok(Ipv6cpOption::InterfaceIdentifier(id)) = Ipv6cpOption::parse(&raw) {
                // §4.1: use the suggested identifier unless it is zero.
                self.ours = Some(if id == [0; 8] { self.fresh() } else { id });
            }
        }
        true
    }

    fn on_reject(&mut self, options: &[u8]) -> bool {
        // RFC 1661 §5.4: a Configure-Reject lists a subset of our last
        // request, unmodified; "invalid packets are silently discarded".
        if !is_option_subset(options, &self.build_request()) {
            return false;
        }
        for raw in OptionIter::new(options) {
            let Ok(raw) = raw else { return false };
            if raw.kind == INTERFACE_IDENTIFIER {
                self.ours = None;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::proto::ppp::fsm::testing::{Pair, Side};
    use crate::proto::ppp::fsm::Code;

    fn option(id: [u8; 8]) -> Vec<u8> {
        let mut out = vec![INTERFACE_IDENTIFIER, 10];
        out.extend_from_slice(&id);
        out
    }

    fn ours(n: &mut Ipv6cpNegotiator) -> [u8; 8] {
        let request = n.build_request();
        assert_eq!(request.len(), 10);
        request[2..].try_into().unwrap()
    }

    fn nak_suggestion(verdict: Verdict) -> [u8; 8] {
        let Verdict::Nak(nak) = verdict else {
            panic!("expected a Nak, got {verdict:?}");
        };
        assert_eq!(nak[..2], [INTERFACE_IDENTIFIER, 10]);
        nak[2..].try_into().unwrap()
    }

    #[test]
    fn two_ends_converge_with_distinct_nonzero_identifiers() {
        let mut p = Pair::new(
            Instant::now(),
            Ipv6cpNegotiator::new(1),
            Ipv6cpNegotiator::new(2),
        );
        p.start();
        p.run();
        assert!(p.opened());
        let (a, b) = (p.na.agreed(), p.nb.agreed());
        let (Some(a_id), Some(b_id)) = (a.local, b.local) else {
            panic!("both ends must have an identifier: {a:?} {b:?}");
        };
        assert_ne!(a_id, [0; 8]);
        assert_ne!(b_id, [0; 8]);
        assert_ne!(a_id, b_id);
        assert_eq!(a.peer, Some(b_id));
        assert_eq!(b.peer, Some(a_id));
        assert!(p.sent(Side::A, Code::ConfigureNak).is_empty());
    }

    #[test]
    fn a_zero_identifier_is_naked_with_a_fresh_one() {
        let mut n = Ipv6cpNegotiator::new(7);
        let mine = ours(&mut n);
        let suggested = nak_suggestion(n.judge_request(&option([0; 8]), false));
        assert_ne!(suggested, [0; 8]);
        assert_ne!(suggested, mine);
        assert_eq!(n.agreed().peer, None);
        // The peer takes it and is acked.
        assert_eq!(n.judge_request(&option(suggested), false), Verdict::Ack);
        assert_eq!(n.agreed().peer, Some(suggested));
    }

    #[test]
    fn our_own_identifier_is_naked_with_a_different_one() {
        let mut n = Ipv6cpNegotiator::new(7);
        let mine = ours(&mut n);
        let suggested = nak_suggestion(n.judge_request(&option(mine), false));
        assert_ne!(suggested, mine);
        assert_ne!(suggested, [0; 8]);
        // Past Max-Failure the same request is rejected as it came.
        assert_eq!(
            n.judge_request(&option(mine), true),
            Verdict::Reject(option(mine))
        );
    }

    #[test]
    fn a_nak_suggestion_is_adopted_unless_zero() {
        let mut n = Ipv6cpNegotiator::new(7);
        let suggestion = [2, 0, 0, 0, 0, 0, 0, 9];
        assert!(n.on_nak(&option(suggestion)));
        assert_eq!(ours(&mut n), suggestion);
        n.on_ack(&option(suggestion));
        assert_eq!(n.agreed().local, Some(suggestion));
        // A zero suggestion makes us draw a fresh non-zero one.
        assert!(n.on_nak(&option([0; 8])));
        let drawn = ours(&mut n);
        assert_ne!(drawn, [0; 8]);
        assert_ne!(drawn, suggestion);
        // Unreadable: discarded.
        assert!(!n.on_nak(&[INTERFACE_IDENTIFIER, 10, 1]));
    }

    #[test]
    fn a_rejected_identifier_is_no_longer_asked_for() {
        let mut n = Ipv6cpNegotiator::new(7);
        let request = n.build_request();
        assert!(n.on_reject(&request));
        assert!(n.build_request().is_empty());
        n.on_ack(&[]);
        assert_eq!(n.agreed().local, None);
        // A new negotiation asks again.
        n.reset();
        assert_eq!(n.build_request().len(), 10);
    }

    #[test]
    fn unknown_and_malformed_options_are_rejected() {
        let mut n = Ipv6cpNegotiator::new(7);
        // IPv6-Compression-Protocol (2) is not offered.
        let compression = vec![2, 4, 0x00, 0x4f];
        let mut request = option([1; 8]);
        request.extend_from_slice(&compression);
        assert_eq!(
            n.judge_request(&request, false),
            Verdict::Reject(compression)
        );
        // An Interface-Identifier of the wrong length.
        assert_eq!(
            n.judge_request(&[1, 6, 0, 0, 0, 1], false),
            Verdict::Reject(vec![1, 6, 0, 0, 0, 1])
        );
        assert_eq!(n.judge_request(&[1, 1], false), Verdict::Reject(vec![1, 1]));
    }

    #[test]
    fn a_reject_naming_options_we_did_not_send_is_discarded() {
        let mut n = Ipv6cpNegotiator::new(7);
        let request = n.build_request();
        assert!(!n.on_reject(&option([9; 8])));
        assert_eq!(n.build_request(), request);
    }
}
