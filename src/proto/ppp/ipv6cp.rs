//! IPv6CP option negotiation (RFC 5072): interface identifiers, from which
//! each end forms its link-local address.

use crate::wire::ppp::ipv6cp::INTERFACE_IDENTIFIER;
use crate::wire::ppp::options::{CpOption, OptionIter, OptionWriter};
use crate::wire::ppp::Ipv6cpOption;

use super::fsm::{Negotiator, Verdict};
use super::lcp::MagicSource;

/// What IPv6CP agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ipv6cpAgreed {
    /// Our interface identifier.
    pub local: Option<[u8; 8]>,
    /// The peer's interface identifier.
    pub peer: Option<[u8; 8]>,
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
        for raw in OptionIter::new(options) {
            let Ok(raw) = raw else { return false };
            if raw.kind == INTERFACE_IDENTIFIER {
                self.ours = None;
            }
        }
        true
    }
}
