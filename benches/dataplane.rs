//! The pure data plane: `decap` and `encap` of 64- and 1400-byte IP
//! packets against a shard table holding a million sessions.
//!
//! Each iteration handles one packet. The packets rotate over 4096
//! prebuilt datagrams (or TUN buffers) addressed to sessions picked at
//! random among the million, so the table lookups miss the CPU caches as
//! they would under real traffic; the `one_session` rows send every packet
//! to the same session to show the cost without those misses. Neither
//! function changes these packets (UDP, no MSS to clamp) except for the
//! headers `encap` rewrites identically each time, so the buffers are
//! reused without resetting.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lns::dataplane::{
    decap, encap, Egress, Ingress, MssClamp, SessionEntry, SessionTable, MAX_HEADROOM,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TUNNELS: u32 = 1000;
const SESSIONS_PER_TUNNEL: u32 = 1000;
const RING: usize = 4096;

fn lac(tunnel: u32) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(0x0a00_0000 + tunnel), 1701))
}

fn subscriber(n: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x6440_0000 + n) // 100.64.0.0/10
}

/// Session `n` (0-based): tunnel n / 1000 + 1, session n % 1000 + 1.
fn entry(n: u32) -> SessionEntry {
    let tunnel = (n / SESSIONS_PER_TUNNEL + 1) as u16;
    let session = (n % SESSIONS_PER_TUNNEL + 1) as u16;
    SessionEntry {
        key: (tunnel, session),
        peer: (tunnel ^ 0x4000, session ^ 0x4000),
        lac: lac(u32::from(tunnel)),
        ipv4: Some(subscriber(n)),
        ipv6_prefix: None,
        ipv6_ifids: None,
        sequencing: None,
        magic: 0x1234_5678 ^ n,
        mtu: 1456,
        mss_clamp: Some(MssClamp {
            ipv4: 1416,
            ipv6: 1396,
        }),
    }
}

fn million() -> SessionTable {
    let total = TUNNELS * SESSIONS_PER_TUNNEL;
    let mut table = SessionTable::with_capacity(0, total as usize);
    for n in 0..total {
        table.install(entry(n));
    }
    table
}

fn udp(src: Ipv4Addr, dst: Ipv4Addr, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[6] = 0x40;
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    p[20..22].copy_from_slice(&4000u16.to_be_bytes());
    p[22..24].copy_from_slice(&4001u16.to_be_bytes());
    p[24..26].copy_from_slice(&((len - 20) as u16).to_be_bytes());
    p
}

/// The session numbers the ring's packets go to.
fn targets(random: bool) -> Vec<u32> {
    let mut rng = StdRng::seed_from_u64(1661);
    (0..RING)
        .map(|_| {
            if random {
                rng.random_range(0..TUNNELS * SESSIONS_PER_TUNNEL)
            } else {
                4242
            }
        })
        .collect()
}

/// A data message as a typical LAC sends it: no Length, no sequence
/// numbers, full PPP header.
fn datagram(n: u32, len: usize) -> (SocketAddr, Vec<u8>) {
    let e = entry(n);
    let mut out = vec![0x00, 0x02];
    out.extend_from_slice(&e.key.0.to_be_bytes());
    out.extend_from_slice(&e.key.1.to_be_bytes());
    out.extend_from_slice(&[0xff, 0x03, 0x00, 0x21]);
    out.extend_from_slice(&udp(e.ipv4.unwrap(), Ipv4Addr::new(192, 0, 2, 80), len));
    (e.lac, out)
}

fn bench(c: &mut Criterion) {
    let mut table = million();
    let mut group = c.benchmark_group("dataplane");
    group.throughput(Throughput::Elements(1));
    for (name, random) in [("1M_sessions", true), ("one_session", false)] {
        let sessions = targets(random);
        for len in [64usize, 1400] {
            let mut ring: Vec<(SocketAddr, Vec<u8>)> =
                sessions.iter().map(|&n| datagram(n, len)).collect();
            let mut reply = [0u8; 2048];
            let mut at = 0;
            group.bench_function(format!("decap/{len}/{name}"), |b| {
                b.iter(|| {
                    let (from, bytes) = &mut ring[at % RING];
                    at += 1;
                    match decap(&mut table, *from, bytes, &mut reply) {
                        Ingress::ToTun { packet } => {
                            black_box(packet);
                        }
                        other => panic!("{other:?}"),
                    }
                })
            });
            let mut bufs: Vec<Vec<u8>> = sessions
                .iter()
                .map(|&n| {
                    let mut buf = vec![0u8; MAX_HEADROOM];
                    buf.extend_from_slice(&udp(Ipv4Addr::new(192, 0, 2, 80), subscriber(n), len));
                    buf
                })
                .collect();
            let mut at = 0;
            group.bench_function(format!("encap/{len}/{name}"), |b| {
                b.iter(|| {
                    let buf = &mut bufs[at % RING];
                    at += 1;
                    match encap(&mut table, buf, MAX_HEADROOM, len) {
                        Egress::Send { datagram, to } => {
                            black_box((datagram, to));
                        }
                        other => panic!("{other:?}"),
                    }
                })
            });
        }
    }
    group.finish();
    eprintln!(
        "session entry {} bytes; packets in {}, out {}",
        std::mem::size_of::<SessionEntry>(),
        table.counters().packets_in,
        table.counters().packets_out
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
