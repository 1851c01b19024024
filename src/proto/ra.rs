//! Router Advertisements on one PPP link (RFC 4861 §6.2), sans-IO: when to
//! advertise, to whom, and the advertisement itself.
//!
//! A PPP session is a link of its own with exactly one host on it, so every
//! session gets its own schedule: a few advertisements right after IPv6CP
//! opens, then one every `interval`, and an answer to each Router
//! Solicitation, no closer than [`MIN_DELAY_BETWEEN_RAS`] to the previous
//! one. Each carries the session's /64 with the L and A flags, so the host
//! forms its address by SLAAC (RFC 4862 §5.5.3) from it and the interface
//! identifier IPv6CP agreed (RFC 5072 §5), an MTU option with the session's
//! MTU, and the DNS servers (RFC 8106) when configured.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use crate::wire::icmpv6::{self, PrefixInfo, Rdnss, RouterAdvert};

/// §10: MAX_INITIAL_RTR_ADVERTISEMENTS.
pub const MAX_INITIAL_RTR_ADVERTISEMENTS: u32 = 3;

/// §10: MAX_INITIAL_RTR_ADVERT_INTERVAL.
pub const MAX_INITIAL_RTR_ADVERT_INTERVAL: Duration = Duration::from_secs(16);

/// §10: MIN_DELAY_BETWEEN_RAS.
pub const MIN_DELAY_BETWEEN_RAS: Duration = Duration::from_secs(3);

/// What every advertisement says; one for the whole node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaConfig {
    /// MaxRtrAdvInterval (§6.2.1): the periodic interval. Each one is drawn
    /// between three quarters of it and all of it.
    pub interval: Duration,
    /// AdvDefaultLifetime in seconds: how long the host keeps us as its
    /// default router (§6.2.1: at least the interval, at most 9000 s).
    pub router_lifetime: u16,
    /// AdvValidLifetime of the prefix, seconds.
    pub valid_lifetime: u32,
    /// AdvPreferredLifetime of the prefix, seconds (at most the valid one).
    pub preferred_lifetime: u32,
    /// RDNSS servers (RFC 8106); none: no RDNSS option.
    pub dns: Vec<Ipv6Addr>,
}

impl Default for RaConfig {
    fn default() -> Self {
        RaConfig {
            interval: Duration::from_secs(300),
            router_lifetime: 1800,
            valid_lifetime: 86_400,
            preferred_lifetime: 14_400,
            dns: Vec::new(),
        }
    }
}

impl RaConfig {
    /// RFC 8106 §5.1: the RDNSS lifetime "SHOULD be bounded as follows:
    /// MaxRtrAdvInterval <= Lifetime <= 2*MaxRtrAdvInterval"; we take the
    /// upper bound, so one lost advertisement does not expire the servers.
    pub fn dns_lifetime(&self) -> u32 {
        u32::try_from(self.interval.as_secs().saturating_mul(2)).unwrap_or(u32::MAX)
    }
}

/// The advertising state of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaSession {
    /// Our IPv6CP interface identifier: the RA comes from fe80::`ours`.
    ours: [u8; 8],
    /// The /64 announced.
    prefix: [u8; 8],
    /// The MTU option's value.
    mtu: u16,
    /// Unsolicited advertisements sent so far.
    sent: u32,
    /// The next unsolicited one.
    next: Instant,
    /// When the last one (of any kind) left.
    last: Option<Instant>,
    /// A solicited answer held back by the rate limit, and its
    /// destination.
    pending: Option<Ipv6Addr>,
}

/// What [`RaSession::solicited`] did with a solicitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Solicited {
    /// Answer at once with this packet.
    Now(Vec<u8>),
    /// Within [`MIN_DELAY_BETWEEN_RAS`] of the last advertisement: the
    /// answer goes out when the delay is over (by `handle_timeout`).
    Deferred,
}

impl RaSession {
    /// A session whose IPv6CP just opened: the first advertisement is due
    /// at `now`.
    pub fn new(now: Instant, ours: [u8; 8], prefix: [u8; 8], mtu: u16) -> Self {
        RaSession {
            ours,
            prefix,
            mtu,
            sent: 0,
            next: now,
            last: None,
            pending: None,
        }
    }

    /// The /64 announced.
    pub fn prefix(&self) -> [u8; 8] {
        self.prefix
    }

    /// When [`RaSession::handle_timeout`] has something to send.
    pub fn poll_timeout(&self) -> Instant {
        match (self.pending, self.last) {
            (Some(_), Some(last)) => self.next.min(last + MIN_DELAY_BETWEEN_RAS),
            _ => self.next,
        }
    }

    /// The advertisement due at `now`, if any. `random` (any value from the
    /// caller's seeded generator) spreads the periodic interval.
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        config: &RaConfig,
        random: u32,
    ) -> Option<Vec<u8>> {
        if now >= self.next {
            // §6.2.4: unsolicited advertisements to all-nodes; the first
            // few no further apart than MAX_INITIAL_RTR_ADVERT_INTERVAL.
            // A held-back answer is covered by this one.
            self.pending = None;
            self.sent += 1;
            let interval = spread(config.interval, random);
            self.next = now
                + if self.sent < MAX_INITIAL_RTR_ADVERTISEMENTS {
                    interval.min(MAX_INITIAL_RTR_ADVERT_INTERVAL)
                } else {
                    interval
                };
            return Some(self.advertise(now, icmpv6::ALL_NODES, config));
        }
        match (self.pending, self.last) {
            (Some(to), Some(last)) if now >= last + MIN_DELAY_BETWEEN_RAS => {
                self.pending = None;
                Some(self.advertise(now, to, config))
            }
            _ => None,
        }
    }

    /// Answer a Router Solicitation from `src` (§6.2.6). The answer goes
    /// to the soliciting host itself ("A router MAY choose to unicast the
    /// response directly to the soliciting host's address (if the
    /// solicitation's source address is not the unspecified address)"),
    /// else to all-nodes; and never sooner than MIN_DELAY_BETWEEN_RAS
    /// after the previous advertisement, so a host soliciting in a loop
    /// costs one advertisement per three seconds.
    pub fn solicited(&mut self, now: Instant, src: Ipv6Addr, config: &RaConfig) -> Solicited {
        let to = if src.is_unspecified() {
            icmpv6::ALL_NODES
        } else {
            src
        };
        match self.last {
            Some(last) if now < last + MIN_DELAY_BETWEEN_RAS => {
                // Two different askers held back at once share a multicast.
                self.pending = match self.pending {
                    Some(held) if held != to => Some(icmpv6::ALL_NODES),
                    _ => Some(to),
                };
                Solicited::Deferred
            }
            _ => Solicited::Now(self.advertise(now, to, config)),
        }
    }

    fn advertise(&mut self, now: Instant, to: Ipv6Addr, config: &RaConfig) -> Vec<u8> {
        self.last = Some(now);
        let mut prefix = [0u8; 16];
        prefix[..8].copy_from_slice(&self.prefix);
        RouterAdvert {
            src: icmpv6::link_local(self.ours),
            dst: to,
            // Unspecified: the hosts keep their own defaults.
            cur_hop_limit: 0,
            // Addresses by SLAAC; nothing else from DHCPv6.
            managed: false,
            other: false,
            router_lifetime: config.router_lifetime,
            reachable_time: 0,
            retrans_timer: 0,
            prefixes: vec![PrefixInfo {
                prefix: Ipv6Addr::from(prefix),
                len: 64,
                on_link: true,
                autonomous: true,
                valid: config.valid_lifetime,
                preferred: config.preferred_lifetime.min(config.valid_lifetime),
            }],
            mtu: Some(u32::from(self.mtu)),
            rdnss: (!config.dns.is_empty()).then(|| Rdnss {
                lifetime: config.dns_lifetime(),
                servers: config.dns.clone(),
            }),
        }
        .emit()
    }
}

/// An interval between three quarters of `max` and `max` (§6.2.4: "a
/// uniformly distributed random value between the router's configured
/// MinRtrAdvInterval and MaxRtrAdvInterval"; we take MinRtrAdvInterval as
/// 0.75 × MaxRtrAdvInterval, the RFC's default for a large maximum).
fn spread(max: Duration, random: u32) -> Duration {
    let quarter = max / 4;
    let extra = quarter.mul_f64(f64::from(random) / f64::from(u32::MAX));
    max - quarter + extra
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: [u8; 8] = [0, 0, 0, 0, 0, 0, 0, 1];
    const PREFIX: [u8; 8] = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2];

    fn session(now: Instant) -> RaSession {
        RaSession::new(now, OURS, PREFIX, 1456)
    }

    #[test]
    fn initial_advertisements_then_periodic_ones() {
        let config = RaConfig::default();
        let t0 = Instant::now();
        let mut ra = session(t0);
        assert_eq!(ra.poll_timeout(), t0);
        let first = ra.handle_timeout(t0, &config, 0).unwrap();
        let parsed = RouterAdvert::parse(&first).unwrap();
        assert_eq!(parsed.dst, icmpv6::ALL_NODES);
        assert_eq!(parsed.src, icmpv6::link_local(OURS));
        assert_eq!(
            parsed.prefixes[0].prefix,
            "2001:db8:1:2::".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(parsed.mtu, Some(1456));
        assert_eq!(parsed.router_lifetime, 1800);
        assert_eq!(parsed.rdnss, None);
        // Nothing before the next deadline.
        assert_eq!(
            ra.handle_timeout(t0 + Duration::from_secs(1), &config, 0),
            None
        );
        // The second and third within 16 s of the one before.
        let mut at = t0;
        for _ in 0..2 {
            let next = ra.poll_timeout();
            assert!(next > at && next <= at + MAX_INITIAL_RTR_ADVERT_INTERVAL);
            assert!(ra.handle_timeout(next, &config, u32::MAX).is_some());
            at = next;
        }
        // Then the periodic interval: between 225 and 300 s.
        let next = ra.poll_timeout();
        assert!(next >= at + Duration::from_secs(225) && next <= at + Duration::from_secs(300));
    }

    #[test]
    fn solicitations_are_answered_at_most_every_three_seconds() {
        let config = RaConfig {
            dns: vec!["2001:db8::53".parse().unwrap()],
            ..RaConfig::default()
        };
        let t0 = Instant::now();
        let mut ra = session(t0);
        ra.handle_timeout(t0, &config, 0).unwrap();
        let host: Ipv6Addr = "fe80::a".parse().unwrap();
        // Right after the unsolicited one: held back.
        assert_eq!(
            ra.solicited(t0 + Duration::from_secs(1), host, &config),
            Solicited::Deferred
        );
        assert_eq!(ra.poll_timeout(), t0 + MIN_DELAY_BETWEEN_RAS);
        let answer = ra
            .handle_timeout(t0 + MIN_DELAY_BETWEEN_RAS, &config, 0)
            .unwrap();
        let parsed = RouterAdvert::parse(&answer).unwrap();
        assert_eq!(parsed.dst, host, "unicast to the soliciting host");
        assert_eq!(parsed.rdnss.unwrap().lifetime, 600);
        // Later, an answer at once; from the unspecified address, to
        // all-nodes.
        let t1 = t0 + Duration::from_secs(10);
        match ra.solicited(t1, Ipv6Addr::UNSPECIFIED, &config) {
            Solicited::Now(p) => {
                assert_eq!(RouterAdvert::parse(&p).unwrap().dst, icmpv6::ALL_NODES)
            }
            other => panic!("{other:?}"),
        }
        // A burst right after: one deferred answer for all of it.
        for n in 1..=5 {
            assert_eq!(
                ra.solicited(t1 + Duration::from_millis(100 * n), host, &config),
                Solicited::Deferred
            );
        }
        assert!(ra
            .handle_timeout(t1 + Duration::from_secs(3), &config, 0)
            .is_some());
        assert_eq!(
            ra.handle_timeout(t1 + Duration::from_secs(4), &config, 0),
            None
        );
    }
}
