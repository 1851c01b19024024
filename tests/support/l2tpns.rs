//! l2tpns (Debian package, an independent userspace LNS) authenticating
//! through FreeRADIUS (Debian package), both in a network namespace of
//! their own, with a second namespace for the LAC joined by a veth pair.
//!
//! [`L2tpns::start`] builds all of it from private files (nothing under
//! /etc changes: l2tpns's fixed `/etc/l2tpns/ip_pool` is bind-mounted over
//! inside its private mount namespace) and returns once l2tpns takes
//! calls; dropping the value stops both daemons and deletes the
//! namespaces. Sessions come from the LAC namespace: run code there with
//! [`L2tpns::in_lac_ns`] (sockets made there keep working from any thread)
//! or a program with [`L2tpns::lac_command`]. On the network side, the
//! address [`L2tpns::server_addr`] lives in l2tpns's namespace: what a
//! subscriber sends there reaches sockets bound with
//! [`L2tpns::in_lns_ns`], and their answers go back through l2tpns.
//!
//! The facts this relies on (shared/PEERS.md): l2tpns signals its whole
//! process group when it exits, so it gets a group of its own; it takes
//! calls only once it has elected itself cluster master (≈ 14 s after
//! start); it never sets SO_RCVBUF, so `net.core.rmem_default` (global,
//! not per namespace) is raised while it opens its socket, then restored.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::netns::{exec_in, in_netns, NetnsPair};
use super::tools::{which, Capture};

/// l2tpns's address on the veth (its `bind_address`).
pub const LNS_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// The LAC namespace's address on the veth.
pub const LAC_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
/// l2tpns's address on its `tun0` (`iftun_address`).
pub const TUN_ADDR: Ipv4Addr = Ipv4Addr::new(100, 127, 0, 1);
/// A network-side host: an address on loopback in l2tpns's namespace.
pub const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
/// The password FreeRADIUS accepts for any user name (PAP or CHAP).
pub const PASSWORD: &str = "secret";
/// l2tpns's shared secret with FreeRADIUS (on loopback in its namespace).
const RADIUS_SECRET: &str = "harness-radius-secret";

/// What to run l2tpns with.
#[derive(Debug, Clone)]
pub struct L2tpnsOptions {
    /// The tunnel secret (`l2tp_secret`): l2tpns authenticates tunnels.
    pub secret: String,
    /// The subscribers' address pool (`/etc/l2tpns/ip_pool`), as CIDR.
    pub pool: String,
    /// `net.core.rmem_default` while l2tpns opens its L2TP socket (bytes).
    pub rmem_default: u32,
    /// l2tpns's `debug` level (3 logs each session's progress).
    pub debug: u8,
    /// More `set KEY VALUE` lines for its startup-config.
    pub extra_config: Vec<String>,
}

impl L2tpnsOptions {
    /// Defaults for a tunnel secret: a /22 pool, 8 MiB receive buffer.
    pub fn new(secret: &str) -> L2tpnsOptions {
        L2tpnsOptions {
            secret: secret.to_string(),
            pool: "100.127.4.0/22".to_string(),
            rmem_default: 8 << 20,
            debug: 3,
            extra_config: Vec::new(),
        }
    }
}

/// Why l2tpns cannot run here, if it cannot.
pub fn missing() -> Option<&'static str> {
    if let Some(why) = super::netns::missing() {
        return Some(why);
    }
    if which("l2tpns").is_none() {
        return Some("l2tpns is not installed (CI installs the Debian package)");
    }
    if which("freeradius").is_none() {
        return Some("freeradius is not installed (CI installs the Debian package)");
    }
    if !Path::new("/etc/freeradius/3.0/radiusd.conf").exists() {
        return Some("no /etc/freeradius/3.0 to copy the configuration from");
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun");
    }
    None
}

/// A process in a process group of its own, killed as a group on drop.
#[derive(Debug)]
struct Group(Child);

impl Group {
    fn spawn(mut command: Command, log: &Path) -> Group {
        let log = std::fs::File::create(log).unwrap();
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Group(child)
    }

    /// Exit status, if the process has ended.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0.try_wait().ok().flatten()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let group = i32::try_from(self.0.id()).unwrap_or(i32::MAX);
        // SAFETY: kill(2) with a negative pid signals the group we made
        // for this child (its pid is the group id), and nothing else.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// Serialises raising and restoring `net.core.rmem_default` among the
/// tests of one binary (they run on parallel threads).
static RMEM: Mutex<()> = Mutex::new(());
const RMEM_DEFAULT: &str = "/proc/sys/net/core/rmem_default";

/// Puts the old `rmem_default` back when dropped (a panic included).
struct RmemRaised(String);

impl RmemRaised {
    fn raise(to: u32) -> RmemRaised {
        let old = std::fs::read_to_string(RMEM_DEFAULT).unwrap();
        std::fs::write(RMEM_DEFAULT, to.to_string()).unwrap();
        RmemRaised(old.trim().to_string())
    }
}

impl Drop for RmemRaised {
    fn drop(&mut self) {
        let _ = std::fs::write(RMEM_DEFAULT, &self.0);
    }
}

/// l2tpns and FreeRADIUS running in their namespace, a LAC namespace.
#[derive(Debug)]
pub struct L2tpns {
    /// Declared before `net`: processes go before their namespaces.
    l2tpns: Group,
    radius: Group,
    net: NetnsPair,
    dir: PathBuf,
    options: L2tpnsOptions,
    /// From `start` until l2tpns declared itself master.
    pub startup: Duration,
}

impl L2tpns {
    /// [`L2tpns::start_with`] default options and tunnel secret `secret`.
    pub fn start(test: &str, secret: &str) -> Option<L2tpns> {
        L2tpns::start_with(test, L2tpnsOptions::new(secret))
    }

    /// Start FreeRADIUS and l2tpns and wait (bounded) until l2tpns takes
    /// calls. None, after saying loudly that `test` skipped, when this
    /// machine lacks root, namespaces or the packages; a panic when they
    /// are there but the daemons do not come up.
    pub fn start_with(test: &str, options: L2tpnsOptions) -> Option<L2tpns> {
        if let Some(why) = missing() {
            eprintln!("\n*** SKIPPED {test}: {why} ***\n");
            return None;
        }
        let started = Instant::now();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "lns-l2tpns-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let net = NetnsPair::new("l2n", LNS_ADDR, LAC_ADDR);
        super::netns::ip(&[
            "-n",
            &net.a,
            "addr",
            "add",
            &format!("{SERVER_ADDR}/32"),
            "dev",
            "lo",
        ]);

        let raddb = write_radius_config(&dir);
        let mut radius = exec_in(&net.a, which("freeradius").unwrap());
        radius.arg("-d").arg(&raddb).args(["-f", "-l", "stdout"]);
        let radius = Group::spawn(radius, &dir.join("radius.log"));

        write_l2tpns_config(&dir, &options);
        let l2tpns = {
            let _serial = RMEM.lock().unwrap_or_else(|e| e.into_inner());
            let _raised = RmemRaised::raise(options.rmem_default);
            // `ip netns exec` gives a private mount namespace: the pool
            // file goes over l2tpns's fixed path there only.
            let mut run = exec_in(&net.a, "sh");
            run.arg("-c").arg(format!(
                "mount --bind '{pool}' /etc/l2tpns/ip_pool && exec '{l2tpns}' -c '{config}'",
                pool = dir.join("ip_pool").display(),
                l2tpns = which("l2tpns").unwrap().display(),
                config = dir.join("startup-config").display(),
            ));
            let mut l2tpns = Group::spawn(run, &dir.join("l2tpns.out"));
            // The raised default applies to sockets opened from now on;
            // put it back once l2tpns has its L2TP socket.
            let pid = l2tpns.0.id();
            let bound = wait_for(Duration::from_secs(10), || {
                l2tpns.exited().is_some() || udp_bound(pid, LNS_ADDR, 1701)
            });
            assert!(
                bound && l2tpns.exited().is_none(),
                "l2tpns did not open udp/1701:\n{}",
                read(&dir.join("l2tpns.out"))
            );
            l2tpns
        };
        let mut lab = L2tpns {
            l2tpns,
            radius,
            net,
            dir,
            options,
            startup: Duration::ZERO,
        };

        let ready = wait_for(Duration::from_secs(30), || {
            lab.radius.exited().is_some() || lab.radius_log().contains("Ready to process requests")
        });
        assert!(
            ready && lab.radius.exited().is_none(),
            "FreeRADIUS did not start:\n{}",
            lab.radius_log()
        );
        // l2tpns waits out a cluster heartbeat timeout before it elects
        // itself master and accepts tunnels.
        let master = wait_for(Duration::from_secs(40), || {
            lab.l2tpns.exited().is_some() || lab.log().contains("declaring myself the master")
        });
        assert!(
            master && lab.l2tpns.exited().is_none(),
            "l2tpns did not become master:\n{}\n{}",
            read(&lab.dir.join("l2tpns.out")),
            lab.log()
        );
        lab.startup = started.elapsed();
        Some(lab)
    }

    /// Where l2tpns listens for tunnels.
    pub fn lns_addr(&self) -> SocketAddr {
        SocketAddr::from((LNS_ADDR, 1701))
    }

    /// The LAC namespace's own address.
    pub fn lac_addr(&self) -> Ipv4Addr {
        LAC_ADDR
    }

    /// l2tpns's address on its tun device.
    pub fn tun_address(&self) -> Ipv4Addr {
        TUN_ADDR
    }

    /// A network-side address in l2tpns's namespace, routed from every
    /// session through l2tpns's tun device.
    pub fn server_addr(&self) -> Ipv4Addr {
        SERVER_ADDR
    }

    /// The subscribers' pool, as (network, prefix length).
    pub fn pool(&self) -> (Ipv4Addr, u8) {
        let (net, len) = self.options.pool.split_once('/').unwrap();
        (net.parse().unwrap(), len.parse().unwrap())
    }

    /// Whether `addr` is in the subscribers' pool.
    pub fn in_pool(&self, addr: Ipv4Addr) -> bool {
        let (net, len) = self.pool();
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        u32::from(addr) & mask == u32::from(net) & mask
    }

    /// l2tpns's (and FreeRADIUS's) namespace.
    pub fn netns(&self) -> &str {
        &self.net.a
    }

    /// The LAC namespace.
    pub fn lac_netns(&self) -> &str {
        &self.net.b
    }

    /// Run `f` in the LAC namespace (e.g. to bind the LAC's socket).
    pub fn in_lac_ns<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        in_netns(&self.net.b, f)
    }

    /// Run `f` in l2tpns's namespace (e.g. to bind a socket on
    /// [`L2tpns::server_addr`]).
    pub fn in_lns_ns<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        in_netns(&self.net.a, f)
    }

    /// `program` run in the LAC namespace (e.g. loadgen).
    pub fn lac_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        exec_in(&self.net.b, program)
    }

    /// `program` run in l2tpns's namespace (e.g. a reflector).
    pub fn lns_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        exec_in(&self.net.a, program)
    }

    /// l2tpns's process id (for CPU and RSS readings).
    pub fn pid(&self) -> u32 {
        self.l2tpns.0.id()
    }

    /// Whether l2tpns is still running.
    pub fn running(&mut self) -> bool {
        self.l2tpns.exited().is_none()
    }

    /// A capture of the L2TP traffic on l2tpns's veth into
    /// `name`.pcap in the scratch directory; None without tshark.
    pub fn capture(&self, name: &str) -> Option<Capture> {
        Capture::start(
            &["ip", "netns", "exec", &self.net.a],
            &self.net.a_veth,
            "udp port 1701",
            &self.dir.join(format!("{name}.pcap")),
        )
    }

    /// l2tpns's log so far.
    pub fn log(&self) -> String {
        read(&self.dir.join("l2tpns.log"))
    }

    /// FreeRADIUS's log so far.
    pub fn radius_log(&self) -> String {
        read(&self.dir.join("radius.log"))
    }

    /// Wait (≤ `limit`) until l2tpns's log holds `count` lines containing
    /// `text`; the number it holds.
    pub fn wait_log(&self, text: &str, count: usize, limit: Duration) -> usize {
        let lines = || self.log().lines().filter(|l| l.contains(text)).count();
        wait_for(limit, || lines() >= count);
        lines()
    }

    /// The receive buffer of l2tpns's L2TP socket (bytes), as `ss` shows
    /// it: whether the raised `rmem_default` took.
    pub fn l2tp_rcvbuf(&self) -> Option<u64> {
        let out = exec_in(&self.net.a, "ss")
            .args(["-Huanm", "sport", "=", ":1701"])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let at = text.find("rb")? + 2;
        let digits: String = text[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    }

    /// The scratch directory (configs, logs, captures).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for L2tpns {
    fn drop(&mut self) {
        // Fields drop in order: the daemons, then the namespaces. Keep the
        // logs of a failed test for a look.
        if std::thread::panicking() {
            eprintln!("l2tpns harness files kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A private copy of Debian's FreeRADIUS configuration: l2tpns's secret
/// for the `localhost` client, every user accepted with [`PASSWORD`], the
/// pid file in `dir`. Returns the copy's path.
fn write_radius_config(dir: &Path) -> PathBuf {
    let raddb = dir.join("raddb");
    let status = Command::new("cp")
        .arg("-a")
        .arg("/etc/freeradius/3.0")
        .arg(&raddb)
        .status()
        .unwrap();
    assert!(status.success(), "cp -a /etc/freeradius/3.0 failed");
    // Rewriting files in place keeps their owner (freerad) and mode.
    let edit = |path: &Path, f: &dyn Fn(&str) -> String| {
        let text = read(path);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .unwrap();
        file.write_all(f(&text).as_bytes()).unwrap();
    };
    // The first client block is `localhost` (127.0.0.1).
    edit(&raddb.join("clients.conf"), &|text| {
        assert!(
            text.contains("\tsecret = testing123"),
            "unexpected clients.conf"
        );
        text.replacen(
            "\tsecret = testing123",
            &format!("\tsecret = {RADIUS_SECRET}"),
            1,
        )
    });
    edit(&raddb.join("mods-config/files/authorize"), &|text| {
        format!(
            "DEFAULT Cleartext-Password := \"{PASSWORD}\"\n\
             \tService-Type = Framed-User,\n\tFramed-Protocol = PPP\n\n{text}"
        )
    });
    // Not the system's /var/run/freeradius: harnesses may run side by side.
    edit(&raddb.join("radiusd.conf"), &|text| {
        text.replacen(
            "pidfile = ${run_dir}/${name}.pid",
            &format!("pidfile = {}", dir.join("radiusd.pid").display()),
            1,
        )
    });
    raddb
}

fn write_l2tpns_config(dir: &Path, options: &L2tpnsOptions) {
    let mut config = format!(
        "set debug {debug}\n\
         set log_file \"{log}\"\n\
         set pid_file \"{pid}\"\n\
         set l2tp_secret \"{secret}\"\n\
         set bind_address {LNS_ADDR}\n\
         set iftun_address {TUN_ADDR}\n\
         set primary_dns 192.0.2.53\n\
         set primary_radius 127.0.0.1\n\
         set radius_secret \"{RADIUS_SECRET}\"\n\
         set radius_authtypes \"chap,pap\"\n\
         set radius_accounting no\n\
         set send_garp no\n\
         set cluster_interface lo\n\
         set multi_read_count 64\n\
         set ppp_keepalive yes\n\
         set cli_bind_address 127.0.0.1\n",
        debug = options.debug,
        log = dir.join("l2tpns.log").display(),
        pid = dir.join("l2tpns.pid").display(),
        secret = options.secret,
    );
    for line in &options.extra_config {
        config.push_str(line);
        config.push('\n');
    }
    std::fs::write(dir.join("startup-config"), config).unwrap();
    std::fs::write(dir.join("ip_pool"), format!("{}\n", options.pool)).unwrap();
}

/// Whether the network namespace of process `pid` has a UDP socket bound
/// to `addr`:`port` (/proc/PID/net/udp lists that namespace's sockets,
/// the address as the kernel's in-memory word in hex).
fn udp_bound(pid: u32, addr: Ipv4Addr, port: u16) -> bool {
    let table = read(Path::new(&format!("/proc/{pid}/net/udp")));
    let wanted = format!("{:08X}:{port:04X}", u32::from_ne_bytes(addr.octets()));
    table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .any(|local| local == wanted)
}

/// Poll `done` every 50 ms for at most `limit`; its last answer.
fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
