//! Egress: an IP packet read from TUN, framed for its subscriber in place.

use std::net::SocketAddr;
use std::ops::Range;

use super::table::{DropReason, SessionKey, SessionTable};
use super::{l2tp_header_len, mss, write_headers, DATA_HEADROOM, PPP_HEADER_LEN};
use crate::wire::ip::{self, Ipv4Packet, Ipv6Packet};
use crate::wire::l2tp::Packet;
use crate::wire::ppp::frame::protocol;

/// What to do with one packet read from TUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Egress {
    /// Send `buf[datagram]` to `to` from the L2TP socket.
    Send {
        /// Where the datagram sits in the buffer.
        datagram: Range<usize>,
        /// The LAC.
        to: SocketAddr,
    },
    /// The session is sequenced and another shard numbers its data
    /// messages: hand the buffer to shard `shard`, which calls [`encap`]
    /// again. Nothing was written.
    Forward {
        /// The owner shard.
        shard: u16,
    },
    /// Larger than the subscriber's MTU: dropped (and counted as
    /// [`DropReason::TooBig`]). The runtime may answer the sender with an
    /// ICMP Fragmentation Needed (RFC 792; DF set) or Packet Too Big
    /// (RFC 4443 §3.2) carrying `mtu`.
    TooBig {
        /// The session's MTU.
        mtu: u16,
    },
    /// Counted and dropped.
    Drop(DropReason),
}

/// Frame the IP packet at `buf[headroom..headroom + len]` for the
/// subscriber it is addressed to.
///
/// The PPP header (Address/Control and the two-octet Protocol: what our LCP
/// negotiates) and the L2TP data header (Length, and Ns when the session is
/// sequenced) are written into the headroom right in front of the packet;
/// at least [`DATA_HEADROOM`] bytes are needed, and any more stay free in
/// front of the datagram for ESP later.
///
/// Packets above the session's MTU (the subscriber's MRU, RFC 1661 §6.1)
/// are dropped rather than sent: the LAC's link to the subscriber could
/// not carry them either. Within the MTU the datagram may still exceed the
/// path MTU towards the LAC; the kernel then fragments the outer UDP
/// datagram and the LAC reassembles, which is how L2TP behaves without
/// path MTU discovery. MSS clamping keeps TCP, most of the traffic, out of
/// both cases.
pub fn encap(table: &mut SessionTable, buf: &mut [u8], headroom: usize, len: usize) -> Egress {
    let end = match headroom.checked_add(len) {
        Some(end) if headroom >= DATA_HEADROOM && end <= buf.len() => end,
        _ => return dropped(table, DropReason::BufferTooSmall),
    };
    let packet = &buf[headroom..end];
    let (found, ppp_protocol) = match ip::version(packet) {
        Some(4) if packet.len() >= Ipv4Packet::<&[u8]>::MIN_HEADER_LEN => (
            ip::ipv4_dst(packet).and_then(|dst| table.slot_by_ipv4(dst)),
            protocol::IPV4,
        ),
        Some(6) if packet.len() >= Ipv6Packet::<&[u8]>::HEADER_LEN => (
            ip::ipv6_dst_prefix(packet).and_then(|prefix| table.slot_by_ipv6(prefix)),
            protocol::IPV6,
        ),
        Some(4 | 6) => return dropped(table, DropReason::IpMalformed),
        _ => return dropped(table, DropReason::NotIp),
    };
    let Some(index) = found else {
        return dropped(table, DropReason::NoRoute);
    };
    let shard = table.shard();
    let Some(Some(slot)) = table.slots.get_mut(index as usize) else {
        return dropped(table, DropReason::NoRoute);
    };
    let counters = &mut table.counters;
    if slot.paused {
        counters.drop(DropReason::Renegotiating);
        return Egress::Drop(DropReason::Renegotiating);
    }
    let entry = &mut slot.entry;
    if len > usize::from(entry.mtu) {
        counters.drop(DropReason::TooBig);
        return Egress::TooBig { mtu: entry.mtu };
    }
    let ns = match &mut entry.sequencing {
        Some(seq) if seq.owner != shard => {
            counters.forwarded += 1;
            return Egress::Forward { shard: seq.owner };
        }
        Some(seq) => {
            let ns = seq.next_ns;
            seq.next_ns = ns.wrapping_add(1);
            Some(ns)
        }
        None => None,
    };
    if let Some(limits) = entry.mss_clamp {
        let mss = limits.for_version(ppp_protocol == protocol::IPV6);
        if mss::clamp(&mut buf[headroom..end], mss) {
            counters.mss_clamped += 1;
        }
    }
    let start = headroom - l2tp_header_len(ns.is_some()) - PPP_HEADER_LEN;
    // An MTU within 16 bytes of 65535 would overflow the Length field.
    let total = end - start;
    if total > usize::from(u16::MAX) {
        counters.drop(DropReason::TooBig);
        return Egress::TooBig { mtu: entry.mtu };
    }
    write_headers(
        &mut buf[start..headroom],
        entry.peer,
        ns,
        ppp_protocol,
        total,
    );
    counters.packets_out += 1;
    counters.bytes_out += len as u64;
    slot.stats.packets_out += 1;
    slot.stats.bytes_out += len as u64;
    Egress::Send {
        datagram: start..end,
        to: slot.entry.lac,
    }
}

fn dropped(table: &mut SessionTable, reason: DropReason) -> Egress {
    table.counters.drop(reason);
    Egress::Drop(reason)
}

/// What [`stamp_ns`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// Ns was written; send the datagram.
    Stamped {
        /// The value written.
        ns: u16,
    },
    /// Nothing to number (no S bit, a control message, a session without
    /// sequencing or not installed yet): send the datagram as it is.
    Unchanged,
    /// Another shard numbers this session: hand the datagram over.
    Forward {
        /// The owner shard.
        shard: u16,
    },
    /// Not an L2TP data message of that session: the caller's mistake.
    Drop(DropReason),
}

/// Number a data message the control thread built (a PPP control frame of
/// session `key`) with the session's next Ns.
///
/// RFC 2661 §5.4 counts every data message of a sequenced session, PPP
/// control frames included, so once the entry is installed the control
/// thread's frames for the session go through the owner shard, which
/// overwrites the Ns that `proto::node` wrote. Until then (LCP,
/// authentication and the NCPs run before the session reaches the data
/// plane) the node numbers its frames itself, and the install hands the
/// next value over in [`Sequencing::next_ns`](super::Sequencing).
pub fn stamp_ns(table: &mut SessionTable, key: SessionKey, datagram: &mut [u8]) -> Stamp {
    let at = match Packet::new_checked(&*datagram) {
        Ok(packet) if packet.is_control() || !packet.has_sequence() => return Stamp::Unchanged,
        Ok(packet) => {
            let Some(entry) = table.get(key) else {
                return Stamp::Unchanged;
            };
            if (packet.tunnel_id(), packet.session_id()) != entry.peer {
                return Stamp::Drop(DropReason::UnknownSession);
            }
            // Ns follows the flags word, the optional Length and the IDs.
            if packet.has_length() {
                8
            } else {
                6
            }
        }
        Err(_) => return Stamp::Drop(DropReason::L2tpMalformed),
    };
    let shard = table.shard();
    let Some(index) = table.slot_by_key(key) else {
        return Stamp::Unchanged;
    };
    let Some(Some(slot)) = table.slots.get_mut(index as usize) else {
        return Stamp::Unchanged;
    };
    match &mut slot.entry.sequencing {
        None => Stamp::Unchanged,
        Some(seq) if seq.owner != shard => Stamp::Forward { shard: seq.owner },
        Some(seq) => {
            let ns = seq.next_ns;
            seq.next_ns = ns.wrapping_add(1);
            datagram[at..at + 2].copy_from_slice(&ns.to_be_bytes());
            Stamp::Stamped { ns }
        }
    }
}
