//! Just enough rtnetlink to give the TUN device its gateway addresses and
//! route the subscriber pools to it: two request kinds, for IPv4 and IPv6,
//! each acknowledged.
//!
//! Messages are built by hand (native-endian headers, 4-byte aligned
//! attributes, as `netlink(7)` and `rtnetlink(7)` lay them out).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NLMSG_ERROR: u16 = 2;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const NLM_F_REQUEST: u16 = 0x01;
const NLM_F_ACK: u16 = 0x04;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_STATIC: u8 = 4;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RTN_UNICAST: u8 = 1;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// ifaddrmsg flag: no duplicate address detection (a TUN device has no
/// neighbours to collide with).
const IFA_F_NODAD: u8 = 0x02;

/// `address/prefix` on interface `index` (replacing an equal one).
pub fn add_ipv4_address(index: u32, address: Ipv4Addr, prefix: u8) -> io::Result<()> {
    // struct ifaddrmsg: family, prefixlen, flags, scope, index.
    let mut body = vec![AF_INET, prefix, 0, RT_SCOPE_UNIVERSE];
    body.extend_from_slice(&index.to_ne_bytes());
    attribute(&mut body, IFA_LOCAL, &address.octets());
    attribute(&mut body, IFA_ADDRESS, &address.octets());
    request(RTM_NEWADDR, &body)
}

/// A route for `network/prefix` out of interface `index`.
pub fn add_ipv4_route(index: u32, network: Ipv4Addr, prefix: u8) -> io::Result<()> {
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope,
    // type, flags (u32).
    let mut body = vec![
        AF_INET,
        prefix,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_STATIC,
        RT_SCOPE_LINK,
        RTN_UNICAST,
    ];
    body.extend_from_slice(&0u32.to_ne_bytes());
    attribute(&mut body, RTA_DST, &network.octets());
    attribute(&mut body, RTA_OIF, &index.to_ne_bytes());
    request(RTM_NEWROUTE, &body)
}

/// `address/prefix` on interface `index`, usable at once (no DAD).
pub fn add_ipv6_address(index: u32, address: Ipv6Addr, prefix: u8) -> io::Result<()> {
    let mut body = vec![AF_INET6, prefix, IFA_F_NODAD, RT_SCOPE_UNIVERSE];
    body.extend_from_slice(&index.to_ne_bytes());
    attribute(&mut body, IFA_LOCAL, &address.octets());
    attribute(&mut body, IFA_ADDRESS, &address.octets());
    request(RTM_NEWADDR, &body)
}

/// An IPv6 route for `network/prefix` out of interface `index`. IPv6
/// routes carry universe scope (the kernel ignores link scope for them).
pub fn add_ipv6_route(index: u32, network: Ipv6Addr, prefix: u8) -> io::Result<()> {
    let mut body = vec![
        AF_INET6,
        prefix,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_STATIC,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST,
    ];
    body.extend_from_slice(&0u32.to_ne_bytes());
    attribute(&mut body, RTA_DST, &network.octets());
    attribute(&mut body, RTA_OIF, &index.to_ne_bytes());
    request(RTM_NEWROUTE, &body)
}

fn attribute(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

/// Send one request and wait for its acknowledgement.
fn request(kind: u16, body: &[u8]) -> io::Result<()> {
    // SAFETY: socket(2), checked and owned at once.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut message = Vec::with_capacity(16 + body.len());
    let len = u32::try_from(16 + body.len()).unwrap_or(u32::MAX);
    message.extend_from_slice(&len.to_ne_bytes());
    message.extend_from_slice(&kind.to_ne_bytes());
    let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
    message.extend_from_slice(&flags.to_ne_bytes());
    message.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    message.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel
    message.extend_from_slice(body);
    // SAFETY: `message` is valid for its length; the kernel address is the
    // default (a zeroed sockaddr_nl) when none is given to send(2).
    let sent = unsafe {
        libc::send(
            socket.as_raw_fd(),
            message.as_ptr().cast(),
            message.len(),
            0,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut reply = [0u8; 1024];
    // SAFETY: `reply` is valid for writing its length.
    let got = unsafe {
        libc::recv(
            socket.as_raw_fd(),
            reply.as_mut_ptr().cast(),
            reply.len(),
            0,
        )
    };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    let reply = &reply[..got.unsigned_abs()];
    // nlmsghdr (16) then, for NLMSG_ERROR, a negated errno (0: success).
    let Some(header) = reply.get(..20) else {
        return Err(io::Error::other("short netlink reply"));
    };
    let reply_kind = u16::from_ne_bytes([header[4], header[5]]);
    if reply_kind != NLMSG_ERROR {
        return Err(io::Error::other("unexpected netlink reply"));
    }
    let errno = i32::from_ne_bytes([header[16], header[17], header[18], header[19]]);
    if errno != 0 {
        return Err(io::Error::from_raw_os_error(-errno));
    }
    Ok(())
}
