//! Ingress: an L2TP datagram from a LAC, sorted in one pass.

use std::net::SocketAddr;

use super::table::{DropReason, SessionKey, SessionTable};
use super::{l2tp_header_len, mss, write_headers, PPP_HEADER_LEN};
use crate::wire::icmpv6::{self, msg_type};
use crate::wire::ip::{self, Ipv4Packet, Ipv6Packet};
use crate::wire::l2tp::{Packet, WireError};
use crate::wire::ppp::cp::{self, Code};
use crate::wire::ppp::frame::protocol;
use crate::wire::ppp::Frame;

/// What to do with one datagram from the L2TP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingress<'a> {
    /// Write this IPv4 or IPv6 packet to TUN. It borrows the datagram, cut
    /// to the IP length (link padding dropped) and already MSS-clamped.
    ToTun {
        /// The IP packet.
        packet: &'a [u8],
    },
    /// An LCP Echo-Reply sits in `reply[..len]`; send it to `to`.
    Reply {
        /// Bytes of the reply datagram.
        len: usize,
        /// The LAC.
        to: SocketAddr,
    },
    /// A PPP frame for the control thread's session (LCP other than an
    /// Echo-Request we answer, authentication, IPCP, IPv6CP, IPv6
    /// link-local traffic such as Router Solicitations): pass it the whole
    /// datagram, as `Node::handle_datagram` takes it.
    ToControl {
        /// Our (tunnel, session) IDs of the session.
        key: SessionKey,
        /// The datagram, unchanged.
        datagram: &'a [u8],
    },
    /// An L2TP control message (T bit): for the control thread.
    Control {
        /// The datagram, unchanged.
        datagram: &'a [u8],
    },
    /// Counted and dropped.
    Drop(DropReason),
}

/// Sort one datagram received from `from`.
///
/// `datagram` is mutable only so that the MSS of a TCP SYN can be clamped
/// in place; nothing else in it changes. `reply` receives an Echo-Reply;
/// one as large as `datagram` plus 8 bytes always suffices (a reply that
/// does not fit goes to the control thread instead).
///
/// RFC 2661 §3.1 data messages are accepted in every header form: with or
/// without Length, with or without Ns/Nr (the order is not enforced: IP
/// copes with reordering, and holding packets back to restore it would
/// cost latency and buffers for little gain), with an Offset Size and its
/// pad. PPP frames are accepted with or without Address/Control and with
/// a one- or two-octet Protocol (RFC 1661 §6.5, §6.6), whatever LCP
/// agreed: `Frame::parse` tells the forms apart.
pub fn decap<'a>(
    table: &mut SessionTable,
    from: SocketAddr,
    datagram: &'a mut [u8],
    reply: &mut [u8],
) -> Ingress<'a> {
    let (key, start, end) = match Packet::new_checked(&*datagram) {
        Ok(packet) if packet.is_control() => {
            table.counters.control += 1;
            return Ingress::Control { datagram };
        }
        Ok(packet) => {
            let end = packet.length().map_or(datagram.len(), usize::from);
            (
                (packet.tunnel_id(), packet.session_id()),
                packet.header_len(),
                end,
            )
        }
        Err(WireError::BadVersion(_)) => return dropped(table, DropReason::L2tpVersion),
        Err(_) => return dropped(table, DropReason::L2tpMalformed),
    };
    let Some(index) = table.slot_by_key(key) else {
        return dropped(table, DropReason::UnknownSession);
    };
    let shard = table.shard();
    let Some(Some(slot)) = table.slots.get_mut(index as usize) else {
        return dropped(table, DropReason::UnknownSession);
    };
    let counters = &mut table.counters;
    // Tunnel and session IDs are guessable; the LAC's address pins the
    // session to the peer the control connection runs with.
    if slot.entry.lac != from {
        counters.drop(DropReason::WrongPeer);
        return Ingress::Drop(DropReason::WrongPeer);
    }
    let Ok(frame) = Frame::parse(&datagram[start..end]) else {
        counters.drop(DropReason::PppMalformed);
        return Ingress::Drop(DropReason::PppMalformed);
    };
    let info = end - frame.payload.len();
    let entry = &slot.entry;
    match frame.protocol {
        protocol::IPV4 | protocol::IPV6 if slot.paused => {
            counters.drop(DropReason::Renegotiating);
            Ingress::Drop(DropReason::Renegotiating)
        }
        protocol::IPV4 | protocol::IPV6 => {
            let v6 = frame.protocol == protocol::IPV6;
            let len = match check_source(entry, v6, frame.payload) {
                Ok(len) => len,
                Err(Verdict::Drop(reason)) => {
                    counters.drop(reason);
                    return Ingress::Drop(reason);
                }
                Err(Verdict::Control) => {
                    counters.to_control += 1;
                    return Ingress::ToControl { key, datagram };
                }
            };
            let clamp = entry.mss_clamp;
            let packet = &mut datagram[info..info + len];
            if let Some(limits) = clamp {
                if mss::clamp(packet, limits.for_version(v6)) {
                    counters.mss_clamped += 1;
                }
            }
            counters.packets_in += 1;
            counters.bytes_in += len as u64;
            slot.stats.packets_in += 1;
            slot.stats.bytes_in += len as u64;
            Ingress::ToTun { packet }
        }
        // While LCP renegotiates, Echo is the control thread's to answer
        // (or not: RFC 1661 §5.8 answers only in Opened).
        protocol::LCP if !slot.paused => {
            let answer = echo_reply(entry, shard, frame.payload, reply);
            match answer {
                Some(len) => {
                    if let Some(seq) = &mut slot.entry.sequencing {
                        seq.next_ns = seq.next_ns.wrapping_add(1);
                    }
                    counters.echo_replies += 1;
                    Ingress::Reply {
                        len,
                        to: slot.entry.lac,
                    }
                }
                None => {
                    counters.to_control += 1;
                    Ingress::ToControl { key, datagram }
                }
            }
        }
        _ => {
            counters.to_control += 1;
            Ingress::ToControl { key, datagram }
        }
    }
}

fn dropped(table: &mut SessionTable, reason: DropReason) -> Ingress<'static> {
    table.counters.drop(reason);
    Ingress::Drop(reason)
}

enum Verdict {
    Drop(DropReason),
    Control,
}

/// Check an IP packet from the subscriber: the version nibble matches the
/// PPP protocol, the header lengths fit, and the source is the
/// subscriber's (an address it was given, not one it made up). Returns the
/// IP length.
fn check_source(entry: &super::SessionEntry, v6: bool, packet: &[u8]) -> Result<usize, Verdict> {
    let expected = if v6 { 6 } else { 4 };
    match ip::version(packet) {
        None => return Err(Verdict::Drop(DropReason::IpMalformed)),
        Some(version) if version != expected => {
            return Err(Verdict::Drop(DropReason::IpVersionMismatch))
        }
        Some(_) => {}
    }
    if !v6 {
        let ip =
            Ipv4Packet::new_checked(packet).map_err(|_| Verdict::Drop(DropReason::IpMalformed))?;
        return if entry.ipv4 == Some(ip.src()) {
            Ok(ip.total_len())
        } else {
            Err(Verdict::Drop(DropReason::SpoofedSource))
        };
    }
    let ip = Ipv6Packet::new_checked(packet).map_err(|_| Verdict::Drop(DropReason::IpMalformed))?;
    let src = ip.src_bytes();
    let (prefix, ifid) = src.split_at(8);
    let own_prefix = entry.ipv6_prefix.is_some_and(|p| p == prefix);
    // The destination's first two octets sort out, cheaply, the few
    // packets that concern this PPP link only: multicast (ff00::/8) and
    // link-local (fe80::/10, RFC 4291 §2.5.6) destinations.
    let dst = ip.dst_bytes();
    let link_scoped = dst[0] == 0xff || icmpv6::is_link_local(&dst);
    if !link_scoped {
        if own_prefix {
            return Ok(ip.total_len());
        }
        // Not from the /64; link-local sources are never forwarded either.
        return Err(Verdict::Drop(DropReason::SpoofedSource));
    }
    // fe80::/64 with the identifier IPv6CP agreed (RFC 5072 §5) is the
    // subscriber's link-local address; a Router Solicitation may also come
    // from the unspecified address (RFC 4861 §4.1) or from an address in
    // the /64.
    const LINK_LOCAL: [u8; 8] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0];
    let from_subscriber = match entry.ipv6_ifids {
        Some(ids) => own_prefix || (prefix == LINK_LOCAL && ids.peer == ifid) || src == [0u8; 16],
        None => false,
    };
    if !from_subscriber {
        return Err(Verdict::Drop(DropReason::SpoofedSource));
    }
    // Router and Neighbor Solicitations are for the router of this one
    // link, which the shared TUN device cannot tell apart: the control
    // thread answers them. Anything else link-scoped stops here.
    if icmpv6::is_icmpv6_type(packet, msg_type::ROUTER_SOLICITATION)
        || icmpv6::is_icmpv6_type(packet, msg_type::NEIGHBOR_SOLICITATION)
    {
        return Err(Verdict::Control);
    }
    Err(Verdict::Drop(DropReason::LinkScope))
}

/// Answer an LCP Echo-Request on the fast path (RFC 1661 §5.8): "Upon
/// reception of an Echo-Request in the LCP Opened state, an Echo-Reply MUST
/// be transmitted." A session is in the table only while LCP is Opened.
/// The reply keeps the Identifier, puts our Magic-Number in place of the
/// sender's and copies the rest of the Data, as `proto::ppp::link` does.
///
/// Returns the reply length, or `None` to leave the frame to the control
/// thread: any other LCP code, a malformed packet, a request carrying our
/// own Magic-Number (a looped-back link is the link's business, §6.4), a
/// sequencing session this shard does not number, or a reply buffer too
/// small.
fn echo_reply(
    entry: &super::SessionEntry,
    shard: u16,
    lcp: &[u8],
    reply: &mut [u8],
) -> Option<usize> {
    let packet = cp::Packet::new_checked(lcp).ok()?;
    if packet.code() != Code::EchoRequest {
        return None;
    }
    let data = packet.data();
    let (magic, rest) = data.split_first_chunk::<4>()?;
    if entry.magic != 0 && u32::from_be_bytes(*magic) == entry.magic {
        return None;
    }
    let ns = match entry.sequencing {
        Some(seq) if seq.owner != shard => return None,
        Some(seq) => Some(seq.next_ns),
        None => None,
    };
    let headers = l2tp_header_len(ns.is_some()) + PPP_HEADER_LEN;
    let lcp_len = cp::HEADER_LEN + data.len();
    let total = headers + lcp_len;
    if total > usize::from(u16::MAX) {
        return None;
    }
    let out = reply.get_mut(..total)?;
    let (head, body) = out.split_at_mut(headers);
    write_headers(head, entry.peer, ns, protocol::LCP, total);
    body[0] = u8::from(Code::EchoReply);
    body[1] = packet.identifier();
    body[2..4].copy_from_slice(&(lcp_len as u16).to_be_bytes());
    body[4..8].copy_from_slice(&entry.magic.to_be_bytes());
    body[8..].copy_from_slice(rest);
    Some(total)
}
