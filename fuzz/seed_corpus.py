#!/usr/bin/env python3
"""Write seed inputs for the parser fuzz targets into fuzz/corpus/<target>/.

Sources, both in the repository's tests:
  - tests/data/l2tpns-probe-control.txt: one captured control packet per
    line ("frame source hex"), '#' lines are comments;
  - tests/l2tp_lns_raw.rs: hex string constants (`const NAME: &str = "..";`),
    whole packets or message bodies ("_BODY" in the name).

Whole packets seed l2tp_header; their bodies (after the L2TP header) seed
l2tp_message and l2tp_avp_iter. The PPP frames of the `SEEDS` list in
src/wire/ppp/mod.rs (taken from the captures) seed ppp_frame, and their
packets seed ppp_cp_options (LCP/IPCP/IPv6CP) and ppp_auth (PAP, CHAP,
behind the target's selector byte), plus two MS-CHAPv2 message texts.
deploy/lns.toml seeds config_toml, whole and one section at a time.
Router Solicitations and Advertisements built here (with their ICMPv6
checksums) seed icmpv6_nd; a few HTTP request heads seed http_request. The
corpus directory is git-ignored: run
this script again to recreate it. Usage: python3 fuzz/seed_corpus.py
"""

import hashlib
import pathlib
import re

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent


def header_len(packet: bytes) -> int:
    """Length of the L2TP header (RFC 2661 section 3.1), pad included."""
    flags = int.from_bytes(packet[:2], "big")
    length = 6
    if flags & 0x4000:
        length += 2
    if flags & 0x0800:
        length += 4
    if flags & 0x0200:
        pad = int.from_bytes(packet[length : length + 2], "big")
        length += 2 + pad
    return length


def capture_packets():
    text = (ROOT / "tests/data/l2tpns-probe-control.txt").read_text()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 3 and not line.startswith("#"):
            yield bytes.fromhex(fields[2])


def test_constants():
    """(name, bytes) of every hex string constant in the raw LNS tests."""
    source = (ROOT / "tests/l2tp_lns_raw.rs").read_text()
    for name, value in re.findall(r'const (\w+): &str = "([^"]*)";', source, re.S):
        digits = "".join(c for c in value if c in "0123456789abcdefABCDEF")
        if digits and len(digits) % 2 == 0:
            yield name, bytes.fromhex(digits)


def ppp_frames():
    """The hex frames of `SEEDS` in src/wire/ppp/mod.rs."""
    source = (ROOT / "src/wire/ppp/mod.rs").read_text()
    block = re.search(r"const SEEDS: &\[&str\] = &\[(.*?)\];", source, re.S)
    if block:
        for value in re.findall(r'"([0-9a-fA-F]*)"', block.group(1)):
            if len(value) % 2 == 0:
                yield bytes.fromhex(value)


def ppp_seeds():
    """(target, bytes) for the PPP targets."""
    for frame in ppp_frames():
        yield "ppp_frame", frame
        rest = frame[2:] if frame[:2] == b"\xff\x03" else frame
        if rest and rest[0] & 1:
            protocol, packet = rest[0], rest[1:]
        else:
            protocol, packet = int.from_bytes(rest[:2], "big"), rest[2:]
        if protocol in (0xC021, 0x8021, 0x8057):
            yield "ppp_cp_options", packet
        elif protocol == 0xC023:
            yield "ppp_auth", b"\x00" + packet
        elif protocol == 0xC223:
            yield "ppp_auth", b"\x01" + packet
    yield "ppp_auth", b"\x02S=407A5589115FD0D6209F510FE9C04566932CDA56 M=ok"
    yield "ppp_auth", b"\x02E=691 R=1 C=00112233445566778899AABBCCDDEEFF V=3 M=no"


def config_seeds():
    """The example configuration, whole and split at its table headers."""
    text = (ROOT / "deploy/lns.toml").read_text()
    yield text.encode()
    section = []
    for line in text.splitlines(keepends=True):
        if line.startswith("[") and section:
            yield "".join(section).encode()
            section = []
        section.append(line)
    if section:
        yield "".join(section).encode()


def nd_packet(src: bytes, dst: bytes, message: bytes) -> bytes:
    """An IPv6 packet (hop limit 255) carrying an ICMPv6 message whose
    checksum (bytes 2-3, zero on entry) is filled in over the pseudo-header
    (RFC 8200 section 8.1)."""
    pseudo = src + dst + len(message).to_bytes(4, "big") + b"\x00\x00\x00\x3a"
    data = pseudo + message + (b"\x00" if len(message) % 2 else b"")
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    checksum = (~total & 0xFFFF).to_bytes(2, "big")
    message = message[:2] + checksum + message[4:]
    header = b"\x60\x00\x00\x00" + len(message).to_bytes(2, "big") + b"\x3a\xff"
    return header + src + dst + message


def icmpv6_seeds():
    """Router Solicitations and Advertisements as a PPP host and our LNS
    send them (RFC 4861 sections 4.1 and 4.2)."""
    link_local = bytes.fromhex("fe80000000000000") + bytes.fromhex("0211223344556677")
    router = bytes.fromhex("fe80000000000000") + bytes.fromhex("0000000000000001")
    all_nodes = bytes.fromhex("ff020000000000000000000000000001")
    all_routers = bytes.fromhex("ff020000000000000000000000000002")
    rs = bytes([133, 0, 0, 0, 0, 0, 0, 0])
    yield nd_packet(link_local, all_routers, rs)
    yield nd_packet(bytes(16), all_routers, rs)
    yield nd_packet(link_local, all_routers, rs + bytes([1, 1, 2, 0, 0, 0, 0, 1]))
    prefix = bytes.fromhex("20010db801000007") + bytes(8)
    pio = bytes([3, 4, 64, 0xC0]) + (86400).to_bytes(4, "big") + (14400).to_bytes(4, "big")
    pio += bytes(4) + prefix
    mtu = bytes([5, 1, 0, 0]) + (1456).to_bytes(4, "big")
    rdnss = bytes([25, 3, 0, 0]) + (600).to_bytes(4, "big")
    rdnss += bytes.fromhex("20010db8000000000000000000000053")
    ra = bytes([134, 0, 0, 0, 0, 0]) + (1800).to_bytes(2, "big") + bytes(8)
    yield nd_packet(router, all_nodes, ra)
    yield nd_packet(router, link_local, ra + pio + mtu + rdnss)


def http_seeds():
    """Request heads a scraper, a health check and a stray client send."""
    return [
        b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9701\r\n"
        b"User-Agent: Prometheus/2.42.0\r\nAccept: text/plain;version=0.0.4\r\n\r\n",
        b"GET /healthz HTTP/1.0\n\n",
        b"HEAD /metrics?x=1 HTTP/1.1\r\n\r\n",
        b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
        b"GET / HTTP/1.1\r\n",
    ]


def write(target: str, data: bytes) -> None:
    directory = FUZZ / "corpus" / target
    directory.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    (directory / name).write_bytes(data)


def main() -> None:
    packets = list(capture_packets())
    bodies = []
    for name, data in test_constants():
        if name.endswith("_BODY"):
            bodies.append(data)
        elif len(data) >= 12 and data[1] & 0x0F == 2:
            packets.append(data)
    for packet in packets:
        write("l2tp_header", packet)
        body = packet[header_len(packet) :]
        if body:
            bodies.append(body)
    for body in bodies:
        write("l2tp_message", body)
        write("l2tp_avp_iter", body)
    for target, data in ppp_seeds():
        write(target, data)
    for data in config_seeds():
        write("config_toml", data)
    for data in icmpv6_seeds():
        write("icmpv6_nd", data)
    for data in http_seeds():
        write("http_request", data)
    for target in (
        "l2tp_header",
        "l2tp_message",
        "l2tp_avp_iter",
        "ppp_frame",
        "ppp_cp_options",
        "ppp_auth",
        "config_toml",
        "icmpv6_nd",
        "http_request",
    ):
        count = len(list((FUZZ / "corpus" / target).iterdir()))
        print(f"{target}: {count} seeds")


if __name__ == "__main__":
    main()
