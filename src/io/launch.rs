//! From a validated [`Config`] to a running daemon: the runtime layout, the
//! control plane's `Node`, and how SIGHUP reloads the users file.

use std::net::Ipv4Addr;

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use super::control::Reloader;
use super::daemon::RuntimeSettings;
use super::shard::Batching;
use crate::config::{Config, ConfigError};
use crate::proto::aaa::LocalAaa;
use crate::proto::l2tp::ShardSpec;
use crate::proto::node::Node;

/// Everything `daemon::start` needs, built from `config`.
pub fn prepare(
    config: &Config,
    cores: usize,
) -> Result<(RuntimeSettings, Node<LocalAaa>, Reloader<LocalAaa>), ConfigError> {
    let shards = config.shard_count(cores);
    let mut l2tp = config.l2tp_config(ShardSpec::SINGLE);
    l2tp.spread = shards;
    // Links of IPv4 LACs ask for the IPv4-transport MRU, those of IPv6
    // LACs for 20 bytes less (`ppp.mru = "auto"`); the MSS clamps follow.
    let link = config.link_config(false);
    let pools = config.pools()?;
    let mut routes = Vec::new();
    for pool in &config.pool {
        for range in &pool.ranges {
            routes.extend(covering_prefixes(range.first(), range.last()));
        }
    }
    let mut node = Node::new(
        l2tp,
        link,
        config.local_aaa()?,
        pools,
        StdRng::from_os_rng().next_u64(),
    );
    node.set_ipv6_transport_link_config(config.link_config(true));
    let prefix_pools = config.prefix_pools()?;
    let ipv6_routes: Vec<_> = prefix_pools
        .iter()
        .map(|p| (p.network(), p.prefix_len()))
        .collect();
    let ipv6_gateway = (!prefix_pools.is_empty()).then_some(config.ipv6.gateway);
    node.set_ipv6(prefix_pools, config.ra_config());
    let settings = RuntimeSettings {
        listen: ordered_listen(config),
        shards,
        pin: true,
        tun_name: config.runtime.tun_name.clone(),
        tun_queue_len: config.runtime.tun_queue_len,
        tun_mtu: u32::from(config.mru(false)),
        gateway: config.ppp.gateway,
        routes,
        ipv6_gateway,
        ipv6_routes,
        mss_clamp: config.mss_clamp(false).map(Into::into),
        mss_clamp_v6: config.mss_clamp(true).map(Into::into),
        socket_buffer: 8 << 20,
        management: Some(config.management.socket.clone()),
        io: config.runtime.io,
        batching: Batching::new(config.runtime.batch_size as usize),
        metrics: config.metrics.listen,
    };
    let users_config = config.clone();
    let reloader: Reloader<LocalAaa> = Box::new(move |aaa: &mut LocalAaa| {
        let users = users_config.load_users().map_err(|e| e.to_string())?;
        let count = users.entries().count();
        aaa.set_users(users);
        Ok(format!("{count} users"))
    });
    Ok((settings, node, reloader))
}

/// IPv4 listen addresses first: the shards send IPv4 from their first
/// socket and IPv6 from their last.
fn ordered_listen(config: &Config) -> Vec<std::net::SocketAddr> {
    let mut listen = config.l2tp.listen.clone();
    listen.sort_by_key(|a| a.is_ipv6());
    listen
}

/// The fewest CIDR prefixes that cover `first..=last` exactly.
pub fn covering_prefixes(first: Ipv4Addr, last: Ipv4Addr) -> Vec<(Ipv4Addr, u8)> {
    let (mut start, end) = (u64::from(u32::from(first)), u64::from(u32::from(last)));
    let mut out = Vec::new();
    while start <= end {
        // The largest aligned block at `start` that does not pass `end`.
        let mut size = if start == 0 {
            1u64 << 32
        } else {
            start & start.wrapping_neg()
        };
        while start + size - 1 > end {
            size >>= 1;
        }
        let prefix = 32 - size.trailing_zeros();
        out.push((Ipv4Addr::from(start as u32), prefix as u8));
        start += size;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_settings_follow_the_config() {
        let config = Config::from_toml_str(
            "[runtime]\nbatch_size = 16\nshards = 3\ntun_queue_len = 1000\n\
             [l2tp]\nlisten = [\"192.0.2.1:1701\"]\n",
        )
        .unwrap();
        let (settings, _, _) = prepare(&config, 2).unwrap();
        assert_eq!(settings.batching.size, 16);
        assert_eq!(settings.shards, 3);
        assert_eq!(settings.tun_queue_len, 1000);
        assert_eq!(settings.listen, ["192.0.2.1:1701".parse().unwrap()]);
        let (defaults, _, _) = prepare(&Config::default(), 2).unwrap();
        assert_eq!(defaults.batching.size, 64);
        assert_eq!(defaults.shards, 2, "one shard per core");
    }

    #[test]
    fn prefixes_cover_a_range_exactly() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            covering_prefixes(ip("100.64.0.0"), ip("100.64.255.255")),
            [(ip("100.64.0.0"), 16)]
        );
        assert_eq!(
            covering_prefixes(ip("100.64.0.2"), ip("100.64.0.9")),
            [
                (ip("100.64.0.2"), 31),
                (ip("100.64.0.4"), 30),
                (ip("100.64.0.8"), 31)
            ]
        );
        assert_eq!(
            covering_prefixes(ip("10.0.0.5"), ip("10.0.0.5")),
            [(ip("10.0.0.5"), 32)]
        );
        assert_eq!(
            covering_prefixes(ip("0.0.0.0"), ip("255.255.255.255")),
            [(ip("0.0.0.0"), 0)]
        );
        // The demo pool: 100.64.0.2 - 100.64.255.254.
        let demo = covering_prefixes(ip("100.64.0.2"), ip("100.64.255.254"));
        let covered: u64 = demo.iter().map(|(_, p)| 1u64 << (32 - u32::from(*p))).sum();
        assert_eq!(covered, 65533);
    }
}
