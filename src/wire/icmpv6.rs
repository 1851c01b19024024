//! The two Neighbor Discovery messages (RFC 4861) a router on a PPP link
//! deals in: Router Solicitation (type 133, from the subscriber) and Router
//! Advertisement (type 134, from us), each inside its IPv6 header, with the
//! ICMPv6 checksum over the pseudo-header (RFC 4443 §2.3, RFC 8200 §8.1).
//!
//! Both parsers take the whole IPv6 packet, because the validity rules of
//! §6.1 look at the IP header (hop limit, source) as much as at the ICMPv6
//! body. They are total: any bytes give a value or an [`NdError`].
//!
//! PPP has no link-layer addresses, so we never send a Source Link-Layer
//! Address option (§4.2: it "MAY be omitted ... if the link layer has no
//! addresses"), and one received is only checked for its length.
#![forbid(unsafe_code)]

use std::net::Ipv6Addr;

use super::ip::checksum;

/// ICMPv6 as an IPv6 Next Header value (RFC 4443).
pub const NEXT_HEADER: u8 = 58;

/// Every Neighbor Discovery message travels with this hop limit, so a
/// receiver can tell it was not forwarded by a router (§6.1.1, §6.1.2).
pub const ND_HOP_LIMIT: u8 = 255;

/// ICMPv6 message types of Neighbor Discovery (RFC 4861 §4).
pub mod msg_type {
    /// Router Solicitation (§4.1).
    pub const ROUTER_SOLICITATION: u8 = 133;
    /// Router Advertisement (§4.2).
    pub const ROUTER_ADVERTISEMENT: u8 = 134;
    /// Neighbor Solicitation (§4.3).
    pub const NEIGHBOR_SOLICITATION: u8 = 135;
    /// Neighbor Advertisement (§4.4).
    pub const NEIGHBOR_ADVERTISEMENT: u8 = 136;
}

/// Neighbor Discovery option types (RFC 4861 §4.6, RFC 8106 §5.1).
pub mod option_type {
    /// Source Link-Layer Address (§4.6.1).
    pub const SOURCE_LINK_LAYER: u8 = 1;
    /// Prefix Information (§4.6.2).
    pub const PREFIX_INFORMATION: u8 = 3;
    /// MTU (§4.6.4).
    pub const MTU: u8 = 5;
    /// Recursive DNS Server (RFC 8106 §5.1).
    pub const RDNSS: u8 = 25;
}

/// All-nodes link-local multicast, ff02::1: unsolicited advertisements go
/// there (§6.2.4).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// All-routers link-local multicast, ff02::2: where hosts solicit (§6.3.7).
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// Field offsets: the IPv6 header (RFC 8200 §3), then the ICMPv6 message.
mod field {
    use core::ops::Range;
    pub const VERSION: usize = 0;
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
    pub const IP_HEADER: usize = 40;
    // Offsets inside the ICMPv6 message.
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    /// RS: Type, Code, Checksum, Reserved (§4.1).
    pub const RS_OPTIONS: usize = 8;
    // RA (§4.2).
    pub const CUR_HOP_LIMIT: usize = 4;
    pub const FLAGS: usize = 5;
    pub const ROUTER_LIFETIME: Range<usize> = 6..8;
    pub const REACHABLE_TIME: Range<usize> = 8..12;
    pub const RETRANS_TIMER: Range<usize> = 12..16;
    pub const RA_OPTIONS: usize = 16;
}

/// RA flag bits (§4.2): Managed and Other configuration.
const FLAG_MANAGED: u8 = 0x80;
const FLAG_OTHER: u8 = 0x40;
/// Prefix Information flag bits (§4.6.2): on-Link and Autonomous.
const FLAG_ON_LINK: u8 = 0x80;
const FLAG_AUTONOMOUS: u8 = 0x40;

/// Why bytes are not a valid RS or RA. Flat, for counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NdError {
    /// Shorter than an IPv6 header, or than its Payload Length says.
    Truncated,
    /// Not IPv6.
    NotIpv6,
    /// Next Header is not ICMPv6 (extension headers are not walked).
    NotIcmpv6,
    /// The ICMPv6 type is not the one parsed for.
    WrongType(u8),
    /// §6.1.1 / §6.1.2: "The IP Hop Limit field has a value of 255".
    HopLimit(u8),
    /// "ICMP Checksum is valid" does not hold.
    Checksum,
    /// "ICMP Code is 0" does not hold.
    Code(u8),
    /// "ICMP length (derived from the IP length) is 8 or more octets" (16
    /// for an RA) does not hold.
    TooShort,
    /// "All included options have a length that is greater than zero", or
    /// an option runs past the message, or a known option has the wrong
    /// length.
    BadOption,
    /// §6.1.1: "If the IP source address is the unspecified address, there
    /// is no source link-layer address option in the message."
    LinkLayerFromUnspecified,
    /// §6.1.2: "IP Source Address is a link-local address" does not hold.
    SourceNotLinkLocal,
}

impl std::fmt::Display for NdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NdError::Truncated => f.write_str("truncated IPv6 packet"),
            NdError::NotIpv6 => f.write_str("not IPv6"),
            NdError::NotIcmpv6 => f.write_str("not ICMPv6"),
            NdError::WrongType(t) => write!(f, "ICMPv6 type {t}"),
            NdError::HopLimit(h) => write!(f, "hop limit {h}, not 255"),
            NdError::Checksum => f.write_str("bad ICMPv6 checksum"),
            NdError::Code(c) => write!(f, "ICMPv6 code {c}, not 0"),
            NdError::TooShort => f.write_str("ICMPv6 message too short"),
            NdError::BadOption => f.write_str("malformed option"),
            NdError::LinkLayerFromUnspecified => {
                f.write_str("link-layer address option from the unspecified address")
            }
            NdError::SourceNotLinkLocal => f.write_str("source is not link-local"),
        }
    }
}

impl std::error::Error for NdError {}

/// Whether `addr` is in fe80::/10 (RFC 4291 §2.5.6).
pub fn is_link_local(addr: &[u8; 16]) -> bool {
    addr[0] == 0xfe && addr[1] & 0xc0 == 0x80
}

/// fe80::`ifid`, the link-local address IPv6 over PPP forms from the
/// interface identifier IPv6CP agreed (RFC 5072 §5).
pub fn link_local(ifid: [u8; 8]) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    octets[..2].copy_from_slice(&[0xfe, 0x80]);
    octets[8..].copy_from_slice(&ifid);
    Ipv6Addr::from(octets)
}

/// The ICMPv6 checksum sum over the pseudo-header (RFC 8200 §8.1: source,
/// destination, upper-layer length as 32 bits, three zero octets and Next
/// Header 58) and `message` as it stands.
fn pseudo_sum(src: &[u8], dst: &[u8], message: &[u8]) -> u64 {
    let mut sum = checksum::add(0, src);
    sum = checksum::add(sum, dst);
    sum += message.len() as u64;
    sum += u64::from(NEXT_HEADER);
    checksum::add(sum, message)
}

/// Source, destination and the ICMPv6 message of an ND packet.
type NdParts<'a> = ([u8; 16], [u8; 16], &'a [u8]);

/// The ICMPv6 message of an IPv6 packet after the §6.1 checks every ND
/// message shares: IPv6, Next Header 58, the expected type, hop limit 255,
/// valid checksum, Code 0 and at least `min_len` octets.
fn nd_message(packet: &[u8], kind: u8, min_len: usize) -> Result<NdParts<'_>, NdError> {
    let header = packet.get(..field::IP_HEADER).ok_or(NdError::Truncated)?;
    if header[field::VERSION] >> 4 != 6 {
        return Err(NdError::NotIpv6);
    }
    let payload_len = usize::from(u16::from_be_bytes([
        header[field::PAYLOAD_LEN.start],
        header[field::PAYLOAD_LEN.start + 1],
    ]));
    let message = packet
        .get(field::IP_HEADER..field::IP_HEADER + payload_len)
        .ok_or(NdError::Truncated)?;
    if header[field::NEXT_HEADER] != NEXT_HEADER {
        return Err(NdError::NotIcmpv6);
    }
    let mut src = [0u8; 16];
    src.copy_from_slice(&header[field::SRC]);
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&header[field::DST]);
    if message.len() < 4 {
        return Err(NdError::TooShort);
    }
    if message[field::TYPE] != kind {
        return Err(NdError::WrongType(message[field::TYPE]));
    }
    let hop_limit = header[field::HOP_LIMIT];
    if hop_limit != ND_HOP_LIMIT {
        return Err(NdError::HopLimit(hop_limit));
    }
    // Summed with its own checksum in place, a correct message folds to
    // all ones.
    if checksum::fold(pseudo_sum(&src, &dst, message)) != 0xffff {
        return Err(NdError::Checksum);
    }
    if message[field::CODE] != 0 {
        return Err(NdError::Code(message[field::CODE]));
    }
    if message.len() < min_len {
        return Err(NdError::TooShort);
    }
    Ok((src, dst, message))
}

/// The options after `start`: (type, body after the two-octet header)
/// pairs, or `BadOption` for a zero length or one that runs past the end.
fn options(message: &[u8], start: usize) -> impl Iterator<Item = Result<(u8, &[u8]), NdError>> {
    let mut rest = message.get(start..).unwrap_or_default();
    std::iter::from_fn(move || {
        let (&kind, after) = rest.split_first()?;
        let Some(&units) = after.first() else {
            rest = &[];
            return Some(Err(NdError::BadOption));
        };
        let len = usize::from(units) * 8;
        if len == 0 || len > rest.len() {
            rest = &[];
            return Some(Err(NdError::BadOption));
        }
        let body = &rest[2..len];
        rest = &rest[len..];
        Some(Ok((kind, body)))
    })
}

/// A Router Solicitation that passed §6.1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterSolicitation {
    /// The soliciting host's address: link-local, global, or unspecified
    /// (then the answer goes to all-nodes, §6.2.6).
    pub src: Ipv6Addr,
    /// Where it was sent (all-routers or our link-local address).
    pub dst: Ipv6Addr,
    /// It carried a Source Link-Layer Address option (meaningless on PPP,
    /// but legal).
    pub source_link_layer: bool,
}

impl RouterSolicitation {
    /// Parse and validate a whole IPv6 packet as an RS (RFC 4861 §6.1.1):
    /// hop limit 255, valid checksum, Code 0, ICMP length ≥ 8, options
    /// of non-zero length, and no Source Link-Layer Address option when
    /// the source is unspecified. Unknown options are skipped (§4.1:
    /// "Future versions of this protocol may define new option types.
    /// Receivers MUST silently ignore any options they do not recognize").
    pub fn parse(packet: &[u8]) -> Result<Self, NdError> {
        let (src, dst, message) =
            nd_message(packet, msg_type::ROUTER_SOLICITATION, field::RS_OPTIONS)?;
        let mut source_link_layer = false;
        for option in options(message, field::RS_OPTIONS) {
            let (kind, _) = option?;
            source_link_layer |= kind == option_type::SOURCE_LINK_LAYER;
        }
        let src = Ipv6Addr::from(src);
        if source_link_layer && src.is_unspecified() {
            return Err(NdError::LinkLayerFromUnspecified);
        }
        Ok(RouterSolicitation {
            src,
            dst: Ipv6Addr::from(dst),
            source_link_layer,
        })
    }

    /// The packet: an RS from `src` to `dst` with no options (what a PPP
    /// host sends: it has no link-layer address to announce).
    pub fn emit(src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
        let mut message = [0u8; field::RS_OPTIONS];
        message[field::TYPE] = msg_type::ROUTER_SOLICITATION;
        finish(src, dst, &mut message)
    }
}

/// A Prefix Information option (§4.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixInfo {
    /// The prefix; bits past `len` are sent as zero ("The bits in the
    /// prefix after the prefix length are reserved and MUST be initialized
    /// to zero by the sender").
    pub prefix: Ipv6Addr,
    /// Prefix length, 0..=128.
    pub len: u8,
    /// L flag: the prefix is on-link.
    pub on_link: bool,
    /// A flag: hosts may form addresses from it (RFC 4862 §5.5.3).
    pub autonomous: bool,
    /// Valid lifetime in seconds (all ones: infinity).
    pub valid: u32,
    /// Preferred lifetime in seconds, at most `valid`.
    pub preferred: u32,
}

/// Most servers one RDNSS option can hold: its Length octet counts 8-octet
/// units, one for the header and two per address.
pub const MAX_RDNSS_SERVERS: usize = 127;

/// Recursive DNS servers (RFC 8106 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rdnss {
    /// How long the servers may be used, in seconds (0: stop using them).
    pub lifetime: u32,
    /// The servers, at least one; [`RouterAdvert::emit`] sends the first
    /// [`MAX_RDNSS_SERVERS`].
    pub servers: Vec<Ipv6Addr>,
}

/// A Router Advertisement (§4.2) with the options we send and read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterAdvert {
    /// Our link-local address (§4.2: "MUST be the link-local address
    /// assigned to the interface from which this message is sent").
    pub src: Ipv6Addr,
    /// All-nodes, or the soliciting host.
    pub dst: Ipv6Addr,
    /// Cur Hop Limit for the host's packets (0: unspecified).
    pub cur_hop_limit: u8,
    /// M flag: addresses come from DHCPv6.
    pub managed: bool,
    /// O flag: other configuration comes from DHCPv6.
    pub other: bool,
    /// Router Lifetime in seconds; 0 means "not a default router".
    pub router_lifetime: u16,
    /// Reachable Time in milliseconds (0: unspecified).
    pub reachable_time: u32,
    /// Retrans Timer in milliseconds (0: unspecified).
    pub retrans_timer: u32,
    /// Prefix Information options (a handful: the whole message must stay
    /// within one IPv6 payload, and within the link MTU to be useful).
    pub prefixes: Vec<PrefixInfo>,
    /// MTU option (§4.6.4).
    pub mtu: Option<u32>,
    /// RDNSS option (RFC 8106); other options are skipped on parse.
    pub rdnss: Option<Rdnss>,
}

impl RouterAdvert {
    /// Bytes of the ICMPv6 message (without the IPv6 header).
    fn message_len(&self) -> usize {
        field::RA_OPTIONS
            + self.prefixes.len() * 32
            + self.mtu.map_or(0, |_| 8)
            + self
                .rdnss
                .as_ref()
                .map_or(0, |r| 8 + 16 * r.servers.len().min(MAX_RDNSS_SERVERS))
    }

    /// The whole IPv6 packet: header (hop limit 255), message, checksum.
    pub fn emit(&self) -> Vec<u8> {
        let mut m = vec![0u8; self.message_len()];
        m[field::TYPE] = msg_type::ROUTER_ADVERTISEMENT;
        m[field::CUR_HOP_LIMIT] = self.cur_hop_limit;
        let mut flags = 0;
        if self.managed {
            flags |= FLAG_MANAGED;
        }
        if self.other {
            flags |= FLAG_OTHER;
        }
        m[field::FLAGS] = flags;
        m[field::ROUTER_LIFETIME].copy_from_slice(&self.router_lifetime.to_be_bytes());
        m[field::REACHABLE_TIME].copy_from_slice(&self.reachable_time.to_be_bytes());
        m[field::RETRANS_TIMER].copy_from_slice(&self.retrans_timer.to_be_bytes());
        let mut at = field::RA_OPTIONS;
        for p in &self.prefixes {
            // Type, Length 4 (32 octets), Prefix Length, L|A, Valid,
            // Preferred, Reserved2, Prefix.
            let o = &mut m[at..at + 32];
            o[0] = option_type::PREFIX_INFORMATION;
            o[1] = 4;
            let len = p.len.min(128);
            o[2] = len;
            o[3] = if p.on_link { FLAG_ON_LINK } else { 0 }
                | if p.autonomous { FLAG_AUTONOMOUS } else { 0 };
            o[4..8].copy_from_slice(&p.valid.to_be_bytes());
            o[8..12].copy_from_slice(&p.preferred.to_be_bytes());
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            o[16..32].copy_from_slice(&(u128::from(p.prefix) & mask).to_be_bytes());
            at += 32;
        }
        if let Some(mtu) = self.mtu {
            // Type, Length 1, Reserved, MTU.
            m[at] = option_type::MTU;
            m[at + 1] = 1;
            m[at + 4..at + 8].copy_from_slice(&mtu.to_be_bytes());
            at += 8;
        }
        if let Some(r) = &self.rdnss {
            // RFC 8106 §5.1: Type 25, Length 1 + 2 per address, Reserved,
            // Lifetime, addresses.
            let servers = &r.servers[..r.servers.len().min(MAX_RDNSS_SERVERS)];
            let units = 1 + 2 * servers.len();
            m[at] = option_type::RDNSS;
            m[at + 1] = u8::try_from(units).unwrap_or(u8::MAX);
            m[at + 4..at + 8].copy_from_slice(&r.lifetime.to_be_bytes());
            for (i, server) in servers.iter().enumerate() {
                let start = at + 8 + 16 * i;
                m[start..start + 16].copy_from_slice(&server.octets());
            }
        }
        finish(self.src, self.dst, &mut m)
    }

    /// Parse and validate a whole IPv6 packet as an RA (RFC 4861 §6.1.2):
    /// link-local source, hop limit 255, valid checksum, Code 0, ICMP
    /// length ≥ 16, options of non-zero length. Prefix Information, MTU
    /// and RDNSS options of the wrong length are errors; other options are
    /// skipped.
    pub fn parse(packet: &[u8]) -> Result<Self, NdError> {
        let (src, dst, m) = nd_message(packet, msg_type::ROUTER_ADVERTISEMENT, field::RA_OPTIONS)?;
        if !is_link_local(&src) {
            return Err(NdError::SourceNotLinkLocal);
        }
        let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let mut ra = RouterAdvert {
            src: Ipv6Addr::from(src),
            dst: Ipv6Addr::from(dst),
            cur_hop_limit: m[field::CUR_HOP_LIMIT],
            managed: m[field::FLAGS] & FLAG_MANAGED != 0,
            other: m[field::FLAGS] & FLAG_OTHER != 0,
            router_lifetime: u16::from_be_bytes([
                m[field::ROUTER_LIFETIME.start],
                m[field::ROUTER_LIFETIME.start + 1],
            ]),
            reachable_time: be32(&m[field::REACHABLE_TIME]),
            retrans_timer: be32(&m[field::RETRANS_TIMER]),
            prefixes: Vec::new(),
            mtu: None,
            rdnss: None,
        };
        for option in options(m, field::RA_OPTIONS) {
            let (kind, body) = option?;
            match kind {
                option_type::PREFIX_INFORMATION => {
                    if body.len() != 30 {
                        return Err(NdError::BadOption);
                    }
                    let mut prefix = [0u8; 16];
                    prefix.copy_from_slice(&body[14..30]);
                    ra.prefixes.push(PrefixInfo {
                        prefix: Ipv6Addr::from(prefix),
                        len: body[0],
                        on_link: body[1] & FLAG_ON_LINK != 0,
                        autonomous: body[1] & FLAG_AUTONOMOUS != 0,
                        valid: be32(&body[2..6]),
                        preferred: be32(&body[6..10]),
                    });
                }
                option_type::MTU => {
                    if body.len() != 6 {
                        return Err(NdError::BadOption);
                    }
                    ra.mtu = Some(be32(&body[2..6]));
                }
                option_type::RDNSS => {
                    // RFC 8106 §5.1: Length is 3 or more and odd.
                    if body.len() < 22 || (body.len() - 6) % 16 != 0 {
                        return Err(NdError::BadOption);
                    }
                    let servers = body[6..]
                        .chunks_exact(16)
                        .map(|c| {
                            let mut a = [0u8; 16];
                            a.copy_from_slice(c);
                            Ipv6Addr::from(a)
                        })
                        .collect();
                    ra.rdnss = Some(Rdnss {
                        lifetime: be32(&body[2..6]),
                        servers,
                    });
                }
                _ => {}
            }
        }
        Ok(ra)
    }
}

/// Put the IPv6 header in front of an ICMPv6 `message` whose checksum
/// field is zero, and fill in the checksum.
fn finish(src: Ipv6Addr, dst: Ipv6Addr, message: &mut [u8]) -> Vec<u8> {
    let sum = checksum::finish(pseudo_sum(&src.octets(), &dst.octets(), message));
    message[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
    let mut out = Vec::with_capacity(field::IP_HEADER + message.len());
    // Version 6, Traffic Class 0, Flow Label 0.
    out.extend_from_slice(&[0x60, 0, 0, 0]);
    let len = u16::try_from(message.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.push(NEXT_HEADER);
    out.push(ND_HOP_LIMIT);
    out.extend_from_slice(&src.octets());
    out.extend_from_slice(&dst.octets());
    out.extend_from_slice(message);
    out
}

/// Whether an IPv6 packet is ICMPv6 of type `kind` right after the fixed
/// header, without other checks: the data plane's and the node's cheap
/// sort before a full parse.
pub fn is_icmpv6_type(packet: &[u8], kind: u8) -> bool {
    packet.get(field::NEXT_HEADER) == Some(&NEXT_HEADER)
        && packet.get(field::IP_HEADER + field::TYPE) == Some(&kind)
}

#[cfg(test)]
mod tests;
