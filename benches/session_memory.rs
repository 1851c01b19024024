//! Heap per online session on the LNS side: the control thread's state
//! (L2TP session, PPP link, AAA and pool bookkeeping in `proto::node`) and
//! one shard's data-plane entry, measured with a counting allocator around
//! mimalloc (the daemon's allocator).
//!
//! `cargo bench --bench session_memory` prints one line per case; a
//! measurement, not a check. Issue 5's goal is at most 1 KiB of daemon RSS
//! per session; the daemon holds one node entry plus one table slot per
//! shard for every session.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::alloc::{GlobalAlloc, Layout};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use lns::dataplane::{SessionEntry, SessionTable};
use lns::proto::node::NodeEvent;
use lns::wire::ppp::lcp::AuthMethod;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to mimalloc unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as ours.
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

const SESSIONS: usize = 5_000;

#[path = "common/pair.rs"]
mod pair;
use pair::{dial_all, lac_node, tunnel_up as pair};

/// Bytes of LNS-side heap per session once `SESSIONS` are online.
fn node_bytes_per_session(method: AuthMethod, proxy: bool, ipv6cp: bool) -> f64 {
    let (mut net, tunnel) = pair(method, ipv6cp);
    net.a_events.clear();
    net.b_events.clear();
    let before = live();
    dial_all(&mut net, tunnel, SESSIONS, proxy);
    let mut up = 0;
    let deadline = net.now + Duration::from_secs(600);
    while up < SESSIONS && net.now < deadline {
        if !net.step() {
            break;
        }
        net.a_events.clear();
        up += net
            .b_events
            .drain(..)
            .filter(|e| matches!(e, NodeEvent::SessionUp { .. }))
            .count();
    }
    assert_eq!(up, SESSIONS);
    // Let retransmission state settle, then take the LAC side away: what
    // is left above `before` is the LNS's (plus the simulator's queues,
    // empty by now).
    net.run_for(Duration::from_secs(2));
    net.a_events.clear();
    net.b_events.clear();
    // As the daemon's control thread does every second.
    net.a.shrink_queues();
    net.b.shrink_queues();
    let lac_and_lns = live() - before;
    net.a = lac_node(ipv6cp);
    let lns = live() - before;
    eprintln!(
        "  both ends {:.0} B/session, LAC side {:.0}, LNS side {:.0}",
        lac_and_lns as f64 / SESSIONS as f64,
        (lac_and_lns - lns) as f64 / SESSIONS as f64,
        lns as f64 / SESSIONS as f64
    );
    lns as f64 / SESSIONS as f64
}

/// Bytes per session of one shard's table, filled to `SESSIONS`.
fn table_bytes_per_session() -> f64 {
    let before = live();
    let mut table = SessionTable::new(0);
    for n in 0..SESSIONS as u32 {
        table.install(SessionEntry {
            key: ((n >> 16) as u16 + 1, n as u16),
            peer: (7, n as u16),
            lac: SocketAddr::from(([192, 0, 2, 1], 1701)),
            ipv4: Some(Ipv4Addr::from(0x6440_0000 + n)),
            ipv6_prefix: Some((0x2001_0db8_0000_0000u64 + u64::from(n)).to_be_bytes()),
            ipv6_ifids: None,
            sequencing: None,
            magic: n,
            mtu: 1456,
            mss_clamp: None,
        });
    }
    let bytes = live() - before;
    drop(table);
    bytes as f64 / SESSIONS as f64
}

fn main() {
    eprintln!("LNS heap per online session ({SESSIONS} sessions on one tunnel):");
    for (name, method, proxy, ipv6cp) in [
        ("PAP + IPCP", AuthMethod::Pap, false, false),
        ("CHAP + IPCP", AuthMethod::ChapMd5, false, false),
        ("MS-CHAPv2 + IPCP", AuthMethod::MsChapV2, false, false),
        ("proxy CHAP + IPCP", AuthMethod::ChapMd5, true, false),
        ("PAP + IPCP + IPv6CP", AuthMethod::Pap, false, true),
    ] {
        eprintln!("{name}:");
        let bytes = node_bytes_per_session(method, proxy, ipv6cp);
        eprintln!("MEMORY {name}: node {bytes:.0} B/session");
    }
    eprintln!(
        "MEMORY data-plane table: {:.0} B/session per shard (growing tables, not reserved)",
        table_bytes_per_session()
    );
}
