//! The configuration reader.
//!
//! Any UTF-8 text: `Config::from_toml_str` never panics. An error that has
//! a line has a column too, and both lie within the text (at most one past
//! the last character of the line, where an unterminated value ends); a
//! semantic error always names a key. An accepted configuration passes
//! `validate` again and converts into every core setting without a panic
//! (IPv6 prefix pools and Router Advertisement settings included), and the
//! L2TP settings build an endpoint.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use lns::config::{Config, ErrorKind, DEMO_USERS};
use lns::proto::aaa::users;
use lns::proto::l2tp::{Endpoint, ShardSpec};

/// Pools are only built when small: a /1 would allocate half a gigabyte of
/// bitmaps, which says nothing about the reader.
const MAX_POOL_ADDRESSES: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml_str(text) {
        Err(e) => {
            assert!(!e.message.is_empty());
            assert!(e.file.is_none());
            assert_eq!(e.line.is_some(), e.column.is_some(), "{e}");
            if let (Some(line), Some(column)) = (e.line, e.column) {
                assert!(line >= 1 && column >= 1, "{e}");
                let Some(content) = text.split('\n').nth(line - 1) else {
                    panic!("line {line} past the end of the text: {e}");
                };
                assert!(column <= content.chars().count() + 1, "{e}");
            }
            if e.kind == ErrorKind::Invalid {
                assert!(!e.key.is_empty(), "{e}");
            }
        }
        Ok(config) => {
            config.validate().unwrap();
            let shards = config.shard_count(4);
            assert!(shards >= 1);
            let l2tp = config.l2tp_config(ShardSpec {
                index: shards - 1,
                count: shards,
            });
            let _ = Endpoint::new(l2tp, 1);
            for ipv6 in [false, true] {
                let link = config.link_config(ipv6);
                assert!(link.lcp.mru.is_some_and(|m| m >= 128));
                let _ = config.mss_clamp(ipv6);
            }
            for peer in ["192.0.2.7", "::ffff:192.0.2.7", "2001:db8::1"] {
                let _ = config.secret_for(peer.parse::<IpAddr>().unwrap());
            }
            let addresses: u64 = config.pool.iter().map(|p| p.size()).sum();
            if addresses <= MAX_POOL_ADDRESSES {
                let pools = config.pools().unwrap();
                assert_eq!(pools.len(), config.pool.len());
            }
            // Prefix pools likewise (a /44 holds 2^20 /64s); a validated
            // configuration builds them all, and its RA settings convert.
            let v6: u64 = config
                .pool
                .iter()
                .filter_map(|p| p.ipv6_prefix)
                .map(|p| 1u64 << (64 - u32::from(p.prefix_len().clamp(40, 64))))
                .sum();
            if v6 <= MAX_POOL_ADDRESSES {
                let pools = config.prefix_pools().unwrap();
                let declared = config.pool.iter().filter(|p| p.ipv6_prefix.is_some());
                if config.ppp.ipv6cp {
                    assert_eq!(pools.len(), declared.count());
                } else {
                    assert!(pools.is_empty());
                }
            }
            let ra = config.ra_config();
            assert!(ra.preferred_lifetime <= ra.valid_lifetime);
            assert!(u64::from(ra.router_lifetime) >= ra.interval.as_secs());
            // Never read files the text names: the demo users stand in.
            let users = users::parse(DEMO_USERS).unwrap();
            assert!(!config.summary(&users, 4).is_empty());
        }
    }
});
