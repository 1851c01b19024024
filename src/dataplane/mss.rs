//! TCP MSS clamping: lower the Maximum Segment Size option of SYN and
//! SYN-ACK segments crossing the session, so TCP never builds segments that
//! would not fit the PPP link (or the L2TP path) and need fragmenting or a
//! Path MTU discovery that ICMP filters often break.
//!
//! The MSS option (RFC 9293 §3.2, kind 2, length 4) appears only in
//! segments with SYN set; a host "MUST NOT" send segments larger than the
//! peer's announced MSS (RFC 9293 §3.7.1), so lowering it in flight is what
//! makes the hosts agree on a size that fits. The checksum is patched with
//! RFC 1624's incremental update instead of being recomputed over the whole
//! segment.

use crate::wire::ip::{checksum, protocol, Ipv4Packet, Ipv6Packet};

/// TCP header fields used here (RFC 9293 §3.1).
mod tcp {
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const CHECKSUM: usize = 16;
    pub const MIN_HEADER: usize = 20;
    pub const SYN: u8 = 0x02;
    /// Option kinds (RFC 9293 §3.2).
    pub const END: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
}

/// Most IPv6 extension headers walked before giving up on finding TCP: a
/// real packet has one or two; a crafted chain should cost a bounded walk.
const MAX_EXTENSION_HEADERS: usize = 8;

/// Where the TCP segment of an IP packet starts and ends, when the packet
/// carries the start of a TCP segment.
fn tcp_segment(packet: &[u8]) -> Option<(usize, usize)> {
    match packet.first()? >> 4 {
        4 => {
            let ip = Ipv4Packet::new_checked(packet).ok()?;
            // Only the first fragment has the TCP header.
            (ip.protocol() == protocol::TCP && ip.fragment_offset() == 0)
                .then(|| (ip.header_len(), ip.total_len()))
        }
        6 => {
            let ip = Ipv6Packet::new_checked(packet).ok()?;
            let end = ip.total_len();
            let mut next = ip.next_header();
            let mut at = Ipv6Packet::<&[u8]>::HEADER_LEN;
            // RFC 8200 §4: the headers that may sit between the fixed header
            // and TCP share the Next Header / Hdr Ext Len layout (in 8-octet
            // units, not counting the first 8). A Fragment header means the
            // segment is split; leave those alone as for IPv4.
            for _ in 0..MAX_EXTENSION_HEADERS {
                match next {
                    protocol::TCP => return (at <= end).then_some((at, end)),
                    protocol::HOP_BY_HOP | protocol::ROUTING | protocol::DESTINATION => {
                        let header = packet.get(at..(at + 2).min(end))?;
                        if header.len() < 2 {
                            return None;
                        }
                        next = header[0];
                        at += (usize::from(header[1]) + 1) * 8;
                    }
                    _ => return None,
                }
            }
            None
        }
        _ => None,
    }
}

/// Lower every MSS option above `mss` in a TCP SYN carried by `packet` (a
/// whole IPv4 or IPv6 packet) and patch the TCP checksum. Returns whether
/// anything changed. Packets that are not TCP SYNs, or whose headers do not
/// add up, are left untouched.
pub fn clamp(packet: &mut [u8], mss: u16) -> bool {
    let Some((start, end)) = tcp_segment(packet) else {
        return false;
    };
    let Some(segment) = packet.get_mut(start..end) else {
        return false;
    };
    if segment.len() < tcp::MIN_HEADER || segment[tcp::FLAGS] & tcp::SYN == 0 {
        return false;
    }
    let header_len = usize::from(segment[tcp::DATA_OFFSET] >> 4) * 4;
    if header_len < tcp::MIN_HEADER || header_len > segment.len() {
        return false;
    }
    let mut changed = false;
    let mut csum = u16::from_be_bytes([segment[tcp::CHECKSUM], segment[tcp::CHECKSUM + 1]]);
    let mut at = tcp::MIN_HEADER;
    // RFC 9293 §3.2: options are End (one octet, ends the list), No-Op
    // (one octet), or kind, length (counting both), data.
    while at < header_len {
        match segment[at] {
            tcp::END => break,
            tcp::NOP => at += 1,
            kind => {
                let Some(&len) = segment.get(at + 1) else {
                    break;
                };
                let len = usize::from(len);
                if len < 2 || at + len > header_len {
                    break;
                }
                if kind == tcp::MSS && len == 4 {
                    let value = at + 2;
                    let old = u16::from_be_bytes([segment[value], segment[value + 1]]);
                    if old > mss {
                        segment[value..value + 2].copy_from_slice(&mss.to_be_bytes());
                        // The segment starts on an even offset of the
                        // checksummed data (the pseudo-header is 12 or 40
                        // bytes), so an option value at an odd offset
                        // contributes its bytes swapped.
                        csum = if value % 2 == 0 {
                            checksum::update(csum, old, mss)
                        } else {
                            checksum::update(csum, old.swap_bytes(), mss.swap_bytes())
                        };
                        changed = true;
                    }
                }
                at += len;
            }
        }
    }
    if changed {
        segment[tcp::CHECKSUM..tcp::CHECKSUM + 2].copy_from_slice(&csum.to_be_bytes());
    }
    changed
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The TCP checksum of a whole IPv4 or IPv6 packet recomputed from
    /// scratch (RFC 9293 §3.1 pseudo-header), with the field itself zeroed.
    pub(crate) fn tcp_checksum(packet: &[u8]) -> u16 {
        let (start, end) = tcp_segment(packet).unwrap();
        let segment = &packet[start..end];
        let mut sum = 0u64;
        if packet[0] >> 4 == 4 {
            sum = checksum::add(sum, &packet[12..20]);
            sum = checksum::add(sum, &[0, protocol::TCP]);
            sum = checksum::add(sum, &(segment.len() as u16).to_be_bytes());
        } else {
            sum = checksum::add(sum, &packet[8..40]);
            sum = checksum::add(sum, &(segment.len() as u32).to_be_bytes());
            sum = checksum::add(sum, &[0, 0, 0, protocol::TCP]);
        }
        sum = checksum::add(sum, &segment[..16]);
        sum = checksum::add(sum, &segment[18..]);
        checksum::finish(sum)
    }

    fn stored_checksum(packet: &[u8]) -> u16 {
        let (start, _) = tcp_segment(packet).unwrap();
        u16::from_be_bytes([packet[start + 16], packet[start + 17]])
    }

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    /// A Linux SYN from 100.64.0.10:43210 to 192.0.2.80:443, MSS 1460,
    /// SACK permitted, timestamps, window scale 7.
    pub(crate) fn ipv4_syn() -> Vec<u8> {
        hex(concat!(
            "4500 003c 6a1f 4000 4006 aa02 6440 000a c000 0250", // IPv4
            "a8ca 01bb 5b3c 8a21 0000 0000 a002 faf0 e095 0000", // TCP
            "0204 05b4 0402 080a 0019 b5e2 0000 0000 0103 0307", // options
        ))
    }

    /// A SYN-ACK from 2001:db8::80 port 443 to 2001:db8:1:2::a port
    /// 51000, MSS 1440 at an odd offset (after a single NOP), window
    /// scale 8.
    pub(crate) fn ipv6_syn_ack() -> Vec<u8> {
        hex(concat!(
            "6000 0000 001c 0640", // version, flow, payload length 28, TCP, hop limit
            "2001 0db8 0000 0000 0000 0000 0000 0080", // src
            "2001 0db8 0001 0002 0000 0000 0000 000a", // dst
            "01bb c738 0000 1000 5b3c 8a22 7012 ffff cd66 0000", // TCP, offset 7
            "0102 0405 a003 0308", // NOP, MSS 1440, WS
        ))
    }

    #[test]
    fn vectors_carry_correct_checksums() {
        for packet in [ipv4_syn(), ipv6_syn_ack()] {
            assert_eq!(stored_checksum(&packet), tcp_checksum(&packet));
        }
    }

    #[test]
    fn clamps_ipv4_syn() {
        let mut packet = ipv4_syn();
        let before = packet.clone();
        assert!(clamp(&mut packet, 1400));
        assert_eq!(&packet[40..44], &[0x02, 0x04, 0x05, 0x78]);
        assert_eq!(stored_checksum(&packet), tcp_checksum(&packet));
        // Only the option value and the checksum changed.
        let changed: Vec<usize> = (0..packet.len())
            .filter(|&i| packet[i] != before[i])
            .collect();
        assert!(changed
            .iter()
            .all(|&i| (36..38).contains(&i) || (42..44).contains(&i)));
        // Already small enough: untouched.
        assert!(!clamp(&mut packet, 1400));
        assert!(!clamp(&mut packet, 1452));
    }

    #[test]
    fn clamps_ipv6_syn_ack_at_odd_offset() {
        let mut packet = ipv6_syn_ack();
        assert!(clamp(&mut packet, 1220));
        assert_eq!(&packet[61..65], &[0x02, 0x04, 0x04, 0xc4]);
        assert_eq!(stored_checksum(&packet), tcp_checksum(&packet));
    }

    #[test]
    fn walks_ipv6_extension_headers() {
        // Insert an 8-byte Destination Options header (PadN) before TCP.
        let plain = ipv6_syn_ack();
        let mut packet = plain[..40].to_vec();
        packet[4..6].copy_from_slice(&36u16.to_be_bytes());
        packet[6] = protocol::DESTINATION;
        packet.extend_from_slice(&[protocol::TCP, 0, 1, 4, 0, 0, 0, 0]);
        packet.extend_from_slice(&plain[40..]);
        assert_eq!(stored_checksum(&packet), tcp_checksum(&packet));
        assert!(clamp(&mut packet, 1200));
        assert_eq!(stored_checksum(&packet), tcp_checksum(&packet));
        // A Fragment header stops the walk.
        packet[6] = protocol::FRAGMENT;
        let before = packet.clone();
        assert!(!clamp(&mut packet, 1000));
        assert_eq!(packet, before);
    }

    #[test]
    fn leaves_other_segments_alone() {
        // Not a SYN (ACK only).
        let mut packet = ipv4_syn();
        packet[33] = 0x10;
        assert!(!clamp(&mut packet, 536));
        // A later fragment.
        let mut packet = ipv4_syn();
        packet[7] = 1;
        assert!(!clamp(&mut packet, 536));
        // Not TCP.
        let mut packet = ipv4_syn();
        packet[9] = 17;
        assert!(!clamp(&mut packet, 536));
        // Data offset past the segment, or below 5 words.
        for offset in [0x10, 0xf0] {
            let mut packet = ipv4_syn();
            packet[32] = offset;
            let before = packet.clone();
            assert!(!clamp(&mut packet, 536));
            assert_eq!(packet, before);
        }
        // An option running past the header ends the walk.
        let mut packet = ipv4_syn();
        packet[40..44].copy_from_slice(&[0x08, 0x30, 0x05, 0xb4]);
        assert!(!clamp(&mut packet, 536));
        // End of options before the MSS.
        let mut packet = ipv4_syn();
        packet[40] = 0;
        assert!(!clamp(&mut packet, 536));
    }

    #[test]
    fn every_prefix_and_corruption_is_safe() {
        for base in [ipv4_syn(), ipv6_syn_ack()] {
            for len in 0..=base.len() {
                let mut packet = base[..len].to_vec();
                clamp(&mut packet, 536);
            }
            for at in 0..base.len() {
                for value in [0x00, 0x01, 0x02, 0x04, 0x0f, 0x45, 0x60, 0xff] {
                    let mut packet = base.clone();
                    packet[at] = value;
                    let checksum_ok = tcp_segment(&packet).is_some_and(|(start, end)| {
                        end >= start + 20 && stored_checksum(&packet) == tcp_checksum(&packet)
                    });
                    if clamp(&mut packet, 536) && checksum_ok {
                        // A correct checksum stays correct.
                        assert_eq!(stored_checksum(&packet), tcp_checksum(&packet));
                    }
                }
            }
        }
    }
}
