//! The IPv4 (RFC 791) and IPv6 (RFC 8200) header fields the data plane
//! reads, TCP's (RFC 9293) few it rewrites, and the Internet checksum
//! (RFC 1071, with RFC 1624's incremental update).
//!
//! Only what a router in front of a subscriber needs: version, lengths,
//! addresses, the upper-layer protocol and where its header starts. Nothing
//! here validates checksums of packets passing through; the kernel behind
//! the TUN device and the hosts at either end do that.

use std::net::{Ipv4Addr, Ipv6Addr};

/// IP protocol / IPv6 next-header numbers the data plane looks at (IANA
/// "Assigned Internet Protocol Numbers").
pub mod protocol {
    /// IPv6 Hop-by-Hop Options (RFC 8200 §4.3).
    pub const HOP_BY_HOP: u8 = 0;
    /// Transmission Control Protocol.
    pub const TCP: u8 = 6;
    /// IPv6 Routing header (RFC 8200 §4.4).
    pub const ROUTING: u8 = 43;
    /// IPv6 Fragment header (RFC 8200 §4.5).
    pub const FRAGMENT: u8 = 44;
    /// IPv6 Destination Options (RFC 8200 §4.6).
    pub const DESTINATION: u8 = 60;
}

/// Why bytes are not an IP packet the data plane can handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpError {
    /// Fewer bytes than the fixed header, or than a length field says.
    Truncated,
    /// The version nibble is not the one expected.
    BadVersion(u8),
    /// A header length field below its minimum or past Total Length.
    BadLength,
}

/// The version nibble of an IP packet, if there is a first byte.
pub fn version(packet: &[u8]) -> Option<u8> {
    packet.first().map(|b| b >> 4)
}

/// Zero-copy view of an IPv4 packet (RFC 791 §3.1).
///
/// After [`Ipv4Packet::new_checked`] no accessor panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

mod v4 {
    pub const VER_IHL: usize = 0;
    pub const TOTAL_LEN: usize = 2;
    pub const FLAGS_FRAG: usize = 6;
    pub const PROTOCOL: usize = 9;
    pub const SRC: core::ops::Range<usize> = 12..16;
    pub const DST: core::ops::Range<usize> = 16..20;
    pub const MIN_HEADER: usize = 20;
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Size of a header without options.
    pub const MIN_HEADER_LEN: usize = v4::MIN_HEADER;

    /// Wrap and validate: version 4, IHL ≥ 5, IHL ≤ Total Length ≤ buffer.
    pub fn new_checked(buffer: T) -> Result<Self, IpError> {
        let packet = Ipv4Packet { buffer };
        let data = packet.buffer.as_ref();
        if data.len() < v4::MIN_HEADER {
            return Err(IpError::Truncated);
        }
        if data[v4::VER_IHL] >> 4 != 4 {
            return Err(IpError::BadVersion(data[v4::VER_IHL] >> 4));
        }
        let header = packet.header_len();
        let total = packet.total_len();
        if header < v4::MIN_HEADER || total < header {
            return Err(IpError::BadLength);
        }
        if total > data.len() {
            return Err(IpError::Truncated);
        }
        Ok(packet)
    }

    /// Internet Header Length in bytes.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[v4::VER_IHL] & 0x0f) * 4
    }

    /// Total Length: header and data; bytes after it are link padding.
    pub fn total_len(&self) -> usize {
        let data = self.buffer.as_ref();
        usize::from(u16::from_be_bytes([
            data[v4::TOTAL_LEN],
            data[v4::TOTAL_LEN + 1],
        ]))
    }

    /// The Protocol field.
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[v4::PROTOCOL]
    }

    /// Don't Fragment flag.
    pub fn dont_fragment(&self) -> bool {
        self.buffer.as_ref()[v4::FLAGS_FRAG] & 0x40 != 0
    }

    /// Fragment Offset, in 8-byte units; non-zero for every fragment but
    /// the first.
    pub fn fragment_offset(&self) -> u16 {
        let data = self.buffer.as_ref();
        u16::from_be_bytes([data[v4::FLAGS_FRAG], data[v4::FLAGS_FRAG + 1]]) & 0x1fff
    }

    /// Source address.
    pub fn src(&self) -> Ipv4Addr {
        let data = self.buffer.as_ref();
        Ipv4Addr::new(
            data[v4::SRC.start],
            data[v4::SRC.start + 1],
            data[v4::SRC.start + 2],
            data[v4::SRC.start + 3],
        )
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        let data = self.buffer.as_ref();
        Ipv4Addr::new(
            data[v4::DST.start],
            data[v4::DST.start + 1],
            data[v4::DST.start + 2],
            data[v4::DST.start + 3],
        )
    }
}

/// The destination of bytes that start like an IPv4 header, without the
/// length checks (the egress lookup, before anything else is known).
pub fn ipv4_dst(packet: &[u8]) -> Option<Ipv4Addr> {
    let bytes: [u8; 4] = packet.get(v4::DST)?.try_into().ok()?;
    Some(Ipv4Addr::from(bytes))
}

/// Zero-copy view of an IPv6 packet (RFC 8200 §3).
///
/// After [`Ipv6Packet::new_checked`] no accessor panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

mod v6 {
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const SRC: core::ops::Range<usize> = 8..24;
    pub const DST: core::ops::Range<usize> = 24..40;
    pub const HEADER: usize = 40;
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Size of the fixed header.
    pub const HEADER_LEN: usize = v6::HEADER;

    /// Wrap and validate: version 6, 40 + Payload Length ≤ buffer.
    pub fn new_checked(buffer: T) -> Result<Self, IpError> {
        let packet = Ipv6Packet { buffer };
        let data = packet.buffer.as_ref();
        if data.len() < v6::HEADER {
            return Err(IpError::Truncated);
        }
        if data[0] >> 4 != 6 {
            return Err(IpError::BadVersion(data[0] >> 4));
        }
        if packet.total_len() > data.len() {
            return Err(IpError::Truncated);
        }
        Ok(packet)
    }

    /// Fixed header plus Payload Length. (A Jumbo Payload, RFC 2675, says 0
    /// here; PPP's 16-bit MRU cannot carry one, so it reads as a bare
    /// header.)
    pub fn total_len(&self) -> usize {
        let data = self.buffer.as_ref();
        v6::HEADER
            + usize::from(u16::from_be_bytes([
                data[v6::PAYLOAD_LEN],
                data[v6::PAYLOAD_LEN + 1],
            ]))
    }

    /// Next Header of the fixed header.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[v6::NEXT_HEADER]
    }

    /// Source address.
    pub fn src(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.src_bytes())
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv6Addr {
        let mut out = [0u8; 16];
        out.copy_from_slice(&self.buffer.as_ref()[v6::DST]);
        Ipv6Addr::from(out)
    }

    /// Destination address as bytes.
    pub fn dst_bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out.copy_from_slice(&self.buffer.as_ref()[v6::DST]);
        out
    }

    /// Source address as bytes.
    pub fn src_bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out.copy_from_slice(&self.buffer.as_ref()[v6::SRC]);
        out
    }
}

/// The upper 64 bits of the destination of bytes that start like an IPv6
/// header (the egress lookup key), without other checks.
pub fn ipv6_dst_prefix(packet: &[u8]) -> Option<[u8; 8]> {
    packet
        .get(v6::DST.start..v6::DST.start + 8)?
        .try_into()
        .ok()
}

/// Internet checksum arithmetic.
pub mod checksum {
    /// Add `data` to a running one's-complement sum as big-endian 16-bit
    /// words (RFC 1071 §4.1); an odd last byte is padded with zero. Start
    /// with 0 and [`fold`] at the end. `data` must begin on a 16-bit
    /// boundary of the checksummed area.
    pub fn add(mut sum: u64, data: &[u8]) -> u64 {
        let mut words = data.chunks_exact(2);
        for word in &mut words {
            sum += u64::from(u16::from_be_bytes([word[0], word[1]]));
        }
        if let [last] = words.remainder() {
            sum += u64::from(*last) << 8;
        }
        sum
    }

    /// Fold carries back in until the sum fits 16 bits (end-around carry).
    pub fn fold(mut sum: u64) -> u16 {
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    /// The checksum field value for a sum taken over everything but it.
    pub fn finish(sum: u64) -> u16 {
        !fold(sum)
    }

    /// The checksum after one 16-bit word of the covered data changed from
    /// `old` to `new`: RFC 1624 §3, eqn. 3, `HC' = ~(~HC + ~m + m')`, which
    /// (unlike eqn. 2) never turns a correct checksum into the wrong zero.
    ///
    /// `old` and `new` are the word as it sits in the sum: for two bytes at
    /// an odd offset of the covered area, pass them byte-swapped, since each
    /// then lands in the other half of its neighbouring words.
    pub fn update(checksum: u16, old: u16, new: u16) -> u16 {
        let sum = u64::from(!checksum) + u64::from(!old) + u64::from(new);
        !fold(sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_view() {
        // A 28-byte UDP datagram with one trailing padding byte.
        let bytes = [
            0x45, 0x00, 0x00, 0x1c, // ver/IHL, TOS, total length 28
            0x12, 0x34, 0x40, 0x00, // id, DF
            0x40, 0x11, 0x00, 0x00, // TTL, UDP, checksum
            100, 64, 0, 1, // src
            192, 0, 2, 7, // dst
            0, 53, 0, 53, 0, 8, 0, 0,    // UDP header
            0xee, // padding
        ];
        let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.header_len(), 20);
        assert_eq!(packet.total_len(), 28);
        assert_eq!(packet.protocol(), 17);
        assert!(packet.dont_fragment());
        assert_eq!(packet.fragment_offset(), 0);
        assert_eq!(packet.src(), Ipv4Addr::new(100, 64, 0, 1));
        assert_eq!(packet.dst(), Ipv4Addr::new(192, 0, 2, 7));
        assert_eq!(ipv4_dst(&bytes), Some(Ipv4Addr::new(192, 0, 2, 7)));
        // Every prefix shorter than Total Length is refused, none panics.
        for len in 0..28 {
            assert!(Ipv4Packet::new_checked(&bytes[..len]).is_err());
        }
        let mut bad = bytes;
        bad[0] = 0x44;
        assert_eq!(Ipv4Packet::new_checked(&bad[..]), Err(IpError::BadLength));
        bad[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&bad[..]),
            Err(IpError::BadVersion(6))
        );
        let mut short_total = bytes;
        short_total[3] = 19;
        assert_eq!(
            Ipv4Packet::new_checked(&short_total[..]),
            Err(IpError::BadLength)
        );
    }

    #[test]
    fn ipv6_view() {
        let mut bytes = [0u8; 48];
        bytes[0] = 0x60;
        bytes[5] = 8; // payload length
        bytes[6] = protocol::TCP;
        bytes[8] = 0x20;
        bytes[9] = 0x01;
        bytes[24] = 0xfe;
        bytes[25] = 0x80;
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.total_len(), 48);
        assert_eq!(packet.next_header(), protocol::TCP);
        assert_eq!(packet.src(), "2001::".parse::<Ipv6Addr>().unwrap());
        assert_eq!(packet.dst(), "fe80::".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            ipv6_dst_prefix(&bytes),
            Some([0xfe, 0x80, 0, 0, 0, 0, 0, 0])
        );
        for len in 0..48 {
            assert!(Ipv6Packet::new_checked(&bytes[..len]).is_err());
        }
        assert_eq!(ipv6_dst_prefix(&bytes[..31]), None);
    }

    #[test]
    fn checksum_of_rfc1071_example() {
        // RFC 1071 §3's worked example: the words 0001 f203 f4f5 f6f7 sum
        // to ddf2 (with the end-around carry).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum::fold(checksum::add(0, &data)), 0xddf2);
        assert_eq!(checksum::finish(checksum::add(0, &data)), !0xddf2);
    }

    #[test]
    fn incremental_update_matches_recomputation() {
        let mut data = [0x45u8, 0x00, 0x12, 0x34, 0xab, 0xcd, 0x00, 0x00, 0xff, 0xfe];
        let before = checksum::finish(checksum::add(0, &data));
        // Change the word at offset 4 (aligned).
        let old = u16::from_be_bytes([data[4], data[5]]);
        data[4..6].copy_from_slice(&0x0102u16.to_be_bytes());
        let after = checksum::finish(checksum::add(0, &data));
        assert_eq!(checksum::update(before, old, 0x0102), after);
        // Change two bytes straddling words (offset 3, odd).
        let old = u16::from_be_bytes([data[3], data[4]]);
        data[3..5].copy_from_slice(&0x7788u16.to_be_bytes());
        let again = checksum::finish(checksum::add(0, &data));
        assert_eq!(
            checksum::update(after, old.swap_bytes(), 0x7788u16.swap_bytes()),
            again
        );
    }
}
