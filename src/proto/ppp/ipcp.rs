//! IPCP option negotiation (RFC 1332, DNS from RFC 1877) for both ends.
//!
//! The server (the LNS) hands the subscriber the address AAA or a pool gave
//! it and the configured DNS servers; the client asks for 0.0.0.0 and takes
//! what it is Nak'd.

use std::net::Ipv4Addr;

use crate::wire::ppp::ipcp::kind;
use crate::wire::ppp::options::{CpOption, OptionIter, OptionWriter};
use crate::wire::ppp::IpcpOption;

use super::fsm::{Negotiator, Verdict};

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
        let mut negotiator = IpcpNegotiator {
            role,
            request: Vec::new(),
            agreed: IpcpAgreed::default(),
        };
        negotiator.reset();
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
    /// Nak with a suggestion, `Err(None)` to reject.
    fn judge(&mut self, option: &IpcpOption) -> Result<(), Option<IpcpOption>> {
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
                    self.agreed.peer = Some(*peer);
                    Ok(())
                } else {
                    Err(Some(IpcpOption::IpAddress(*peer)))
                }
            }
            // No address to give yet: refuse to agree to any.
            (IpcpRole::Server { peer: None, .. }, IpcpOption::IpAddress(_)) => Err(None),
            // RFC 1877 §1.1/§1.3: Nak a DNS request with our server, reject
            // it when we have none to give.
            (IpcpRole::Server { dns, .. }, IpcpOption::PrimaryDns(asked)) => {
                offer(dns[0], *asked).inspect(|()| self.agreed.dns[0] = dns[0])
            }
            (IpcpRole::Server { dns, .. }, IpcpOption::SecondaryDns(asked)) => {
                offer(dns[1], *asked).inspect(|()| self.agreed.dns[1] = dns[1])
            }
            // The client accepts the server's own address, whatever it is.
            (IpcpRole::Client { .. }, IpcpOption::IpAddress(address)) => {
                self.agreed.peer = Some(*address);
                Ok(())
            }
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
        self.request = match &self.role {
            IpcpRole::Server { local, .. } => vec![IpcpOption::IpAddress(*local)],
            IpcpRole::Client { want_dns } => {
                let mut request = vec![IpcpOption::IpAddress(Ipv4Addr::UNSPECIFIED)];
                if *want_dns {
                    request.push(IpcpOption::PrimaryDns(Ipv4Addr::UNSPECIFIED));
                    request.push(IpcpOption::SecondaryDns(Ipv4Addr::UNSPECIFIED));
                }
                request
            }
        };
        self.agreed = IpcpAgreed::default();
    }

    fn build_request(&mut self) -> Vec<u8> {
        emit(&self.request)
    }

    fn judge_request(&mut self, options: &[u8], reject_instead_of_nak: bool) -> Verdict {
        let mut naks = Vec::new();
        let mut rejects = Vec::new();
        let mut saw_address = false;
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
                Ok(()) => {}
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
        if let IpcpRole::Server { dns, .. } = &self.role {
            self.agreed.dns = [self.agreed.dns[0].or(dns[0]), self.agreed.dns[1].or(dns[1])];
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
        for raw in OptionIter::new(options) {
            let Ok(raw) = raw else { return false };
            self.request.retain(|option| option.kind() != raw.kind);
        }
        true
    }
}
