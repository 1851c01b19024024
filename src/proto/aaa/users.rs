//! The local users file: subscribers, their secrets and what they get.
//!
//! Parsing is pure ([`parse`] takes the text); the runtime reads the file and,
//! on reload, parses the new text and swaps the result in only if it parsed,
//! so a typo never takes the old users away.
//!
//! # Format
//! One entry per line; fields are separated by blanks (spaces or tabs).
//! Blank lines are ignored; `#` starts a comment where a field could start.
//!
//! ```text
//! # name                  settings
//! alice@isp.example       password=s3cret            ip=100.64.1.10
//! bob@isp.example         nthash=44EBBA8D5312B8D611474411F56989AE
//! "carol smith"           password="correct horse # battery"
//! CORP\dave               password=hunter2           session-timeout=3600
//! *@wholesale.example     password=partner-shared    pool=wholesale
//! @isp.example            pool=residential  dns=192.0.2.53,192.0.2.54
//! ```
//!
//! The first field names what the line is about:
//! - `user@realm` or `user`: one subscriber. The realm is whatever follows
//!   the last `@`.
//! - `*@realm`: any subscriber of that realm who has no line of their own,
//!   sharing one secret (typical for a wholesale partner or a test realm).
//! - `@realm`: defaults for every subscriber line and wildcard of the realm,
//!   wherever they are in the file; a subscriber's own settings win. A
//!   defaults line carries no secret.
//!
//! Settings, each at most once per line:
//! - `password=SECRET`: the cleartext secret. Needed for CHAP-MD5; also
//!   serves PAP and MS-CHAPv2.
//! - `nthash=HEX32`: the NT hash of the secret (MD4 of its UTF-16LE form,
//!   RFC 2759 §8.3), for files that must not hold cleartext. Serves PAP and
//!   MS-CHAPv2; CHAP-MD5 cannot be checked against it.
//! - `ip=A.B.C.D`: a static address (not allowed on a wildcard, which would
//!   give every subscriber of the realm the same address).
//! - `pool=NAME`: the address pool to allocate from.
//! - `ipv6-prefix=PREFIX/64`: a static IPv6 /64 for the subscriber (not on
//!   a wildcard or realm defaults). Taken from the prefix pool that holds
//!   it, if one does; the daemon routes only the pools' prefixes.
//! - `dns=A.B.C.D[,A.B.C.D]`: primary and secondary DNS server (RFC 1877).
//! - `session-timeout=SECONDS`: disconnect after this long.
//!
//! Each subscriber or wildcard line has exactly one of `password` and
//! `nthash`. Unknown settings are errors, so a misspelt key is caught at
//! load time rather than silently ignored.
//!
//! Quoting: a field may contain `"..."` segments, inside which blanks and `#`
//! are literal and `\"` and `\\` stand for `"` and `\`. Outside quotes a
//! backslash is an ordinary character (`CORP\dave` needs no quotes).
//!
//! # Names and case
//! Realms are domain names and compare case-insensitively (ASCII);
//! the user part compares exactly, case included, like the secret.
//! [`UsersFile::user`] tries the exact `user@realm` line first, then the
//! realm's `*@realm` wildcard. A name without `@` matches only its own line.

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::Attributes;

/// How a subscriber proves who they are.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// The cleartext secret.
    Password(String),
    /// MD4 of the secret in UTF-16LE (RFC 2759 §8.3).
    NtHash([u8; 16]),
}

/// Secrets stay out of logs.
impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Password(_) => f.write_str("Password(<redacted>)"),
            Credential::NtHash(_) => f.write_str("NtHash(<redacted>)"),
        }
    }
}

/// One subscriber line (or realm wildcard), with its realm's defaults
/// already merged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    /// The name as written, realm in lower case (`*@realm` for a wildcard).
    pub name: String,
    /// The secret.
    pub credential: Credential,
    /// What the subscriber gets. `mschapv2_success` is never set here.
    pub attributes: Attributes,
    /// The line it came from (1-based), for messages.
    pub line: usize,
}

/// A parsed users file.
#[derive(Debug, Clone, Default)]
pub struct UsersFile {
    /// Subscriber lines by normalised name.
    users: HashMap<String, UserEntry>,
    /// `*@realm` lines by lower-case realm.
    wildcards: HashMap<String, UserEntry>,
    /// `@realm` defaults by lower-case realm.
    defaults: HashMap<String, (usize, Attributes)>,
}

/// Why a users file did not load: the line (1-based) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong, for the operator.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parse a users file (see the module doc for the format).
pub fn parse(text: &str) -> Result<UsersFile, ParseError> {
    let mut file = UsersFile::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let err = |message: String| ParseError { line, message };
        let fields = split_fields(raw).map_err(|m| err(m.to_string()))?;
        let Some((name, settings)) = fields.split_first() else {
            continue;
        };
        if name.eq_pos.is_some() {
            return Err(err(format!(
                "line starts with setting '{}' instead of a name",
                name.text
            )));
        }
        let name = name.text.as_str();
        let parsed = parse_settings(settings).map_err(err)?;
        match classify(name).map_err(|m| err(m.to_string()))? {
            NameKind::Defaults(realm) => {
                if parsed.credential.is_some() {
                    return Err(err(format!(
                        "realm defaults '@{realm}' cannot carry a password or nthash"
                    )));
                }
                if parsed.attributes.framed_ip.is_some() {
                    return Err(err("realm defaults cannot set ip=".to_string()));
                }
                if parsed.attributes.ipv6_prefix.is_some() {
                    return Err(err("realm defaults cannot set ipv6-prefix=".to_string()));
                }
                if let Some((first, _)) = file.defaults.get(&realm) {
                    return Err(err(format!(
                        "second defaults line for realm '{realm}' (first on line {first})"
                    )));
                }
                file.defaults.insert(realm, (line, parsed.attributes));
            }
            NameKind::Wildcard(realm) => {
                let entry = entry(format!("*@{realm}"), parsed, line).map_err(err)?;
                if entry.attributes.framed_ip.is_some() {
                    return Err(err(
                        "ip= on a wildcard would give every user of the realm one address"
                            .to_string(),
                    ));
                }
                if entry.attributes.ipv6_prefix.is_some() {
                    return Err(err(
                        "ipv6-prefix= on a wildcard would give every user of the realm one /64"
                            .to_string(),
                    ));
                }
                if let Some(first) = file.wildcards.get(&realm) {
                    return Err(err(format!(
                        "second wildcard for realm '{realm}' (first on line {})",
                        first.line
                    )));
                }
                file.wildcards.insert(realm, entry);
            }
            NameKind::User(normal) => {
                if let Some(first) = file.users.get(&normal) {
                    return Err(err(format!(
                        "second entry for '{normal}' (first on line {})",
                        first.line
                    )));
                }
                let entry = entry(normal.clone(), parsed, line).map_err(err)?;
                file.users.insert(normal, entry);
            }
        }
    }
    // Realm defaults apply wherever they appear in the file.
    for entry in file.users.values_mut().chain(file.wildcards.values_mut()) {
        if let Some((_, realm)) = entry.name.rsplit_once('@') {
            if let Some((_, defaults)) = file.defaults.get(realm) {
                merge_defaults(&mut entry.attributes, defaults);
            }
        }
    }
    Ok(file)
}

impl UsersFile {
    /// The entry that authenticates `name`: its own line, else its realm's
    /// wildcard. Realms compare case-insensitively, user parts exactly.
    pub fn user(&self, name: &str) -> Option<&UserEntry> {
        let normal = normalise(name);
        if let Some(entry) = self.users.get(normal.as_str()) {
            return Some(entry);
        }
        let (user, realm) = normal.rsplit_once('@')?;
        if user.is_empty() {
            return None;
        }
        self.wildcards.get(realm)
    }

    /// The `@realm` defaults, if the file has them.
    pub fn realm_defaults(&self, realm: &str) -> Option<&Attributes> {
        self.defaults
            .get(&realm.to_ascii_lowercase())
            .map(|(_, a)| a)
    }

    /// Every subscriber and wildcard entry (realm defaults merged in), in
    /// no particular order; for checks such as "every pool named exists".
    pub fn entries(&self) -> impl Iterator<Item = &UserEntry> {
        self.users.values().chain(self.wildcards.values())
    }

    /// Number of subscriber and wildcard lines.
    pub fn len(&self) -> usize {
        self.users.len() + self.wildcards.len()
    }

    /// Whether the file has no subscriber or wildcard line.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `user@Realm` → `user@realm`: the realm (after the last `@`) in lower case.
fn normalise(name: &str) -> String {
    match name.rsplit_once('@') {
        Some((user, realm)) => format!("{user}@{}", realm.to_ascii_lowercase()),
        None => name.to_string(),
    }
}

enum NameKind {
    User(String),
    Wildcard(String),
    Defaults(String),
}

fn classify(name: &str) -> Result<NameKind, &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name.chars().any(char::is_control) {
        return Err("control character in name");
    }
    match name.rsplit_once('@') {
        Some((_, "")) => Err("empty realm after '@'"),
        Some(("", realm)) => Ok(NameKind::Defaults(realm.to_ascii_lowercase())),
        Some(("*", realm)) => Ok(NameKind::Wildcard(realm.to_ascii_lowercase())),
        _ => Ok(NameKind::User(normalise(name))),
    }
}

#[derive(Default)]
struct Settings {
    credential: Option<Credential>,
    attributes: Attributes,
}

fn entry(name: String, parsed: Settings, line: usize) -> Result<UserEntry, String> {
    let credential = parsed
        .credential
        .ok_or_else(|| format!("'{name}' has no password= or nthash="))?;
    Ok(UserEntry {
        name,
        credential,
        attributes: parsed.attributes,
        line,
    })
}

fn merge_defaults(own: &mut Attributes, defaults: &Attributes) {
    if own.pool.is_none() {
        own.pool.clone_from(&defaults.pool);
    }
    if own.dns == [None, None] {
        own.dns = defaults.dns;
    }
    if own.session_timeout.is_none() {
        own.session_timeout = defaults.session_timeout;
    }
}

fn parse_settings(fields: &[Field]) -> Result<Settings, String> {
    let mut out = Settings::default();
    let mut seen: Vec<&str> = Vec::new();
    for field in fields {
        let Some(eq) = field.eq_pos else {
            return Err(format!("expected key=value, found '{}'", field.text));
        };
        let (key, value) = (&field.text[..eq], &field.text[eq + 1..]);
        if seen.contains(&key) {
            return Err(format!("'{key}' given twice"));
        }
        seen.push(key);
        if value.is_empty() {
            return Err(format!("empty value for '{key}'"));
        }
        match key {
            "password" | "nthash" if out.credential.is_some() => {
                return Err("both password= and nthash= given".to_string());
            }
            "password" => out.credential = Some(Credential::Password(value.to_string())),
            "nthash" => {
                let hash = parse_hex16(value)
                    .ok_or_else(|| "nthash= needs 32 hexadecimal digits".to_string())?;
                out.credential = Some(Credential::NtHash(hash));
            }
            "ip" => {
                let ip = value
                    .parse::<Ipv4Addr>()
                    .map_err(|_| format!("ip= '{value}' is not an IPv4 address"))?;
                out.attributes.framed_ip = Some(ip);
            }
            "pool" => out.attributes.pool = Some(value.to_string()),
            "ipv6-prefix" => out.attributes.ipv6_prefix = Some(parse_prefix64(value)?),
            "dns" => {
                let mut servers = value.split(',');
                let mut dns = [None, None];
                for slot in &mut dns {
                    if let Some(s) = servers.next() {
                        let ip = s
                            .trim()
                            .parse::<Ipv4Addr>()
                            .map_err(|_| format!("dns= '{s}' is not an IPv4 address"))?;
                        *slot = Some(ip);
                    }
                }
                if servers.next().is_some() {
                    return Err("dns= takes at most two servers".to_string());
                }
                out.attributes.dns = dns;
            }
            "session-timeout" => {
                let secs = value
                    .parse::<u32>()
                    .map_err(|_| format!("session-timeout= '{value}' is not whole seconds"))?;
                if secs == 0 {
                    return Err("session-timeout= must be above 0".to_string());
                }
                out.attributes.session_timeout = Some(Duration::from_secs(u64::from(secs)));
            }
            _ => return Err(format!("unknown setting '{key}'")),
        }
    }
    Ok(out)
}

/// `2001:db8:5:6::/64`: a /64 with no bits set past the prefix.
fn parse_prefix64(value: &str) -> Result<[u8; 8], String> {
    let bad = || format!("ipv6-prefix= '{value}' is not an IPv6 /64 (e.g. 2001:db8:5:6::/64)");
    let (addr, len) = value.split_once('/').ok_or_else(bad)?;
    let addr = addr.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
    if len != "64" || addr.octets()[8..] != [0; 8] {
        return Err(bad());
    }
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&addr.octets()[..8]);
    Ok(prefix)
}

fn parse_hex16(text: &str) -> Option<[u8; 16]> {
    let bytes = text.as_bytes();
    if bytes.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let digit = |c: u8| char::from(c).to_digit(16);
        *o = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

/// One blank-separated field with its quotes removed; `eq_pos` is where the
/// first `=` outside quotes landed in `text`.
struct Field {
    text: String,
    eq_pos: Option<usize>,
}

fn split_fields(line: &str) -> Result<Vec<Field>, &'static str> {
    let mut fields = Vec::new();
    let mut chars = line.chars();
    let mut current: Option<Field> = None;
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            let field = current.get_or_insert_with(new_field);
            match c {
                '"' => quoted = false,
                '\\' => match chars.next() {
                    Some(e @ ('"' | '\\')) => field.text.push(e),
                    Some(other) => {
                        field.text.push('\\');
                        field.text.push(other);
                    }
                    None => return Err("unterminated quote"),
                },
                _ => field.text.push(c),
            }
            continue;
        }
        match c {
            ' ' | '\t' => fields.extend(current.take()),
            '#' if current.is_none() => break,
            '"' => {
                current.get_or_insert_with(new_field);
                quoted = true;
            }
            _ => {
                let field = current.get_or_insert_with(new_field);
                if c == '=' && field.eq_pos.is_none() {
                    field.eq_pos = Some(field.text.len());
                }
                field.text.push(c);
            }
        }
    }
    if quoted {
        return Err("unterminated quote");
    }
    fields.extend(current);
    Ok(fields)
}

fn new_field() -> Field {
    Field {
        text: String::new(),
        eq_pos: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
# name                  settings
alice@isp.example       password=s3cret            ip=100.64.1.10
bob@ISP.example         nthash=44EBBA8D5312B8D611474411F56989AE   # clientPass
"carol smith"           password="correct horse # battery"
CORP\dave               password=hunter2           session-timeout=3600
eve@isp.example         password=x  pool=gold  dns=198.51.100.1
*@Wholesale.example     password=partner-shared    pool=wholesale
@isp.example            pool=residential  dns=192.0.2.53,192.0.2.54  session-timeout=86400
"#;

    fn sample() -> UsersFile {
        parse(SAMPLE).unwrap()
    }

    fn err(text: &str) -> ParseError {
        parse(text).unwrap_err()
    }

    #[test]
    fn sample_parses_and_merges_realm_defaults() {
        let f = sample();
        assert_eq!(f.len(), 6);
        let alice = f.user("alice@isp.example").unwrap();
        assert_eq!(alice.credential, Credential::Password("s3cret".into()));
        assert_eq!(alice.line, 3);
        assert_eq!(
            alice.attributes.framed_ip,
            Some("100.64.1.10".parse().unwrap())
        );
        // From `@isp.example`, which comes later in the file.
        assert_eq!(alice.attributes.pool.as_deref(), Some("residential"));
        assert_eq!(
            alice.attributes.dns,
            [
                Some("192.0.2.53".parse().unwrap()),
                Some("192.0.2.54".parse().unwrap())
            ]
        );
        assert_eq!(
            alice.attributes.session_timeout,
            Some(Duration::from_secs(86400))
        );
        // Own settings win over the realm's.
        let eve = f.user("eve@isp.example").unwrap();
        assert_eq!(eve.attributes.pool.as_deref(), Some("gold"));
        assert_eq!(
            eve.attributes.dns,
            [Some("198.51.100.1".parse().unwrap()), None]
        );
        assert_eq!(eve.attributes.mschapv2_success, None);
        let bob = f.user("bob@isp.example").unwrap();
        assert_eq!(
            bob.credential,
            Credential::NtHash(crate::crypto::ppp_auth::nt_password_hash("clientPass"))
        );
        assert_eq!(
            f.realm_defaults("ISP.EXAMPLE").unwrap().pool.as_deref(),
            Some("residential")
        );
    }

    #[test]
    fn quoting_and_backslashes() {
        let f = sample();
        let carol = f.user("carol smith").unwrap();
        assert_eq!(
            carol.credential,
            Credential::Password("correct horse # battery".into())
        );
        let dave = f.user("CORP\\dave").unwrap();
        assert_eq!(
            dave.attributes.session_timeout,
            Some(Duration::from_secs(3600))
        );
        let f = parse(r#"u password="a\"b\\c\d"x"#).unwrap();
        assert_eq!(
            f.user("u").unwrap().credential,
            Credential::Password("a\"b\\c\\dx".into())
        );
        // `#` inside a field is literal; at a field start it is a comment.
        let f = parse("u password=a#b #comment").unwrap();
        assert_eq!(
            f.user("u").unwrap().credential,
            Credential::Password("a#b".into())
        );
    }

    #[test]
    fn lookup_case_rules_and_wildcards() {
        let f = sample();
        assert!(f.user("alice@ISP.Example").is_some());
        assert!(f.user("Alice@isp.example").is_none());
        assert!(f.user("alice").is_none());
        assert_eq!(f.user("bob@isp.EXAMPLE").unwrap().line, 4);
        let w = f.user("anyone@wholesale.EXAMPLE").unwrap();
        assert_eq!(w.name, "*@wholesale.example");
        assert_eq!(w.attributes.pool.as_deref(), Some("wholesale"));
        assert!(f.user("@wholesale.example").is_none());
        assert!(f.user("someone@other.example").is_none());
        // Only the last `@` splits off the realm.
        let f = parse("a@b@Realm password=p\n*@realm password=q").unwrap();
        assert_eq!(f.user("a@b@REALM").unwrap().name, "a@b@realm");
        assert_eq!(f.user("x@y@realm").unwrap().name, "*@realm");
    }

    #[test]
    fn a_static_ipv6_prefix() {
        let f = parse("a password=x ipv6-prefix=2001:db8:5:6::/64\n").unwrap();
        assert_eq!(
            f.user("a").unwrap().attributes.ipv6_prefix,
            Some([0x20, 0x01, 0x0d, 0xb8, 0, 5, 0, 6])
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = err("a password=x\n\n  b pasword=y");
        assert_eq!(e.line, 3);
        assert!(e.message.contains("unknown setting 'pasword'"), "{e}");
        assert_eq!(e.to_string(), "line 3: unknown setting 'pasword'");

        let cases: &[(&str, &str)] = &[
            ("a", "no password= or nthash="),
            (
                "a password=x nthash=00000000000000000000000000000000",
                "both",
            ),
            ("a password=x password=y", "given twice"),
            ("a password=", "empty value"),
            ("a password=\"\"", "empty value"),
            ("a password=x ip=10.0.0.300", "not an IPv4 address"),
            ("a password=x ipv6-prefix=2001:db8::/48", "not an IPv6 /64"),
            ("a password=x ipv6-prefix=2001:db8::1/64", "not an IPv6 /64"),
            ("a password=x ipv6-prefix=10.0.0.0/64", "not an IPv6 /64"),
            ("a password=x ipv6-prefix=2001:db8::", "not an IPv6 /64"),
            ("@r ipv6-prefix=2001:db8::/64", "cannot set ipv6-prefix="),
            ("*@r password=x ipv6-prefix=2001:db8::/64", "one /64"),
            ("a nthash=abc", "32 hexadecimal"),
            (
                "a nthash=0000000000000000000000000000000g",
                "32 hexadecimal",
            ),
            ("a password=x dns=1.1.1.1,2.2.2.2,3.3.3.3", "at most two"),
            ("a password=x session-timeout=-1", "whole seconds"),
            ("a password=x session-timeout=0", "above 0"),
            ("a password=x stray", "expected key=value"),
            ("password=x", "instead of a name"),
            ("a password=\"open", "unterminated quote"),
            ("a@ password=x", "empty realm"),
            ("@r password=x", "cannot carry"),
            ("@r ip=10.0.0.1", "cannot set ip="),
            ("*@r password=x ip=10.0.0.1", "one address"),
            (
                "a password=x\nA password=y\na password=z",
                "second entry for 'a' (first on line 1)",
            ),
            ("a@R password=x\na@r password=y", "first on line 1"),
            ("*@r password=x\n*@R password=y", "second wildcard"),
            ("@r pool=a\n@R pool=b", "second defaults"),
        ];
        for (text, want) in cases {
            let e = err(text);
            assert!(e.message.contains(want), "{text:?}: got {e}, want {want:?}");
        }
    }

    #[test]
    fn empty_and_comment_only_files_parse() {
        assert!(parse("").unwrap().is_empty());
        assert!(parse("# nothing\n   \n\t# more\n").unwrap().is_empty());
        assert!(parse("@realm pool=p").unwrap().is_empty());
    }

    #[test]
    fn credentials_do_not_leak_into_debug_output() {
        let f = sample();
        let text = format!("{f:?}");
        assert!(!text.contains("s3cret"));
        assert!(!text.contains("hunter2"));
        assert!(!text.contains("44EB") && !text.contains("68, 235"));
    }

    #[test]
    fn arbitrary_text_never_panics() {
        // A cheap stand-in for a fuzz target: every prefix of a nasty text.
        let nasty = "a\"b\\\"#=\u{0}é@@*@ password=\"x\\\n@ \t=\"\\";
        for end in (0..=nasty.len()).filter(|&i| nasty.is_char_boundary(i)) {
            let _ = parse(&nasty[..end]);
        }
    }
}
