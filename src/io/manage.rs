//! The management socket: a Unix stream socket where `lns show ...` and
//! `lns kill ...` send one command line and read the answer until the
//! daemon closes the connection. The listener thread only relays: the
//! control thread, which owns all the state, writes every answer.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Sender};

use super::shard::{ShardCommand, ShardReport};
use super::wake::Wake;
use crate::dataplane::DropReason;

/// Each shard's command queue and wake, for `show stats`.
pub type ShardHandles = Vec<(Sender<ShardCommand>, Wake)>;

/// A management command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `show tunnels`
    ShowTunnels,
    /// `show sessions`
    ShowSessions,
    /// `show stats`
    ShowStats,
    /// `kill tunnel ID`: StopCCN, then every session of it is gone.
    KillTunnel(u16),
    /// `kill session TUNNEL SESSION`: LCP Terminate, then CDN.
    KillSession(u16, u16),
    /// `reload`: read the users file again (as SIGHUP does).
    Reload,
}

impl Command {
    /// Parse one command line.
    pub fn parse(line: &str) -> Result<Command, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let id = |s: &str| -> Result<u16, String> {
            s.parse::<u16>()
                .ok()
                .filter(|id| *id != 0)
                .ok_or_else(|| format!("not an ID (1-65535): {s}"))
        };
        match words.as_slice() {
            ["show", "tunnels"] => Ok(Command::ShowTunnels),
            ["show", "sessions"] => Ok(Command::ShowSessions),
            ["show", "stats"] => Ok(Command::ShowStats),
            ["kill", "tunnel", t] => Ok(Command::KillTunnel(id(t)?)),
            ["kill", "session", t, s] => Ok(Command::KillSession(id(t)?, id(s)?)),
            ["reload"] => Ok(Command::Reload),
            _ => Err(format!(
                "unknown command {line:?}; try: show tunnels|sessions|stats, \
                 kill tunnel ID, kill session TUNNEL SESSION, reload"
            )),
        }
    }
}

/// A command and where its answer goes.
#[derive(Debug)]
pub struct Query {
    /// What was asked.
    pub command: Command,
    /// The answer (text, ending with a newline).
    pub reply: Sender<String>,
}

/// Listen on `path` (replacing a stale socket file) and relay commands to
/// the control thread until `stop` is set. `show stats` also asks every
/// shard in `shards` for its counters (this thread waits for them; the
/// control thread never does).
pub fn serve(
    path: &Path,
    queries: Sender<Query>,
    wake: Wake,
    shards: ShardHandles,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    listener.set_nonblocking(true)?;
    let path = path.to_path_buf();
    std::thread::Builder::new()
        .name("lns-manage".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = answer(stream, &queries, &wake, &shards);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
            let _ = std::fs::remove_file(&path);
        })
}

fn answer(
    stream: UnixStream,
    queries: &Sender<Query>,
    wake: &Wake,
    shards: &ShardHandles,
) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new(&stream).take(4096).read_line(&mut line)?;
    let mut out = &stream;
    let command = match Command::parse(line.trim()) {
        Ok(command) => command,
        Err(message) => {
            out.write_all(format!("error: {message}\n").as_bytes())?;
            return Ok(());
        }
    };
    let with_shards = command == Command::ShowStats;
    let (tx, rx) = bounded(1);
    if queries.send(Query { command, reply: tx }).is_err() {
        out.write_all(b"error: the daemon is stopping\n")?;
        return Ok(());
    }
    wake.wake();
    let mut reply = rx
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|_| "error: no answer from the control thread\n".into());
    if with_shards {
        reply.push_str(&shard_stats(&gather(shards), shards.len()));
    }
    out.write_all(reply.as_bytes())
}

/// Ask every shard for its counters; a shard that does not answer within
/// a second (a full command queue, a stall) is left out.
fn gather(shards: &ShardHandles) -> Vec<ShardReport> {
    let (tx, rx) = bounded(shards.len().max(1));
    for (commands, wake) in shards {
        if commands.try_send(ShardCommand::Report(tx.clone())).is_ok() {
            wake.wake();
        }
    }
    drop(tx);
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    let mut reports = Vec::with_capacity(shards.len());
    while reports.len() < shards.len() {
        match rx.recv_deadline(deadline) {
            Ok(report) => reports.push(report),
            Err(_) => break,
        }
    }
    reports.sort_by_key(|r| r.shard);
    reports
}

/// The shards' counters as `name value` lines: totals over the shards
/// that answered, then a few per shard (`shard<N>_...`).
pub fn shard_stats(reports: &[ShardReport], shards: usize) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let sum = |f: &dyn Fn(&ShardReport) -> u64| reports.iter().map(f).sum::<u64>();
    let _ = writeln!(out, "shards {shards}");
    let _ = writeln!(out, "shards_reporting {}", reports.len());
    let totals: [(&str, u64); 15] = [
        ("dataplane_packets_in", sum(&|r| r.dataplane.packets_in)),
        ("dataplane_bytes_in", sum(&|r| r.dataplane.bytes_in)),
        ("dataplane_packets_out", sum(&|r| r.dataplane.packets_out)),
        ("dataplane_bytes_out", sum(&|r| r.dataplane.bytes_out)),
        ("dataplane_echo_replies", sum(&|r| r.dataplane.echo_replies)),
        ("dataplane_ppp_to_control", sum(&|r| r.dataplane.to_control)),
        ("dataplane_l2tp_to_control", sum(&|r| r.dataplane.control)),
        ("dataplane_forwarded", sum(&|r| r.dataplane.forwarded)),
        ("dataplane_mss_clamped", sum(&|r| r.dataplane.mss_clamped)),
        ("dataplane_dropped", sum(&|r| r.dataplane.dropped_total())),
        ("shard_datagrams_in", sum(&|r| r.io.datagrams_in)),
        ("shard_datagrams_out", sum(&|r| r.io.datagrams_out)),
        (
            "shard_control_queue_full",
            sum(&|r| r.io.control_queue_full),
        ),
        ("shard_setup_queue_full", sum(&|r| r.io.setup_queue_full)),
        ("shard_tun_write_errors", sum(&|r| r.io.tun_write_errors)),
    ];
    for (name, value) in totals {
        let _ = writeln!(out, "{name} {value}");
    }
    for reason in DropReason::ALL {
        let n = sum(&|r| r.dataplane.dropped(reason));
        let _ = writeln!(out, "dataplane_dropped_{} {n}", reason.name());
    }
    for r in reports {
        let i = r.shard;
        let _ = writeln!(out, "shard{i}_sessions {}", r.sessions);
        let _ = writeln!(out, "shard{i}_packets_in {}", r.dataplane.packets_in);
        let _ = writeln!(out, "shard{i}_packets_out {}", r.dataplane.packets_out);
        let _ = writeln!(out, "shard{i}_dropped {}", r.dataplane.dropped_total());
    }
    out
}

/// Client side: send `command` to the daemon at `path`, return its answer.
pub fn request(path: &Path, command: &str) -> io::Result<String> {
    let mut stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(command.as_bytes())?;
    stream.write_all(b"\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// The default socket path.
pub fn default_path() -> PathBuf {
    PathBuf::from("/run/lns/lns.sock")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_and_errors_say_what_is_accepted() {
        assert_eq!(Command::parse("show tunnels"), Ok(Command::ShowTunnels));
        assert_eq!(
            Command::parse(" show  sessions "),
            Ok(Command::ShowSessions)
        );
        assert_eq!(Command::parse("kill tunnel 7"), Ok(Command::KillTunnel(7)));
        assert_eq!(
            Command::parse("kill session 7 9"),
            Ok(Command::KillSession(7, 9))
        );
        assert!(Command::parse("kill tunnel 0")
            .unwrap_err()
            .contains("1-65535"));
        assert!(Command::parse("kill tunnel x").is_err());
        assert!(Command::parse("frobnicate")
            .unwrap_err()
            .contains("show tunnels"));
    }

    #[test]
    fn shard_reports_are_summed_and_listed() {
        use crate::dataplane::Counters;
        let report = |shard, packets_in, dropped_no_route| {
            let mut dataplane = Counters {
                packets_in,
                bytes_in: packets_in * 100,
                ..Counters::default()
            };
            let at = DropReason::ALL
                .iter()
                .position(|r| *r == DropReason::NoRoute);
            dataplane.drops[at.unwrap()] = dropped_no_route;
            ShardReport {
                shard,
                io: Default::default(),
                dataplane,
                sessions: 3,
            }
        };
        let text = shard_stats(&[report(0, 5, 1), report(1, 7, 2)], 3);
        for line in [
            "shards 3",
            "shards_reporting 2",
            "dataplane_packets_in 12",
            "dataplane_bytes_in 1200",
            "dataplane_dropped 3",
            "dataplane_dropped_no_route 3",
            "dataplane_dropped_spoofed_source 0",
            "shard1_packets_in 7",
            "shard0_sessions 3",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }

    #[test]
    fn a_query_round_trips_through_the_socket() {
        let dir = std::env::temp_dir().join(format!("lns-manage-{}", std::process::id()));
        let path = dir.join("lns.sock");
        let (tx, rx) = bounded::<Query>(4);
        let stop = Arc::new(AtomicBool::new(false));
        let wake = Wake::new().unwrap();
        let server = serve(&path, tx, wake, Vec::new(), Arc::clone(&stop)).unwrap();
        let control = std::thread::spawn(move || {
            let query = rx.recv().unwrap();
            assert_eq!(query.command, Command::ShowStats);
            query.reply.send("tunnels 0\n".into()).unwrap();
        });
        let stats = request(&path, "show stats").unwrap();
        assert!(stats.starts_with("tunnels 0\nshards 0\n"), "{stats}");
        assert!(request(&path, "nonsense")
            .unwrap()
            .starts_with("error: unknown command"));
        control.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap();
        assert!(!path.exists());
        let _ = std::fs::remove_dir(&dir);
    }
}
