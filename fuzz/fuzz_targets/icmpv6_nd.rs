//! Router Solicitation and Router Advertisement parsing (RFC 4861 §6.1).
//!
//! Both parsers are total: any bytes give a value or an error, never a
//! panic. An RA that parses re-emits to bytes that parse back to the same
//! value; an RS that parses came from a packet whose fixed header says
//! ICMPv6 type 133 with hop limit 255. The input also drives the RA
//! builder (prefix, lengths, lifetimes, servers from the bytes), whose
//! output must always parse back to what was built.
#![no_main]

use std::net::Ipv6Addr;

use libfuzzer_sys::fuzz_target;
use lns::wire::icmpv6::{
    is_icmpv6_type, link_local, msg_type, PrefixInfo, Rdnss, RouterAdvert, RouterSolicitation,
    ALL_NODES,
};

fn word(data: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    for (i, slot) in b.iter_mut().enumerate() {
        *slot = data.get(at + i).copied().unwrap_or(0);
    }
    u32::from_be_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(rs) = RouterSolicitation::parse(data) {
        assert!(is_icmpv6_type(data, msg_type::ROUTER_SOLICITATION));
        assert_eq!(data[7], 255);
        assert!(!(rs.source_link_layer && rs.src.is_unspecified()));
    }
    if let Ok(ra) = RouterAdvert::parse(data) {
        assert!(is_icmpv6_type(data, msg_type::ROUTER_ADVERTISEMENT));
        // Reserved prefix bits are zeroed on emit, so compare after one
        // round: emit(parse(x)) is a fixed point.
        let once = RouterAdvert::parse(&ra.emit()).expect("re-emitted RA parses");
        let twice = RouterAdvert::parse(&once.emit()).expect("re-emitted RA parses");
        assert_eq!(once, twice);
        assert_eq!(once.prefixes.len(), ra.prefixes.len());
        assert_eq!(once.mtu, ra.mtu);
        assert_eq!(once.rdnss, ra.rdnss);
    }
    // Build an RA from the bytes and read it back.
    if data.len() >= 12 {
        let mut ifid = [0u8; 8];
        ifid.copy_from_slice(&data[..8]);
        let mut prefix = [0u8; 16];
        for (slot, b) in prefix.iter_mut().zip(data.iter().skip(8)) {
            *slot = *b;
        }
        let servers: Vec<Ipv6Addr> = data
            .chunks(16)
            .skip(1)
            .take(usize::from(data[9] % 4))
            .map(|c| {
                let mut a = [0u8; 16];
                for (slot, b) in a.iter_mut().zip(c) {
                    *slot = *b;
                }
                Ipv6Addr::from(a)
            })
            .collect();
        let len = data[10] % 129;
        let ra = RouterAdvert {
            src: link_local(ifid),
            dst: ALL_NODES,
            cur_hop_limit: data[11],
            managed: data[8] & 1 != 0,
            other: data[8] & 2 != 0,
            router_lifetime: word(data, 2) as u16,
            reachable_time: word(data, 4),
            retrans_timer: word(data, 6),
            prefixes: vec![PrefixInfo {
                prefix: Ipv6Addr::from(prefix),
                len,
                on_link: data[9] & 0x10 != 0,
                autonomous: data[9] & 0x20 != 0,
                valid: word(data, 1),
                preferred: word(data, 5),
            }],
            mtu: (data[9] & 0x40 != 0).then(|| word(data, 3)),
            rdnss: (!servers.is_empty()).then(|| Rdnss {
                lifetime: word(data, 7),
                servers,
            }),
        };
        let back = RouterAdvert::parse(&ra.emit()).expect("built RA parses");
        let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
        assert_eq!(
            u128::from(back.prefixes[0].prefix),
            u128::from(ra.prefixes[0].prefix) & mask
        );
        assert_eq!(back.mtu, ra.mtu);
        assert_eq!(back.rdnss, ra.rdnss);
        assert_eq!(back.router_lifetime, ra.router_lifetime);
    }
});
