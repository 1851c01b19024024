//! What a run is asked to do: the command line (clap derive) and the
//! templates that turn a session index into a subscriber.

use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::str::FromStr;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use lns::wire::ppp::lcp::AuthMethod;

/// `loadgen`: plays LACs and PPP subscribers against an L2TP Network Server.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set up tunnels and sessions against an LNS, hold them, tear them
    /// down, and report.
    Run(Box<Options>),
    /// Bounce every UDP datagram back to its sender: run it on the LNS's
    /// network side as the far end of `run --reflector`.
    Reflect(ReflectOptions),
    /// Our daemon on its embedded defaults and a load with data against
    /// it, in a private network namespace (needs root): the quick start.
    Demo(crate::demo::DemoOptions),
    /// The demo's daemon (started by `demo`, not by hand).
    #[command(hide = true)]
    DemoDaemon(crate::demo::DemoDaemonOptions),
}

/// Everything `loadgen reflect` takes.
#[derive(Debug, Clone, clap::Args)]
pub struct ReflectOptions {
    /// Address and UDP port to listen on (an address of the LNS's network
    /// side, e.g. its gateway address).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    /// Threads, each with its own socket in one SO_REUSEPORT group
    /// (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Stop after this many seconds (default: on SIGINT or SIGTERM only).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
}

impl ReflectOptions {
    /// Threads to start.
    pub fn worker_count(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.workers.unwrap_or(cores).max(1)
    }

    /// `--duration` as a duration, if given.
    pub fn duration(&self) -> Option<Duration> {
        self.duration.map(seconds)
    }
}

/// The fixed part of every data datagram's payload (magic, session index,
/// sequence number, send time): `--data-size` cannot be smaller.
pub const DATA_HEADER: u16 = 20;

/// The largest `--data-size`: an IPv4 packet of 1500 bytes.
pub const DATA_SIZE_MAX: u16 = 1472;

/// How fast sessions are dialled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// At most this many new sessions per second, over all workers.
    PerSecond(f64),
    /// As fast as the tunnels take them.
    Unlimited,
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("unlimited") {
            return Ok(Rate::Unlimited);
        }
        match s.parse::<f64>() {
            Ok(r) if r.is_finite() && r > 0.0 => Ok(Rate::PerSecond(r)),
            _ => Err(format!(
                "`{s}` is not a rate: a positive number of sessions per second or `unlimited`"
            )),
        }
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rate::PerSecond(r) => write!(f, "{r}"),
            Rate::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// How sessions and tunnels end after the hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Teardown {
    /// LCP Terminate and CDN for every session, then StopCCN for every
    /// tunnel; waits (bounded) for the LNS to acknowledge.
    Cdn,
    /// Stop sending anything, as a LAC that crashed: the LNS must notice on
    /// its own (HELLO and retransmission timeouts).
    Vanish,
}

/// Named presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Sessions at a steady `--rate`.
    Ramp,
    /// Every session at once (unlimited rate), as after a LAC reboot.
    Storm,
    /// Set up at `--rate`, then for `--duration` hang up the longest-held
    /// session and dial its subscriber again, `--churn-rate` times a
    /// second.
    Churn,
    /// Set up at `--rate`, then for `--duration` every `--flap-interval`
    /// every tunnel vanishes without StopCCN and comes back with its
    /// sessions.
    Flap,
    /// Set up at `--rate`, hold (with data when asked for) for
    /// `--duration`, tear down.
    Soak,
}

impl Scenario {
    /// Whether the scenario runs for `--duration` after setup.
    pub fn has_duration(self) -> bool {
        matches!(self, Scenario::Churn | Scenario::Flap | Scenario::Soak)
    }
}

/// Authentication methods the simulated subscribers agree to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Auth {
    /// PAP (RFC 1334).
    Pap,
    /// CHAP with MD5 (RFC 1994).
    Chap,
    /// MS-CHAPv2 (RFC 2759).
    Mschapv2,
}

impl From<Auth> for AuthMethod {
    fn from(auth: Auth) -> Self {
        match auth {
            Auth::Pap => AuthMethod::Pap,
            Auth::Chap => AuthMethod::ChapMd5,
            Auth::Mschapv2 => AuthMethod::MsChapV2,
        }
    }
}

/// Everything `loadgen run` takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// The LNS to load (address and UDP port, usually 1701).
    #[arg(long, value_name = "ADDR:PORT")]
    pub lns: SocketAddr,
    /// Local address the LAC sockets bind to (default: any address of the
    /// LNS's family).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<IpAddr>,
    /// Tunnels (control connections).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=65_535))]
    pub tunnels: u32,
    /// Sessions in each tunnel.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=65_535))]
    pub sessions_per_tunnel: u32,
    /// New sessions per second over all workers, or `unlimited`.
    #[arg(long, default_value = "1000", value_name = "R|unlimited")]
    pub rate: Rate,
    /// Tunnel secret: tunnels authenticate with Challenge / Challenge
    /// Response (RFC 2661 §5.1.1).
    #[arg(long)]
    pub secret: Option<String>,
    /// Hide the sensitive AVPs (proxy authentication name, challenge,
    /// response) with the secret (RFC 2661 §4.3). Needs --secret.
    #[arg(long, requires = "secret")]
    pub hidden: bool,
    /// The LAC negotiates LCP and CHAP itself and forwards proxy LCP and
    /// proxy authentication AVPs in ICCN; subscribers then skip LCP and
    /// authentication with the LNS unless it renegotiates.
    #[arg(long)]
    pub proxy: bool,
    /// Authentication methods the subscribers agree to when the LNS asks,
    /// comma separated, in order of preference (a refused demand is answered
    /// with a Nak naming the first). Proxy authentication is always CHAP.
    #[arg(long, value_delimiter = ',', default_value = "mschapv2,chap,pap")]
    pub auth: Vec<Auth>,
    /// User name template: the letter n in curly braces stands for the
    /// global session index (as in the default).
    #[arg(long, default_value = "user{n}@loadgen.example")]
    pub user: String,
    /// Password template, with the same session-index placeholder.
    #[arg(long, default_value = "loadgen")]
    pub password: String,
    /// Calling Number template, with the same session-index placeholder;
    /// none when absent.
    #[arg(long)]
    pub calling: Option<String>,
    /// Called Number; none when absent.
    #[arg(long)]
    pub called: Option<String>,
    /// Negotiate IPv6CP as well as IPCP.
    #[arg(long)]
    pub ipv6: bool,
    /// Seconds to hold every session once all are up or failed (0: tear
    /// down at once).
    #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
    pub hold: f64,
    /// How sessions and tunnels end.
    #[arg(long, value_enum, default_value_t = Teardown::Cdn)]
    pub teardown: Teardown,
    /// Worker threads (default: one per core, at most one per tunnel).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Seconds setup and hold may take in all; sessions not up by then
    /// fail as `timeout`. Teardown has a few seconds of its own on top.
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
    pub timeout: f64,
    /// Write the report as JSON to FILE (`-`: stdout, instead of the text).
    #[arg(long, value_name = "FILE|-")]
    pub json: Option<String>,
    /// Write the report as one self-contained HTML page with charts to
    /// FILE (as well as the text or JSON).
    #[arg(long, value_name = "FILE")]
    pub html: Option<std::path::PathBuf>,
    /// A named preset: `ramp` uses --rate, `storm` dials every session at
    /// once (unlimited rate); `churn`, `flap` and `soak` set up at --rate
    /// and then run for --duration.
    #[arg(long, value_enum)]
    pub scenario: Option<Scenario>,
    /// Seconds `churn`, `flap` and `soak` run once setup is over (their
    /// hold: it takes the place of --hold). The timeout bounds setup; the
    /// duration comes on top.
    #[arg(long, value_name = "SECONDS", conflicts_with = "hold")]
    pub duration: Option<f64>,
    /// `churn`: hang-ups (each followed by a new dial) per second, over
    /// all workers.
    #[arg(long, value_name = "R")]
    pub churn_rate: Option<f64>,
    /// `flap`: seconds between two vanishings of every tunnel.
    #[arg(long, value_name = "SECONDS")]
    pub flap_interval: Option<f64>,
    /// No live progress line on stderr even on a terminal.
    #[arg(long)]
    pub quiet: bool,
    /// Data packets per second each session sends to the reflector during
    /// the hold (0: no data). Needs --reflector and --hold.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub data_pps: f64,
    /// UDP payload bytes of each data packet (20 to 1472; the IPv4 packet
    /// is 28 bytes more).
    #[arg(long, default_value_t = 64, value_name = "B",
          value_parser = clap::value_parser!(u16).range(i64::from(DATA_HEADER)..=i64::from(DATA_SIZE_MAX)))]
    pub data_size: u16,
    /// The reflector (`loadgen reflect`) on the LNS's network side that
    /// bounces each data packet back to its session (IPv4).
    #[arg(long, value_name = "ADDR:PORT")]
    pub reflector: Option<SocketAddrV4>,
    /// An IPv6 reflector: sessions that have an IPv6 address (IPv6CP and
    /// a Router Advertisement) send their probes to it as well, the same
    /// number as over IPv4. Needs --ipv6.
    #[arg(long, value_name = "[ADDR]:PORT", requires = "ipv6")]
    pub reflector6: Option<SocketAddrV6>,
    /// The LNS is process PID on this machine: report its CPU time and
    /// resident memory over the run.
    #[arg(long, value_name = "PID")]
    pub lns_pid: Option<u32>,
    /// As --lns-pid, for the one process of this name (as `ps -o comm`
    /// shows it).
    #[arg(long, value_name = "NAME", conflicts_with = "lns_pid")]
    pub lns_name: Option<String>,
    /// The workers' socket I/O: `uring` (io_uring; the run fails to start
    /// without it), `fallback` (poll and recvmmsg/sendmmsg), or `auto`
    /// (the one that measured cheaper: the fallback).
    #[arg(long, value_enum, default_value_t = crate::socket_io::IoChoice::Auto)]
    pub io: crate::socket_io::IoChoice,
    /// Serve this run's live counters as Prometheus metrics on ADDR
    /// (`GET /metrics`; `loadgen_*` families) while it lasts.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<std::net::SocketAddr>,
}

impl Options {
    /// Options with every default and `lns` as the target (for tests and
    /// programs that drive the engine in-process).
    pub fn new(lns: SocketAddr) -> Options {
        let cli = Cli::parse_from(["loadgen", "run", "--lns", &lns.to_string()]);
        match cli.command {
            Command::Run(options) => *options,
            _ => unreachable!("parsed as `run`"),
        }
    }

    /// What clap cannot check: data needs a reflector and a hold to flow in.
    pub fn check(&self) -> Result<(), String> {
        self.check_scenario()?;
        if !(self.data_pps.is_finite() && self.data_pps >= 0.0) {
            return Err(format!("--data-pps {} is not a rate", self.data_pps));
        }
        if self.data_pps > 0.0 {
            if self.reflector.is_none() {
                return Err("--data-pps needs --reflector".into());
            }
            if self.hold_duration().is_zero() {
                return Err("--data-pps needs --hold: data flows during the hold".into());
            }
        }
        Ok(())
    }

    /// What the scenarios need: a duration for those that have one (and
    /// only for them), a churn rate for `churn`, an interval for `flap`.
    fn check_scenario(&self) -> Result<(), String> {
        let positive = |v: Option<f64>| v.is_some_and(|v| v.is_finite() && v > 0.0);
        let scenario = self.scenario.filter(|s| s.has_duration());
        let name = self.scenario_name();
        match scenario {
            Some(_) if !positive(self.duration) => {
                return Err(format!("--scenario {name} needs --duration (seconds)"))
            }
            None if self.duration.is_some() => {
                return Err("--duration is for --scenario churn, flap or soak".into())
            }
            _ => {}
        }
        match (scenario, self.churn_rate) {
            (Some(Scenario::Churn), r) if !positive(r) => {
                return Err("--scenario churn needs --churn-rate (hang-ups per second)".into())
            }
            (Some(Scenario::Churn), _) | (_, None) => {}
            (_, Some(_)) => return Err("--churn-rate is for --scenario churn".into()),
        }
        match (scenario, self.flap_interval) {
            (Some(Scenario::Flap), i) if !positive(i) => {
                Err("--scenario flap needs --flap-interval (seconds)".into())
            }
            (Some(Scenario::Flap), _) | (_, None) => Ok(()),
            (_, Some(_)) => Err("--flap-interval is for --scenario flap".into()),
        }
    }

    /// Whether sessions send data.
    pub fn data_enabled(&self) -> bool {
        self.data_pps > 0.0 && self.reflector.is_some()
    }

    /// The rate the scenario asks for.
    pub fn effective_rate(&self) -> Rate {
        match self.scenario {
            Some(Scenario::Storm) => Rate::Unlimited,
            Some(Scenario::Ramp | Scenario::Churn | Scenario::Flap | Scenario::Soak) | None => {
                self.rate
            }
        }
    }

    /// The scenario's name for the report.
    pub fn scenario_name(&self) -> &'static str {
        match (self.scenario, self.effective_rate()) {
            (Some(Scenario::Storm), _) | (None, Rate::Unlimited) => "storm",
            (Some(Scenario::Churn), _) => "churn",
            (Some(Scenario::Flap), _) => "flap",
            (Some(Scenario::Soak), _) => "soak",
            _ => "ramp",
        }
    }

    /// Sessions in all.
    pub fn total_sessions(&self) -> u64 {
        u64::from(self.tunnels) * u64::from(self.sessions_per_tunnel)
    }

    /// Worker threads to start.
    pub fn worker_count(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let asked = self.workers.unwrap_or(cores).max(1);
        asked.min(self.tunnels as usize)
    }

    /// The hold as a duration (negative and odd values count as zero):
    /// `--duration` for the scenarios that run for one, else `--hold`.
    pub fn hold_duration(&self) -> Duration {
        match self.scenario_duration() {
            Some(d) => d,
            None => seconds(self.hold),
        }
    }

    /// `--duration` of `churn`, `flap` and `soak`; `None` for the others.
    pub fn scenario_duration(&self) -> Option<Duration> {
        self.scenario
            .filter(|s| s.has_duration())
            .and(self.duration)
            .map(seconds)
    }

    /// `--churn-rate` under `--scenario churn`.
    pub fn churn_rate(&self) -> Option<f64> {
        self.churn_rate
            .filter(|_| self.scenario == Some(Scenario::Churn))
            .filter(|r| r.is_finite() && *r > 0.0)
    }

    /// `--flap-interval` under `--scenario flap`.
    pub fn flap_interval(&self) -> Option<Duration> {
        self.flap_interval
            .filter(|_| self.scenario == Some(Scenario::Flap))
            .map(seconds)
            .filter(|d| !d.is_zero())
    }

    /// The timeout as a duration.
    pub fn timeout_duration(&self) -> Duration {
        seconds(self.timeout)
    }
}

fn seconds(s: f64) -> Duration {
    if s.is_finite() && s > 0.0 {
        Duration::from_secs_f64(s.min(1e9))
    } else {
        Duration::ZERO
    }
}

/// Replace every `{n}` in `template` with `n`.
pub fn expand(template: &str, n: u64) -> String {
    if template.contains("{n}") {
        template.replace("{n}", &n.to_string())
    } else {
        template.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_take_the_session_index() {
        assert_eq!(expand("user{n}@realm", 42), "user42@realm");
        assert_eq!(expand("fixed", 42), "fixed");
        assert_eq!(expand("{n}-{n}", 7), "7-7");
    }

    #[test]
    fn rates_parse_as_numbers_or_unlimited() {
        assert_eq!("250".parse::<Rate>(), Ok(Rate::PerSecond(250.0)));
        assert_eq!("Unlimited".parse::<Rate>(), Ok(Rate::Unlimited));
        assert!("0".parse::<Rate>().is_err());
        assert!("fast".parse::<Rate>().is_err());
    }

    #[test]
    fn defaults_and_presets() {
        let o = Options::new("127.0.0.1:1701".parse().unwrap());
        assert_eq!(o.tunnels, 1);
        assert_eq!(o.sessions_per_tunnel, 100);
        assert_eq!(o.effective_rate(), Rate::PerSecond(1000.0));
        assert_eq!(o.scenario_name(), "ramp");
        assert_eq!(o.teardown, Teardown::Cdn);
        assert_eq!(o.hold_duration(), Duration::ZERO);
        assert_eq!(o.worker_count(), 1, "never more workers than tunnels");
        let storm = Cli::parse_from([
            "loadgen",
            "run",
            "--lns",
            "[::1]:1701",
            "--scenario",
            "storm",
            "--tunnels",
            "8",
            "--workers",
            "3",
            "--auth",
            "pap,chap",
        ]);
        let Command::Run(storm) = storm.command else {
            panic!("parsed as run")
        };
        assert_eq!(storm.effective_rate(), Rate::Unlimited);
        assert_eq!(storm.scenario_name(), "storm");
        assert_eq!(storm.worker_count(), 3);
        assert_eq!(storm.auth, vec![Auth::Pap, Auth::Chap]);
        assert_eq!(storm.total_sessions(), 800);
    }

    #[test]
    fn data_needs_a_reflector_and_a_hold_and_a_sane_size() {
        let parse = |extra: &[&str]| {
            let mut args = vec!["loadgen", "run", "--lns", "127.0.0.1:1701"];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args).map(|cli| match cli.command {
                Command::Run(o) => o,
                other => panic!("parsed as {other:?}"),
            })
        };
        let o = parse(&[]).unwrap();
        assert_eq!((o.data_pps, o.data_size, o.reflector), (0.0, 64, None));
        assert!(o.check().is_ok() && !o.data_enabled());
        let o = parse(&["--data-pps", "5", "--hold", "2"]).unwrap();
        assert!(o.check().unwrap_err().contains("--reflector"));
        let o = parse(&["--data-pps", "5", "--reflector", "100.64.0.1:7"]).unwrap();
        assert!(o.check().unwrap_err().contains("--hold"));
        let o = parse(&[
            "--data-pps",
            "5",
            "--reflector",
            "100.64.0.1:7",
            "--hold",
            "2",
        ])
        .unwrap();
        assert!(o.check().is_ok() && o.data_enabled());
        assert!(parse(&["--data-size", "19"]).is_err());
        assert!(parse(&["--data-size", "1473"]).is_err());
        assert_eq!(parse(&["--data-size", "1400"]).unwrap().data_size, 1400);
        assert!(parse(&["--reflector", "[::1]:7"]).is_err(), "IPv4 only");
        assert!(parse(&["--reflector6", "[::1]:7"]).is_err(), "needs --ipv6");
        let o = parse(&["--ipv6", "--reflector6", "[2001:db8::1]:7"]).unwrap();
        assert_eq!(o.reflector6, Some("[2001:db8::1]:7".parse().unwrap()));
    }

    #[test]
    fn scenarios_with_a_duration_need_their_options() {
        let parse = |extra: &[&str]| {
            let mut args = vec!["loadgen", "run", "--lns", "127.0.0.1:1701"];
            args.extend_from_slice(extra);
            match Cli::try_parse_from(args).map(|cli| cli.command) {
                Ok(Command::Run(o)) => Ok(*o),
                Ok(other) => panic!("parsed as {other:?}"),
                Err(e) => Err(e.to_string()),
            }
        };
        let err = |extra: &[&str]| parse(extra).unwrap().check().unwrap_err();
        assert!(err(&["--scenario", "soak"]).contains("--duration"));
        assert!(err(&["--scenario", "churn", "--duration", "3"]).contains("--churn-rate"));
        assert!(err(&["--scenario", "flap", "--duration", "3"]).contains("--flap-interval"));
        assert!(err(&["--duration", "3"]).contains("churn, flap or soak"));
        assert!(
            err(&["--scenario", "soak", "--duration", "3", "--churn-rate", "5"])
                .contains("--churn-rate is for")
        );
        assert!(parse(&["--scenario", "soak", "--duration", "3", "--hold", "2"]).is_err());

        let soak = parse(&["--scenario", "soak", "--duration", "3", "--rate", "50"]).unwrap();
        assert!(soak.check().is_ok());
        assert_eq!(soak.scenario_name(), "soak");
        assert_eq!(soak.hold_duration(), Duration::from_secs(3));
        assert_eq!(soak.effective_rate(), Rate::PerSecond(50.0));
        assert_eq!(soak.churn_rate(), None);
        let churn = parse(&[
            "--scenario",
            "churn",
            "--duration",
            "2.5",
            "--churn-rate",
            "100",
        ])
        .unwrap();
        assert!(churn.check().is_ok());
        assert_eq!(churn.scenario_name(), "churn");
        assert_eq!(churn.churn_rate(), Some(100.0));
        assert_eq!(churn.scenario_duration(), Some(Duration::from_millis(2500)));
        let flap = parse(&[
            "--scenario",
            "flap",
            "--duration",
            "4",
            "--flap-interval",
            "1.5",
        ])
        .unwrap();
        assert!(flap.check().is_ok());
        assert_eq!(flap.flap_interval(), Some(Duration::from_millis(1500)));
        assert_eq!(flap.hold_duration(), Duration::from_secs(4));
    }

    #[test]
    fn hidden_needs_a_secret() {
        let r = Cli::try_parse_from(["loadgen", "run", "--lns", "127.0.0.1:1701", "--hidden"]);
        assert!(r.is_err());
    }
}
