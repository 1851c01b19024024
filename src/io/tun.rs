//! The multi-queue TUN device: one queue per shard, so every shard reads
//! and writes subscriber IP packets without sharing a descriptor.
//!
//! Packets carry no extra header (`IFF_NO_PI`): the first nibble tells IPv4
//! from IPv6, which is all the data plane needs. The device is configured
//! with ioctls (MTU, queue length, up) and rtnetlink (the gateway address
//! and the routes of the subscriber pools).

use std::ffi::CStr;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::netlink;

/// A TUN device and its open queues.
#[derive(Debug)]
pub struct Tun {
    name: String,
    index: u32,
    queues: Vec<OwnedFd>,
}

impl Tun {
    /// Create (or attach to) the device `name` with `queues` queues.
    /// Non-blocking descriptors when `nonblocking` (the fallback loop polls).
    pub fn open(name: &str, queues: usize, nonblocking: bool) -> io::Result<Tun> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "TUN name must be 1 to 15 bytes",
            ));
        }
        let mut fds = Vec::with_capacity(queues.max(1));
        let mut actual = String::new();
        for _ in 0..queues.max(1) {
            let (fd, got) = open_queue(name, nonblocking)?;
            actual = got;
            fds.push(fd);
        }
        let index = if_index(&actual)?;
        Ok(Tun {
            name: actual,
            index,
            queues: fds,
        })
    }

    /// The device name the kernel gave.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Hand the queues to their shards.
    pub fn take_queues(&mut self) -> Vec<OwnedFd> {
        std::mem::take(&mut self.queues)
    }

    /// Set the MTU (the largest IP packet a subscriber can receive in one
    /// tunnel packet).
    pub fn set_mtu(&self, mtu: u32) -> io::Result<()> {
        let mut req = ifreq(&self.name)?;
        req.ifr_ifru.ifru_mtu = i32::try_from(mtu).unwrap_or(i32::MAX);
        ioctl_inet(libc::SIOCSIFMTU, &mut req)
    }

    /// Set the transmit queue length: the kernel's default (500) drops
    /// bursts toward a busy shard.
    pub fn set_queue_len(&self, len: u32) -> io::Result<()> {
        let mut req = ifreq(&self.name)?;
        // `ifr_qlen` shares the int slot of the union with the MTU.
        req.ifr_ifru.ifru_mtu = i32::try_from(len).unwrap_or(i32::MAX);
        ioctl_inet(libc::SIOCSIFTXQLEN, &mut req)
    }

    /// Bring the device up.
    pub fn set_up(&self) -> io::Result<()> {
        set_link_up(&self.name)
    }

    /// Give the device an IPv4 address (the gateway subscribers see).
    pub fn add_ipv4(&self, address: Ipv4Addr, prefix: u8) -> io::Result<()> {
        netlink::add_ipv4_address(self.index, address, prefix)
    }

    /// Give the device an IPv6 address (the LNS's own, for subscribers to
    /// reach it).
    pub fn add_ipv6(&self, address: std::net::Ipv6Addr, prefix: u8) -> io::Result<()> {
        netlink::add_ipv6_address(self.index, address, prefix)
    }

    /// Route `network/prefix` (a subscriber prefix pool) to the device.
    pub fn add_route_ipv6(&self, network: std::net::Ipv6Addr, prefix: u8) -> io::Result<()> {
        netlink::add_ipv6_route(self.index, network, prefix)
    }

    /// Route `network/prefix` (a subscriber pool) to the device.
    pub fn add_route_ipv4(&self, network: Ipv4Addr, prefix: u8) -> io::Result<()> {
        netlink::add_ipv4_route(self.index, network, prefix)
    }
}

/// Bring any interface up by name.
pub fn set_link_up(name: &str) -> io::Result<()> {
    let mut req = ifreq(name)?;
    req.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    ioctl_inet(libc::SIOCSIFFLAGS, &mut req)
}

fn open_queue(name: &str, nonblocking: bool) -> io::Result<(OwnedFd, String)> {
    let mut flags = libc::O_RDWR | libc::O_CLOEXEC;
    if nonblocking {
        flags |= libc::O_NONBLOCK;
    }
    let path = c"/dev/net/tun";
    // SAFETY: open(2) on a NUL-terminated path; checked and owned at once.
    let fd = unsafe { libc::open(path.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = ifreq(name)?;
    req.ifr_ifru.ifru_flags =
        (libc::IFF_TUN | libc::IFF_NO_PI | libc::IFF_MULTI_QUEUE) as libc::c_short;
    // SAFETY: TUNSETIFF takes an ifreq, which `req` is.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel wrote a NUL-terminated name into the array.
    let actual = unsafe { CStr::from_ptr(req.ifr_name.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    Ok((fd, actual))
}

fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    // SAFETY: an all-zero ifreq is valid (empty name, zero union).
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= req.ifr_name.len() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "name too long"));
    }
    for (slot, byte) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *slot = byte as libc::c_char;
    }
    Ok(req)
}

/// Interface ioctls go through any socket of the family.
fn ioctl_inet(request: libc::c_ulong, req: &mut libc::ifreq) -> io::Result<()> {
    // SAFETY: a plain datagram socket for the ioctl, owned at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: every request used here takes an ifreq.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), request as _, req as *mut libc::ifreq) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn if_index(name: &str) -> io::Result<u32> {
    let mut req = ifreq(name)?;
    ioctl_inet(libc::SIOCGIFINDEX, &mut req)?;
    // SAFETY: SIOCGIFINDEX filled the index member.
    let index = unsafe { req.ifr_ifru.ifru_ifindex };
    u32::try_from(index).map_err(|_| io::Error::other("negative interface index"))
}

/// Read one packet from a queue; `Ok(0)` is never a packet.
pub fn read_packet(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` bytes of writing.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n.unsigned_abs())
}

/// Write one packet to a queue.
pub fn write_packet(fd: RawFd, packet: &[u8]) -> io::Result<usize> {
    // SAFETY: `packet` is valid for `packet.len()` bytes of reading.
    let n = unsafe { libc::write(fd, packet.as_ptr().cast(), packet.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n.unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::netns::in_private_netns;
    use std::net::UdpSocket;
    use std::time::{Duration, Instant};

    /// An IPv4/UDP packet (checksum 0: optional for UDP over IPv4).
    fn udp_packet(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, body: &[u8]) -> Vec<u8> {
        let total = 20 + 8 + body.len();
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
        p[2..4].copy_from_slice(&u16::try_from(total).unwrap().to_be_bytes());
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        let sum = crate::io::netns::ipv4_checksum(&p);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&u16::try_from(8 + body.len()).unwrap().to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(body);
        p
    }

    /// Both directions through a two-queue device in a namespace of our
    /// own: the kernel routes a pool address to the device, and a packet we
    /// write is delivered to a socket.
    #[test]
    fn packets_cross_a_multi_queue_tun_both_ways() {
        let ran = in_private_netns(|| {
            let tun = Tun::open("lnstest0", 2, true).unwrap();
            assert_eq!(tun.name(), "lnstest0");
            tun.set_mtu(1456).unwrap();
            tun.set_queue_len(4096).unwrap();
            tun.set_up().unwrap();
            let gateway = Ipv4Addr::new(100, 64, 0, 1);
            tun.add_ipv4(gateway, 32).unwrap();
            tun.add_route_ipv4(Ipv4Addr::new(100, 64, 0, 0), 16)
                .unwrap();
            let mut tun = tun;
            let queues = tun.take_queues();

            // Kernel → TUN: a datagram to a subscriber address.
            let sock = UdpSocket::bind((gateway, 5000)).unwrap();
            let subscriber = Ipv4Addr::new(100, 64, 3, 4);
            sock.send_to(b"down", (subscriber, 7)).unwrap();
            let mut buf = [0u8; 2048];
            let deadline = Instant::now() + Duration::from_secs(2);
            let got = loop {
                // Skip what the kernel sends by itself when a link comes up
                // (IPv6 router solicitations, MLD reports).
                let hit = queues
                    .iter()
                    .find_map(|q| read_packet(q.as_raw_fd(), &mut buf).ok())
                    .filter(|n| *n > 0 && buf[0] >> 4 == 4);
                if let Some(n) = hit {
                    break n;
                }
                assert!(Instant::now() < deadline, "nothing arrived on the TUN");
                std::thread::sleep(Duration::from_millis(5));
            };
            let packet = &buf[..got];
            assert_eq!(packet[0] >> 4, 4);
            assert_eq!(&packet[16..20], &subscriber.octets());
            assert_eq!(&packet[got - 4..], b"down");

            // TUN → kernel: a subscriber's datagram to the gateway socket.
            let up = udp_packet(subscriber, gateway, 7, 5000, b"up");
            write_packet(queues[1].as_raw_fd(), &up).unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let (n, from) = sock.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"up");
            assert_eq!(from, (subscriber, 7).into());
        });
        if !ran {
            eprintln!(
                "SKIPPED packets_cross_a_multi_queue_tun_both_ways: no root or no TUN/netns here"
            );
        }
    }
}
