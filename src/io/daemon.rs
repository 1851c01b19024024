//! Assembly of the running LNS: the TUN device and its routes, the
//! reuseport socket groups, one pinned shard thread per queue and the
//! control thread; and a handle to stop them gracefully.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::bounded;

use super::control::{Control, ControlCounters, Reloader};
use super::manage;
use super::metrics;
use super::queue::limited;
use super::shard::{Batching, ControlQueues, Shard};
use super::tun::Tun;
use super::udp::{bind_group, local_addr, SocketOptions};
use super::uring::{self, IoPath, UringShard};
use super::wake::Wake;
use crate::config::IoMode;
use crate::dataplane::SessionTable;
use crate::proto::aaa::Aaa;
use crate::proto::node::Node;

/// Depth of the urgent queue toward the control thread (established
/// tunnels' traffic): a burst beyond it is shed (peers retransmit) rather
/// than buffered without bound. The queues hold memory only for what
/// waits in them (`io::queue`).
pub const CONTROL_QUEUE: usize = 16_384;

/// Depth of the setup queue: new tunnels and calls and the PPP of calls
/// still negotiating. A storm of 100,000 calls (about ten messages each)
/// overflowed 16,384 tens of thousands of times, each lost control message
/// a 1 s retransmission at the LAC; with 65,536 it never did.
pub const SETUP_QUEUE: usize = 65_536;

/// Depth at which a shard's command queue sheds what may be lost (egress
/// packets forwarded between shards); installs, pauses and removals from
/// the control thread always go in.
pub const COMMAND_QUEUE: usize = 16_384;

/// How the runtime is laid out.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// UDP addresses to listen on (IPv4 ones first, then IPv6).
    pub listen: Vec<SocketAddr>,
    /// Shard threads (and TUN queues).
    pub shards: u16,
    /// Pin shard `i` to core `i % cores`.
    pub pin: bool,
    /// TUN device name.
    pub tun_name: String,
    /// TUN transmit queue length.
    pub tun_queue_len: u32,
    /// TUN MTU.
    pub tun_mtu: u32,
    /// The gateway address subscribers see (IPCP's local address).
    pub gateway: Ipv4Addr,
    /// Subscriber networks routed to the TUN device.
    pub routes: Vec<(Ipv4Addr, u8)>,
    /// An IPv6 address for the TUN device (none: no IPv6 on it).
    pub ipv6_gateway: Option<Ipv6Addr>,
    /// Subscriber IPv6 prefixes (the prefix pools) routed to the device.
    pub ipv6_routes: Vec<(Ipv6Addr, u8)>,
    /// TCP MSS clamp installed with every session of an IPv4 LAC.
    pub mss_clamp: Option<crate::dataplane::MssClamp>,
    /// The same for sessions of an IPv6 LAC.
    pub mss_clamp_v6: Option<crate::dataplane::MssClamp>,
    /// Socket buffer sizes.
    pub socket_buffer: usize,
    /// The management socket (none: no management).
    pub management: Option<std::path::PathBuf>,
    /// The shards' I/O path: io_uring where the probe allows (`Auto`),
    /// always (`IoUring`: no start without it) or never (`Fallback`).
    pub io: IoMode,
    /// Datagrams and TUN packets moved per system call or ring round.
    pub batching: Batching,
    /// Where to serve Prometheus metrics (none: no endpoint).
    pub metrics: Option<SocketAddr>,
}

/// A running daemon.
#[derive(Debug)]
pub struct Running {
    stop: Arc<AtomicBool>,
    control: Option<JoinHandle<ControlCounters>>,
    shards: Vec<JoinHandle<()>>,
    /// The listen addresses as bound (ephemeral ports resolved).
    pub bound: Vec<SocketAddr>,
    /// The TUN device's name.
    pub tun_name: String,
    /// The I/O path the shards were started on (a shard whose own ring
    /// cannot be set up logs it and runs the fallback).
    pub io_path: IoPath,
    control_wake: Wake,
    reload: Arc<AtomicBool>,
    manage: Option<JoinHandle<()>>,
    manage_stop: Arc<AtomicBool>,
    /// The metrics endpoint's address as bound (none: not served).
    pub metrics: Option<SocketAddr>,
    metrics_thread: Option<JoinHandle<()>>,
}

impl Running {
    /// Ask for a graceful stop (StopCCN to every tunnel, then exit).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.control_wake.wake();
    }

    /// Ask for the users file to be read again.
    pub fn reload(&self) {
        self.reload.store(true, Ordering::Relaxed);
        self.control_wake.wake();
    }

    /// Whether the control thread has ended (it stops by itself only
    /// after a stop request).
    pub fn finished(&self) -> bool {
        self.control.as_ref().is_none_or(|h| h.is_finished())
    }

    /// The flag a signal handler sets to stop.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Wait for every thread to finish; the control thread's counters.
    pub fn wait(mut self) -> ControlCounters {
        let counters = self
            .control
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        for shard in self.shards.drain(..) {
            let _ = shard.join();
        }
        self.manage_stop.store(true, Ordering::Relaxed);
        if let Some(manage) = self.manage.take() {
            let _ = manage.join();
        }
        if let Some(metrics) = self.metrics_thread.take() {
            let _ = metrics.join();
        }
        counters
    }
}

/// Start the daemon with `node` as its control plane.
pub fn start<A: Aaa + Send + 'static>(
    settings: &RuntimeSettings,
    node: Node<A>,
    reloader: Option<Reloader<A>>,
) -> io::Result<Running> {
    let shards = settings.shards.max(1);
    let io_path = uring::choose(settings.io)?;
    let mut tun = Tun::open(&settings.tun_name, usize::from(shards), true)?;
    tun.set_mtu(settings.tun_mtu)?;
    tun.set_queue_len(settings.tun_queue_len)?;
    tun.set_up()?;
    tun.add_ipv4(settings.gateway, 32)?;
    for (network, prefix) in &settings.routes {
        tun.add_route_ipv4(*network, *prefix)?;
    }
    if let Some(gateway) = settings.ipv6_gateway {
        tun.add_ipv6(gateway, 128)?;
    }
    for (network, prefix) in &settings.ipv6_routes {
        tun.add_route_ipv6(*network, *prefix)?;
    }
    let tun_name = tun.name().to_string();
    let queues = tun.take_queues();

    let options = SocketOptions {
        buffer_bytes: settings.socket_buffer,
        nonblocking: true,
    };
    // One group per listen address: shard sockets first, control last.
    let mut per_shard: Vec<Vec<std::os::fd::OwnedFd>> = (0..shards).map(|_| Vec::new()).collect();
    let mut control_sockets = Vec::new();
    let mut bound = Vec::new();
    for addr in &settings.listen {
        let mut group = bind_group(*addr, shards, options)?;
        let control = group
            .pop()
            .ok_or_else(|| io::Error::other("empty socket group"))?;
        let actual = local_addr(&control)?;
        bound.push(actual);
        control_sockets.push((actual, control));
        for (shard, socket) in per_shard.iter_mut().zip(group) {
            shard.push(socket);
        }
    }

    let (urgent_tx, urgent_rx) = limited(CONTROL_QUEUE);
    let (setup_tx, setup_rx) = limited(SETUP_QUEUE);
    let control_wake = Wake::new()?;
    let queues_to_control = ControlQueues {
        urgent: urgent_tx,
        setup: setup_tx,
        wake: control_wake.clone(),
        urgent_sent: 0,
    };
    let mut command_rx = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..shards {
        let (tx, rx) = limited(COMMAND_QUEUE);
        command_rx.push(rx);
        handles.push((tx, Wake::new()?));
    }
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let mut shard_threads = Vec::new();
    for ((index, sockets), (tun_queue, commands)) in (0..shards)
        .zip(per_shard)
        .zip(queues.into_iter().zip(command_rx))
    {
        let shard = Shard {
            index,
            sockets,
            tun: tun_queue,
            table: SessionTable::new(index),
            commands,
            wake: handles[usize::from(index)].1.clone(),
            control: queues_to_control.clone(),
            peers: handles.clone(),
            counters: Default::default(),
            batching: settings.batching,
        };
        let core =
            (settings.pin && !cores.is_empty()).then(|| cores[usize::from(index) % cores.len()]);
        let path = io_path.clone();
        let thread = std::thread::Builder::new()
            .name(format!("lns-shard-{index}"))
            .spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                run_shard(shard, &path);
            })?;
        shard_threads.push(thread);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicBool::new(false));
    let manage_stop = Arc::new(AtomicBool::new(false));
    let (query_tx, query_rx) = bounded(64);
    let manage = match &settings.management {
        Some(path) => Some(manage::serve(
            path,
            query_tx.clone(),
            control_wake.clone(),
            handles.clone(),
            Arc::clone(&manage_stop),
        )?),
        None => None,
    };
    // Off the hot path: its own thread, asking the others for snapshots
    // as the management socket does.
    let (metrics, metrics_thread) = match settings.metrics {
        Some(addr) => {
            let sources = metrics::Sources {
                queries: query_tx.clone(),
                wake: control_wake.clone(),
                shards: handles.clone(),
            };
            let (bound, thread) = metrics::serve(addr, sources, Arc::clone(&manage_stop))?;
            (Some(bound), Some(thread))
        }
        None => (None, None),
    };
    let outgoing = control_sockets
        .iter()
        .map(|_| super::batch::SendBatch::new())
        .collect();
    let control = Control {
        node,
        sockets: control_sockets,
        urgent: urgent_rx,
        setup: setup_rx,
        wake: control_wake.clone(),
        shards: handles.clone(),
        mss_clamp: settings.mss_clamp,
        mss_clamp_v6: settings.mss_clamp_v6,
        stop: Arc::clone(&stop),
        sessions: Default::default(),
        intake: Default::default(),
        outgoing,
        wakes: Default::default(),
        queries: query_rx,
        reload: Arc::clone(&reload),
        reloader,
        counters: Default::default(),
        awaiting_call_reason: None,
        setup_started: Default::default(),
    };
    let control_thread = std::thread::Builder::new()
        .name("lns-control".into())
        .spawn(move || control.run().counters)?;
    drop(queues_to_control);
    Ok(Running {
        stop,
        control: Some(control_thread),
        shards: shard_threads,
        bound,
        tun_name,
        io_path,
        control_wake,
        reload,
        manage,
        manage_stop,
        metrics,
        metrics_thread,
    })
}

/// Run `shard` on `path`, logging which and why.
fn run_shard(shard: Shard, path: &IoPath) {
    let index = shard.index;
    match path {
        IoPath::IoUring => match UringShard::new(shard) {
            Ok(ring) => {
                tracing::info!(shard = index, "shard I/O: io_uring");
                ring.run();
            }
            Err(failed) => {
                let (shard, e) = *failed;
                tracing::warn!(shard = index, "shard I/O: fallback (ring setup: {e})");
                shard.run();
            }
        },
        IoPath::Fallback(reason) => {
            tracing::info!(shard = index, "shard I/O: fallback ({reason})");
            shard.run();
        }
    }
}
