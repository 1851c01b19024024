//! Two named network namespaces joined by a veth pair, for tests that run a
//! real peer in one and our code (or a process of ours) in the other. All
//! traffic stays inside them; dropping the pair deletes both, and with
//! them every interface and route the peers made.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use super::tools::{is_root, which};

/// Why this machine cannot make namespaces and veths, if it cannot.
pub fn missing() -> Option<&'static str> {
    if !is_root() {
        return Some("needs root (network namespaces)");
    }
    if which("ip").is_none() {
        return Some("ip (iproute2) is not installed");
    }
    // Namespaces may be unavailable even to root (e.g. in a container).
    let probe = format!("lnsp-{}-probe", std::process::id());
    let made = Command::new("ip")
        .args(["netns", "add", &probe])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        return Some("cannot create network namespaces");
    }
    let _ = Command::new("ip").args(["netns", "del", &probe]).status();
    None
}

/// Run `ip ARGS`; panics with its complaint if it fails.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run `f` on a thread of its own that has entered namespace `ns`, and
/// return what it returns. Sockets it opens stay in `ns` wherever they are
/// used afterwards, so a test can drive them from its own thread.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::scope(|scope| {
        let worker = scope.spawn(|| {
            let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            // SAFETY: setns(2) on a valid namespace descriptor moves only
            // the calling thread, which ends with this scope.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
            f()
        });
        match worker.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// A `Command` for `program` run inside namespace `ns` (`ip netns exec`,
/// which also gives it a private mount namespace).
pub fn exec_in(ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).arg(program);
    c
}

/// Two namespaces, `a` and `b`, each with one end of a veth pair
/// (addresses `a_addr`/24 and `b_addr`/24) and loopback up.
#[derive(Debug)]
pub struct NetnsPair {
    /// The first namespace (the peer under test, by convention).
    pub a: String,
    /// The second namespace (our side).
    pub b: String,
    /// The veth end in `a`.
    pub a_veth: String,
    /// The veth end in `b`.
    pub b_veth: String,
    /// The address of `a_veth`.
    pub a_addr: Ipv4Addr,
    /// The address of `b_veth`.
    pub b_addr: Ipv4Addr,
}

impl NetnsPair {
    /// Create the pair; `tag` (a few letters) goes into the names so a
    /// leftover namespace says which test made it.
    pub fn new(tag: &str, a_addr: Ipv4Addr, b_addr: Ipv4Addr) -> NetnsPair {
        // Unique within this process too: tests of one binary run in
        // parallel. Interface names must fit in 15 bytes.
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = std::process::id();
        let pair = NetnsPair {
            a: format!("{tag}-{id}-{n}-a"),
            b: format!("{tag}-{id}-{n}-b"),
            a_veth: format!("v{}{id}x{n}a", &tag[..tag.len().min(2)]),
            b_veth: format!("v{}{id}x{n}b", &tag[..tag.len().min(2)]),
            a_addr,
            b_addr,
        };
        assert!(pair.a_veth.len() <= 15, "{} is too long", pair.a_veth);
        ip(&["netns", "add", &pair.a]);
        ip(&["netns", "add", &pair.b]);
        ip(&[
            "link",
            "add",
            &pair.a_veth,
            "netns",
            &pair.a,
            "type",
            "veth",
            "peer",
            "name",
            &pair.b_veth,
            "netns",
            &pair.b,
        ]);
        for (ns, veth, addr) in [
            (&pair.a, &pair.a_veth, a_addr),
            (&pair.b, &pair.b_veth, b_addr),
        ] {
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", veth]);
            ip(&["-n", ns, "link", "set", veth, "up"]);
        }
        pair
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        // The caller stops its processes first: a namespace with a process
        // in it only disappears when that process ends.
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}
