//! The `lns` command.
//!
//! Today it offers `check-config`, which reads a configuration file as the
//! daemon will, and `simulate`: the sans-IO L2TP control plane, a LAC and an
//! LNS endpoint, run against each other over a simulated lossy link in
//! memory. The daemon (`lns run`) arrives with its own issue.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use lns::config::Config;
use lns::proto::l2tp::{CallInfo, Event, L2tpConfig, SessionDownReason};
use lns::sim::{lac_config, lns_config, Link, Pair};
use lns::wire::l2tp::avps::{cdn_result, stopccn_result};
use lns::wire::l2tp::{MessageType, ResultCode};

// The daemon's allocator (design card): allocation-heavy control-plane
// storms ran about twice as fast on it as on the system allocator
// (`docs/benchmarks.md`, PPP session setup).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "\
usage: lns run [--config FILE]
       lns show tunnels|sessions|stats [--socket PATH]
       lns kill tunnel ID | kill session TUNNEL SESSION [--socket PATH]
       lns reload [--socket PATH]
       lns check-config FILE
       lns simulate [--tunnels N] [--sessions N] [--loss P] [--seed N] [--secret S]
       lns version

run       start the LNS: UDP 1701 on every address, one shard per core, a
          TUN device for subscriber traffic; with no --config, the embedded
          defaults (demo users and pool, see the README). SIGTERM/SIGINT stop
          gracefully (StopCCN to every tunnel), SIGHUP reloads the users file.
show, kill, reload
          ask the running daemon over its management socket (default
          /run/lns/lns.sock, or [management] socket in the config).
check-config  read FILE (and the users file it names) as the daemon would;
          print \"FILE: ok\" and what it configures, or the first mistake as
          FILE:LINE:COL: key: message and exit 2.
simulate  run a LAC and an LNS endpoint against each other in memory over a
          simulated link (loss P, duplication P/2, reordering P): N tunnels,
          N sessions per tunnel, then tear everything down; prints what
          happened and how fast the control plane ran.
          defaults: --tunnels 10 --sessions 1000 --loss 0.05 --seed 1";

#[derive(Debug)]
struct SimulateArgs {
    tunnels: usize,
    sessions: usize,
    loss: f64,
    seed: u64,
    secret: Option<Vec<u8>>,
}

fn parse_simulate(args: &[String]) -> Result<SimulateArgs, String> {
    let mut out = SimulateArgs {
        tunnels: 10,
        sessions: 1000,
        loss: 0.05,
        seed: 1,
        secret: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = || format!("{flag}: cannot read {value:?}");
        match flag.as_str() {
            "--tunnels" => out.tunnels = value.parse().map_err(|_| bad())?,
            "--sessions" => out.sessions = value.parse().map_err(|_| bad())?,
            "--loss" => out.loss = value.parse().map_err(|_| bad())?,
            "--seed" => out.seed = value.parse().map_err(|_| bad())?,
            "--secret" => out.secret = Some(value.as_bytes().to_vec()),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if !(0.0..0.9).contains(&out.loss) {
        return Err("--loss must be in [0, 0.9)".into());
    }
    if out.tunnels == 0 || out.tunnels > 30_000 || out.sessions > 65_000 {
        return Err("--tunnels must be 1..=30000 and --sessions at most 65000".into());
    }
    Ok(out)
}

fn count(events: &[Event], pick: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| pick(e)).count()
}

fn simulate(args: &SimulateArgs) -> ExitCode {
    let wall = Instant::now();
    let (mut lac, mut lns) = (lac_config(), lns_config());
    for config in [&mut lac, &mut lns] {
        config.secret.clone_from(&args.secret);
        if args.secret.is_some() {
            config.hidden_avps = L2tpConfig::sensitive_avps();
        }
        config.limits.max_half_open_sessions = usize::MAX;
        config.limits.max_tunnels = 65_535;
        config.limits.max_half_open_tunnels = 65_535;
    }
    let link = if args.loss > 0.0 {
        Link::lossy(args.loss)
    } else {
        Link::CLEAN
    };
    let mut pair = Pair::new(lac, lns, link, args.seed, wall);
    pair.record = false;
    let up = |e: &Event| matches!(e, Event::TunnelUp { .. });

    let mut tunnels = Vec::with_capacity(args.tunnels);
    for _ in 0..args.tunnels {
        match pair.lac.connect(pair.now, pair.lns_addr) {
            Ok(id) => tunnels.push(id),
            Err(e) => {
                eprintln!("LAC could not open a tunnel: {e:?}");
                return ExitCode::FAILURE;
            }
        }
    }
    let want = args.tunnels;
    pair.run_until(Duration::from_secs(600), |p| {
        count(&p.lac_events, up) == want
    });
    let tunnels_up_at = pair.elapsed();

    let mut n = 0u32;
    for &t in &tunnels {
        for _ in 0..args.sessions {
            n += 1;
            let call = CallInfo {
                call_serial_number: Some(n),
                calling_number: Some(format!("line-{n}").into_bytes()),
                tx_connect_speed: Some(100_000_000),
                framing_type: Some(1),
                ..CallInfo::default()
            };
            if pair.lac.open_session(pair.now, t, call).is_err() {
                break;
            }
        }
    }
    let sessions = args.tunnels * args.sessions;
    let mut progress = Vec::new();
    for percent in [50, 90, 99, 100] {
        let target = (sessions * percent).div_ceil(100);
        let reached = pair.run_until(Duration::from_secs(3600), |p| {
            p.lns_sessions_up() >= target && p.lac_sessions_up() >= target
        });
        if !reached {
            break;
        }
        progress.push(format!(
            "{percent}% at {:.2} s",
            (pair.elapsed() - tunnels_up_at).as_secs_f64()
        ));
    }
    let sessions_up_at = pair.elapsed();
    let lac_channels = pair.lac.channel_totals();
    let lns_channels = pair.lns.channel_totals();
    let sessions_up = pair.lns_sessions_up();

    // Tear down: a CDN per session on the first tunnel, StopCCN for all.
    let lns_sessions: Vec<(u16, u16)> = pair
        .lac_events
        .iter()
        .filter_map(|e| match e {
            Event::SessionUp {
                tunnel, session, ..
            } if Some(tunnel) == tunnels.first() => Some((*tunnel, *session)),
            _ => None,
        })
        .collect();
    let hangup = ResultCode {
        result: cdn_result::ADMIN,
        error: None,
        message: None,
    };
    for (t, s) in lns_sessions {
        let _ = pair.lac.close_session(pair.now, t, s, hangup.clone());
    }
    let stop = ResultCode {
        result: stopccn_result::CLEAR,
        error: None,
        message: None,
    };
    for &t in &tunnels {
        let _ = pair.lac.close_tunnel(pair.now, t, stop.clone());
    }
    pair.run_until(Duration::from_secs(3600), |p| {
        p.lns.tunnel_count() == 0 && p.lac.tunnel_count() == 0
    });
    let elapsed = wall.elapsed();

    let lns_stats = pair.lns.stats();
    let lac_stats = pair.lac.stats();
    let messages: u64 = lns_stats.messages_in.iter().sum::<u64>()
        + lac_stats.messages_in.iter().sum::<u64>()
        + lns_stats.zlb_in
        + lac_stats.zlb_in;
    println!(
        "link: loss {:.1}%, duplication {:.1}%, reordering {:.1}%, seed {}",
        link.loss * 100.0,
        link.duplicate * 100.0,
        link.reorder * 100.0,
        args.seed
    );
    println!(
        "tunnels: {}/{} up after {:.2} s simulated",
        count(&pair.lns_events, up),
        args.tunnels,
        tunnels_up_at.as_secs_f64()
    );
    println!(
        "sessions: {sessions_up}/{sessions} up after {:.2} s simulated",
        sessions_up_at.as_secs_f64()
    );
    println!("setup progress: {}", progress.join(", "));
    println!(
        "channels at full load: LAC sent {} retransmitted {} (fast {}); LNS sent {} retransmitted {} (fast {})",
        lac_channels.sent,
        lac_channels.retransmitted,
        lac_channels.fast_retransmits,
        lns_channels.sent,
        lns_channels.retransmitted,
        lns_channels.fast_retransmits
    );
    println!(
        "teardown: {} tunnels and {} sessions left, {:.2} s simulated in total",
        pair.lns.tunnel_count(),
        pair.lns.session_count(),
        pair.elapsed().as_secs_f64()
    );
    println!(
        "LNS: SCCRQ {} ICRQ {} ICCN {} CDN {} StopCCN {} in; ZLB {} in; duplicates {}, out of order {}, malformed {}",
        lns_stats.received(MessageType::Sccrq),
        lns_stats.received(MessageType::Icrq),
        lns_stats.received(MessageType::Iccn),
        lns_stats.received(MessageType::Cdn),
        lns_stats.received(MessageType::StopCcn),
        lns_stats.zlb_in,
        lns_stats.duplicates,
        lns_stats.out_of_order,
        lns_stats.malformed_messages,
    );
    println!(
        "wall clock: {:.3} s for {messages} control messages handled by both endpoints ({:.0}/s)",
        elapsed.as_secs_f64(),
        messages as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    for (side, events) in [("LAC", &pair.lac_events), ("LNS", &pair.lns_events)] {
        let mut reasons: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                Event::TunnelDown { reason, .. } => Some(format!("{reason:?}")),
                Event::SessionDown {
                    reason: reason @ SessionDownReason::SetupTimeout,
                    ..
                } => Some(format!("session {reason:?}")),
                _ => None,
            })
            .collect();
        reasons.sort();
        reasons.dedup_by(|a, b| a == b);
        println!("{side} teardown reasons: {}", reasons.join("; "));
    }
    if sessions_up == sessions && pair.lns.tunnel_count() == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("not every session came up and went down cleanly");
        ExitCode::FAILURE
    }
}

/// `lns check-config FILE`: exit 0 with a summary, or 2 with the mistake.
fn check_config(args: &[String]) -> ExitCode {
    let [file] = args else {
        eprintln!("lns check-config: expects exactly one FILE\n\n{USAGE}");
        return ExitCode::from(2);
    };
    let loaded = Config::load(Path::new(file)).and_then(|c| c.load_users().map(|u| (c, u)));
    match loaded {
        Ok((config, users)) => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            println!("{file}: ok");
            println!("{}", wrap(&config.summary(&users, cores), 78));
            ExitCode::SUCCESS
        }
        Err(e) => {
            // Display gives FILE:LINE:COL: key: message (the users file's
            // name and line when the mistake is there).
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

/// Greedy word wrap for terminal output.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for word in text.split_whitespace() {
        if line_len > 0 && line_len + 1 + word.len() > width {
            out.push('\n');
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += word.len();
    }
    out
}

/// `lns run [--config FILE]`.
fn run(args: &[String]) -> ExitCode {
    let config = match args {
        [] => Ok(Config::default()),
        [flag, file] if flag == "--config" => Config::load(Path::new(file)),
        _ => {
            eprintln!("lns run: expects [--config FILE]\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match config.and_then(|c| c.validate().map(|()| c)) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (settings, node, reloader) = match lns::io::launch::prepare(&config, cores) {
        Ok(parts) => parts,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = lns::io::signals::install() {
        eprintln!("lns run: cannot install signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    let running = match lns::io::daemon::start(&settings, node, Some(reloader)) {
        Ok(running) => running,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            eprintln!(
                "lns run: cannot start: {e} (root, or CAP_NET_ADMIN and /dev/net/tun, is needed)"
            );
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        listen = ?running.bound,
        shards = settings.shards,
        tun = %running.tun_name,
        io = %running.io_path,
        management = ?settings.management,
        metrics = ?running.metrics,
        "lns running"
    );
    // Ready for systemd (Type=notify) only now: `daemon::start` has bound
    // the UDP sockets and the metrics endpoint and started every thread.
    let notifier = match lns::io::notify::Notifier::from_env() {
        Some(Ok(notifier)) => Some(notifier),
        Some(Err(e)) => {
            tracing::warn!("NOTIFY_SOCKET: {e}");
            None
        }
        None => None,
    };
    let notify = |message: String| {
        if let Some(notifier) = &notifier {
            if let Err(e) = notifier.send(&message) {
                tracing::warn!("sd_notify: {e}");
            }
        }
    };
    notify(lns::io::notify::ready_message(&format!(
        "{} shards on {}, L2TP on {:?}, metrics on {}",
        settings.shards,
        running.io_path,
        running.bound,
        running
            .metrics
            .map_or_else(|| "off".to_string(), |a| a.to_string()),
    )));
    let mut stopping = false;
    while !running.finished() {
        if lns::io::signals::take_stop() {
            tracing::info!("signal: stopping gracefully");
            if !stopping {
                notify(lns::io::notify::stopping_message(
                    "stopping: StopCCN to every tunnel",
                ));
                stopping = true;
            }
            running.stop();
        }
        if lns::io::signals::take_reload() {
            running.reload();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let counters = running.wait();
    tracing::info!(?counters, "lns stopped");
    ExitCode::SUCCESS
}

fn init_logging(config: &Config) {
    use lns::config::{LogFormat, LogLevel};
    let level = match config.log.level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("LNS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// `lns show|kill|reload ...`: one line to the management socket.
fn manage(args: &[String]) -> ExitCode {
    let mut words: Vec<&str> = Vec::new();
    let mut socket = lns::io::manage::default_path();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--socket" {
            match rest.next() {
                Some(path) => socket = path.into(),
                None => {
                    eprintln!("--socket needs a PATH");
                    return ExitCode::from(2);
                }
            }
        } else {
            words.push(arg);
        }
    }
    let line = words.join(" ");
    if let Err(e) = lns::io::manage::Command::parse(&line) {
        eprintln!("lns: {e}");
        return ExitCode::from(2);
    }
    match lns::io::manage::request(&socket, &line) {
        Ok(answer) => {
            print!("{answer}");
            if answer.starts_with("error:") {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("lns: cannot reach the daemon at {}: {e}", socket.display());
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("show") | Some("kill") | Some("reload") => manage(&args),
        Some("check-config") => check_config(&args[1..]),
        Some("simulate") => match parse_simulate(&args[1..]) {
            Ok(sim) => simulate(&sim),
            Err(e) => {
                eprintln!("lns simulate: {e}\n\n{USAGE}");
                ExitCode::from(2)
            }
        },
        Some("version") | Some("--version") => {
            println!("lns {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some("help") | Some("--help") | Some("-h") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
