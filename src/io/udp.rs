//! UDP sockets of the L2TP port: one per shard in an `SO_REUSEPORT` group,
//! with a classic BPF program that steers each datagram to the shard that
//! owns its tunnel.
//!
//! The LNS numbers its tunnels so that `tunnel_id % shards` names the owning
//! shard (`proto::l2tp::ids`). The kernel runs the program on every datagram
//! arriving at the group; its result indexes the group's sockets in the
//! order they were bound. A result past the last socket makes the kernel
//! fall back to its own hash, which is never what we want, so the program
//! only returns shard indexes. The control thread binds a socket into the
//! group last: the program never picks it, so it only sends.

use std::io;
use std::mem::size_of;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Offsets in the UDP payload (RFC 2661 §3.1): the flags word, then either
/// Tunnel ID (no Length field) or Length then Tunnel ID (L bit set).
const FLAG_L: u32 = 0x4000;
const TUNNEL_ID_AT: u32 = 2;
const TUNNEL_ID_AFTER_LENGTH_AT: u32 = 4;

/// The steering program for `shards` sockets, as classic BPF instructions.
///
/// ```text
///   ldh [0]             A = flags word
///   jset #0x4000, 1, 0  L bit?
///   ldh [2]             A = tunnel ID          (no Length field)
///   ja 1 / ldh [4]      A = tunnel ID          (after Length)
///   mod #shards         A = owning shard
///   ret A
/// ```
/// A datagram too short to hold the field makes the load fail, which ends
/// the program with 0: the first shard, which hands malformed input to the
/// control thread's parser like any other.
pub fn steering_program(shards: u16) -> Vec<libc::sock_filter> {
    let shards = u32::from(shards.max(1));
    vec![
        bpf(BPF_LD | BPF_H | BPF_ABS, 0, 0, 0),
        bpf(BPF_JMP | BPF_JSET | BPF_K, 2, 0, FLAG_L),
        bpf(BPF_LD | BPF_H | BPF_ABS, 0, 0, TUNNEL_ID_AT),
        bpf(BPF_JMP | BPF_JA, 0, 0, 1),
        bpf(BPF_LD | BPF_H | BPF_ABS, 0, 0, TUNNEL_ID_AFTER_LENGTH_AT),
        bpf(BPF_ALU | BPF_MOD | BPF_K, 0, 0, shards),
        bpf(BPF_RET | BPF_A, 0, 0, 0),
    ]
}

/// The steering program of the ESP-in-UDP port (UDP 4500, RFC 3948), for
/// the IPsec path to come: a shard per SPI, as L2TP has a shard per tunnel.
///
/// ```text
///   ld [0]      A = the first 32 bits: the SPI of an ESP packet
///   mod #shards A = owning shard (SPIs are allocated with spi % shards
///               naming the shard, as tunnel IDs are)
///   ret A
/// ```
/// RFC 3948 §2.2 gives the zero word ("non-ESP marker") to IKE, so IKE lands
/// on shard 0 like L2TP's tunnel 0 and goes on to the control thread; a
/// one-byte NAT-keepalive is too short for the load and lands there too.
pub fn esp_steering_program(shards: u16) -> Vec<libc::sock_filter> {
    let shards = u32::from(shards.max(1));
    vec![
        bpf(BPF_LD | BPF_W | BPF_ABS, 0, 0, 0),
        bpf(BPF_ALU | BPF_MOD | BPF_K, 0, 0, shards),
        bpf(BPF_RET | BPF_A, 0, 0, 0),
    ]
}

/// What a reuseport group steers on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steering {
    /// L2TP (UDP 1701): the tunnel ID.
    TunnelId,
    /// ESP in UDP (UDP 4500): the SPI.
    EspSpi,
}

impl Steering {
    /// The classic BPF program for `shards` sockets.
    pub fn program(self, shards: u16) -> Vec<libc::sock_filter> {
        match self {
            Steering::TunnelId => steering_program(shards),
            Steering::EspSpi => esp_steering_program(shards),
        }
    }
}

// Classic BPF opcodes (linux/filter.h); libc does not export them all.
const BPF_LD: u16 = 0x00;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_H: u16 = 0x08;
const BPF_ABS: u16 = 0x20;
const BPF_MOD: u16 = 0x90;
const BPF_JA: u16 = 0x00;
const BPF_JSET: u16 = 0x40;
const BPF_K: u16 = 0x00;
const BPF_A: u16 = 0x10;

fn bpf(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Options of the sockets we bind.
#[derive(Debug, Clone, Copy)]
pub struct SocketOptions {
    /// Receive and send buffer sizes (the kernel doubles them and caps them
    /// at `net.core.rmem_max`/`wmem_max` unless we are privileged, when the
    /// `FORCE` variants apply).
    pub buffer_bytes: usize,
    /// Non-blocking (the fallback loop polls; io_uring does not care).
    pub nonblocking: bool,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            // Bursts of a setup storm and line-rate data both need room.
            buffer_bytes: 8 << 20,
            nonblocking: true,
        }
    }
}

/// Bind `count` sockets to `addr` in one reuseport group, steered by tunnel
/// ID, plus one more for the control thread (last in the result, never
/// chosen by the program).
pub fn bind_group(
    addr: SocketAddr,
    count: u16,
    options: SocketOptions,
) -> io::Result<Vec<OwnedFd>> {
    let first = bind_reuseport(addr, options)?;
    // With port 0 the first bind picks the port; the rest join it.
    let addr = local_addr(&first)?;
    let mut sockets = Vec::with_capacity(usize::from(count) + 1);
    sockets.push(first);
    for _ in 0..count {
        sockets.push(bind_reuseport(addr, options)?);
    }
    // Attaching to any member programs the whole group.
    attach_steering(&sockets[0], count)?;
    Ok(sockets)
}

/// One UDP socket bound to `addr` with `SO_REUSEPORT`.
pub fn bind_reuseport(addr: SocketAddr, options: SocketOptions) -> io::Result<OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    let mut kind = libc::SOCK_DGRAM | libc::SOCK_CLOEXEC;
    if options.nonblocking {
        kind |= libc::SOCK_NONBLOCK;
    }
    // SAFETY: plain socket(2); the result is checked and owned at once.
    let fd = unsafe { libc::socket(family, kind, libc::IPPROTO_UDP) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    set_int(&socket, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
    if let SocketAddr::V6(_) = addr {
        // `[::]:1701` must not also claim IPv4: the IPv4 group is separate.
        set_int(&socket, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
    }
    let bytes = i32::try_from(options.buffer_bytes).unwrap_or(i32::MAX);
    // Privileged processes may exceed the sysctl caps; fall back quietly.
    if set_int(&socket, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, bytes).is_err() {
        set_int(&socket, libc::SOL_SOCKET, libc::SO_RCVBUF, bytes)?;
    }
    if set_int(&socket, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, bytes).is_err() {
        set_int(&socket, libc::SOL_SOCKET, libc::SO_SNDBUF, bytes)?;
    }
    let (storage, len) = sockaddr_from(addr);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes.
    let rc = unsafe { libc::bind(socket.as_raw_fd(), std::ptr::addr_of!(storage).cast(), len) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(socket)
}

/// Program the reuseport group of `socket` to steer by tunnel ID.
pub fn attach_steering(socket: &OwnedFd, shards: u16) -> io::Result<()> {
    attach_program(socket, Steering::TunnelId, shards)
}

/// Program the reuseport group of `socket` to steer by `steering`.
pub fn attach_program(socket: &OwnedFd, steering: Steering, shards: u16) -> io::Result<()> {
    let mut program = steering.program(shards);
    let fprog = libc::sock_fprog {
        len: u16::try_from(program.len()).unwrap_or(u16::MAX),
        filter: program.as_mut_ptr(),
    };
    // SAFETY: `fprog` points at `program`, alive for the call; the kernel
    // copies the instructions.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            std::ptr::addr_of!(fprog).cast(),
            socklen(size_of::<libc::sock_fprog>()),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The address a socket is bound to (to learn an ephemeral port).
pub fn local_addr(socket: &impl AsRawFd) -> io::Result<SocketAddr> {
    // SAFETY: zeroed storage is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = socklen(size_of::<libc::sockaddr_storage>());
    // SAFETY: `storage` has room for any address; `len` says so.
    let rc = unsafe {
        libc::getsockname(
            socket.as_raw_fd(),
            std::ptr::addr_of_mut!(storage).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    sockaddr_to(&storage).ok_or_else(|| io::Error::other("unexpected address family"))
}

fn set_int(socket: &impl AsRawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    set_int_raw(socket.as_raw_fd(), level, name, value)
}

fn set_int_raw(fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: an int option of the right size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            std::ptr::addr_of!(value).cast(),
            socklen(size_of::<i32>()),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn socklen(n: usize) -> libc::socklen_t {
    libc::socklen_t::try_from(n).unwrap_or(libc::socklen_t::MAX)
}

/// `addr` as a `sockaddr_storage` and its length.
pub fn sockaddr_from(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: zeroed storage is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for
            // sockaddr_in.
            unsafe { std::ptr::write(std::ptr::addr_of_mut!(storage).cast(), sin) };
            (storage, socklen(size_of::<libc::sockaddr_in>()))
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write(std::ptr::addr_of_mut!(storage).cast(), sin6) };
            (storage, socklen(size_of::<libc::sockaddr_in6>()))
        }
    }
}

/// The address in a `sockaddr_storage` the kernel filled.
pub fn sockaddr_to(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this is a sockaddr_in.
            let sin: libc::sockaddr_in =
                unsafe { std::ptr::read(std::ptr::from_ref(storage).cast()) };
            let ip = std::net::Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::from((ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this is a sockaddr_in6.
            let sin6: libc::sockaddr_in6 =
                unsafe { std::ptr::read(std::ptr::from_ref(storage).cast()) };
            let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    /// An L2TP control header for `tunnel`, with or without the L bit.
    fn header(tunnel: u16, with_length: bool) -> Vec<u8> {
        let mut d = Vec::new();
        if with_length {
            d.extend_from_slice(&0xc802u16.to_be_bytes());
            d.extend_from_slice(&12u16.to_be_bytes());
        } else {
            d.extend_from_slice(&0x0002u16.to_be_bytes());
        }
        d.extend_from_slice(&tunnel.to_be_bytes());
        d.extend_from_slice(&[0; 8]);
        d
    }

    /// `count` blocking sockets in one reuseport group on a loopback port,
    /// steered by `steering` over `shards`.
    fn loopback_group(count: u16, steering: Steering, shards: u16) -> (Vec<UdpSocket>, SocketAddr) {
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        // Bind the first socket to learn the port, then the rest to it.
        let first = bind_reuseport(addr, SocketOptions::default()).unwrap();
        let port = local_addr(&first).unwrap();
        let mut group = vec![first];
        for _ in 1..count {
            group.push(bind_reuseport(port, SocketOptions::default()).unwrap());
        }
        attach_program(&group[0], steering, shards).unwrap();
        let sockets: Vec<UdpSocket> = group.into_iter().map(UdpSocket::from).collect();
        for s in &sockets {
            s.set_nonblocking(false).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        }
        (sockets, port)
    }

    /// The datagram lands on the socket the program names, on loopback.
    #[test]
    fn datagrams_land_on_the_shard_that_owns_their_tunnel() {
        let shards = 3u16;
        // The shards' sockets and the control thread's, last.
        let (sockets, port) = loopback_group(shards + 1, Steering::TunnelId, shards);
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut buf = [0u8; 64];
        for tunnel in [0u16, 1, 2, 3, 4, 5, 1000, 65535] {
            for with_length in [false, true] {
                sender.send_to(&header(tunnel, with_length), port).unwrap();
                let owner = usize::from(tunnel % shards);
                let (n, _) = sockets[owner].recv_from(&mut buf).unwrap();
                assert_eq!(&buf[..n], &header(tunnel, with_length)[..]);
            }
        }
        // The control thread's socket (last) never receives.
        sockets[usize::from(shards)].set_nonblocking(true).unwrap();
        assert!(sockets[usize::from(shards)].recv_from(&mut buf).is_err());
        // A runt datagram goes to the first shard.
        sender.send_to(&[0x00], port).unwrap();
        let (n, _) = sockets[0].recv_from(&mut buf).unwrap();
        assert_eq!(n, 1);
    }

    /// ESP in UDP: a datagram lands on `spi % shards`; IKE (the non-ESP
    /// marker) and NAT-keepalives on shard 0.
    #[test]
    fn esp_datagrams_land_on_the_shard_that_owns_their_spi() {
        let shards = 3u16;
        let (sockets, port) = loopback_group(shards, Steering::EspSpi, shards);
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut buf = [0u8; 64];
        let esp = |spi: u32| {
            let mut d = spi.to_be_bytes().to_vec();
            d.extend_from_slice(&[0, 0, 0, 1, 0xee, 0xee]); // sequence, payload
            d
        };
        let ike = [0u8, 0, 0, 0, 0x11, 0x22, 0x33, 0x44];
        let cases: Vec<(Vec<u8>, usize)> = [256u32, 257, 258, 0x8000_0001, u32::MAX]
            .into_iter()
            .map(|spi| (esp(spi), (spi % u32::from(shards)) as usize))
            .chain([(ike.to_vec(), 0), (vec![0xff], 0)])
            .collect();
        for (datagram, owner) in cases {
            sender.send_to(&datagram, port).unwrap();
            let (n, _) = sockets[owner].recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &datagram[..]);
        }
    }

    #[test]
    fn sockaddr_round_trips() {
        for text in ["192.0.2.1:1701", "[2001:db8::1]:1701"] {
            let addr: SocketAddr = text.parse().unwrap();
            let (storage, _) = sockaddr_from(addr);
            assert_eq!(sockaddr_to(&storage), Some(addr));
        }
    }
}
