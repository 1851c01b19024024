//! An `eventfd(2)` to wake a shard blocked in `poll(2)` when the control
//! thread has queued commands for it, and a small `poll` wrapper.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

/// The waking side and the woken side share one counter.
#[derive(Debug, Clone)]
pub struct Wake {
    fd: Arc<OwnedFd>,
}

impl Wake {
    /// A fresh, non-blocking event counter.
    pub fn new() -> io::Result<Wake> {
        // SAFETY: eventfd(2); checked and owned at once.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Wake { fd: Arc::new(fd) })
    }

    /// Wake the poller (cheap when it is already awake: the counter adds).
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64. A full counter (EAGAIN)
        // means a wake-up is pending anyway.
        let _ = unsafe { libc::write(self.fd.as_raw_fd(), std::ptr::addr_of!(one).cast(), 8) };
    }

    /// Reset the counter after waking.
    pub fn clear(&self) {
        let mut value: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64; EAGAIN when already zero.
        let _ = unsafe { libc::read(self.fd.as_raw_fd(), std::ptr::addr_of_mut!(value).cast(), 8) };
    }

    /// The descriptor to poll for readability.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// `poll(2)` over a fixed set of descriptors, its array built once (the
/// shard loop polls every round).
#[derive(Debug)]
pub struct Poller {
    polls: Vec<libc::pollfd>,
}

impl Poller {
    /// Watch `fds` for readability.
    pub fn new(fds: &[RawFd]) -> Poller {
        let polls = fds
            .iter()
            .map(|&fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        Poller { polls }
    }

    /// Wait until one descriptor is readable or `timeout` passes (an
    /// interrupted wait returns with nothing ready).
    pub fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        for p in &mut self.polls {
            p.revents = 0;
        }
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let count = libc::nfds_t::try_from(self.polls.len()).unwrap_or(libc::nfds_t::MAX);
        // SAFETY: `polls` is a live array of `count` pollfd.
        let rc = unsafe { libc::poll(self.polls.as_mut_ptr(), count, ms) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
        Ok(())
    }

    /// Whether descriptor `i` (in the order given to `new`) was ready.
    pub fn ready(&self, i: usize) -> bool {
        self.polls
            .get(i)
            .is_some_and(|p| p.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0)
    }
}
