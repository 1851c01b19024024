//! Semantic checks: values that read fine but make no sense, alone or
//! together. Each names the key to blame; where two keys conflict (the
//! gateway inside a pool) it names both, and the error lands on whichever
//! one the file actually sets.

use std::collections::HashSet;
use std::time::Duration;

use super::sections::{Config, Ipv6Section, L2tpSection, PoolSection, PppSection, RuntimeSection};
use super::value::{
    format_duration, format_range, range_contains, ranges_overlap, Mru, MssClamp, Shards,
};
use crate::proto::aaa::pool::MAX_QUARANTINE;
use crate::proto::aaa::prefix::{MIN_POOL_PREFIX, SESSION_PREFIX};
use crate::wire::l2tp::avps::{cdn_result, stopccn_result};

/// One semantic mistake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Keys to blame, most specific first; the first one the file sets is
    /// reported.
    pub keys: Vec<String>,
    /// What is wrong.
    pub message: String,
}

fn problem(key: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        keys: vec![key.into()],
        message: message.into(),
    }
}

/// Longest protocol timer we accept: a day. Longer is certainly a typo
/// (`hello_interval = 60000` meant as milliseconds) and would keep dead
/// peers around for as long.
const MAX_TIMER: Duration = Duration::from_secs(86_400);

/// Smallest and largest MRU we ask for: 128 is the floor `mru_for_path`
/// keeps; 9000 covers jumbo-frame paths to the LACs.
const MRU_RANGE: std::ops::RangeInclusive<u16> = 128..=9000;

/// Path MTUs `mru = "auto"` may start from: the IPv4 minimum reassembly
/// size (RFC 791) to jumbo frames.
const PATH_MTU_RANGE: std::ops::RangeInclusive<u16> = 576..=9216;

/// MSS values `mss_clamp` may name: the RFC 879 default MSS up to what a
/// 9000-byte MRU carries.
const MSS_RANGE: std::ops::RangeInclusive<u16> = 536..=8960;

fn timer(key: &str, value: Duration) -> Result<(), Problem> {
    if value.is_zero() {
        return Err(problem(key, "must be longer than zero"));
    }
    if value > MAX_TIMER {
        return Err(problem(
            key,
            format!("{} is longer than a day", format_duration(value)),
        ));
    }
    Ok(())
}

fn at_least_one(key: &str, value: u64) -> Result<(), Problem> {
    if value == 0 {
        return Err(problem(key, "must be at least 1"));
    }
    Ok(())
}

fn in_range<T: PartialOrd + std::fmt::Display>(
    key: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<(), Problem> {
    if !range.contains(&value) {
        return Err(problem(
            key,
            format!("{value} is outside {}..={}", range.start(), range.end()),
        ));
    }
    Ok(())
}

/// Every check, in file order, stopping at the first mistake.
pub fn validate(config: &Config) -> Result<(), Problem> {
    l2tp(&config.l2tp)?;
    ppp(&config.ppp)?;
    pools(&config.pool, &config.ppp)?;
    ipv6(&config.ipv6, &config.pool)?;
    // RFC 8200 §5: "IPv6 requires that every link in the Internet have an
    // MTU of 1280 octets or greater"; below it the kernel also turns IPv6
    // off on the TUN device.
    let ipv6_pools = config.ppp.ipv6cp && config.pool.iter().any(|p| p.ipv6_prefix.is_some());
    let mru = config.mru(false).min(config.mru(true));
    if ipv6_pools && mru < 1280 {
        return Err(Problem {
            keys: vec!["ppp.mru".into(), "ppp.path_mtu".into()],
            message: format!(
                "IPv6 needs an MTU of at least 1280 (RFC 8200 §5), but the MRU is {mru}; \
                 raise it, or leave ipv6_prefix out of the pools"
            ),
        });
    }
    runtime(&config.runtime)?;
    let socket = config.management.socket.as_os_str();
    if socket.is_empty() {
        return Err(problem("management.socket", "must not be empty"));
    }
    // sun_path holds 108 bytes including the terminating NUL (unix(7)).
    if socket.len() > 107 {
        return Err(problem(
            "management.socket",
            format!(
                "{} bytes is longer than a Unix socket path may be (107)",
                socket.len()
            ),
        ));
    }
    if let Some(addr) = config.metrics.listen {
        if addr.port() == 0 {
            return Err(problem("metrics.listen", "needs a port other than 0"));
        }
    }
    Ok(())
}

fn l2tp(s: &L2tpSection) -> Result<(), Problem> {
    if s.listen.is_empty() {
        return Err(problem("l2tp.listen", "needs at least one address"));
    }
    let mut seen = HashSet::new();
    for (i, addr) in s.listen.iter().enumerate() {
        if addr.port() == 0 {
            return Err(problem(
                format!("l2tp.listen[{i}]"),
                "needs a port other than 0",
            ));
        }
        if !seen.insert(addr) {
            return Err(problem(
                format!("l2tp.listen[{i}]"),
                format!("{addr} is listed twice"),
            ));
        }
    }
    if s.host_name.is_empty() || s.host_name.len() > 255 {
        return Err(problem("l2tp.host_name", "must be 1 to 255 bytes long"));
    }
    if s.secret.as_ref().is_some_and(|x| x.is_empty()) {
        return Err(problem(
            "l2tp.secret",
            "an empty secret authenticates nobody; leave the key out to turn authentication off",
        ));
    }
    let mut prefixes = HashSet::new();
    for (i, peer) in s.peer.iter().enumerate() {
        if peer.secret.is_empty() {
            return Err(problem(
                format!("l2tp.peer[{i}].secret"),
                "must not be empty",
            ));
        }
        // `::ffff:192.0.2.0/120` is the same peers as `192.0.2.0/24`.
        if !prefixes.insert(peer.address.canonical()) {
            return Err(problem(
                format!("l2tp.peer[{i}].address"),
                format!("{} has a secret already", peer.address),
            ));
        }
    }
    timer("l2tp.hello_interval", s.hello_interval)?;
    timer("l2tp.retransmit_initial", s.retransmit_initial)?;
    timer("l2tp.retransmit_cap", s.retransmit_cap)?;
    // §5.8: "This cap MUST be no less than 8 seconds per retransmission."
    if s.retransmit_cap < Duration::from_secs(8) {
        return Err(problem(
            "l2tp.retransmit_cap",
            "RFC 2661 §5.8 requires at least 8s",
        ));
    }
    if s.retransmit_cap < s.retransmit_initial {
        return Err(Problem {
            keys: vec![
                "l2tp.retransmit_cap".into(),
                "l2tp.retransmit_initial".into(),
            ],
            message: format!(
                "retransmit_cap ({}) is below retransmit_initial ({})",
                format_duration(s.retransmit_cap),
                format_duration(s.retransmit_initial)
            ),
        });
    }
    // The retransmission cycle is walked step by step when the endpoint is
    // built; the RFC recommends 5 and more than 20 only delays the verdict.
    in_range("l2tp.max_retries", s.max_retries, 1..=20)?;
    timer("l2tp.ack_delay", s.ack_delay)?;
    if s.ack_delay >= s.retransmit_initial {
        return Err(Problem {
            keys: vec!["l2tp.ack_delay".into(), "l2tp.retransmit_initial".into()],
            message: format!(
                "ack_delay ({}) must be shorter than retransmit_initial ({}), or the peer \
                 retransmits before we ack",
                format_duration(s.ack_delay),
                format_duration(s.retransmit_initial)
            ),
        });
    }
    at_least_one("l2tp.receive_window", u64::from(s.receive_window))?;
    timer("l2tp.setup_timeout", s.setup_timeout)?;
    // IDs are 16 bits and 0 is reserved (§3.1).
    in_range("l2tp.max_tunnels", s.max_tunnels, 1..=65_535)?;
    in_range(
        "l2tp.max_sessions_per_tunnel",
        s.max_sessions_per_tunnel,
        1..=65_535,
    )?;
    at_least_one("l2tp.max_half_open_tunnels", s.max_half_open_tunnels as u64)?;
    at_least_one(
        "l2tp.max_half_open_sessions",
        s.max_half_open_sessions as u64,
    )?;
    Ok(())
}

fn ppp(s: &PppSection) -> Result<(), Problem> {
    for (i, method) in s.auth.iter().enumerate() {
        if s.auth[..i].contains(method) {
            return Err(problem(format!("ppp.auth[{i}]"), "method listed twice"));
        }
    }
    if let Mru::Fixed(mru) = s.mru {
        in_range("ppp.mru", mru, MRU_RANGE)?;
    }
    in_range("ppp.path_mtu", s.path_mtu, PATH_MTU_RANGE)?;
    in_range("ppp.min_peer_mru", s.min_peer_mru, 128..=1500)?;
    if let Some(interval) = s.echo_interval {
        if interval.is_zero() {
            return Err(problem(
                "ppp.echo_interval",
                "must be longer than zero; write \"off\" to turn LCP echo off",
            ));
        }
        timer("ppp.echo_interval", interval)?;
    }
    at_least_one("ppp.echo_failures", u64::from(s.echo_failures))?;
    timer("ppp.restart_timer", s.restart_timer)?;
    at_least_one("ppp.max_configure", u64::from(s.max_configure))?;
    at_least_one("ppp.max_terminate", u64::from(s.max_terminate))?;
    at_least_one("ppp.max_failure", u64::from(s.max_failure))?;
    timer("ppp.auth_restart", s.auth_restart)?;
    at_least_one(
        "ppp.auth_max_transmissions",
        u64::from(s.auth_max_transmissions),
    )?;
    let g = s.gateway;
    if g.is_unspecified() || g.is_broadcast() || g.is_multicast() || g.is_loopback() {
        return Err(problem(
            "ppp.gateway",
            format!("{g} cannot be a gateway address"),
        ));
    }
    if s.dns.len() > 2 {
        return Err(problem(
            "ppp.dns",
            "IPCP carries two DNS servers at most (primary, secondary)",
        ));
    }
    for (i, dns) in s.dns.iter().enumerate() {
        if dns.is_unspecified() || dns.is_broadcast() || dns.is_multicast() {
            return Err(problem(
                format!("ppp.dns[{i}]"),
                format!("{dns} is not a server address"),
            ));
        }
    }
    if !s.ipcp && !s.ipv6cp {
        return Err(Problem {
            keys: vec!["ppp.ipcp".into(), "ppp.ipv6cp".into()],
            message: "with both ipcp and ipv6cp off no session could carry traffic".into(),
        });
    }
    if let MssClamp::Fixed(mss) = s.mss_clamp {
        in_range("ppp.mss_clamp", mss, MSS_RANGE)?;
    }
    Ok(())
}

fn pools(pools: &[PoolSection], ppp: &PppSection) -> Result<(), Problem> {
    for (i, pool) in pools.iter().enumerate() {
        if pool.name.trim().is_empty() {
            return Err(problem(format!("pool[{i}].name"), "must not be empty"));
        }
        if let Some(first) = pools[..i].iter().position(|p| p.name == pool.name) {
            return Err(problem(
                format!("pool[{i}].name"),
                format!(
                    "pool {:?} is defined twice (first as pool[{first}])",
                    pool.name
                ),
            ));
        }
        if pool.ranges.is_empty() {
            return Err(problem(
                format!("pool[{i}].ranges"),
                "needs at least one range",
            ));
        }
        if pool.quarantine > MAX_QUARANTINE {
            return Err(problem(
                format!("pool[{i}].quarantine"),
                "is longer than a year",
            ));
        }
        for (j, range) in pool.ranges.iter().enumerate() {
            let here = format!("pool[{i}].ranges[{j}]");
            if range_contains(range, ppp.gateway) {
                return Err(Problem {
                    keys: vec!["ppp.gateway".into(), here],
                    message: format!(
                        "gateway {} lies inside pool {:?} ({}); a subscriber could be given it",
                        ppp.gateway,
                        pool.name,
                        format_range(range)
                    ),
                });
            }
            // Every earlier range, this pool's and the pools' before it.
            let earlier = pools[..=i].iter().enumerate().flat_map(|(k, p)| {
                let upto = if k == i { j } else { p.ranges.len() };
                p.ranges[..upto]
                    .iter()
                    .enumerate()
                    .map(move |(l, r)| (k, p, l, r))
            });
            for (k, other, l, r) in earlier {
                if ranges_overlap(range, r) {
                    return Err(problem(
                        here,
                        format!(
                            "{} overlaps {} of pool {:?} (pool[{k}].ranges[{l}]); an address \
                             must belong to one pool",
                            format_range(range),
                            format_range(r),
                            other.name
                        ),
                    ));
                }
            }
        }
        if pool.size() > u64::from(u32::MAX) {
            return Err(problem(
                format!("pool[{i}].ranges"),
                "holds more than 2^32 - 1 addresses",
            ));
        }
    }
    Ok(())
}

fn ipv6(s: &Ipv6Section, pools: &[PoolSection]) -> Result<(), Problem> {
    for (i, pool) in pools.iter().enumerate() {
        let Some(prefix) = pool.ipv6_prefix else {
            continue;
        };
        let here = format!("pool[{i}].ipv6_prefix");
        if !prefix.addr().is_ipv6() {
            return Err(problem(here, format!("{prefix} is not an IPv6 prefix")));
        }
        if !(MIN_POOL_PREFIX..=SESSION_PREFIX).contains(&prefix.prefix_len()) {
            return Err(problem(
                here,
                format!(
                    "{prefix}: the length must be /{MIN_POOL_PREFIX} to /{SESSION_PREFIX} \
                     (each session gets a /64)"
                ),
            ));
        }
        if prefix.contains(std::net::IpAddr::V6(s.gateway)) {
            return Err(Problem {
                keys: vec!["ipv6.gateway".into(), here],
                message: format!(
                    "IPv6 gateway {} lies inside pool {:?}'s prefix {prefix}",
                    s.gateway, pool.name
                ),
            });
        }
        for (k, other) in pools[..i].iter().enumerate() {
            let Some(earlier) = other.ipv6_prefix else {
                continue;
            };
            if earlier.contains(prefix.addr()) || prefix.contains(earlier.addr()) {
                return Err(problem(
                    here,
                    format!(
                        "{prefix} overlaps {earlier} of pool {:?} (pool[{k}].ipv6_prefix)",
                        other.name
                    ),
                ));
            }
        }
    }
    let secs = |d: Duration| d.as_secs();
    in_range("ipv6.ra_interval", secs(s.ra_interval), 4..=1800)?;
    // RFC 4861 §6.2.1: AdvDefaultLifetime is 0 or between
    // MaxRtrAdvInterval and 9000 seconds.
    if s.router_lifetime < s.ra_interval || secs(s.router_lifetime) > 9000 {
        return Err(problem(
            "ipv6.router_lifetime",
            format!(
                "{} is outside ra_interval ({}) to 9000s",
                format_duration(s.router_lifetime),
                format_duration(s.ra_interval)
            ),
        ));
    }
    // Lifetimes travel as 32-bit seconds; all ones means infinity.
    if secs(s.valid_lifetime) >= u64::from(u32::MAX) {
        return Err(problem("ipv6.valid_lifetime", "is too long for the option"));
    }
    if s.valid_lifetime.is_zero() {
        return Err(problem("ipv6.valid_lifetime", "must be longer than zero"));
    }
    if s.preferred_lifetime > s.valid_lifetime {
        return Err(Problem {
            keys: vec![
                "ipv6.preferred_lifetime".into(),
                "ipv6.valid_lifetime".into(),
            ],
            message: "the preferred lifetime must not exceed the valid lifetime".into(),
        });
    }
    if s.dns.len() > 3 {
        return Err(problem("ipv6.dns", "at most three servers"));
    }
    Ok(())
}

fn runtime(s: &RuntimeSection) -> Result<(), Problem> {
    if let Shards::Count(n) = s.shards {
        // Tunnel IDs are spread over the shards (`id % shards`); beyond 1024
        // each shard would own too few IDs to matter.
        in_range("runtime.shards", n, 1..=1024)?;
    }
    let name = &s.tun_name;
    // IFNAMSIZ is 16 including the NUL; '/' and blanks are refused by the
    // kernel or by tools.
    if name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err(problem(
            "runtime.tun_name",
            format!("{name:?} is not a valid interface name (1-15 bytes, no '/', ':' or blanks)"),
        ));
    }
    at_least_one("runtime.tun_queue_len", u64::from(s.tun_queue_len))?;
    in_range("runtime.batch_size", s.batch_size, 1..=4096)?;
    if s.new_tunnels_per_second == Some(0) {
        return Err(problem(
            "runtime.new_tunnels_per_second",
            "must be at least 1; write \"off\" for no limit",
        ));
    }
    if s.new_sessions_per_second == Some(0) {
        return Err(problem(
            "runtime.new_sessions_per_second",
            "must be at least 1; write \"off\" for no limit",
        ));
    }
    // §4.4.2 defines StopCCN results 1-7 and CDN results 1-11.
    in_range(
        "runtime.tunnel_refusal_result",
        s.tunnel_refusal_result,
        stopccn_result::CLEAR..=stopccn_result::FSM_ERROR,
    )?;
    in_range(
        "runtime.session_refusal_result",
        s.session_refusal_result,
        cdn_result::LOST_CARRIER..=11,
    )?;
    Ok(())
}
