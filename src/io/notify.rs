//! systemd readiness notification (`Type=notify`): one datagram of
//! `KEY=VALUE` lines to the Unix socket named by `$NOTIFY_SOCKET`, as
//! sd_notify(3) describes. Written here rather than pulled in as a crate:
//! it is a socket, a path and two messages.
//!
//! `$NOTIFY_SOCKET` is a filesystem path (`/run/systemd/notify`) or, with a
//! leading `@`, a name in the abstract namespace. Without the variable the
//! daemon was not started by a service manager that listens, and nothing is
//! sent.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;

/// Where the service manager listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A socket file.
    Path(PathBuf),
    /// An abstract-namespace name (the `@` dropped).
    Abstract(Vec<u8>),
}

impl Target {
    /// Read a `$NOTIFY_SOCKET` value. None for an empty value or a form
    /// this daemon does not speak (`vsock:`, a relative path).
    pub fn parse(value: &OsStr) -> Option<Target> {
        let bytes = value.as_bytes();
        match bytes.first()? {
            b'/' => Some(Target::Path(PathBuf::from(value))),
            b'@' if bytes.len() > 1 => Some(Target::Abstract(bytes[1..].to_vec())),
            _ => None,
        }
    }

    fn address(&self) -> io::Result<SocketAddr> {
        match self {
            Target::Path(path) => SocketAddr::from_pathname(path),
            Target::Abstract(name) => SocketAddr::from_abstract_name(name),
        }
    }
}

/// `READY=1` with a one-line status for `systemctl status`.
pub fn ready_message(status: &str) -> String {
    format!("READY=1\nSTATUS={}\n", one_line(status))
}

/// `STOPPING=1` with a status.
pub fn stopping_message(status: &str) -> String {
    format!("STOPPING=1\nSTATUS={}\n", one_line(status))
}

/// A newline would start another assignment: the status keeps one line.
fn one_line(status: &str) -> String {
    status.replace(['\n', '\r'], " ")
}

/// A connection to the service manager's notification socket.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    target: SocketAddr,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`: None when it is unset or unusable (a value
    /// that cannot be used is an error worth logging, hence the Result).
    pub fn from_env() -> Option<io::Result<Notifier>> {
        let value = std::env::var_os("NOTIFY_SOCKET")?;
        Some(match Target::parse(&value) {
            Some(target) => Notifier::new(&target),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("NOTIFY_SOCKET={value:?} is neither a path nor @name"),
            )),
        })
    }

    /// An unbound datagram socket that sends to `target`.
    pub fn new(target: &Target) -> io::Result<Notifier> {
        Ok(Notifier {
            socket: UnixDatagram::unbound()?,
            target: target.address()?,
        })
    }

    /// Send `message` (one datagram, as the protocol requires).
    pub fn send(&self, message: &str) -> io::Result<()> {
        let sent = self.socket.send_to_addr(message.as_bytes(), &self.target)?;
        if sent != message.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "notification truncated",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn targets_are_paths_or_abstract_names() {
        assert_eq!(
            Target::parse(OsStr::new("/run/systemd/notify")),
            Some(Target::Path("/run/systemd/notify".into()))
        );
        assert_eq!(
            Target::parse(OsStr::new("@lns/notify")),
            Some(Target::Abstract(b"lns/notify".to_vec()))
        );
        for unusable in ["", "@", "relative/path", "vsock:2:1234"] {
            assert_eq!(Target::parse(OsStr::new(unusable)), None, "{unusable}");
        }
    }

    #[test]
    fn messages_are_assignments_one_per_line() {
        assert_eq!(
            ready_message("2 shards, UDP 127.0.0.1:1701"),
            "READY=1\nSTATUS=2 shards, UDP 127.0.0.1:1701\n"
        );
        // A status cannot smuggle in a second assignment.
        assert_eq!(
            stopping_message("bye\nREADY=1"),
            "STOPPING=1\nSTATUS=bye READY=1\n"
        );
    }

    fn receive(socket: &UnixDatagram) -> String {
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn notifications_reach_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("lns-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let manager = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier::new(&Target::parse(path.as_os_str()).unwrap()).unwrap();
        notifier.send(&ready_message("up")).unwrap();
        assert_eq!(receive(&manager), "READY=1\nSTATUS=up\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn notifications_reach_an_abstract_socket() {
        let name = format!("lns-notify-test-{}", std::process::id());
        let manager =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        let value = format!("@{name}");
        let notifier = Notifier::new(&Target::parse(OsStr::new(&value)).unwrap()).unwrap();
        notifier.send(&stopping_message("stopping")).unwrap();
        assert_eq!(receive(&manager), "STOPPING=1\nSTATUS=stopping\n");
    }

    #[test]
    fn an_absent_manager_is_an_error_not_a_hang() {
        let target = Target::Path("/nonexistent/lns/notify".into());
        let notifier = Notifier::new(&target).unwrap();
        assert!(notifier.send(&ready_message("up")).is_err());
    }
}
