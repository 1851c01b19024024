//! The `loadgen` binary: its help, and a small run that prints JSON on
//! stdout against our daemon in a private network namespace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use lns::io::netns::in_private_netns;

mod support;
use support::{skipped, Lns};

const BIN: &str = env!("CARGO_BIN_EXE_loadgen");

#[test]
fn help_lists_the_subcommand_and_every_option() {
    let top = Command::new(BIN).arg("--help").output().unwrap();
    assert!(top.status.success());
    let top = String::from_utf8(top.stdout).unwrap();
    assert!(top.contains("run"), "{top}");
    let run = Command::new(BIN).args(["run", "--help"]).output().unwrap();
    assert!(run.status.success());
    let run = String::from_utf8(run.stdout).unwrap();
    for option in [
        "--lns",
        "--bind",
        "--tunnels",
        "--sessions-per-tunnel",
        "--rate",
        "--secret",
        "--hidden",
        "--proxy",
        "--auth",
        "--user",
        "--password",
        "--calling",
        "--called",
        "--hold",
        "--teardown",
        "--workers",
        "--timeout",
        "--json",
        "--html",
        "--scenario",
        "--data-pps",
        "--data-size",
        "--reflector",
        "--reflector6",
        "--lns-pid",
        "--lns-name",
        "--duration",
        "--churn-rate",
        "--flap-interval",
        "--io",
        "churn",
        "flap",
        "soak",
    ] {
        assert!(run.contains(option), "{option} missing from:\n{run}");
    }
    // A bad value is a usage error (status 2), not a run.
    let bad = Command::new(BIN)
        .args(["run", "--lns", "127.0.0.1:1701", "--rate", "fast"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    // An LNS process to watch that is not there: the run cannot start.
    let absent = Command::new(BIN)
        .args([
            "run",
            "--lns",
            "127.0.0.1:1701",
            "--lns-name",
            "no-such-lns-xyz",
        ])
        .output()
        .unwrap();
    assert_eq!(absent.status.code(), Some(2));
    let why = String::from_utf8_lossy(&absent.stderr);
    assert!(why.contains("no process named no-such-lns-xyz"), "{why}");
    // Data without a reflector (or without a hold) is a usage error too.
    let bad = Command::new(BIN)
        .args([
            "run",
            "--lns",
            "127.0.0.1:1701",
            "--data-pps",
            "5",
            "--hold",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--reflector"));
    // A scenario without what it needs is a usage error before any run.
    let bad = Command::new(BIN)
        .args([
            "run",
            "--lns",
            "127.0.0.1:1701",
            "--scenario",
            "churn",
            "--duration",
            "3",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--churn-rate"));
    let reflect = Command::new(BIN)
        .args(["reflect", "--help"])
        .output()
        .unwrap();
    assert!(reflect.status.success());
    let reflect = String::from_utf8(reflect.stdout).unwrap();
    for option in ["--listen", "--workers", "--duration"] {
        assert!(
            reflect.contains(option),
            "{option} missing from:\n{reflect}"
        );
    }
}

/// `loadgen reflect --duration` bounces datagrams, then prints its counts
/// and exits 0. No privileges: it listens on loopback.
#[test]
fn reflect_bounces_datagrams_and_prints_its_counts_at_the_end() {
    use std::net::UdpSocket;
    // A free port: bind, note it, let it go.
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let child = Command::new(BIN)
        .args([
            "reflect",
            "--listen",
            &listen,
            "--workers",
            "2",
            "--duration",
            "3",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(std::time::Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 16];
    // Until it is listening, datagrams are refused; then five come back.
    let mut back = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(2500);
    while back < 5 && std::time::Instant::now() < deadline {
        let _ = client.send_to(b"ping", &listen);
        if let Ok((n, _)) = client.recv_from(&mut buf) {
            assert_eq!(&buf[..n], b"ping");
            back += 1;
        }
    }
    assert_eq!(back, 5);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("loadgen reflect: ") && stdout.contains("reflected"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("listening on"));
}

#[test]
fn run_with_json_dash_prints_the_report_as_json() {
    let name = "run_with_json_dash_prints_the_report_as_json";
    let ran = in_private_netns(|| {
        let (running, lns) = Lns::default().start();
        // A child spawned from this thread lives in its namespace.
        let out = Command::new(BIN)
            .args([
                "run",
                "--lns",
                &lns.to_string(),
                "--tunnels",
                "2",
                "--sessions-per-tunnel",
                "10",
                "--rate",
                "unlimited",
                "--hold",
                "0.2",
                "--timeout",
                "20",
                "--json",
                "-",
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        let value: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(value["schema"], "loadgen-report/4");
        assert_eq!(value["sessions"]["established"], 20, "{stdout}");
        assert_eq!(value["settings"]["hold_s"], 0.2);
        assert!(value["wall_s"].as_f64().unwrap() >= 0.2, "held: {stdout}");
        assert!(value["settings"]["rate_per_s"].is_null());
        assert!(value["setup_latency_ms"]["p99"].is_f64());
        // The timeline ends with the run's totals; the distribution holds
        // every session.
        let samples = value["timeline"]["samples"].as_array().unwrap();
        let last = samples.last().unwrap();
        assert_eq!(last["established"], 20, "{stdout}");
        assert_eq!(last["attempted"], 20, "{stdout}");
        assert!(last["t_s"].as_f64().unwrap() >= 0.2, "{stdout}");
        let buckets = value["setup_latency_histogram"].as_array().unwrap();
        let counted: u64 = buckets.iter().map(|b| b["count"].as_u64().unwrap()).sum();
        assert_eq!(counted, 20, "{stdout}");
        running.stop();
        running.wait();
    });
    if !ran {
        skipped(name);
    }
}

/// On a terminal (script(1) gives the run one) a progress line is drawn on
/// stderr; through a pipe there is none. Against a silent socket: no root
/// needed.
#[test]
fn a_progress_line_on_a_terminal_and_none_through_a_pipe() {
    let name = "a_progress_line_on_a_terminal_and_none_through_a_pipe";
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let lns = silent.local_addr().unwrap().to_string();
    let args = [
        "run",
        "--lns",
        &lns,
        "--sessions-per-tunnel",
        "5",
        "--timeout",
        "0.5",
    ];
    let piped = Command::new(BIN).args(args).output().unwrap();
    assert_eq!(piped.status.code(), Some(1), "nothing came up");
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(!stderr.contains("dialled"), "{stderr}");
    assert!(String::from_utf8_lossy(&piped.stdout).contains("5 not attempted"));
    let line = format!("{BIN} {}", args.join(" "));
    let tty = match Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("SKIPPED {name}: script(1) is not available: {e}");
            return;
        }
    };
    let text = String::from_utf8_lossy(&tty.stdout);
    assert!(text.contains("0/5 up"), "{text}");
    assert!(text.contains("0 dialled, 0 failed"), "{text}");
    assert!(text.contains("5 not attempted"), "{text}");
}
