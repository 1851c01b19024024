//! External programs for interop tests: finding them, root, processes that
//! die with the test, and tshark captures checked for dissection problems.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `program` on PATH or in the sbin directories, if installed.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A child process killed and reaped when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Killed {
    /// Start `command` with no input and its output and errors in the
    /// file `log`; killed and reaped on drop.
    pub fn spawn_logged(command: &mut Command, log: &Path) -> Killed {
        let log = std::fs::File::create(log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Killed(child)
    }

    /// Its exit status once it ended, polled for at most `limit`; none if
    /// it still runs then.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A small daemon configuration for tests that run the `lns` binary: UDP
/// 1701 and the metrics endpoint (9701) on loopback, two shards, a TUN
/// named `tun_prefix` + this process's ID, the management socket at
/// `socket`.
pub fn daemon_config(tun_prefix: &str, socket: &Path) -> String {
    format!(
        "[l2tp]\nlisten = [\"127.0.0.1:1701\"]\n\
         [runtime]\nshards = 2\ntun_name = \"{tun_prefix}{}\"\n\
         [management]\nsocket = \"{}\"\n\
         [metrics]\nlisten = \"127.0.0.1:9701\"\n",
        std::process::id() % 100_000,
        socket.display()
    )
}

/// Send `signal` (e.g. "TERM", "INT") to a process.
pub fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
}

/// A running tshark capture into a pcap file.
pub struct Capture {
    process: Killed,
    /// The pcap file.
    pub path: PathBuf,
}

impl Capture {
    /// Capture `filter` on `interface` into `path`, the command run behind
    /// `prefix` (e.g. `ip netns exec NS`; empty: this thread's namespace).
    /// None when tshark is not installed. Returns once tshark captures.
    pub fn start(prefix: &[&str], interface: &str, filter: &str, path: &Path) -> Option<Capture> {
        let tshark = which("tshark")?;
        let mut command = match prefix.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&tshark);
                c
            }
            None => Command::new(&tshark),
        };
        let child = command
            .args(["-q", "-i", interface, "-f", filter, "-w"])
            .arg(path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // tshark writes the file header once it is capturing.
        let ready = Instant::now() + Duration::from_secs(20);
        while Instant::now() < ready && std::fs::metadata(path).map_or(true, |m| m.len() == 0) {
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(300));
        Some(Capture {
            process: Killed(child),
            path: path.to_path_buf(),
        })
    }

    /// Stop capturing; SIGINT lets tshark flush what it captured.
    pub fn finish(mut self) -> PathBuf {
        std::thread::sleep(Duration::from_millis(500));
        signal(self.process.0.id(), "INT");
        let _ = self.process.0.wait();
        self.path.clone()
    }
}

/// tshark's one-line summaries of the packets of `pcap` that match
/// `display_filter`, with UDP `port` dissected as L2TP.
pub fn tshark_lines(pcap: &Path, port: u16, display_filter: &str) -> Vec<String> {
    let out = Command::new(which("tshark").unwrap())
        .arg("-r")
        .arg(pcap)
        .args([
            "-d",
            &format!("udp.port=={port},l2tp"),
            "-Y",
            display_filter,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tshark -r {}: {}",
        pcap.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Packets tshark flags as malformed or with warning-level expert info
/// (empty for correct traffic).
pub fn tshark_flagged(pcap: &Path, port: u16) -> Vec<String> {
    tshark_lines(
        pcap,
        port,
        "_ws.malformed || _ws.expert.severity >= warning",
    )
}
