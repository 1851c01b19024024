//! Private network namespaces (for tests, demos and benchmarks that must
//! not touch the host's network) and the IPv4 header checksum.

/// Run `f` on a thread of its own inside a fresh network namespace (which
/// vanishes with the thread). False, without running `f`, when this process
/// may not create one or has no TUN driver: the caller must say it skipped.
pub fn in_private_netns(f: impl FnOnce() + Send + 'static) -> bool {
    if !std::path::Path::new("/dev/net/tun").exists() {
        return false;
    }
    let handle = std::thread::spawn(move || {
        // SAFETY: unshare(2) affects only this thread's namespaces.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return false;
        }
        f();
        true
    });
    match handle.join() {
        Ok(ran) => ran,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Bring interface `name` up (a new namespace's loopback starts down).
pub fn link_up(name: &str) -> std::io::Result<()> {
    super::tun::set_link_up(name)
}

/// The RFC 791 header checksum of `header` (its checksum field zero).
pub fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum = 0u32;
    for pair in header.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
