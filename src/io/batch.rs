//! Batched UDP receive and send with `recvmmsg(2)`/`sendmmsg(2)`: the
//! fallback path when io_uring is unavailable, and one system call per
//! batch instead of one per datagram either way.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use super::udp::{sockaddr_from, sockaddr_to};

/// Buffers for up to `capacity` datagrams of at most `size` bytes.
pub struct RecvBatch {
    size: usize,
    data: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    lens: Vec<usize>,
    filled: usize,
    /// The system call's arrays, refilled (not reallocated) every call.
    scratch: Scratch,
}

/// `iovec` and `mmsghdr` arrays kept between calls so a batch costs no
/// allocation; their pointers are rewritten before each use.
#[derive(Default)]
struct Scratch {
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers in `Scratch` are only written and read inside
// one `recv`/`flush` call, on whichever thread owns the batch then; between
// calls they are stale and never dereferenced, so moving a batch to
// another thread (the control thread is built before it is spawned) is
// sound.
unsafe impl Send for Scratch {}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("size", &self.size)
            .field("capacity", &self.lens.len())
            .field("filled", &self.filled)
            .finish()
    }
}

impl RecvBatch {
    /// Room for `capacity` datagrams of `size` bytes each.
    pub fn new(capacity: usize, size: usize) -> Self {
        let capacity = capacity.max(1);
        RecvBatch {
            size,
            data: vec![0; capacity * size],
            // SAFETY: zeroed storage is a valid sockaddr_storage.
            addrs: vec![unsafe { std::mem::zeroed() }; capacity],
            lens: vec![0; capacity],
            filled: 0,
            scratch: Scratch::default(),
        }
    }

    /// Receive what is waiting on `fd` (non-blocking): the number of
    /// datagrams now held, 0 when none was waiting.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let capacity = self.lens.len();
        let Scratch { iovecs, headers } = &mut self.scratch;
        iovecs.clear();
        iovecs.extend(self.data.chunks_mut(self.size).map(|chunk| libc::iovec {
            iov_base: chunk.as_mut_ptr().cast(),
            iov_len: chunk.len(),
        }));
        headers.clear();
        headers.extend(
            iovecs
                .iter_mut()
                .zip(self.addrs.iter_mut())
                .map(|(iov, addr)| {
                    let len = socklen(std::mem::size_of::<libc::sockaddr_storage>());
                    message(addr, len, iov)
                }),
        );
        let count = u32::try_from(capacity).unwrap_or(u32::MAX);
        // SAFETY: every header points at live buffers owned by `self` (and
        // the local iovec vector), valid for the lengths given.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                headers.as_mut_ptr(),
                count,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            self.filled = 0;
            return match err.kind() {
                io::ErrorKind::WouldBlock => Ok(0),
                _ => Err(err),
            };
        }
        self.filled = n.unsigned_abs() as usize;
        for (len, header) in self.lens.iter_mut().zip(headers.iter()).take(self.filled) {
            *len = header.msg_len as usize;
        }
        Ok(self.filled)
    }

    /// Datagrams received by the last `recv`.
    pub fn len(&self) -> usize {
        self.filled
    }

    /// Whether the last `recv` got nothing.
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Datagram `i`, writable (the data plane clamps MSS in place), and
    /// its sender.
    pub fn get_mut(&mut self, i: usize) -> Option<(&mut [u8], SocketAddr)> {
        if i >= self.filled {
            return None;
        }
        let from = sockaddr_to(&self.addrs[i])?;
        let start = i * self.size;
        let end = start + self.lens[i].min(self.size);
        Some((&mut self.data[start..end], from))
    }

    /// Datagram `i` and its sender.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.filled {
            return None;
        }
        let start = i * self.size;
        let datagram = &self.data[start..start + self.lens[i].min(self.size)];
        Some((datagram, sockaddr_to(&self.addrs[i])?))
    }
}

/// Datagrams queued for one `sendmmsg`.
#[derive(Default)]
pub struct SendBatch {
    data: Vec<u8>,
    entries: Vec<(usize, usize, libc::sockaddr_storage, libc::socklen_t)>,
    scratch: Scratch,
}

impl std::fmt::Debug for SendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatch")
            .field("queued", &self.entries.len())
            .field("bytes", &self.data.len())
            .finish()
    }
}

impl SendBatch {
    /// An empty batch.
    pub fn new() -> Self {
        SendBatch::default()
    }

    /// Queue `datagram` for `to`.
    pub fn push(&mut self, to: SocketAddr, datagram: &[u8]) {
        let start = self.data.len();
        self.data.extend_from_slice(datagram);
        let (addr, len) = sockaddr_from(to);
        self.entries.push((start, datagram.len(), addr, len));
    }

    /// Datagrams queued.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Nothing queued.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Send everything queued on `fd`; returns how many went out. What the
    /// socket would not take now (a full send buffer) is dropped, as a
    /// router drops on a full queue: the protocols above retransmit.
    pub fn flush(&mut self, fd: RawFd) -> io::Result<usize> {
        let mut sent = 0;
        while sent < self.entries.len() {
            let Scratch { iovecs, headers } = &mut self.scratch;
            iovecs.clear();
            iovecs.extend(
                self.entries[sent..]
                    .iter()
                    .map(|(start, len, _, _)| libc::iovec {
                        iov_base: self.data[*start..].as_ptr().cast_mut().cast(),
                        iov_len: *len,
                    }),
            );
            headers.clear();
            headers.extend(
                self.entries[sent..]
                    .iter_mut()
                    .zip(iovecs.iter_mut())
                    .map(|((_, _, addr, addr_len), iov)| message(addr, *addr_len, iov)),
            );
            let count = u32::try_from(headers.len()).unwrap_or(u32::MAX);
            // SAFETY: headers point into `self.data` and `self.entries`,
            // both alive and unmoved for the call.
            let n = unsafe { libc::sendmmsg(fd, headers.as_mut_ptr(), count, libc::MSG_DONTWAIT) };
            if n < 0 {
                let err = io::Error::last_os_error();
                match err.kind() {
                    io::ErrorKind::WouldBlock => break,
                    io::ErrorKind::Interrupted => continue,
                    _ => {
                        self.clear();
                        return Err(err);
                    }
                }
            }
            if n == 0 {
                break;
            }
            sent += n.unsigned_abs() as usize;
        }
        self.clear();
        Ok(sent)
    }

    fn clear(&mut self) {
        self.data.clear();
        self.entries.clear();
    }
}

/// One datagram's header for `recvmmsg`/`sendmmsg`: its address and its
/// single buffer.
fn message(
    addr: &mut libc::sockaddr_storage,
    addr_len: libc::socklen_t,
    iov: &mut libc::iovec,
) -> libc::mmsghdr {
    libc::mmsghdr {
        msg_hdr: libc::msghdr {
            msg_name: std::ptr::from_mut(addr).cast(),
            msg_namelen: addr_len,
            msg_iov: std::ptr::from_mut(iov),
            msg_iovlen: 1,
            msg_control: std::ptr::null_mut(),
            msg_controllen: 0,
            msg_flags: 0,
        },
        msg_len: 0,
    }
}

fn socklen(n: usize) -> libc::socklen_t {
    libc::socklen_t::try_from(n).unwrap_or(libc::socklen_t::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    #[test]
    fn a_batch_goes_out_and_comes_back_in_order() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_nonblocking(true).unwrap();
        let to = b.local_addr().unwrap();
        let mut out = SendBatch::new();
        for i in 0..20u8 {
            out.push(to, &vec![i; usize::from(i) + 1]);
        }
        assert_eq!(out.flush(a.as_raw_fd()).unwrap(), 20);
        assert!(out.is_empty());
        let mut batch = RecvBatch::new(8, 2048);
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(2);
        while seen.len() < 20 && Instant::now() < deadline {
            let n = batch.recv(b.as_raw_fd()).unwrap();
            assert!(n <= 8);
            for i in 0..n {
                let (d, from) = batch.get(i).unwrap();
                assert_eq!(from, a.local_addr().unwrap());
                seen.push(d.to_vec());
            }
        }
        let expected: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; usize::from(i) + 1]).collect();
        assert_eq!(seen, expected);
        assert_eq!(batch.recv(b.as_raw_fd()).unwrap(), 0);
    }
}
