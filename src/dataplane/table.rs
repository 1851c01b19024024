//! The per-shard session table: a slab of entries with hash indexes by
//! session key (ingress) and by subscriber address (egress), plus the
//! shard's counters.
//!
//! Every shard holds a full replica. The control thread sends the same
//! install/remove messages to all shards in the same order, so the replicas
//! agree on everything but the mutable per-packet state (counters, per
//! session statistics, and the next Ns of sequencing sessions, which only
//! the owner shard's copy advances).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use rustc_hash::FxHashMap;

/// A session as the data plane names it on ingress: (our tunnel ID, our
/// session ID), the IDs the LAC writes into every data message (RFC 2661
/// §3.1: the receiver's identifiers).
pub type SessionKey = (u16, u16);

/// Data sequencing of one session (RFC 2661 §5.4).
///
/// Ns has to count every data message of the session in order, but egress
/// packets of one subscriber can surface on any shard (the kernel picks the
/// TUN queue). So one shard owns the counter: by convention the shard that
/// owns the tunnel (`our tunnel ID % shards`), which is also where the
/// reuseport program delivers the session's ingress, so Echo-Replies
/// answered there are numbered too. Another shard that meets an egress
/// packet of such a session gets [`Egress::Forward`](super::Egress) and
/// hands the packet to the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sequencing {
    /// The shard that numbers this session's data messages.
    pub owner: u16,
    /// The Ns of the next data message we send (meaningful in the owner's
    /// replica only).
    pub next_ns: u16,
}

/// IPv6CP interface identifiers (RFC 5072 §4.1), both ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Ifids {
    /// Ours: the LNS's link-local address is fe80::`ours`.
    pub ours: [u8; 8],
    /// The subscriber's: its link-local address is fe80::`peer`.
    pub peer: [u8; 8],
}

/// What the data plane knows about one session. The control thread builds
/// it when PPP reaches the network phase and installs it on every shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEntry {
    /// Our (tunnel ID, session ID): ingress lookup key.
    pub key: SessionKey,
    /// The LAC's (tunnel ID, session ID): written into egress headers.
    pub peer: SessionKey,
    /// The LAC's address: egress destination, and the only source accepted
    /// for this session's ingress.
    pub lac: SocketAddr,
    /// The subscriber's IPv4 address from IPCP; egress index and ingress
    /// source check.
    pub ipv4: Option<Ipv4Addr>,
    /// The subscriber's IPv6 /64 (upper 64 bits); egress index and ingress
    /// source check. A delegated shorter prefix (DHCPv6-PD) would need a
    /// longest-prefix match: a separate index to add next to this one.
    pub ipv6_prefix: Option<[u8; 8]>,
    /// Interface identifiers agreed by IPv6CP: link-local sources.
    pub ipv6_ifids: Option<Ipv6Ifids>,
    /// Data sequencing, when the LAC asked for it (Sequencing Required,
    /// RFC 2661 §4.4.6) or we chose it.
    pub sequencing: Option<Sequencing>,
    /// Our LCP Magic-Number (RFC 1661 §6.4), 0 when none was negotiated;
    /// it goes into every Echo-Reply (§5.8).
    pub magic: u32,
    /// The largest IP packet we send to the subscriber: the peer's MRU
    /// (RFC 1661 §6.1).
    pub mtu: u16,
    /// Clamp the MSS option of TCP SYNs in both directions.
    pub mss_clamp: Option<MssClamp>,
}

/// The largest MSS let through in a SYN, per IP version of the segment:
/// the IPv6 header is 20 bytes longer than IPv4's, so the same MTU leaves
/// IPv6 TCP 20 bytes less (the configuration's `MssLimits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MssClamp {
    /// For TCP over IPv4.
    pub ipv4: u16,
    /// For TCP over IPv6.
    pub ipv6: u16,
}

impl MssClamp {
    /// The value for an IPv6 (`true`) or IPv4 segment.
    pub const fn for_version(self, ipv6: bool) -> u16 {
        if ipv6 {
            self.ipv6
        } else {
            self.ipv4
        }
    }
}

/// Traffic of one session in this shard, the basis of RADIUS accounting
/// (Acct-Input-* is what the subscriber sent). IP bytes, PPP and L2TP
/// overhead excluded. The control thread sums the shards' figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// IP packets received from the subscriber and written to TUN.
    pub packets_in: u64,
    /// Their bytes.
    pub bytes_in: u64,
    /// IP packets sent to the subscriber.
    pub packets_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
}

/// Why the data plane dropped a packet. Flat and `Copy`: each variant is a
/// metric label ([`DropReason::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The L2TP header fails RFC 2661 §3.1's length and flag rules.
    L2tpMalformed,
    /// Version other than 2 (L2F, L2TPv3 or noise).
    L2tpVersion,
    /// A data message for a (tunnel, session) not in the table.
    UnknownSession,
    /// A data message from an address other than the session's LAC.
    WrongPeer,
    /// No PPP Protocol field.
    PppMalformed,
    /// An IP header whose lengths do not fit the frame.
    IpMalformed,
    /// The version nibble disagrees with the PPP protocol.
    IpVersionMismatch,
    /// The source address is not the subscriber's.
    SpoofedSource,
    /// IPv6 to a multicast or link-local destination that is not Neighbor
    /// Discovery for the router (a Router or Neighbor Solicitation): it
    /// concerns the PPP link only and is never forwarded.
    LinkScope,
    /// Egress: no session has the destination address.
    NoRoute,
    /// Egress: not an IPv4 or IPv6 packet.
    NotIp,
    /// Egress: larger than the session's MTU.
    TooBig,
    /// Egress: the caller's buffer or headroom cannot hold the headers.
    BufferTooSmall,
    /// Either way: the session's PPP is renegotiating (RFC 1661 §3.2: no
    /// network-layer packet passes until its NCP is Opened again).
    Renegotiating,
}

impl DropReason {
    /// Number of reasons (size of the counter array).
    pub const COUNT: usize = 14;

    /// Every reason, in counter order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::L2tpMalformed,
        DropReason::L2tpVersion,
        DropReason::UnknownSession,
        DropReason::WrongPeer,
        DropReason::PppMalformed,
        DropReason::IpMalformed,
        DropReason::IpVersionMismatch,
        DropReason::SpoofedSource,
        DropReason::LinkScope,
        DropReason::NoRoute,
        DropReason::NotIp,
        DropReason::TooBig,
        DropReason::BufferTooSmall,
        DropReason::Renegotiating,
    ];

    /// Snake-case name for a metric label.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::L2tpMalformed => "l2tp_malformed",
            DropReason::L2tpVersion => "l2tp_version",
            DropReason::UnknownSession => "unknown_session",
            DropReason::WrongPeer => "wrong_peer",
            DropReason::PppMalformed => "ppp_malformed",
            DropReason::IpMalformed => "ip_malformed",
            DropReason::IpVersionMismatch => "ip_version_mismatch",
            DropReason::SpoofedSource => "spoofed_source",
            DropReason::LinkScope => "link_scope",
            DropReason::NoRoute => "no_route",
            DropReason::NotIp => "not_ip",
            DropReason::TooBig => "too_big",
            DropReason::BufferTooSmall => "buffer_too_small",
            DropReason::Renegotiating => "ppp_renegotiating",
        }
    }

    pub(super) const fn index(self) -> usize {
        self as usize
    }
}

/// One shard's data-plane counters: plain integers, summed across shards
/// when scraped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// IP packets from subscribers handed to TUN.
    pub packets_in: u64,
    /// Their IP bytes.
    pub bytes_in: u64,
    /// IP packets encapsulated towards subscribers.
    pub packets_out: u64,
    /// Their IP bytes.
    pub bytes_out: u64,
    /// LCP Echo-Requests answered here.
    pub echo_replies: u64,
    /// PPP control frames passed to the control thread.
    pub to_control: u64,
    /// L2TP control messages passed to the control thread.
    pub control: u64,
    /// Egress packets handed to the owner shard of a sequencing session.
    pub forwarded: u64,
    /// TCP SYNs whose MSS option was lowered.
    pub mss_clamped: u64,
    /// Installs that took an address another session still held.
    pub address_conflicts: u64,
    /// Drops, indexed by [`DropReason`] (see [`Counters::dropped`]).
    pub drops: [u64; DropReason::COUNT],
}

impl Counters {
    /// Packets dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    /// All drops.
    pub fn dropped_total(&self) -> u64 {
        self.drops.iter().sum()
    }

    pub(super) fn drop(&mut self, reason: DropReason) {
        self.drops[reason.index()] += 1;
    }
}

#[derive(Debug, Clone)]
pub(super) struct Slot {
    pub(super) entry: SessionEntry,
    pub(super) stats: SessionStats,
    /// PPP renegotiates: IP is dropped both ways, LCP goes to the control
    /// thread, and sequencing keeps counting. The next install clears it.
    pub(super) paused: bool,
}

/// A shard's replica of every data-plane session.
///
/// Entries live in a slab (`Vec` of slots, freed slots reused), indexed by
/// three `FxHashMap`s from compact integer keys to slot numbers. Keys are
/// IDs we allocated and addresses our pools handed out, so the unkeyed Fx
/// hash is safe here. Sized for a million sessions: reserve with
/// [`SessionTable::with_capacity`] and nothing reallocates.
#[derive(Debug, Clone)]
pub struct SessionTable {
    shard: u16,
    pub(super) slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    by_key: FxHashMap<u32, u32>,
    by_ipv4: FxHashMap<u32, u32>,
    by_ipv6: FxHashMap<u64, u32>,
    pub(super) counters: Counters,
}

const fn pack(key: SessionKey) -> u32 {
    (key.0 as u32) << 16 | key.1 as u32
}

impl SessionTable {
    /// An empty table for shard `shard`.
    pub fn new(shard: u16) -> Self {
        Self::with_capacity(shard, 0)
    }

    /// An empty table with room for `sessions` entries.
    pub fn with_capacity(shard: u16, sessions: usize) -> Self {
        fn map<K, V>(n: usize) -> FxHashMap<K, V> {
            FxHashMap::with_capacity_and_hasher(n, Default::default())
        }
        SessionTable {
            shard,
            slots: Vec::with_capacity(sessions),
            free: Vec::new(),
            by_key: map(sessions),
            by_ipv4: map(sessions),
            by_ipv6: map(sessions),
            counters: Counters::default(),
        }
    }

    /// The shard this replica serves (compared with
    /// [`Sequencing::owner`]).
    pub fn shard(&self) -> u16 {
        self.shard
    }

    /// Sessions installed.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// No session installed.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// This shard's counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Install a session, or replace the one with the same key (a
    /// renegotiated address, a new MSS clamp); a replaced session keeps its
    /// statistics and its data sequence counter (this table's Ns is newer
    /// than the control thread's), is no longer paused, and its old entry
    /// is returned.
    ///
    /// An address still indexed for another session moves to this one
    /// (last writer wins, as a route replace does) and is counted in
    /// [`Counters::address_conflicts`]: the control plane should never do
    /// it, and the subscriber it names last is the one that asked last.
    pub fn install(&mut self, entry: SessionEntry) -> Option<SessionEntry> {
        let key = pack(entry.key);
        let (slot, old) = match self.by_key.get(&key) {
            Some(&slot) => {
                let old = self.slots[slot as usize].take();
                (slot, old)
            }
            None => {
                let slot = match self.free.pop() {
                    Some(slot) => slot,
                    None => {
                        self.slots.push(None);
                        // A slab of over 4 G sessions cannot exist: 16-bit
                        // tunnel and session IDs give at most 2^32 keys.
                        (self.slots.len() - 1) as u32
                    }
                };
                self.by_key.insert(key, slot);
                (slot, None)
            }
        };
        let mut entry = entry;
        let stats = match &old {
            Some(old) => {
                self.unindex(slot, &old.entry);
                if let (Some(new), Some(was)) = (&mut entry.sequencing, &old.entry.sequencing) {
                    new.next_ns = was.next_ns;
                }
                old.stats
            }
            None => SessionStats::default(),
        };
        if let Some(ip) = entry.ipv4 {
            if let Some(prev) = self.by_ipv4.insert(u32::from(ip), slot) {
                if prev != slot {
                    self.counters.address_conflicts += 1;
                }
            }
        }
        if let Some(prefix) = entry.ipv6_prefix {
            if let Some(prev) = self.by_ipv6.insert(u64::from_be_bytes(prefix), slot) {
                if prev != slot {
                    self.counters.address_conflicts += 1;
                }
            }
        }
        self.slots[slot as usize] = Some(Slot {
            entry,
            stats,
            paused: false,
        });
        old.map(|s| s.entry)
    }

    /// Hold a session's IP traffic while its PPP renegotiates (see
    /// [`DropReason::Renegotiating`]); false when the key is unknown.
    pub fn pause(&mut self, key: SessionKey) -> bool {
        let Some(&slot) = self.by_key.get(&pack(key)) else {
            return false;
        };
        match self.slots.get_mut(slot as usize) {
            Some(Some(slot)) => {
                slot.paused = true;
                true
            }
            _ => false,
        }
    }

    /// Whether the session is paused for a renegotiation.
    pub fn is_paused(&self, key: SessionKey) -> bool {
        self.slot_by_key(key)
            .and_then(|slot| self.slot(slot))
            .is_some_and(|slot| slot.paused)
    }

    /// Remove a session; its entry and final statistics (for the accounting
    /// Stop) come back.
    pub fn remove(&mut self, key: SessionKey) -> Option<(SessionEntry, SessionStats)> {
        let slot = self.by_key.remove(&pack(key))?;
        let old = self.slots.get_mut(slot as usize)?.take()?;
        self.unindex(slot, &old.entry);
        self.free.push(slot);
        Some((old.entry, old.stats))
    }

    /// Drop the address indexes that still point at `slot`.
    fn unindex(&mut self, slot: u32, entry: &SessionEntry) {
        if let Some(ip) = entry.ipv4 {
            let ip = u32::from(ip);
            if self.by_ipv4.get(&ip) == Some(&slot) {
                self.by_ipv4.remove(&ip);
            }
        }
        if let Some(prefix) = entry.ipv6_prefix {
            let prefix = u64::from_be_bytes(prefix);
            if self.by_ipv6.get(&prefix) == Some(&slot) {
                self.by_ipv6.remove(&prefix);
            }
        }
    }

    /// The session with our (tunnel, session) IDs.
    pub fn get(&self, key: SessionKey) -> Option<&SessionEntry> {
        self.slot(self.slot_by_key(key)?).map(|s| &s.entry)
    }

    /// A session's traffic counted by this shard.
    pub fn stats(&self, key: SessionKey) -> Option<&SessionStats> {
        self.slot(self.slot_by_key(key)?).map(|s| &s.stats)
    }

    /// The session whose subscriber has IPv4 address `addr`.
    pub fn lookup_ipv4(&self, addr: Ipv4Addr) -> Option<&SessionEntry> {
        self.slot(self.slot_by_ipv4(addr)?).map(|s| &s.entry)
    }

    /// The session whose /64 holds `addr`.
    pub fn lookup_ipv6(&self, addr: Ipv6Addr) -> Option<&SessionEntry> {
        let octets = addr.octets();
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&octets[..8]);
        self.slot(self.slot_by_ipv6(prefix)?).map(|s| &s.entry)
    }

    /// Every session with this shard's statistics of it (for interim
    /// accounting and the management CLI).
    pub fn iter(&self) -> impl Iterator<Item = (&SessionEntry, &SessionStats)> {
        self.slots
            .iter()
            .flatten()
            .map(|slot| (&slot.entry, &slot.stats))
    }

    pub(super) fn slot_by_key(&self, key: SessionKey) -> Option<u32> {
        self.by_key.get(&pack(key)).copied()
    }

    pub(super) fn slot_by_ipv4(&self, addr: Ipv4Addr) -> Option<u32> {
        self.by_ipv4.get(&u32::from(addr)).copied()
    }

    pub(super) fn slot_by_ipv6(&self, prefix: [u8; 8]) -> Option<u32> {
        self.by_ipv6.get(&u64::from_be_bytes(prefix)).copied()
    }

    /// The slot an index points at. Indexes and slab change together
    /// (install/remove), so this is `Some` for every live index; callers
    /// treat `None` like a missing session rather than trust that.
    pub(super) fn slot(&self, slot: u32) -> Option<&Slot> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }
}
