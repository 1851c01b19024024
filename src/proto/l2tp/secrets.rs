//! Tunnel secrets by peer address.
//!
//! RFC 2661 §5.1.1 leaves open how the two ends come to share a secret;
//! an LNS serving several LACs keeps one per LAC or per network of LACs.
//! The endpoint picks a tunnel's secret once, from the peer's address,
//! when the tunnel is created; the challenge exchange (§5.1.1) and AVP
//! hiding (§4.3) then use that tunnel's secret for its whole life.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::wire::prefix::IpPrefix;

/// One shared secret: cheap to clone, and its `Debug` shows only its
/// length, so printing a tunnel or a table never logs it.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedSecret(Arc<[u8]>);

impl std::ops::Deref for SharedSecret {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl<T: Into<Arc<[u8]>>> From<T> for SharedSecret {
    fn from(bytes: T) -> Self {
        SharedSecret(bytes.into())
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedSecret({} bytes)", self.0.len())
    }
}

/// Secrets by peer prefix, looked up by longest prefix match.
///
/// Shared (`Arc`) so that a tunnel holds its secret without a copy. The
/// fallback for peers no prefix covers is
/// [`L2tpConfig::secret`](super::L2tpConfig::secret), kept outside the table.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PeerSecrets {
    /// Longest prefix first, so the first match is the best one.
    entries: Vec<(IpPrefix, SharedSecret)>,
}

impl PeerSecrets {
    /// An empty table.
    pub fn new() -> Self {
        PeerSecrets::default()
    }

    /// Give the peers in `prefix` their own `secret`, replacing any secret
    /// the same prefix had. An IPv4-mapped IPv6 prefix is stored as the
    /// IPv4 prefix it stands for.
    pub fn insert(&mut self, prefix: IpPrefix, secret: impl Into<Arc<[u8]>>) {
        let prefix = prefix.canonical();
        let secret = SharedSecret(secret.into());
        if let Some(entry) = self.entries.iter_mut().find(|(p, _)| *p == prefix) {
            entry.1 = secret;
            return;
        }
        // After every entry at least as long: equal lengths keep insertion
        // order (they cannot overlap anyway unless equal).
        let at = self
            .entries
            .partition_point(|(p, _)| p.prefix_len() >= prefix.prefix_len());
        self.entries.insert(at, (prefix, secret));
    }

    /// `self` with one more entry (see [`PeerSecrets::insert`]).
    #[must_use]
    pub fn with(mut self, prefix: IpPrefix, secret: impl Into<Arc<[u8]>>) -> Self {
        self.insert(prefix, secret);
        self
    }

    /// The secret of the longest prefix covering `peer`. An IPv4 peer seen
    /// through an IPv6 socket (`::ffff:192.0.2.7`) matches as IPv4.
    pub fn lookup(&self, peer: IpAddr) -> Option<&SharedSecret> {
        let peer = peer.to_canonical();
        self.entries
            .iter()
            .find(|(prefix, _)| prefix.contains(peer))
            .map(|(_, secret)| secret)
    }

    /// How many prefixes have a secret.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no prefix has a secret.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Prefixes only: secrets stay out of logs.
impl fmt::Debug for PeerSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.entries.iter().map(|(prefix, _)| prefix))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, &str)]) -> PeerSecrets {
        entries
            .iter()
            .fold(PeerSecrets::new(), |t, (prefix, secret)| {
                t.with(prefix.parse().unwrap(), secret.as_bytes())
            })
    }

    fn at<'a>(t: &'a PeerSecrets, ip: &str) -> Option<&'a [u8]> {
        t.lookup(ip.parse().unwrap()).map(|s| &s[..])
    }

    #[test]
    fn ipv4_takes_the_longest_prefix() {
        // Inserted shortest first: the order must not matter.
        let t = table(&[
            ("0.0.0.0/0", "any"),
            ("192.0.2.0/24", "net"),
            ("192.0.2.7", "host"),
            ("192.0.2.128/25", "half"),
        ]);
        assert_eq!(at(&t, "192.0.2.7"), Some(&b"host"[..]));
        assert_eq!(at(&t, "192.0.2.8"), Some(&b"net"[..]));
        assert_eq!(at(&t, "192.0.2.200"), Some(&b"half"[..]));
        assert_eq!(at(&t, "198.51.100.1"), Some(&b"any"[..]));
        // Never across families.
        assert_eq!(at(&t, "2001:db8::1"), None);
        let reversed = table(&[
            ("192.0.2.7", "host"),
            ("192.0.2.0/24", "net"),
            ("0.0.0.0/0", "any"),
        ]);
        assert_eq!(at(&reversed, "192.0.2.7"), Some(&b"host"[..]));
        assert_eq!(at(&reversed, "192.0.2.9"), Some(&b"net"[..]));
    }

    #[test]
    fn ipv6_takes_the_longest_prefix() {
        let t = table(&[
            ("2001:db8::/32", "site"),
            ("2001:db8:1::/48", "pop"),
            ("2001:db8:1::9", "lac"),
        ]);
        assert_eq!(at(&t, "2001:db8:1::9"), Some(&b"lac"[..]));
        assert_eq!(at(&t, "2001:db8:1::a"), Some(&b"pop"[..]));
        assert_eq!(at(&t, "2001:db8:2::1"), Some(&b"site"[..]));
        assert_eq!(at(&t, "2001:db9::1"), None);
        assert_eq!(at(&t, "192.0.2.1"), None);
    }

    #[test]
    fn ipv4_mapped_addresses_match_as_ipv4() {
        let t = table(&[
            ("192.0.2.0/24", "net"),
            ("::ffff:198.51.100.0/120", "mapped"),
        ]);
        assert_eq!(at(&t, "::ffff:192.0.2.7"), Some(&b"net"[..]));
        // A mapped prefix is stored as IPv4 and matches both spellings.
        assert_eq!(at(&t, "198.51.100.3"), Some(&b"mapped"[..]));
        assert_eq!(at(&t, "::ffff:198.51.100.3"), Some(&b"mapped"[..]));
        assert_eq!(at(&t, "::ffff:203.0.113.1"), None);
    }

    #[test]
    fn a_prefix_given_twice_keeps_the_last_secret() {
        let t = table(&[("192.0.2.0/24", "old"), ("192.0.2.0/24", "new")]);
        assert_eq!(t.len(), 1);
        assert_eq!(at(&t, "192.0.2.1"), Some(&b"new"[..]));
        assert!(PeerSecrets::new().is_empty());
        assert_eq!(at(&PeerSecrets::new(), "192.0.2.1"), None);
    }

    #[test]
    fn debug_shows_no_secret() {
        let t = table(&[("192.0.2.0/24", "hunter2")]);
        let shown = format!("{t:?}");
        assert!(shown.contains("192.0.2.0"));
        assert!(!shown.contains("hunter2"));
    }

    #[test]
    fn configs_endpoints_and_tunnels_print_no_secret() {
        use crate::proto::l2tp::{Endpoint, L2tpConfig, Role};
        let mut config = L2tpConfig::new(Role::Lac);
        config.secret = Some(b"hunter2".to_vec());
        config
            .peer_secrets
            .insert("192.0.2.0/24".parse().unwrap(), &b"swordfish"[..]);
        let mut lac = Endpoint::new(config, 1);
        let now = std::time::Instant::now();
        lac.connect(now, "192.0.2.7:1701".parse().unwrap()).unwrap();
        lac.connect(now, "198.51.100.7:1701".parse().unwrap())
            .unwrap();
        let shown = format!("{lac:?} {:?}", lac.config());
        for secret in [&b"hunter2"[..], b"swordfish"] {
            let as_text = String::from_utf8_lossy(secret);
            let as_list = format!("{secret:?}");
            let as_list = &as_list[1..as_list.len() - 1];
            assert!(!shown.contains(&*as_text), "{shown}");
            assert!(!shown.contains(as_list), "{shown}");
        }
        assert!(shown.contains("SharedSecret(9 bytes)"), "{shown}");
    }
}
