use super::*;

const OURS: [u8; 8] = [0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55];
const PEER: [u8; 8] = [0x0a, 0xbb, 0xcc, 0xff, 0xfe, 0xdd, 0xee, 0x01];

/// The Internet checksum written out the long way: the pseudo-header laid
/// out as bytes (RFC 8200 §8.1), the message appended, 16-bit words summed
/// in a u32 with the carries folded at the end, then complemented. Shares
/// no code with the module's own arithmetic.
fn reference_checksum(src: Ipv6Addr, dst: Ipv6Addr, message: &[u8]) -> u16 {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&src.octets());
    bytes.extend_from_slice(&dst.octets());
    bytes.extend_from_slice(&(message.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 0, 58]);
    bytes.extend_from_slice(message);
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    let mut sum: u32 = 0;
    for pair in bytes.chunks(2) {
        sum += (u32::from(pair[0]) << 8) | u32::from(pair[1]);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn sample_ra() -> RouterAdvert {
    RouterAdvert {
        src: link_local(OURS),
        dst: ALL_NODES,
        cur_hop_limit: 64,
        managed: false,
        other: true,
        router_lifetime: 1800,
        reachable_time: 0,
        retrans_timer: 0,
        prefixes: vec![PrefixInfo {
            prefix: "2001:db8:100:7::".parse().unwrap(),
            len: 64,
            on_link: true,
            autonomous: true,
            valid: 86_400,
            preferred: 14_400,
        }],
        mtu: Some(1456),
        rdnss: Some(Rdnss {
            lifetime: 600,
            servers: vec![
                "2001:db8::53".parse().unwrap(),
                "2001:db8::5353".parse().unwrap(),
            ],
        }),
    }
}

#[test]
fn router_advertisement_bytes_field_by_field() {
    let ra = sample_ra();
    let p = ra.emit();
    let message_len = 16 + 32 + 8 + 8 + 32;
    assert_eq!(p.len(), 40 + message_len);
    // IPv6 header: version 6, class and flow 0, payload length, ICMPv6,
    // hop limit 255, fe80::<our ifid> to ff02::1.
    assert_eq!(&p[0..4], &[0x60, 0, 0, 0]);
    assert_eq!(u16::from_be_bytes([p[4], p[5]]) as usize, message_len);
    assert_eq!(p[6], 58);
    assert_eq!(p[7], 255);
    assert_eq!(&p[8..10], &[0xfe, 0x80]);
    assert_eq!(&p[10..16], &[0; 6]);
    assert_eq!(&p[16..24], &OURS);
    assert_eq!(
        &p[24..40],
        &[0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    );
    let m = &p[40..];
    // Type 134, Code 0, Cur Hop Limit 64, M clear / O set, lifetime 1800,
    // Reachable Time and Retrans Timer unspecified.
    assert_eq!(m[0], 134);
    assert_eq!(m[1], 0);
    assert_eq!(m[4], 64);
    assert_eq!(m[5], 0x40);
    assert_eq!(u16::from_be_bytes([m[6], m[7]]), 1800);
    assert_eq!(&m[8..16], &[0; 8]);
    // Prefix Information: type 3, length 4, /64, L and A, lifetimes,
    // reserved, prefix.
    let o = &m[16..48];
    assert_eq!(&o[..4], &[3, 4, 64, 0xc0]);
    assert_eq!(u32::from_be_bytes([o[4], o[5], o[6], o[7]]), 86_400);
    assert_eq!(u32::from_be_bytes([o[8], o[9], o[10], o[11]]), 14_400);
    assert_eq!(&o[12..16], &[0; 4]);
    assert_eq!(
        &o[16..32],
        &[0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    // MTU: type 5, length 1, reserved, 1456.
    assert_eq!(&m[48..56], &[5, 1, 0, 0, 0, 0, 0x05, 0xb0]);
    // RDNSS: type 25, length 5, reserved, lifetime 600, two servers.
    let r = &m[56..];
    assert_eq!(&r[..4], &[25, 5, 0, 0]);
    assert_eq!(u32::from_be_bytes([r[4], r[5], r[6], r[7]]), 600);
    assert_eq!(
        &r[8..24],
        &"2001:db8::53".parse::<Ipv6Addr>().unwrap().octets()
    );
    assert_eq!(
        &r[24..40],
        &"2001:db8::5353".parse::<Ipv6Addr>().unwrap().octets()
    );
    // The checksum, recomputed independently over the message with the
    // field zeroed.
    let mut zeroed = m.to_vec();
    zeroed[2] = 0;
    zeroed[3] = 0;
    let expected = reference_checksum(ra.src, ra.dst, &zeroed);
    assert_eq!(u16::from_be_bytes([m[2], m[3]]), expected);
    // And it reads back as it was built.
    assert_eq!(RouterAdvert::parse(&p), Ok(ra));
}

#[test]
fn router_advertisement_checksum_against_a_hand_computed_value() {
    // Smallest RA: no options, lifetime 0, from fe80::1 to ff02::1.
    // Pseudo-header words: fe80 + 0001 (src), ff02 + 0001 (dst), length
    // 0x0010, next header 0x003a; message words: 8600 (type 134, code 0),
    // 0000 (hop limit, flags) and zeros. Sum = 0xfe80 + 1 + 0xff02 + 1 +
    // 0x10 + 0x3a + 0x8600 = 0x2_83ce -> 0x83d0 -> complement 0x7c2f.
    let ra = RouterAdvert {
        src: "fe80::1".parse().unwrap(),
        dst: ALL_NODES,
        cur_hop_limit: 0,
        managed: false,
        other: false,
        router_lifetime: 0,
        reachable_time: 0,
        retrans_timer: 0,
        prefixes: vec![],
        mtu: None,
        rdnss: None,
    };
    let p = ra.emit();
    assert_eq!(p.len(), 56);
    assert_eq!(&p[42..44], &[0x7c, 0x2f]);
}

#[test]
fn prefix_bits_past_the_length_are_sent_as_zero() {
    let mut ra = sample_ra();
    ra.prefixes[0].prefix = "2001:db8:100:7::abcd".parse().unwrap();
    let p = ra.emit();
    assert_eq!(&p[40 + 16 + 24..40 + 16 + 32], &[0; 8]);
}

fn rs_from(src: Ipv6Addr) -> Vec<u8> {
    RouterSolicitation::emit(src, ALL_ROUTERS)
}

/// Recompute the checksum after a test changed a byte, so that only the
/// field under test is wrong.
fn fix_checksum(p: &mut [u8]) {
    p[42] = 0;
    p[43] = 0;
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&p[8..24]).unwrap());
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&p[24..40]).unwrap());
    let end = 40 + usize::from(u16::from_be_bytes([p[4], p[5]]));
    let sum = reference_checksum(src, dst, &p[40..end]);
    p[42..44].copy_from_slice(&sum.to_be_bytes());
}

#[test]
fn router_solicitation_bytes_and_parse() {
    let src = link_local(PEER);
    let p = rs_from(src);
    assert_eq!(p.len(), 48);
    assert_eq!(&p[..8], &[0x60, 0, 0, 0, 0, 8, 58, 255]);
    assert_eq!(&p[40..42], &[133, 0]);
    assert_eq!(&p[44..48], &[0; 4]);
    let mut zeroed = p[40..].to_vec();
    zeroed[2] = 0;
    zeroed[3] = 0;
    assert_eq!(
        u16::from_be_bytes([p[42], p[43]]),
        reference_checksum(src, ALL_ROUTERS, &zeroed)
    );
    assert_eq!(
        RouterSolicitation::parse(&p),
        Ok(RouterSolicitation {
            src,
            dst: ALL_ROUTERS,
            source_link_layer: false
        })
    );
    // From the unspecified address, without options: valid.
    assert!(RouterSolicitation::parse(&rs_from(Ipv6Addr::UNSPECIFIED)).is_ok());
}

#[test]
fn router_solicitation_options_are_checked_and_unknown_ones_skipped() {
    let with_options = |src: Ipv6Addr, options: &[u8]| {
        let mut p = rs_from(src);
        p.extend_from_slice(options);
        let len = (p.len() - 40) as u16;
        p[4..6].copy_from_slice(&len.to_be_bytes());
        fix_checksum(&mut p);
        p
    };
    let sllao = [1, 1, 0x02, 0, 0, 0, 0, 1];
    let unknown = [200, 1, 0, 0, 0, 0, 0, 0];
    let parsed = RouterSolicitation::parse(&with_options(link_local(PEER), &sllao)).unwrap();
    assert!(parsed.source_link_layer);
    let parsed = RouterSolicitation::parse(&with_options(link_local(PEER), &unknown)).unwrap();
    assert!(!parsed.source_link_layer);
    // A Source Link-Layer option from the unspecified address.
    assert_eq!(
        RouterSolicitation::parse(&with_options(Ipv6Addr::UNSPECIFIED, &sllao)),
        Err(NdError::LinkLayerFromUnspecified)
    );
    // Length zero, and an option longer than what is left.
    for bad in [
        &[200u8, 0, 0, 0, 0, 0, 0, 0][..],
        &[200, 2, 0, 0, 0, 0, 0, 0],
    ] {
        assert_eq!(
            RouterSolicitation::parse(&with_options(link_local(PEER), bad)),
            Err(NdError::BadOption)
        );
    }
    // A lone type octet at the end.
    assert_eq!(
        RouterSolicitation::parse(&with_options(link_local(PEER), &[200])),
        Err(NdError::BadOption)
    );
}

#[test]
fn router_solicitation_rejects_each_invalid_field() {
    let good = rs_from(link_local(PEER));
    type Edit = fn(&mut Vec<u8>);
    let cases: [(Edit, NdError); 8] = [
        (|p| p[0] = 0x40, NdError::NotIpv6),
        (|p| p[6] = 17, NdError::NotIcmpv6),
        (
            |p| {
                p[7] = 64;
                fix_checksum(p)
            },
            NdError::HopLimit(64),
        ),
        (|p| p[47] ^= 1, NdError::Checksum),
        (
            |p| {
                p[41] = 1;
                fix_checksum(p)
            },
            NdError::Code(1),
        ),
        (
            |p| {
                p[40] = 128;
                fix_checksum(p)
            },
            NdError::WrongType(128),
        ),
        // ICMP length 4: too short, though the checksum is right.
        (
            |p| {
                p.truncate(44);
                p[5] = 4;
                fix_checksum(p)
            },
            NdError::TooShort,
        ),
        // Payload Length past the end of the bytes.
        (|p| p[5] = 9, NdError::Truncated),
    ];
    for (n, (edit, error)) in cases.into_iter().enumerate() {
        let mut p = good.clone();
        edit(&mut p);
        assert_eq!(RouterSolicitation::parse(&p), Err(error), "case {n}");
    }
    // Every prefix of a valid packet is refused, none panics.
    for len in 0..good.len() {
        assert!(RouterSolicitation::parse(&good[..len]).is_err());
    }
    // Bytes after Payload Length (link padding) do not matter.
    let mut padded = good.clone();
    padded.extend_from_slice(&[0xee; 3]);
    assert!(RouterSolicitation::parse(&padded).is_ok());
}

#[test]
fn router_advertisement_parse_checks() {
    let good = sample_ra().emit();
    // Not from a link-local address.
    let mut p = good.clone();
    p[8] = 0x20;
    p[9] = 0x01;
    fix_checksum(&mut p);
    assert_eq!(RouterAdvert::parse(&p), Err(NdError::SourceNotLinkLocal));
    // A Prefix Information option of length 3.
    let mut p = good.clone();
    p[40 + 17] = 3;
    fix_checksum(&mut p);
    assert_eq!(RouterAdvert::parse(&p), Err(NdError::BadOption));
    // An RS is not an RA, and the other way round.
    assert_eq!(
        RouterAdvert::parse(&rs_from(link_local(PEER))),
        Err(NdError::WrongType(133))
    );
    assert_eq!(
        RouterSolicitation::parse(&good),
        Err(NdError::WrongType(134))
    );
    for len in 0..good.len() {
        assert!(RouterAdvert::parse(&good[..len]).is_err());
    }
}

#[test]
fn cheap_type_sort() {
    assert!(is_icmpv6_type(&rs_from(link_local(PEER)), 133));
    assert!(!is_icmpv6_type(&rs_from(link_local(PEER)), 134));
    assert!(!is_icmpv6_type(&[0x60; 10], 133));
    assert!(is_link_local(&link_local(PEER).octets()));
    assert!(!is_link_local(&ALL_NODES.octets()));
}

#[test]
fn rdnss_with_one_server_reads_back() {
    let mut ra = sample_ra();
    ra.rdnss.as_mut().unwrap().servers.truncate(1);
    let p = ra.emit();
    assert_eq!(p[p.len() - 24..p.len() - 22], [25, 3]);
    assert_eq!(RouterAdvert::parse(&p), Ok(ra));
}

#[test]
fn an_rdnss_option_holds_at_most_127_servers() {
    let mut ra = sample_ra();
    let servers: Vec<Ipv6Addr> = (0..130u128).map(Ipv6Addr::from).collect();
    ra.rdnss.as_mut().unwrap().servers = servers.clone();
    let back = RouterAdvert::parse(&ra.emit()).unwrap();
    assert_eq!(back.rdnss.unwrap().servers, servers[..127]);
}
