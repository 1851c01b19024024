//! systemd readiness (`Type=notify`): the `lns` binary, started with
//! `$NOTIFY_SOCKET` naming a datagram socket this test bound (as systemd
//! would), says `READY=1` only once it answers — UDP 1701 bound, every
//! shard answering a health check, the metrics endpoint serving — and
//! `STOPPING=1` when SIGTERM starts its shutdown, then exits cleanly.
//!
//! In a private network namespace (root and /dev/net/tun, as CI has; says
//! SKIPPED loudly otherwise).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use lns::io::netns::in_private_netns;

mod support;
use support::tools::{daemon_config, Killed};

/// One datagram from the daemon, within `limit`.
fn notification(socket: &UnixDatagram, limit: Duration) -> String {
    socket.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 1024];
    let n = socket.recv(&mut buf).expect("a notification in time");
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

/// GET `path` from the metrics endpoint: (status, body).
fn get(path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect("127.0.0.1:9701").expect("the endpoint listens");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: lns\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    (
        head.split(' ').nth(1).unwrap().parse().unwrap(),
        body.to_string(),
    )
}

#[test]
fn ready_only_once_serving_and_stopping_on_sigterm() {
    let name = "ready_only_once_serving_and_stopping_on_sigterm";
    let ran = in_private_netns(move || {
        lns::io::netns::link_up("lo").unwrap();
        let dir = std::env::temp_dir().join(format!("lns-sd-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let manager = UnixDatagram::bind(dir.join("notify")).unwrap();
        std::fs::write(
            dir.join("lns.toml"),
            daemon_config("lnsn", &dir.join("lns.sock")),
        )
        .unwrap();
        let started = Instant::now();
        // Spawned from this thread, the daemon is in its namespace.
        let mut daemon = Killed::spawn_logged(
            Command::new(env!("CARGO_BIN_EXE_lns"))
                .arg("run")
                .arg("--config")
                .arg(dir.join("lns.toml"))
                .env("NOTIFY_SOCKET", dir.join("notify")),
            &dir.join("lns.log"),
        );
        let pid = daemon.0.id();
        let said = || std::fs::read_to_string(dir.join("lns.log")).unwrap_or_default();

        let ready = notification(&manager, Duration::from_secs(20));
        eprintln!("after {:?}: {ready:?}", started.elapsed());
        let lines: Vec<&str> = ready.lines().collect();
        assert_eq!(lines.first(), Some(&"READY=1"), "{ready}\n{}", said());
        let status = lines.get(1).and_then(|l| l.strip_prefix("STATUS="));
        assert!(
            status.is_some_and(|s| s.contains("2 shards") && s.contains("127.0.0.1:9701")),
            "{ready}"
        );
        // At that moment it already serves: the L2TP port is taken, the
        // endpoint answers and every shard answers its health check.
        let taken = UdpSocket::bind("127.0.0.1:1701").map(|_| ()).unwrap_err();
        assert_eq!(taken.kind(), std::io::ErrorKind::AddrInUse);
        assert_eq!(get("/healthz"), (200, "ok\n".to_string()));
        let metrics = get("/metrics").1;
        for shard in 0..2 {
            let up = format!("lns_shard_up{{shard=\"{shard}\"}} 1");
            assert!(metrics.lines().any(|l| l == up), "no {up}");
        }
        // Nothing more until asked to stop.
        manager.set_nonblocking(true).unwrap();
        assert!(manager.recv(&mut [0u8; 64]).is_err(), "a second message");
        manager.set_nonblocking(false).unwrap();

        // SAFETY: a plain kill(2) of the child this test started.
        assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) }, 0);
        let stopping = notification(&manager, Duration::from_secs(10));
        assert!(stopping.starts_with("STOPPING=1\nSTATUS="), "{stopping}");
        let status = daemon
            .wait_exit(Duration::from_secs(20))
            .unwrap_or_else(|| panic!("still running:\n{}", said()));
        assert!(status.success(), "{status}\n{}", said());
        std::fs::remove_dir_all(&dir).unwrap();
    });
    if !ran {
        eprintln!(
            "\n*** SKIPPED {name}: needs root with network namespaces and /dev/net/tun ***\n"
        );
    }
}
