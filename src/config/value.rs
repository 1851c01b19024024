//! Value syntaxes that several keys share, with their serde readers:
//! durations, numbers that may also be a keyword (`auto`, `off`), socket
//! addresses with a default port, address prefixes and secrets.
//!
//! Every reader fails with a message that says what was expected, and
//! list elements are read one by one (through small wrapper types) so that
//! the TOML reader can point at the exact element that is wrong.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Unexpected, Visitor};

use crate::proto::aaa::pool::MAX_QUARANTINE;
use crate::proto::aaa::AddrRange;
use crate::wire::ppp::lcp::AuthMethod;
pub use crate::wire::prefix::IpPrefix;

/// The longest duration any key accepts (a year, the pool quarantine's own
/// ceiling). Protocol timers have tighter limits, checked per key; this
/// one keeps `now + duration` far from overflowing anywhere.
pub const MAX_DURATION: Duration = MAX_QUARANTINE;

/// Reads `30`, `"30s"`, `"500ms"`, `"5m"`, `"1h"` or `"2d"`. A bare integer
/// counts seconds, which is what most operators mean by an interval.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let bad = || {
        format!("{text:?} is not a duration (write e.g. 30, \"30s\", \"500ms\", \"5m\" or \"1h\")")
    };
    let value: u64 = digits.parse().map_err(|_| bad())?;
    let millis_per_unit: u64 = match unit.trim_start() {
        "ms" => 1,
        "s" | "" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    let millis = value
        .checked_mul(millis_per_unit)
        .filter(|&ms| Duration::from_millis(ms) <= MAX_DURATION)
        .ok_or_else(|| format!("{text:?} is longer than a year"))?;
    Ok(Duration::from_millis(millis))
}

/// Writes a duration the way [`parse_duration`] reads it, in the largest
/// unit that keeps it exact (for messages and the `check-config` summary).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    for (unit, per) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms % per == 0 {
            return format!("{}{unit}", ms / per);
        }
    }
    format!("{ms}ms")
}

/// What a keyword-or-number key held.
enum Word {
    Keyword(&'static str),
    Number(i64),
}

struct WordVisitor {
    keywords: &'static [&'static str],
    expecting: &'static str,
}

impl<'de> Visitor<'de> for WordVisitor {
    type Value = Word;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Word, E> {
        Ok(Word::Number(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Word, E> {
        i64::try_from(v)
            .map(Word::Number)
            .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Word, E> {
        self.keywords
            .iter()
            .find(|k| **k == v)
            .map(|k| Word::Keyword(k))
            .ok_or_else(|| E::invalid_value(Unexpected::Str(v), &self))
    }
}

fn keyword_or_number<'de, D: Deserializer<'de>>(
    d: D,
    keywords: &'static [&'static str],
    expecting: &'static str,
) -> Result<Word, D::Error> {
    d.deserialize_any(WordVisitor {
        keywords,
        expecting,
    })
}

/// A number that must fit `T` (range rules beyond the type's are checked
/// later, per key, with a message naming the key).
fn number<T: TryFrom<i64>, E: de::Error>(n: i64, expecting: &'static str) -> Result<T, E> {
    T::try_from(n).map_err(|_| E::invalid_value(Unexpected::Signed(n), &expecting))
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as 30 (seconds), \"30s\", \"500ms\", \"5m\" or \"1h\"")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        let secs = u64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))?;
        self.visit_u64(secs)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        let d = Duration::from_secs(v);
        if d > MAX_DURATION {
            return Err(E::custom(format!("{v} seconds is longer than a year")));
        }
        Ok(d)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_duration(v).map_err(E::custom)
    }
}

/// serde reader for a `Duration` key.
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor)
}

/// serde reader for a duration key that may also be `"off"`.
pub fn duration_or_off<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    struct OrOff;
    impl Visitor<'_> for OrOff {
        type Value = Option<Duration>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("\"off\" or a duration such as 30 (seconds), \"30s\" or \"500ms\"")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            DurationVisitor.visit_i64(v).map(Some)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            DurationVisitor.visit_u64(v).map(Some)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if v == "off" {
                Ok(None)
            } else {
                DurationVisitor.visit_str(v).map(Some)
            }
        }
    }
    d.deserialize_any(OrOff)
}

/// serde reader for a rate (events per second) that may also be `"off"`
/// (unlimited).
pub fn rate_or_off<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    const EXPECTING: &str = "\"off\" or a number per second";
    match keyword_or_number(d, &["off"], EXPECTING)? {
        Word::Keyword(_) => Ok(None),
        Word::Number(n) => number(n, EXPECTING).map(Some),
    }
}

/// How many shard threads to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shards {
    /// One per core the process may run on.
    Auto,
    /// Exactly this many.
    Count(u16),
}

impl<'de> Deserialize<'de> for Shards {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const EXPECTING: &str = "\"auto\" or a number of shards";
        match keyword_or_number(d, &["auto"], EXPECTING)? {
            Word::Keyword(_) => Ok(Shards::Auto),
            Word::Number(n) => number(n, EXPECTING).map(Shards::Count),
        }
    }
}

impl fmt::Display for Shards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shards::Auto => f.write_str("auto"),
            Shards::Count(n) => write!(f, "{n}"),
        }
    }
}

/// The MRU the LNS asks for in LCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mru {
    /// Derived from `ppp.path_mtu` and the tunnel's transport (see
    /// [`mru_for_path`](crate::proto::ppp::link::mru_for_path)).
    Auto,
    /// This value, whatever the path.
    Fixed(u16),
}

impl<'de> Deserialize<'de> for Mru {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const EXPECTING: &str = "\"auto\" or an MRU in bytes";
        match keyword_or_number(d, &["auto"], EXPECTING)? {
            Word::Keyword(_) => Ok(Mru::Auto),
            Word::Number(n) => number(n, EXPECTING).map(Mru::Fixed),
        }
    }
}

/// TCP MSS clamping on SYNs crossing the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MssClamp {
    /// Leave SYNs alone.
    Off,
    /// The largest MSS that fits the negotiated MRU: MRU − 40 for IPv4
    /// (20 IP + 20 TCP), MRU − 60 for IPv6.
    Auto,
    /// This MSS for IPv4 SYNs and 20 less for IPv6 SYNs (the IPv6 header is
    /// 20 bytes longer).
    Fixed(u16),
}

impl<'de> Deserialize<'de> for MssClamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const EXPECTING: &str = "\"auto\", \"off\" or an MSS in bytes";
        match keyword_or_number(d, &["auto", "off"], EXPECTING)? {
            Word::Keyword("off") => Ok(MssClamp::Off),
            Word::Keyword(_) => Ok(MssClamp::Auto),
            Word::Number(n) => number(n, EXPECTING).map(MssClamp::Fixed),
        }
    }
}

/// Reads a string with `parse`, failing inside the value's own visitor so
/// that the TOML reader marks the value itself (a list element rather than
/// the whole list).
fn parse_str<'de, D, T>(
    d: D,
    expecting: &'static str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct StrVisitor<F> {
        expecting: &'static str,
        parse: F,
    }
    impl<T, F: FnOnce(&str) -> Result<T, String>> Visitor<'_> for StrVisitor<F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.parse)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(StrVisitor { expecting, parse })
}

/// Reads `addr:port`, `[v6]:port`, or an address alone (then `default_port`).
pub fn parse_socket_addr(text: &str, default_port: u16) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, default_port))
        .map_err(|_| {
            format!(
                "{text:?} is not an address (write e.g. \"0.0.0.0:{default_port}\", \
                 \"[::]:{default_port}\" or \"192.0.2.1\")"
            )
        })
}

/// The L2TP port of RFC 2661 §8.1, used when a listen address has none.
pub const L2TP_PORT: u16 = 1701;

/// The metrics port used when `metrics.listen` names an address alone.
pub const METRICS_PORT: u16 = 9701;

struct ListenAddr(SocketAddr);

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, "an address such as \"0.0.0.0:1701\"", |text| {
            parse_socket_addr(text, L2TP_PORT).map(ListenAddr)
        })
    }
}

/// serde reader for `l2tp.listen`: a list of addresses.
pub fn listen_addrs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SocketAddr>, D::Error> {
    let addrs = Vec::<ListenAddr>::deserialize(d)?;
    Ok(addrs.into_iter().map(|a| a.0).collect())
}

/// serde reader for `metrics.listen`: an address or `"off"`.
pub fn addr_or_off<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    parse_str(
        d,
        "an address such as \"127.0.0.1:9701\", or \"off\"",
        |text| {
            if text == "off" {
                return Ok(None);
            }
            parse_socket_addr(text, METRICS_PORT)
                .map(Some)
                .map_err(|e| format!("{e}, or \"off\""))
        },
    )
}

impl<'de> Deserialize<'de> for IpPrefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(
            d,
            "an address or prefix such as \"192.0.2.0/24\"",
            str::parse,
        )
    }
}

/// A shared secret. Its `Debug` never shows the value, so a config can be
/// logged whole.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Secret(secret.into())
    }

    /// The secret's bytes, as the tunnel authentication uses them.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// The names `ppp.auth` accepts, in the order the error message lists them.
pub const AUTH_METHOD_NAMES: [(&str, AuthMethod); 3] = [
    ("chap-md5", AuthMethod::ChapMd5),
    ("mschapv2", AuthMethod::MsChapV2),
    ("pap", AuthMethod::Pap),
];

/// The name `ppp.auth` uses for `method`.
pub fn auth_method_name(method: AuthMethod) -> &'static str {
    AUTH_METHOD_NAMES
        .iter()
        .find(|(_, m)| *m == method)
        .map_or("?", |(name, _)| name)
}

struct AuthName(AuthMethod);

impl<'de> Deserialize<'de> for AuthName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, "an authentication method name", |name| {
            AUTH_METHOD_NAMES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, m)| AuthName(*m))
                .ok_or_else(|| {
                    format!(
                        "unknown authentication method {name:?}, expected one of \"chap-md5\", \
                         \"mschapv2\", \"pap\""
                    )
                })
        })
    }
}

/// serde reader for `ppp.auth`.
pub fn auth_methods<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<AuthMethod>, D::Error> {
    let names = Vec::<AuthName>::deserialize(d)?;
    Ok(names.into_iter().map(|n| n.0).collect())
}

struct Range(AddrRange);

impl<'de> Deserialize<'de> for Range {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, "an address range such as \"100.64.0.0/16\"", |text| {
            text.parse().map(Range).map_err(|e| {
                format!("{text:?}: {e} (write \"100.64.0.0/16\" or \"100.64.0.10-100.64.0.99\")")
            })
        })
    }
}

/// serde reader for `pool.ranges`.
pub fn addr_ranges<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<AddrRange>, D::Error> {
    let ranges = Vec::<Range>::deserialize(d)?;
    Ok(ranges.into_iter().map(|r| r.0).collect())
}

/// Writes a range as an operator would (`a-b`, or one address).
pub fn format_range(range: &AddrRange) -> String {
    if range.first() == range.last() {
        range.first().to_string()
    } else {
        format!("{}-{}", range.first(), range.last())
    }
}

/// Whether an IPv4 address falls in a range.
pub fn range_contains(range: &AddrRange, ip: Ipv4Addr) -> bool {
    (range.first()..=range.last()).contains(&ip)
}

/// Whether two ranges share an address.
pub fn ranges_overlap(a: &AddrRange, b: &AddrRange) -> bool {
    a.first() <= b.last() && b.first() <= a.last()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_every_unit() {
        for (text, want) in [
            ("30", Duration::from_secs(30)),
            ("30s", Duration::from_secs(30)),
            ("500ms", Duration::from_millis(500)),
            ("5m", Duration::from_secs(300)),
            ("5min", Duration::from_secs(300)),
            ("2h", Duration::from_secs(7200)),
            ("1d", Duration::from_secs(86_400)),
            ("0s", Duration::ZERO),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
        for bad in [
            "",
            "s",
            "1.5s",
            "-1s",
            "10 parsecs",
            "1y",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("366d")
            .unwrap_err()
            .contains("longer than a year"));
        assert!(parse_duration("365d").is_ok());
    }

    #[test]
    fn durations_format_back() {
        for text in ["0s", "30s", "500ms", "5m", "2h", "1d", "1500ms", "90s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }

    #[test]
    fn socket_addresses_take_a_default_port() {
        let v4 = |s| parse_socket_addr(s, 1701).unwrap().to_string();
        assert_eq!(v4("192.0.2.1"), "192.0.2.1:1701");
        assert_eq!(v4("192.0.2.1:17"), "192.0.2.1:17");
        assert_eq!(v4("::"), "[::]:1701");
        assert_eq!(v4("[::1]"), "[::1]:1701");
        assert_eq!(v4("[::1]:9"), "[::1]:9");
        assert!(parse_socket_addr("host.example:1701", 1701).is_err());
        assert!(parse_socket_addr("192.0.2.1:99999", 1701).is_err());
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.as_bytes(), b"hunter2");
    }
}
