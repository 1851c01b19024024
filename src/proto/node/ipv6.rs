//! IPv6 on the node's sessions: the /64 a session gets when IPv6CP opens,
//! its Router Advertisements (`proto::ra`), Router Solicitations from the
//! subscriber (server role), and the subscriber's side of SLAAC (client
//! role: the /64 learnt from an advertisement).

use std::net::Ipv6Addr;
use std::time::Instant;

use rand::Rng;

use super::{Node, NodeEvent, SessionKey};
use crate::proto::aaa::{Aaa, PrefixPool};
use crate::proto::l2tp::Role;
use crate::proto::ppp::link::LinkUp;
use crate::proto::ra::{RaConfig, RaSession, Solicited};
use crate::wire::icmpv6::{self, msg_type, RouterAdvert, RouterSolicitation};
use crate::wire::ppp::frame::protocol;

/// IPv6 counters of the node (Router Solicitations and Advertisements,
/// prefix pools).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ipv6Stats {
    /// Router Advertisements sent (unsolicited and solicited).
    pub ra_sent: u64,
    /// Valid Router Solicitations received.
    pub rs_received: u64,
    /// Solicitations that failed RFC 4861 §6.1.1, dropped.
    pub rs_invalid: u64,
    /// Valid solicitations on a session without IPv6 (no prefix).
    pub rs_ignored: u64,
    /// Answers held back by the §6.2.6 rate limit.
    pub rs_deferred: u64,
    /// Other link-local ICMPv6 the data plane passed up (Neighbor
    /// Solicitations: PPP has no link-layer addresses to resolve), dropped.
    pub nd_ignored: u64,
    /// Sessions that came up with IPv6CP but found no /64 free.
    pub prefixes_exhausted: u64,
}

impl<A: Aaa> Node<A> {
    /// Server role: the IPv6 prefix pools sessions take their /64 from
    /// (tried like the IPv4 pools: AAA's pool, then the IPv4 address's
    /// pool, then in order) and what the Router Advertisements say.
    /// Without pools sessions get no /64 and no advertisements.
    pub fn set_ipv6(&mut self, pools: Vec<PrefixPool>, ra: RaConfig) {
        self.prefix_pools = pools;
        self.ra_config = ra;
    }

    /// IPv6 prefix pools.
    pub fn prefix_pools(&self) -> &[PrefixPool] {
        &self.prefix_pools
    }

    /// IPv6 counters.
    pub fn ipv6_stats(&self) -> Ipv6Stats {
        self.ipv6_stats
    }

    /// Client role: the global address the subscriber formed by SLAAC
    /// (RFC 4862 §5.5.3): the /64 of the last Router Advertisement and our
    /// IPv6CP interface identifier.
    pub fn ipv6_address(&self, key: SessionKey) -> Option<Ipv6Addr> {
        let v6 = self.sessions.get(&key)?.v6()?;
        let (ours, _) = v6.ifids?;
        let prefix = v6.learnt_prefix?;
        let mut octets = [0u8; 16];
        octets[..8].copy_from_slice(&prefix);
        octets[8..].copy_from_slice(&ours);
        Some(Ipv6Addr::from(octets))
    }

    /// Client role: send a Router Solicitation (RFC 4861 §6.3.7) from our
    /// link-local address to all-routers. False when the session has no
    /// IPv6 up.
    pub fn solicit_router(&mut self, key: SessionKey) -> bool {
        let Some((ours, _)) = self.sessions.get(&key).and_then(|c| c.v6()?.ifids) else {
            return false;
        };
        let rs = RouterSolicitation::emit(icmpv6::link_local(ours), icmpv6::ALL_ROUTERS);
        self.send_data(key, protocol::IPV6, &rs)
    }

    /// Take IPv6 Neighbor Discovery off a session's IP stream: a Router
    /// Solicitation (server) or Advertisement (client) is handled here;
    /// other ICMPv6 of §4 (Neighbor Solicitations and Advertisements) is
    /// dropped, since PPP has no link-layer addresses to resolve. False
    /// for anything else, which stays data.
    pub(super) fn neighbor_discovery(
        &mut self,
        now: Instant,
        key: SessionKey,
        packet: &[u8],
    ) -> bool {
        let server = self.endpoint.config().role == Role::Lns;
        if icmpv6::is_icmpv6_type(packet, msg_type::ROUTER_SOLICITATION) && server {
            self.router_solicitation(now, key, packet);
            return true;
        }
        if icmpv6::is_icmpv6_type(packet, msg_type::ROUTER_ADVERTISEMENT) && !server {
            if let Ok(advert) = RouterAdvert::parse(packet) {
                if let Some(ctx) = self.sessions.get_mut(&key) {
                    // RFC 4862 §5.5.3: a prefix with the A flag, a /64 to
                    // match our 64-bit identifier, and a valid lifetime.
                    let slaac = advert.prefixes.iter().find(|p| {
                        p.autonomous && p.len == 64 && p.valid > 0 && p.preferred <= p.valid
                    });
                    if let Some(p) = slaac {
                        let mut upper = [0u8; 8];
                        upper.copy_from_slice(&p.prefix.octets()[..8]);
                        ctx.v6_mut().learnt_prefix = Some(upper);
                    }
                }
                self.events.push_back(NodeEvent::RouterAdvert {
                    key,
                    advert: Box::new(advert),
                });
            }
            return true;
        }
        if icmpv6::is_icmpv6_type(packet, msg_type::NEIGHBOR_SOLICITATION)
            || icmpv6::is_icmpv6_type(packet, msg_type::NEIGHBOR_ADVERTISEMENT)
        {
            self.ipv6_stats.nd_ignored += 1;
            return true;
        }
        false
    }

    /// RFC 4861 §6.2.6: a valid solicitation gets an advertisement; an
    /// invalid one (§6.1.1) is silently discarded.
    fn router_solicitation(&mut self, now: Instant, key: SessionKey, packet: &[u8]) {
        let rs = match RouterSolicitation::parse(packet) {
            Ok(rs) => rs,
            Err(_) => {
                self.ipv6_stats.rs_invalid += 1;
                return;
            }
        };
        let Some(ctx) = self.sessions.get_mut(&key) else {
            return;
        };
        let Some(ra) = ctx.v6.as_deref_mut().and_then(|v6| v6.ra.as_mut()) else {
            self.ipv6_stats.rs_ignored += 1;
            return;
        };
        self.ipv6_stats.rs_received += 1;
        match ra.solicited(now, rs.src, &self.ra_config) {
            Solicited::Now(packet) => {
                self.ipv6_stats.ra_sent += 1;
                self.send_data(key, protocol::IPV6, &packet);
            }
            Solicited::Deferred => {
                self.ipv6_stats.rs_deferred += 1;
                self.rearm(key);
            }
        }
    }

    /// Server role, a link just Up with IPv6CP open: AAA's static /64
    /// (taken from the prefix pool that holds it, if one does), else a /64
    /// from AAA's pool, else its IPv4 address's pool, else the first with
    /// room.
    pub(super) fn allocate_prefix(&mut self, now: Instant, key: SessionKey, up: &mut LinkUp) {
        let (Some(ours), Some(_)) = (up.ipv6_local, up.ipv6_peer) else {
            return;
        };
        if self.endpoint.config().role != Role::Lns {
            return;
        }
        // The link's identifiers are on record already (`after_link`).
        let Some(ctx) = self
            .sessions
            .get_mut(&key)
            .and_then(|c| c.v6.as_deref_mut())
        else {
            return;
        };
        if let Some((prefix, _)) = ctx.prefix {
            // Up again after a renegotiation: same /64, advertised afresh
            // (the identifiers or the MRU may have changed).
            up.ipv6_prefix = Some(prefix);
            ctx.ra = Some(RaSession::new(now, ours, prefix, up.lcp.peer_mru));
            return;
        }
        if let Some(prefix) = ctx.static_prefix {
            let pool = match self
                .prefix_pools
                .iter_mut()
                .position(|p| p.contains(prefix))
            {
                // An outside /64 is the operator's to route.
                None => None,
                Some(i) => {
                    if !self.prefix_pools[i].allocate_specific(prefix, now) {
                        self.ipv6_stats.prefixes_exhausted += 1;
                        return;
                    }
                    u16::try_from(i).ok()
                }
            };
            up.ipv6_prefix = Some(prefix);
            ctx.prefix = Some((prefix, pool));
            ctx.ra = Some(RaSession::new(now, ours, prefix, up.lcp.peer_mru));
            return;
        }
        if self.prefix_pools.is_empty() {
            return;
        }
        // AAA's pool by name, then the pool of the IPv4 address by name.
        let Some(ctx) = self.sessions.get_mut(&key) else {
            return;
        };
        let ipv4_pool = ctx
            .address
            .and_then(|(_, pool)| self.pools.get(usize::from(pool?)))
            .map(|p| p.name());
        let Some(v6) = ctx.v6.as_deref_mut() else {
            return;
        };
        let hints = [v6.pool_hint.as_deref(), ipv4_pool];
        let mut order: Vec<usize> = hints
            .iter()
            .flatten()
            .filter_map(|name| self.prefix_pools.iter().position(|p| p.name() == *name))
            .collect();
        order.extend(0..self.prefix_pools.len());
        let picked = order.into_iter().find_map(|i| {
            let prefix = self.prefix_pools[i].allocate(now)?;
            Some((prefix, u16::try_from(i).ok()))
        });
        let Some((prefix, pool)) = picked else {
            self.ipv6_stats.prefixes_exhausted += 1;
            return;
        };
        up.ipv6_prefix = Some(prefix);
        v6.prefix = Some((prefix, pool));
        v6.ra = Some(RaSession::new(now, ours, prefix, up.lcp.peer_mru));
    }

    /// Send the advertisements due at `now`.
    pub(super) fn advertise(&mut self, now: Instant, key: SessionKey) {
        let due = self
            .sessions
            .get(&key)
            .and_then(|ctx| ctx.v6()?.ra.as_ref())
            .is_some_and(|ra| ra.poll_timeout() <= now);
        if !due {
            return;
        }
        let random = self.rng.random::<u32>();
        let Some(ra) = self
            .sessions
            .get_mut(&key)
            .and_then(|ctx| ctx.v6.as_deref_mut()?.ra.as_mut())
        else {
            return;
        };
        if let Some(packet) = ra.handle_timeout(now, &self.ra_config, random) {
            self.ipv6_stats.ra_sent += 1;
            self.send_data(key, protocol::IPV6, &packet);
        }
    }
}
