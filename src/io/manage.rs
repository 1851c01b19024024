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

use super::queue::Limited;
use super::shard::ShardCommand;
use super::stats::{self, ControlSnapshot};
use super::wake::Wake;

/// Each shard's command queue and wake, for `show stats`.
pub type ShardHandles = Vec<(Limited<ShardCommand>, Wake)>;

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
    /// The answer.
    pub reply: Sender<Reply>,
}

/// The control thread's answer to a [`Query`].
#[derive(Debug)]
pub enum Reply {
    /// Text for the user, ending with a newline.
    Text(String),
    /// `show stats`: the control thread's counters, which the asker
    /// completes with the shards' and formats (see [`super::stats`]).
    Stats(Box<ControlSnapshot>),
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
    if command == Command::ShowStats {
        let snapshot = stats::collect(queries, wake, shards);
        return out.write_all(snapshot.to_text().as_bytes());
    }
    let (tx, rx) = bounded(1);
    if queries.send(Query { command, reply: tx }).is_err() {
        out.write_all(b"error: the daemon is stopping\n")?;
        return Ok(());
    }
    wake.wake();
    let reply = match rx.recv_timeout(stats::CONTROL_WAIT) {
        Ok(Reply::Text(text)) => text,
        Ok(Reply::Stats(snapshot)) => snapshot.to_text(),
        Err(_) => "error: no answer from the control thread\n".into(),
    };
    out.write_all(reply.as_bytes())
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
            let snapshot = ControlSnapshot::default();
            query.reply.send(Reply::Stats(Box::new(snapshot))).unwrap();
        });
        let stats = request(&path, "show stats").unwrap();
        assert!(stats.starts_with("tunnels 0\n"), "{stats}");
        assert!(stats.contains("\nsessions_online 0\n"), "{stats}");
        assert!(
            stats.contains("\nshards 0\nshards_reporting 0\n"),
            "{stats}"
        );
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
