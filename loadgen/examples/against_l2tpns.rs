//! One loadgen run against l2tpns + FreeRADIUS, set up by the same
//! harness as `tests/against_l2tpns.rs` (the root crate's
//! `tests/support/l2tpns.rs`), for figures: `scripts/compare_l2tpns.sh`
//! runs it next to our daemon.
//!
//! ```sh
//! cargo run --release -p loadgen --example against_l2tpns -- \
//!     --tunnels 10 --sessions-per-tunnel 1000 --scenario storm --json out.json
//! ```
//!
//! Every argument is a `loadgen run` option; the example adds the ones the
//! lab fixes: `--lns` (l2tpns's address), `--bind` (the LAC namespace's),
//! `--secret`, `--auth chap` (l2tpns's radius_authtypes is "chap,pap"),
//! `--user user{n}@l2tpns.test`, `--password` (what FreeRADIUS takes) and
//! `--lns-pid` (l2tpns, for its CPU and RSS). l2tpns runs with a /16 pool,
//! `debug 1` (its per-packet logging at 3 would be the bottleneck) and
//! `LNS_RMEM_DEFAULT` (default 32 MiB) as `net.core.rmem_default` while it
//! opens its socket. With `--data-pps` and no `--reflector`, a reflector
//! (one thread) is started on l2tpns's network side (an address on
//! loopback in its namespace) and used. Needs root and the Debian packages l2tpns and
//! freeradius. Exit status as loadgen's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::ExitCode;

use clap::Parser;
use loadgen::options::{Cli, Command};
use loadgen::reflect::Reflector;

#[path = "../../tests/support/mod.rs"]
mod lab;
use lab::l2tpns::{L2tpns, L2tpnsOptions, PASSWORD};

const SECRET: &str = "loadgen-l2tpns-secret";

fn main() -> ExitCode {
    let rmem_default = std::env::var("LNS_RMEM_DEFAULT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32 << 20);
    let options = L2tpnsOptions {
        pool: "100.96.0.0/16".to_string(),
        debug: 1,
        rmem_default,
        ..L2tpnsOptions::new(SECRET)
    };
    let Some(lab) = L2tpns::start_with("against_l2tpns", options) else {
        return ExitCode::from(2);
    };
    let lns = lab.lns_addr().to_string();
    let bind = lab.lac_addr().to_string();
    let pid = lab.pid().to_string();
    let mut args: Vec<String> = [
        "loadgen",
        "run",
        "--lns",
        &lns,
        "--bind",
        &bind,
        "--secret",
        SECRET,
        "--auth",
        "chap",
        "--user",
        "user{n}@l2tpns.test",
        "--password",
        PASSWORD,
        "--lns-pid",
        &pid,
    ]
    .map(String::from)
    .to_vec();
    args.extend(std::env::args().skip(1));
    let Command::Run(mut options) = Cli::parse_from(args).command else {
        unreachable!("the arguments above start with `run`")
    };
    let reflector = (options.data_pps > 0.0 && options.reflector.is_none()).then(|| {
        let server = std::net::SocketAddr::from((lab.server_addr(), 0));
        lab.in_lns_ns(|| Reflector::bind(server, 1).and_then(Reflector::spawn))
            .expect("a reflector in l2tpns's namespace")
    });
    if let Some(std::net::SocketAddr::V4(at)) = reflector.as_ref().map(|r| r.local_addr()) {
        options.reflector = Some(at);
    }
    eprintln!(
        "l2tpns pid {pid} up after {:.1} s, socket buffer {:?} B; files in {}",
        lab.startup.as_secs_f64(),
        lab.l2tp_rcvbuf(),
        lab.dir().display()
    );
    let report = match lab.in_lac_ns(|| loadgen::run(&options)) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("loadgen: cannot start the run: {e}");
            return ExitCode::from(2);
        }
    };
    report.emit(options.json.as_deref()).unwrap();
    if let Some(path) = &options.html {
        loadgen::html::write(&report, path).unwrap();
    }
    if let Some(reflector) = reflector {
        eprintln!("reflector: {:?}", reflector.stop());
    }
    // At debug 1 l2tpns logs little per session; its last lines say how
    // the run ended there.
    let log = lab.log();
    let tail: Vec<&str> = log.lines().rev().take(5).collect();
    eprintln!(
        "l2tpns's log ends:\n{}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    if report.sessions.established == report.sessions.planned {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
