//! `loadgen demo`, the README's first command, as a user runs it: the
//! binary makes its own network namespace, starts the daemon on embedded
//! defaults as a child, loads it with IPv4 and IPv6 data, stops it, and
//! reports. Needs root and TUN (CI has both); says SKIPPED loudly without.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_loadgen");

fn can_run() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    root && std::path::Path::new("/dev/net/tun").exists()
}

#[test]
fn demo_brings_every_session_up_loses_nothing_and_stops_the_daemon_cleanly() {
    let name = "demo_brings_every_session_up_loses_nothing_and_stops_the_daemon_cleanly";
    if !can_run() {
        eprintln!("SKIPPED {name}: `loadgen demo` needs root and /dev/net/tun");
        return;
    }
    let json = std::env::temp_dir().join(format!("loadgen-demo-{}.json", std::process::id()));
    let html = json.with_extension("html");
    let out = Command::new(BIN)
        .args([
            "demo",
            "--tunnels",
            "4",
            "--sessions",
            "50",
            "--rate",
            "500",
        ])
        .args(["--hold", "3", "--data-pps", "2", "--quiet", "--json"])
        .arg(&json)
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}\n{stdout}");
    assert!(out.status.success(), "demo failed: {}", out.status);
    assert!(stderr.contains("embedded defaults"), "{stderr}");
    assert!(
        stderr.contains("lns stopped on SIGTERM") && stderr.contains("exit status: 0"),
        "{stderr}"
    );
    // The text report on stdout, the JSON in the file.
    assert!(
        stdout.contains("200 established of 200 attempted"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    // The HTML page was written too (its rendering is tests/html_report.rs's).
    let page = std::fs::read_to_string(&html).unwrap();
    let _ = std::fs::remove_file(&html);
    assert!(
        page.starts_with("<!DOCTYPE html>") && page.contains("<svg"),
        "{page:.200}"
    );
    assert_eq!(report["sessions"]["established"], 200);
    assert_eq!(report["sessions"]["failed"], 0);
    let data = &report["data"];
    let sent = data["sent"].as_u64().unwrap();
    // 200 sessions x 2/s x 3 s, half of them over IPv6.
    assert!(sent >= 1000, "{data}");
    assert_eq!(data["received"].as_u64().unwrap(), sent, "{data}");
    assert_eq!(data["lost"], 0);
    assert!(data["sent_ipv6"].as_u64().unwrap() >= sent / 3, "{data}");
    assert_eq!(data["received_ipv6"], data["sent_ipv6"]);
    // The daemon child was watched: its RSS is in the report.
    let target = &report["target"];
    assert!(target["rss_max_kib"].as_u64().unwrap_or(0) > 0, "{target}");
    assert!(
        target["name"].as_str().unwrap_or("").contains("lns"),
        "{target}"
    );
}

#[test]
fn demo_help_lists_its_options_and_unprivileged_runs_are_refused() {
    // As root only the help is checked here: the demo itself runs above.
    let help = Command::new(BIN).args(["demo", "--help"]).output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    for option in [
        "--tunnels",
        "--sessions",
        "--rate",
        "--hold",
        "--data-pps",
        "--json",
    ] {
        assert!(help.contains(option), "{option} missing:\n{help}");
    }
    if !can_run() {
        let out = Command::new(BIN).arg("demo").output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("needs root"));
    }
}
