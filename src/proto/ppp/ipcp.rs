//! IPCP option negotiation (RFC 1332, DNS from RFC 1877) for both ends.
//!
//! The server (the LNS) hands the subscriber the address AAA or a pool gave
//! it and the configured DNS servers; the client asks for 0.0.0.0 and takes
//! what it is Nak'd.

use std::net::Ipv4Addr;

use crate::wire::ppp::ipcp::kind;
use crate::wire::ppp::options::{CpOption, OptionIter, OptionWriter};
use crate::wire::ppp::IpcpOption;

use super::fsm::{is_option_subset, Negotiator, Verdict};

/// What IPCP agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IpcpAgreed {
    /// Our address on the link.
    pub local: Option<Ipv4Addr>,
    /// The peer's address on the link (the subscriber's, at the LNS).
    pub peer: Option<Ipv4Addr>,
    /// Primary and secondary DNS (given, at the server; learnt, at the client).
    pub dns: [Option<Ipv4Addr>; 2],
}

/// Which end we are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpcpRole {
    /// Assigns `peer` and offers `dns` (the LNS).
    Server {
        /// Our own address, sent in our request (a gateway identifier).
        local: Ipv4Addr,
        /// The subscriber's address; set before IPCP starts.
        peer: Option<Ipv4Addr>,
        /// DNS servers to hand out; `None` rejects the request for one.
        dns: [Option<Ipv4Addr>; 2],
    },
    /// Asks for an address (and DNS when `want_dns`) (a subscriber).
    Client {
        /// Request DNS servers (RFC 1877).
        want_dns: bool,
    },
}

/// An idle IPCP negotiator (see [`IpcpNegotiator::idle`]).
#[derive(Debug, Clone, Copy)]
pub struct IdleIpcp {
    peer: Option<Ipv4Addr>,
    agreed: IpcpAgreed,
}

/// The IPCP side of [`Negotiator`].
#[derive(Debug, Clone)]
pub struct IpcpNegotiator {
    role: IpcpRole,
    /// Our next request.
    request: Vec<IpcpOption>,
    agreed: IpcpAgreed,
}

impl IpcpNegotiator {
    /// A negotiator for `role`.
    pub fn new(role: IpcpRole) -> Self {
        // Exactly what `reset` puts in: a first push would reserve four
        // options (128 bytes), kept for the session's life.
        let options = match role {
            IpcpRole::Server { .. } | IpcpRole::Client { want_dns: false } => 1,
            IpcpRole::Client { want_dns: true } => 3,
        };
        let mut negotiator = IpcpNegotiator {
            role,
            request: Vec::with_capacity(options),
            agreed: IpcpAgreed::default(),
        };
        negotiator.reset();
        negotiator
    }

    /// What must survive while the automaton is idle: the address we
    /// assigned (server) and what was agreed; our request is rebuilt by
    /// the `reset` that starts every negotiation.
    pub fn idle(&self) -> IdleIpcp {
        IdleIpcp {
            peer: match self.role {
                IpcpRole::Server { peer, .. } => peer,
                IpcpRole::Client { .. } => None,
            },
            agreed: self.agreed,
        }
    }

    /// The negotiator [`IpcpNegotiator::idle`] reduced; `role` as it was
    /// made (the assigned address comes from `idle`).
    pub fn from_idle(role: IpcpRole, idle: IdleIpcp) -> Self {
        let mut negotiator = IpcpNegotiator::new(role);
        if let Some(address) = idle.peer {
            negotiator.set_peer_address(address);
        }
        negotiator.agreed = idle.agreed;
        negotiator
    }

    /// Set the subscriber's address (server), e.g. once AAA answered.
    pub fn set_peer_address(&mut self, address: Ipv4Addr) {
        if let IpcpRole::Server { peer, .. } = &mut self.role {
            *peer = Some(address);
        }
    }

    /// What was agreed.
    pub fn agreed(&self) -> IpcpAgreed {
        self.agreed
    }

    /// Judge one option of the peer's request: `Ok` to ack, `Err(Some)` to
    /// Nak with a suggestion, `Err(None)` to reject. Records nothing: only
    /// a request acked as a whole is agreed to.
    fn judge(&self, option: &IpcpOption) -> Result<(), Option<IpcpOption>> {
        match (&self.role, option) {
            // RFC 1332 §3.3: the server Naks any address but the one it
            // assigned (0.0.0.0 asks for one).
            (
                IpcpRole::Server {
                    peer: Some(peer), ..
                },
                IpcpOption::IpAddress(asked),
            ) => {
                if asked == peer {
                    Ok(())
                } else {
                    Err(Some(IpcpOption::IpAddress(*peer)))
                }
            }
            // No address to give yet. A Nak must suggest a value we would
            // accept (RFC 1661 §5.3) and we have none, so the choice is
            // between Reject and not answering; the Negotiator contract has
            // no "not answering". We Reject, as the option is not
            // negotiable with us now, and rely on the session to call
            // `set_peer_address` before IPCP's Up (AAA answers during the
            // Authentication phase, before any NCP starts), so this arm is
            // only hit by a misbehaving caller. A client told so opens
            // without an address and the session is useless, which is
            // visible; agreeing to whatever it asks would not be.
            (IpcpRole::Server { peer: None, .. }, IpcpOption::IpAddress(_)) => Err(None),
            // RFC 1877 §1.1/§1.3: Nak a DNS request with our server, reject
            // it when we have none to give.
            (IpcpRole::Server { dns, .. }, IpcpOption::PrimaryDns(asked)) => offer(dns[0], *asked),
            (IpcpRole::Server { dns, .. }, IpcpOption::SecondaryDns(asked)) => {
                offer(dns[1], *asked)
            }
            // The client accepts the server's own address, whatever it is.
            (IpcpRole::Client { .. }, IpcpOption::IpAddress(_)) => Ok(()),
            // Van Jacobson compression, NBNS and anything else: not offered.
            _ => Err(None),
        }
    }
}

fn offer(ours: Option<Ipv4Addr>, asked: Ipv4Addr) -> Result<(), Option<IpcpOption>> {
    match ours {
        Some(server) if server == asked => Ok(()),
        Some(server) => Err(Some(IpcpOption::PrimaryDns(server))),
        None => Err(None),
    }
}

fn emit(options: &[IpcpOption]) -> Vec<u8> {
    let mut out = Vec::with_capacity(6 * options.len());
    let mut writer = OptionWriter::new(&mut out);
    for option in options {
        // Address options always fit.
        let _ = option.emit(&mut writer);
    }
    out
}

impl Negotiator for IpcpNegotiator {
    fn reset(&mut self) {
        // Refill in place: a link resets its negotiators more than once.
        self.request.clear();
        match &self.role {
            IpcpRole::Server { local, .. } => self.request.push(IpcpOption::IpAddress(*local)),
            IpcpRole::Client { want_dns } => {
                self.request
                    .push(IpcpOption::IpAddress(Ipv4Addr::UNSPECIFIED));
                if *want_dns {
                    self.request
                        .push(IpcpOption::PrimaryDns(Ipv4Addr::UNSPECIFIED));
                    self.request
                        .push(IpcpOption::SecondaryDns(Ipv4Addr::UNSPECIFIED));
                }
            }
        }
        self.agreed = IpcpAgreed::default();
    }

    fn build_request(&mut self) -> Vec<u8> {
        emit(&self.request)
    }

    fn judge_request(&mut self, options: &[u8], reject_instead_of_nak: bool) -> Verdict {
        let mut naks = Vec::new();
        let mut rejects = Vec::new();
        let mut saw_address = false;
        // What the peer's request says, kept apart until it is acked.
        let mut peer_address = None;
        let mut peer_dns = [None; 2];
        for raw in OptionIter::new(options) {
            let Ok(raw) = raw else {
                return Verdict::Reject(options.to_vec());
            };
            let Ok(option) = IpcpOption::parse(&raw) else {
                rejects.extend_from_slice(raw.bytes);
                continue;
            };
            saw_address |= raw.kind == kind::IP_ADDRESS;
            match self.judge(&option) {
                Ok(()) => match option {
                    IpcpOption::IpAddress(address) => peer_address = Some(address),
                    IpcpOption::PrimaryDns(server) => peer_dns[0] = Some(server),
                    IpcpOption::SecondaryDns(server) => peer_dns[1] = Some(server),
                    _ => {}
                },
                Err(Some(mut suggestion)) if !reject_instead_of_nak => {
                    // Keep the option type the peer used (secondary DNS
                    // comes back as secondary).
                    if let (IpcpOption::SecondaryDns(_), IpcpOption::PrimaryDns(server)) =
                        (&option, &suggestion)
                    {
                        suggestion = IpcpOption::SecondaryDns(*server);
                    }
                    let mut writer = OptionWriter::new(&mut naks);
                    let _ = suggestion.emit(&mut writer);
                }
                Err(_) => rejects.extend_from_slice(raw.bytes),
            }
        }
        if !rejects.is_empty() {
            return Verdict::Reject(rejects);
        }
        // RFC 1332 §3.3: a server that must set the peer's address and was
        // not asked appends the option to a Nak.
        if let IpcpRole::Server {
            peer: Some(peer), ..
        } = &self.role
        {
            if !saw_address && !reject_instead_of_nak {
                let mut writer = OptionWriter::new(&mut naks);
                let _ = IpcpOption::IpAddress(*peer).emit(&mut writer);
            }
        }
        if !naks.is_empty() {
            return Verdict::Nak(naks);
        }
        // RFC 1661 §5.2: by acking we agree to exactly this request; what
        // an earlier (Nak'd, or superseded) request said no longer counts.
        // The DNS servers a client asks for are the ones we give; a
        // client's DNS come from the Ack of its own request instead.
        self.agreed.peer = peer_address;
        if matches!(self.role, IpcpRole::Server { .. }) {
            self.agreed.dns = peer_dns;
        }
        Verdict::Ack
    }

    fn on_ack(&mut self, _options: &[u8]) {
        for option in &self.request {
            match option {
                IpcpOption::IpAddress(address) => self.agreed.local = Some(*address),
                IpcpOption::PrimaryDns(server) => self.agreed.dns[0] = Some(*server),
                IpcpOption::SecondaryDns(server) => self.agreed.dns[1] = Some(*server),
                _ => {}
            }
        }
    }

    fn on_nak(&mut self, options: &[u8]) -> bool {
        for raw in OptionIter::new(options) {
            let Ok(raw) = raw else { return false };
            let Ok(suggested) = IpcpOption::parse(&raw) else {
                return false;
            };
            // RFC 1332 §3.3 / RFC 1877: take the value the peer suggests for
            // an option we asked for.
            for option in &mut self.request {
                let same_kind =
                    std::mem::discriminant(option) == std::mem::discriminant(&suggested);
                if same_kind {
                    *option = suggested.clone();
                }
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
            self.request.retain(|option| option.kind() != raw.kind);
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

    const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const ASSIGNED: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
    const DNS1: Ipv4Addr = Ipv4Addr::new(1, 1, 1, 1);
    const DNS2: Ipv4Addr = Ipv4Addr::new(8, 8, 8, 8);

    fn server(dns: [Option<Ipv4Addr>; 2]) -> IpcpNegotiator {
        IpcpNegotiator::new(IpcpRole::Server {
            local: GATEWAY,
            peer: Some(ASSIGNED),
            dns,
        })
    }

    fn client(want_dns: bool) -> IpcpNegotiator {
        IpcpNegotiator::new(IpcpRole::Client { want_dns })
    }

    fn options(list: &[IpcpOption]) -> Vec<u8> {
        emit(list)
    }

    fn pair(a: IpcpNegotiator, b: IpcpNegotiator) -> Pair<IpcpNegotiator, IpcpNegotiator> {
        let mut pair = Pair::new(Instant::now(), a, b);
        pair.start();
        pair.run();
        pair
    }

    #[test]
    fn client_learns_its_address_and_both_dns_after_one_nak() {
        let p = pair(server([Some(DNS1), Some(DNS2)]), client(true));
        assert!(p.opened());
        let naks = p.sent(Side::A, Code::ConfigureNak);
        assert_eq!(naks.len(), 1);
        assert_eq!(
            naks[0].data,
            options(&[
                IpcpOption::IpAddress(ASSIGNED),
                IpcpOption::PrimaryDns(DNS1),
                IpcpOption::SecondaryDns(DNS2),
            ])
        );
        assert!(p.sent(Side::A, Code::ConfigureReject).is_empty());
        let learnt = p.nb.agreed();
        assert_eq!(learnt.local, Some(ASSIGNED));
        assert_eq!(learnt.peer, Some(GATEWAY));
        assert_eq!(learnt.dns, [Some(DNS1), Some(DNS2)]);
        let given = p.na.agreed();
        assert_eq!(given.local, Some(GATEWAY));
        assert_eq!(given.peer, Some(ASSIGNED));
        assert_eq!(given.dns, [Some(DNS1), Some(DNS2)]);
    }

    #[test]
    fn server_without_dns_rejects_the_dns_options_and_the_client_converges() {
        let p = pair(server([None, None]), client(true));
        assert!(p.opened());
        let rejects = p.sent(Side::A, Code::ConfigureReject);
        assert_eq!(rejects.len(), 1);
        assert_eq!(
            rejects[0].data,
            options(&[
                IpcpOption::PrimaryDns(Ipv4Addr::UNSPECIFIED),
                IpcpOption::SecondaryDns(Ipv4Addr::UNSPECIFIED),
            ])
        );
        assert_eq!(p.nb.agreed().local, Some(ASSIGNED));
        assert_eq!(p.nb.agreed().dns, [None, None]);
    }

    #[test]
    fn server_with_one_dns_rejects_only_the_secondary() {
        let p = pair(server([Some(DNS1), None]), client(true));
        assert!(p.opened());
        assert_eq!(p.nb.agreed().dns, [Some(DNS1), None]);
    }

    #[test]
    fn a_wrong_address_is_naked_with_the_assigned_one() {
        let mut s = server([Some(DNS1), Some(DNS2)]);
        let asked = options(&[IpcpOption::IpAddress(Ipv4Addr::new(10, 0, 0, 9))]);
        assert_eq!(
            s.judge_request(&asked, false),
            Verdict::Nak(options(&[IpcpOption::IpAddress(ASSIGNED)]))
        );
        // Once Max-Failure is reached, the same request is rejected.
        assert_eq!(s.judge_request(&asked, true), Verdict::Reject(asked));
        let right = options(&[IpcpOption::IpAddress(ASSIGNED)]);
        assert_eq!(s.judge_request(&right, false), Verdict::Ack);
        assert_eq!(s.agreed().peer, Some(ASSIGNED));
    }

    #[test]
    fn a_wrong_dns_is_naked_with_ours_under_the_same_type() {
        let mut s = server([Some(DNS1), Some(DNS2)]);
        let asked = options(&[
            IpcpOption::IpAddress(ASSIGNED),
            IpcpOption::PrimaryDns(DNS2),
            IpcpOption::SecondaryDns(DNS1),
        ]);
        assert_eq!(
            s.judge_request(&asked, false),
            Verdict::Nak(options(&[
                IpcpOption::PrimaryDns(DNS1),
                IpcpOption::SecondaryDns(DNS2),
            ]))
        );
    }

    #[test]
    fn a_request_without_an_address_draws_a_nak_appending_one() {
        let mut s = server([Some(DNS1), Some(DNS2)]);
        // RFC 1332 §3.3: the option is appended to the Nak.
        assert_eq!(
            s.judge_request(&[], false),
            Verdict::Nak(options(&[IpcpOption::IpAddress(ASSIGNED)]))
        );
        let dns_only = options(&[IpcpOption::PrimaryDns(DNS1)]);
        assert_eq!(
            s.judge_request(&dns_only, false),
            Verdict::Nak(options(&[IpcpOption::IpAddress(ASSIGNED)]))
        );
        // Past Max-Failure nothing may be appended: the request stands.
        assert_eq!(s.judge_request(&dns_only, true), Verdict::Ack);
    }

    #[test]
    fn nbns_and_ip_compression_are_rejected() {
        let mut s = server([Some(DNS1), Some(DNS2)]);
        let vj = IpcpOption::IpCompressionProtocol {
            protocol: 0x002d,
            data: vec![0x0f, 0x01],
        };
        let unwanted = options(&[
            vj,
            IpcpOption::PrimaryNbns(Ipv4Addr::UNSPECIFIED),
            IpcpOption::SecondaryNbns(Ipv4Addr::UNSPECIFIED),
        ]);
        let mut request = options(&[IpcpOption::IpAddress(Ipv4Addr::UNSPECIFIED)]);
        request.extend_from_slice(&unwanted);
        // A Reject carries only the rejected options; the Nak waits.
        assert_eq!(s.judge_request(&request, false), Verdict::Reject(unwanted));
        // The client does the same with what it does not know.
        let mut c = client(false);
        let nbns = options(&[IpcpOption::PrimaryNbns(DNS1)]);
        assert_eq!(c.judge_request(&nbns, false), Verdict::Reject(nbns));
    }

    #[test]
    fn malformed_requests_are_rejected() {
        let mut s = server([None, None]);
        // An IP-Address option of the wrong length, then a broken list.
        assert_eq!(
            s.judge_request(&[3, 4, 10, 0], false),
            Verdict::Reject(vec![3, 4, 10, 0])
        );
        assert_eq!(
            s.judge_request(&[3, 1, 10], false),
            Verdict::Reject(vec![3, 1, 10])
        );
    }

    #[test]
    fn server_without_an_address_rejects_the_address_option() {
        let mut s = IpcpNegotiator::new(IpcpRole::Server {
            local: GATEWAY,
            peer: None,
            dns: [None, None],
        });
        let asked = options(&[IpcpOption::IpAddress(Ipv4Addr::UNSPECIFIED)]);
        assert_eq!(
            s.judge_request(&asked, false),
            Verdict::Reject(asked.clone())
        );
        // And it appends nothing when the option is missing.
        assert_eq!(s.judge_request(&[], false), Verdict::Ack);
        // Once the address is known, the normal rules apply.
        s.set_peer_address(ASSIGNED);
        assert_eq!(
            s.judge_request(&asked, false),
            Verdict::Nak(options(&[IpcpOption::IpAddress(ASSIGNED)]))
        );
    }

    #[test]
    fn client_adopts_naked_values_and_drops_rejected_options() {
        let mut c = client(true);
        assert!(c.on_nak(&options(&[
            IpcpOption::IpAddress(ASSIGNED),
            IpcpOption::SecondaryDns(DNS2),
        ])));
        assert_eq!(
            c.build_request(),
            options(&[
                IpcpOption::IpAddress(ASSIGNED),
                IpcpOption::PrimaryDns(Ipv4Addr::UNSPECIFIED),
                IpcpOption::SecondaryDns(DNS2),
            ])
        );
        assert!(c.on_reject(&options(&[IpcpOption::PrimaryDns(Ipv4Addr::UNSPECIFIED)])));
        assert_eq!(
            c.build_request(),
            options(&[
                IpcpOption::IpAddress(ASSIGNED),
                IpcpOption::SecondaryDns(DNS2),
            ])
        );
        // A Nak or Reject we cannot read is discarded.
        assert!(!c.on_nak(&[3, 6, 10]));
        assert!(!c.on_reject(&[3, 1]));
        // reset goes back to asking for everything.
        c.reset();
        assert_eq!(c.build_request().len(), 18);
    }

    #[test]
    fn a_reject_naming_options_we_did_not_send_is_discarded() {
        let mut c = client(true);
        let request = c.build_request();
        // Not what we sent: a DNS value we never asked for, and NBNS.
        assert!(!c.on_reject(&options(&[IpcpOption::PrimaryDns(DNS1)])));
        assert!(!c.on_reject(&options(&[IpcpOption::PrimaryNbns(Ipv4Addr::UNSPECIFIED)])));
        assert_eq!(c.build_request(), request);
    }

    #[test]
    fn server_does_not_claim_dns_the_client_never_asked_for() {
        let p = pair(server([Some(DNS1), Some(DNS2)]), client(false));
        assert!(p.opened());
        assert_eq!(p.nb.agreed().dns, [None, None]);
        assert_eq!(p.na.agreed().dns, [None, None]);
        assert_eq!(p.na.agreed().peer, Some(ASSIGNED));
    }

    #[test]
    fn agreement_follows_the_request_that_was_acked() {
        let mut s = server([Some(DNS1), Some(DNS2)]);
        // The address is right but the DNS is not: the request is Nak'd,
        // so nothing in it is agreed yet.
        let half_right = options(&[
            IpcpOption::IpAddress(ASSIGNED),
            IpcpOption::PrimaryDns(DNS2),
        ]);
        assert!(matches!(
            s.judge_request(&half_right, false),
            Verdict::Nak(_)
        ));
        assert_eq!(s.agreed().peer, None);
        let with_dns = options(&[
            IpcpOption::IpAddress(ASSIGNED),
            IpcpOption::PrimaryDns(DNS1),
        ]);
        assert_eq!(s.judge_request(&with_dns, false), Verdict::Ack);
        assert_eq!(s.agreed().dns, [Some(DNS1), None]);
        // A newer acked request without DNS replaces the agreement.
        let without = options(&[IpcpOption::IpAddress(ASSIGNED)]);
        assert_eq!(s.judge_request(&without, false), Verdict::Ack);
        assert_eq!(s.agreed().dns, [None, None]);
        assert_eq!(s.agreed().peer, Some(ASSIGNED));
        // The client likewise forgets a server address no longer sent.
        let mut c = client(false);
        let gateway = options(&[IpcpOption::IpAddress(GATEWAY)]);
        assert_eq!(c.judge_request(&gateway, false), Verdict::Ack);
        assert_eq!(c.agreed().peer, Some(GATEWAY));
        assert_eq!(c.judge_request(&[], false), Verdict::Ack);
        assert_eq!(c.agreed().peer, None);
    }
}
