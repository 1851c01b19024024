//! `loadgen demo`: our daemon on its embedded defaults and a load against
//! it, with data, in a private network namespace — one command that shows
//! what the project does without touching the host's network.
//!
//! The process enters a fresh network namespace first (before any thread
//! exists, so every later thread and child is inside it), then starts the
//! daemon as a child process — itself, re-executed as the hidden
//! `demo-daemon` subcommand — so the report's LNS CPU and RSS are the
//! daemon's alone. Reflectors listen on the daemon's gateway addresses
//! (IPv4 and IPv6, on its TUN), loadgen dials, holds with traffic, tears
//! down, and the daemon is stopped with SIGTERM like a service manager
//! would.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use lns::config::Config;

use crate::options::{Rate, Scenario};
use crate::reflect::Reflector;
use crate::{Options, Report};

/// Everything `loadgen demo` takes; the defaults make a run of about
/// 20 seconds.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoOptions {
    /// Tunnels (LACs).
    #[arg(long, default_value_t = 10)]
    pub tunnels: u32,
    /// Sessions per tunnel.
    #[arg(long, default_value_t = 300)]
    pub sessions: u32,
    /// New sessions per second over all tunnels, or `unlimited` (a storm).
    #[arg(long, default_value = "1000")]
    pub rate: Rate,
    /// Seconds every session is held, with traffic, once all are up.
    #[arg(long, default_value_t = 10.0)]
    pub hold: f64,
    /// Probes per second per session, half over IPv4 and half over IPv6
    /// (0: no data).
    #[arg(long, default_value_t = 2.0)]
    pub data_pps: f64,
    /// UDP payload bytes per probe.
    #[arg(long, default_value_t = 128)]
    pub data_size: u16,
    /// Also write the report as JSON to this file (`-`: standard output,
    /// instead of the text).
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,
    /// Also write the report as a self-contained HTML page with charts.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
}

/// The hidden child: the daemon on embedded defaults, with its management
/// socket moved to `management` so it cannot meet a real daemon's.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoDaemonOptions {
    /// Where the management socket goes.
    #[arg(long)]
    pub management: PathBuf,
}

/// How the demo went: the load's report and how the daemon ended.
#[derive(Debug)]
pub struct DemoOutcome {
    /// The loadgen report.
    pub report: Report,
    /// The daemon's exit status after SIGTERM.
    pub daemon_exit: ExitStatus,
    /// How long the daemon took to stop.
    pub daemon_stop: Duration,
}

impl DemoOutcome {
    /// Every session came up, no probe was lost, the daemon stopped
    /// cleanly.
    pub fn clean(&self) -> bool {
        let data_ok = self.report.data.as_ref().is_none_or(|d| d.lost == 0);
        self.report.sessions.established == self.report.sessions.planned
            && data_ok
            && self.daemon_exit.success()
    }
}

/// Move this process into a network namespace of its own. Must run before
/// any thread is started: unshare(2) changes only the calling thread, and
/// threads and children inherit from the thread that starts them.
pub fn enter_private_netns() -> io::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the demo needs root: it makes a private network namespace and a TUN device \
             (try: sudo target/release/loadgen demo)",
        ));
    }
    if !Path::new("/dev/net/tun").exists() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "the demo needs the TUN driver (/dev/net/tun)",
        ));
    }
    // SAFETY: unshare(2) only changes this thread's namespaces.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    lns::io::netns::link_up("lo")
}

/// Run the demo from the binary at `exe` (this program). The caller has
/// already called [`enter_private_netns`].
pub fn run(options: &DemoOptions, exe: &Path) -> io::Result<DemoOutcome> {
    let defaults = Config::default();
    let scratch = std::env::temp_dir().join(format!("lns-demo-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let mut daemon = Daemon::start(exe, &scratch.join("lns.sock"))?;
    let result = load(options, &defaults, &daemon);
    let (daemon_exit, daemon_stop) = daemon.stop()?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(DemoOutcome {
        report: result?,
        daemon_exit,
        daemon_stop,
    })
}

fn load(options: &DemoOptions, defaults: &Config, daemon: &Daemon) -> io::Result<Report> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let data = options.data_pps > 0.0;
    let reflectors = if data {
        let v4 = Reflector::bind(SocketAddr::from((defaults.ppp.gateway, 0)), workers)?.spawn()?;
        let v6 = Reflector::bind(SocketAddr::from((defaults.ipv6.gateway, 0)), workers)?.spawn()?;
        Some((v4, v6))
    } else {
        None
    };
    let mut run = Options::new(SocketAddr::from(([127, 0, 0, 1], 1701)));
    run.tunnels = options.tunnels;
    run.sessions_per_tunnel = options.sessions;
    run.rate = options.rate;
    run.scenario = Some(match options.rate {
        Rate::Unlimited => Scenario::Storm,
        Rate::PerSecond(_) => Scenario::Ramp,
    });
    run.hold = options.hold;
    run.ipv6 = true;
    run.data_pps = options.data_pps;
    run.data_size = options.data_size;
    run.lns_pid = Some(daemon.child.id());
    run.quiet = options.quiet;
    if let Some((v4, v6)) = &reflectors {
        run.reflector = match v4.local_addr() {
            SocketAddr::V4(a) => Some(a),
            SocketAddr::V6(_) => None,
        };
        run.reflector6 = match v6.local_addr() {
            SocketAddr::V6(a) => Some(a),
            SocketAddr::V4(_) => None,
        };
    }
    run.check()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    eprintln!("{}", banner(options, daemon, &run));
    let report = crate::run(&run);
    if let Some((v4, v6)) = reflectors {
        let _ = v4.stop();
        let _ = v6.stop();
    }
    report
}

fn banner(options: &DemoOptions, daemon: &Daemon, run: &Options) -> String {
    let rate = match options.rate {
        Rate::Unlimited => "all at once".to_string(),
        Rate::PerSecond(r) => format!("{r:.0}/s"),
    };
    let mut text = format!(
        "demo: lns (pid {}, embedded defaults, {}) in a private network namespace\n\
         demo: loadgen dials {} tunnels x {} sessions ({rate}), holds them {:.0} s",
        daemon.child.id(),
        daemon.ready,
        options.tunnels,
        options.sessions,
        options.hold,
    );
    if let (Some(v4), Some(v6)) = (run.reflector, run.reflector6) {
        text.push_str(&format!(
            " with {} probes/s of {} B per session to reflectors at {} and {}",
            options.data_pps,
            options.data_size,
            SocketAddrV4::to_string(&v4),
            SocketAddrV6::to_string(&v6)
        ));
    }
    text
}

/// The daemon child.
struct Daemon {
    child: Child,
    /// What it said when it was up (shards and I/O path).
    ready: String,
}

impl Daemon {
    fn start(exe: &Path, management: &Path) -> io::Result<Daemon> {
        let mut child = Command::new(exe)
            .arg("demo-daemon")
            .arg("--management")
            .arg(management)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            BufReader::new(stdout).read_line(&mut line)?;
        }
        match line.trim().strip_prefix("ready ") {
            Some(ready) => Ok(Daemon {
                ready: ready.to_string(),
                child,
            }),
            None => {
                let status = child.wait()?;
                Err(io::Error::other(format!(
                    "the daemon did not start ({status})"
                )))
            }
        }
    }

    /// SIGTERM, as systemd stops it: StopCCN to every tunnel left, then
    /// exit. Killed after 10 s.
    fn stop(&mut self) -> io::Result<(ExitStatus, Duration)> {
        let asked = Instant::now();
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on our own child, which has not been reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok((status, asked.elapsed()));
            }
            if asked.elapsed() > Duration::from_secs(10) {
                self.child.kill()?;
                return Ok((self.child.wait()?, asked.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The child's body: run the daemon on `Config::default()` until SIGTERM.
/// Prints `ready …` on standard output once it serves.
pub fn serve_daemon(options: &DemoDaemonOptions) -> io::Result<()> {
    // Shown as `lns` in ps and in the report (this is loadgen's binary).
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of ≤ 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"lns".as_ptr()) };
    let mut config = Config::default();
    config.management.socket = options.management.clone();
    config
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (settings, node, reloader) = lns::io::launch::prepare(&config, cores)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    lns::io::signals::install()?;
    let running = lns::io::daemon::start(&settings, node, Some(reloader))?;
    {
        let mut out = io::stdout().lock();
        writeln!(
            out,
            "ready {} shards, {} I/O, TUN {}",
            settings.shards, running.io_path, running.tun_name
        )?;
        out.flush()?;
    }
    while !running.finished() {
        if lns::io::signals::take_stop() {
            running.stop();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    running.wait();
    Ok(())
}
