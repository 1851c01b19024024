//! The per-packet fast path of the shard workers: session tables, L2TP/PPP
//! decapsulation and encapsulation in the caller's buffers, LCP echo
//! answers, anti-spoofing and TCP MSS clamping.
//!
//! Pure like `wire` and `proto`: no system calls, locks, clock, threads or
//! allocation per packet. A shard owns one [`SessionTable`] (a replica of
//! every session, kept in step by the control thread's install/remove
//! messages) and calls:
//!
//! - [`decap`] for every datagram from the L2TP socket: IP packets come
//!   back borrowed for the TUN write, Echo-Requests are answered into the
//!   caller's reply buffer, everything else is sorted for the control
//!   thread or dropped with a [`DropReason`];
//! - [`encap`] for every packet read from TUN into a buffer with
//!   [`MAX_HEADROOM`] free bytes in front: the PPP and L2TP headers are
//!   written into that headroom and the datagram range comes back with the
//!   LAC's address;
//! - [`stamp_ns`] for PPP frames the control thread sends on a sequencing
//!   session, so they share the owner shard's Ns counter.
//!
//! The shape follows boringtun's `decapsulate`: one call per packet, an
//! enum out that borrows the buffer, no callback and no queue.
#![forbid(unsafe_code)]

mod egress;
mod ingress;
pub mod mss;
mod table;

pub use egress::{encap, stamp_ns, Egress, Stamp};
pub use ingress::{decap, Ingress};
pub use table::{
    Counters, DropReason, Ipv6Ifids, MssClamp, Sequencing, SessionEntry, SessionKey, SessionStats,
    SessionTable,
};

/// Longest L2TP data header we write: flags and version, Length, Tunnel ID,
/// Session ID, Ns and Nr (RFC 2661 §3.1, L and S bits; never an offset).
pub const L2TP_DATA_HEADER_MAX: usize = 12;

/// The PPP header we write: Address 0xff, Control 0x03 (RFC 1662 §3.1)
/// and a two-octet Protocol (RFC 1661 §2). Address/Control and Protocol
/// compression are never negotiated by our LCP, so always four octets.
pub const PPP_HEADER_LEN: usize = 4;

/// Headroom [`encap`] needs in front of the IP packet today.
pub const DATA_HEADROOM: usize = L2TP_DATA_HEADER_MAX + PPP_HEADER_LEN;

/// Room L2TP/IPsec will need in front of the L2TP header: ESP transport
/// mode in UDP (RFC 3948) protects the L2TP UDP datagram, so an ESP header
/// (SPI and Sequence Number, 8 octets, RFC 4303 §2), an IV (8 octets for
/// AES-GCM, RFC 4106 §3.1; 16 for AES-CBC, RFC 3602 §3) and the inner UDP
/// header (8) go between the outer UDP header, which the socket adds, and
/// the L2TP header.
pub const ESP_HEADROOM: usize = 8 + 16 + 8;

/// Headroom to leave in front of every packet read from TUN, so any
/// encapsulation, L2TP/IPsec included, builds in place.
pub const MAX_HEADROOM: usize = DATA_HEADROOM + ESP_HEADROOM;

/// Room to leave behind every packet read from TUN for the ESP trailer
/// (RFC 4303 §2.4–2.8): up to 15 octets of padding to a 16-octet cipher
/// block, Pad Length, Next Header, and an ICV of up to 32 octets
/// (HMAC-SHA-512-256, RFC 4868; GCM's is 16). Plain L2TP needs none.
pub const MAX_TAILROOM: usize = 15 + 2 + 32;

/// Bytes an L2TP data header takes with the flags we write.
const fn l2tp_header_len(sequenced: bool) -> usize {
    if sequenced {
        12
    } else {
        8
    }
}

/// Write the L2TP data header and the PPP header into `out`, which is
/// exactly their size, for a datagram of `total` bytes.
///
/// RFC 2661 §3.1: T clear (data), L set so the LAC can check the length
/// against the UDP datagram, S set with Ns when the session is sequenced
/// (§5.4; Nr is reserved on data messages and sent as zero), O clear, P
/// clear, version 2; Tunnel and Session ID are the LAC's.
fn write_headers(out: &mut [u8], peer: SessionKey, ns: Option<u16>, protocol: u16, total: usize) {
    use crate::wire::l2tp::header::{flags, VERSION};
    let mut word = flags::LENGTH | VERSION;
    if ns.is_some() {
        word |= flags::SEQUENCE;
    }
    let mut fields = [0u16; 7];
    fields[0] = word;
    fields[1] = total as u16;
    fields[2] = peer.0;
    fields[3] = peer.1;
    let mut count = 4;
    if let Some(ns) = ns {
        fields[4] = ns;
        fields[5] = 0;
        count = 6;
    }
    fields[count] = 0xff03;
    count += 1;
    for (chunk, value) in out.chunks_exact_mut(2).zip(&fields[..count]) {
        chunk.copy_from_slice(&value.to_be_bytes());
    }
    if let Some(tail) = out.get_mut(count * 2..count * 2 + 2) {
        tail.copy_from_slice(&protocol.to_be_bytes());
    }
}

#[cfg(test)]
mod tests;
