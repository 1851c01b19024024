//! Tests of the configuration: defaults, the example file, every kind of
//! error (with its key and line), and the conversions into core settings.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::crypto::ppp_auth::nt_password_hash;
use crate::proto::aaa::Credential;
use crate::proto::node::NoAaa;
use crate::proto::node::Node;
use crate::wire::l2tp::AvpType;
use crate::wire::ppp::lcp::AuthMethod;

const EXAMPLE: &str = include_str!("../../deploy/lns.toml");

fn err(text: &str) -> ConfigError {
    match Config::from_toml_str(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

/// Asserts the error's key and line, and returns its message.
#[track_caller]
fn err_at(text: &str, key: &str, line: usize) -> String {
    let e = err(text);
    assert_eq!((e.key.as_str(), e.line), (key, Some(line)), "{e}");
    assert!(e.column.is_some(), "{e}");
    e.message
}

/// A scratch directory of our own under the system's temporary directory.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lns-config-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---- defaults ------------------------------------------------------------

#[test]
fn an_empty_file_is_the_defaults() {
    assert_eq!(Config::from_toml_str("").unwrap(), Config::default());
    assert_eq!(
        Config::from_toml_str("# nothing but a comment\n\n").unwrap(),
        Config::default()
    );
    Config::default().validate().unwrap();
}

#[test]
fn defaults_listen_everywhere_with_a_demo_pool_and_users() {
    let c = Config::default();
    let listen: Vec<String> = c.l2tp.listen.iter().map(ToString::to_string).collect();
    assert_eq!(listen, ["0.0.0.0:1701", "[::]:1701"]);
    assert_eq!(c.runtime.shards, Shards::Auto);
    assert_eq!(c.shard_count(2), 2);
    assert_eq!(c.shard_count(0), 1);
    assert_eq!(c.runtime.io, IoMode::Auto);
    assert_eq!(c.l2tp.secret, None);
    assert_eq!(c.ppp.auth, [AuthMethod::ChapMd5, AuthMethod::Pap]);
    assert_eq!(c.ppp.gateway, Ipv4Addr::new(100, 64, 0, 1));
    assert_eq!(c.pool.len(), 1);
    assert_eq!(c.pool[0].name, "demo");
    assert_eq!(c.pool[0].size(), 65_533);
    assert_eq!(c.pool[0].quarantine, Duration::from_secs(60));
    assert_eq!(c.management.socket, PathBuf::from("/run/lns/lns.sock"));
    assert_eq!(
        c.metrics.listen,
        Some("127.0.0.1:9701".parse::<SocketAddr>().unwrap())
    );
    assert_eq!(c.log.level, LogLevel::Info);
    assert_eq!(c.log.format, LogFormat::Text);
    assert_eq!(c.aaa.users_file, None);
    let users = c.load_users().unwrap();
    assert_eq!(users.len(), 5);
    assert!(users.user("alice@demo.example").is_some());
    assert!(users.user("anyone@LOADGEN.example").is_some());
    assert_eq!(
        users.user("bob@demo.example").unwrap().attributes.framed_ip,
        Some(Ipv4Addr::new(100, 64, 0, 10))
    );
}

#[test]
fn demo_carol_hash_is_the_nt_hash_of_her_password() {
    let users = users::parse(DEMO_USERS).unwrap();
    let carol = users.user("carol@demo.example").unwrap();
    assert_eq!(
        carol.credential,
        Credential::NtHash(nt_password_hash("carol-demo"))
    );
}

#[test]
fn defaults_match_the_core_defaults() {
    // Where a core type has its own defaults, the file's defaults are the
    // same values: a config that says nothing changes nothing.
    let c = Config::default();
    let l2tp = c.l2tp_config(ShardSpec::SINGLE);
    let core = L2tpConfig::new(Role::Lns);
    assert_eq!(l2tp.reliable, core.reliable);
    // The library endpoint has no admission rate of its own; the daemon's
    // defaults set one.
    assert_eq!(
        l2tp.limits,
        Limits {
            new_tunnels_per_second: Some(500),
            new_sessions_per_second: Some(20_000),
            ..core.limits
        }
    );
    assert_eq!(l2tp.hello_interval, core.hello_interval);
    assert_eq!(l2tp.setup_timeout, core.setup_timeout);
    assert_eq!(l2tp.stop_hold, core.stop_hold);
    assert_eq!(l2tp.id_hold, core.id_hold);
    assert_eq!(l2tp.host_name, core.host_name);
    let link = c.link_config(false);
    let server = LinkConfig::server(c.ppp.gateway, [None, None]);
    assert_eq!(link, server);
}

// ---- the example file ----------------------------------------------------

#[test]
fn the_example_file_parses() {
    let c = Config::from_toml_str(EXAMPLE).unwrap();
    assert_eq!(c.pool.len(), 2);
    assert_eq!(c.l2tp.peer.len(), 1);
    c.load_users().unwrap();
}

/// The example with every `# example` line (and `[[table]]  # example`
/// block) removed: what is left claims to be the defaults.
fn example_defaults_only() -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in EXAMPLE.lines() {
        let trimmed = line.trim_start();
        let example = line.contains("# example");
        if trimmed.starts_with('[') {
            skipping = example;
        }
        if skipping || example {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[test]
fn the_example_values_marked_default_are_the_defaults() {
    let defaults = example_defaults_only();
    assert_eq!(Config::from_toml_str(&defaults).unwrap(), Config::default());
    // And the example lines really differ (otherwise they should say default).
    assert_ne!(Config::from_toml_str(EXAMPLE).unwrap(), Config::default());
}

#[test]
fn every_example_setting_says_default_or_example() {
    for (n, line) in EXAMPLE.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || (t.starts_with('[') && !t.starts_with("[[")) {
            continue;
        }
        assert!(
            t.ends_with("# default") || t.ends_with("# example"),
            "line {}: {line}",
            n + 1
        );
    }
}

/// The keys a section accepts, read from the error for an unknown one.
fn keys_of(section: &str) -> Vec<String> {
    let probe = match section {
        "" => "zz_unknown = 1\n".to_string(),
        "pool" => "[[pool]]\nzz_unknown = 1\n".to_string(),
        "l2tp.peer" => "[[l2tp.peer]]\nzz_unknown = 1\n".to_string(),
        s => format!("[{s}]\nzz_unknown = 1\n"),
    };
    let message = err(&probe).message;
    let (_, known) = message.split_once("known keys: ").unwrap();
    known
        .trim_end_matches(')')
        .split(", ")
        .map(str::to_string)
        .collect()
}

#[test]
fn the_example_shows_every_key() {
    let sections = keys_of("");
    assert_eq!(
        sections,
        [
            "l2tp",
            "ppp",
            "aaa",
            "pool",
            "ipv6",
            "runtime",
            "management",
            "metrics",
            "log"
        ]
    );
    let mut all = Vec::new();
    for section in sections.iter().map(String::as_str).chain(["l2tp.peer"]) {
        let keys = keys_of(section);
        assert!(!keys.is_empty(), "{section}");
        all.extend(keys);
    }
    for key in all {
        let shown = EXAMPLE.lines().any(|l| {
            let l = l.trim_start_matches(['#', ' ']);
            l.starts_with(&format!("{key} =")) || l.starts_with(&format!("[[l2tp.{key}]]"))
        });
        assert!(shown, "deploy/lns.toml does not show `{key}`");
    }
}

// ---- errors: syntax and schema -------------------------------------------

#[test]
fn syntax_errors_give_line_and_column() {
    let e = err("[ppp]\nmru = 1400\nechoes = \n");
    assert_eq!(e.kind, ErrorKind::Syntax);
    assert_eq!((e.line, e.column), (Some(3), Some(10)));
    assert_eq!(e.key, "ppp.echoes");
    let e = err("[l2tp]\nhost_name = \"lns\nlisten = []\n");
    assert_eq!(e.kind, ErrorKind::Syntax);
    assert_eq!(e.line, Some(2));
    let e = err("[ppp]\n[ppp]\n");
    assert_eq!(e.kind, ErrorKind::Syntax);
    assert_eq!((e.key.as_str(), e.line), ("ppp", Some(2)));
    // Duplicate keys: the second one is named, in its table.
    let e = err("[ppp]\nmru = 1400\nmru = 1300\n");
    assert_eq!((e.key.as_str(), e.line), ("ppp.mru", Some(3)));
    let e = err("ppp.mru = 1400\nppp.mru = 1300\n");
    assert_eq!((e.key.as_str(), e.line), ("ppp.mru", Some(2)));
    assert_eq!(e.message, "duplicate key");
}

#[test]
fn unknown_keys_are_errors() {
    let text = "[ppp]\nmru = 1400\necho_intervl = \"10s\"\n";
    let m = err_at(text, "ppp.echo_intervl", 3);
    assert!(
        m.starts_with("unknown key `echo_intervl`, did you mean `echo_interval`?"),
        "{m}"
    );
    assert_eq!(err(text).kind, ErrorKind::Schema);
    assert_eq!(err(text).column, Some(1));
    err_at("[pp]\nmru = 1\n", "pp", 1);
    err_at(
        "\n\n[[pool]]\nname = \"a\"\nranges = [\"10.0.0.0/24\"]\nsize = 3\n",
        "pool[0].size",
        6,
    );
    err_at(
        "[l2tp]\n[[l2tp.peer]]\naddress = \"192.0.2.1\"\nsecret = \"x\"\nport = 1\n",
        "l2tp.peer[0].port",
        5,
    );
}

#[test]
fn wrong_types_name_the_key() {
    let m = err_at("[ppp]\necho_failures = \"many\"\n", "ppp.echo_failures", 2);
    assert!(m.contains("expected u32"), "{m}");
    err_at("[l2tp]\nmax_tunnels = -1\n", "l2tp.max_tunnels", 2);
    err_at("[ppp]\nipv6cp = \"yes\"\n", "ppp.ipv6cp", 2);
    err_at("[l2tp]\nreceive_window = 70000\n", "l2tp.receive_window", 2);
    err_at("ppp.gateway = \"100.64.0.300\"\n", "ppp.gateway", 1);
    err_at("[runtime]\nio = \"epoll\"\n", "runtime.io", 2);
    err_at("[log]\nlevel = \"loud\"\n", "log.level", 2);
    err_at("[log]\nformat = \"xml\"\n", "log.format", 2);
    err_at("[runtime]\nshards = \"many\"\n", "runtime.shards", 2);
    err_at("[runtime]\nshards = 70000\n", "runtime.shards", 2);
    err_at("[ppp]\nmru = \"big\"\n", "ppp.mru", 2);
    err_at("[ppp]\nmss_clamp = true\n", "ppp.mss_clamp", 2);
    err_at("[metrics]\nlisten = \"everywhere\"\n", "metrics.listen", 2);
    err_at(
        "[runtime]\nnew_sessions_per_second = \"lots\"\n",
        "runtime.new_sessions_per_second",
        2,
    );
}

#[test]
fn bad_durations_name_the_key() {
    let m = err_at(
        "[l2tp]\nhello_interval = \"1 fortnight\"\n",
        "l2tp.hello_interval",
        2,
    );
    assert!(m.contains("not a duration"), "{m}");
    err_at("[ppp]\necho_interval = -5\n", "ppp.echo_interval", 2);
    err_at(
        "[[pool]]\nname = \"a\"\nranges = [\"10.0.0.0/24\"]\nquarantine = \"400d\"\n",
        "pool[0].quarantine",
        4,
    );
}

#[test]
fn list_elements_are_named_by_index() {
    let m = err_at("[ppp]\nauth = [\"pap\",\n  \"chap\"]\n", "ppp.auth[1]", 3);
    assert!(m.contains("unknown authentication method \"chap\""), "{m}");
    assert!(m.contains("\"mschapv2\""), "{m}");
    let m = err_at(
        "[[pool]]\nname = \"a\"\nranges = [\"10.0.0.0/24\", \"10.1.0.0/33\"]\n",
        "pool[0].ranges[1]",
        3,
    );
    assert!(m.contains("10.1.0.0/33"), "{m}");
    err_at(
        "[l2tp]\nlisten = [\"0.0.0.0:1701\", \"somewhere\"]\n",
        "l2tp.listen[1]",
        2,
    );
    err_at(
        "[[l2tp.peer]]\naddress = \"192.0.2.1/24\"\nsecret = \"s\"\n",
        "l2tp.peer[0].address",
        2,
    );
}

#[test]
fn missing_required_keys_point_at_the_table() {
    let text = "[[pool]]\nname = \"a\"\nranges = [\"10.0.0.0/24\"]\n\n[[pool]]\nname = \"b\"\n";
    let m = err_at(text, "pool[1]", 5);
    assert_eq!(m, "missing key `ranges`");
    err_at(
        "[[l2tp.peer]]\naddress = \"192.0.2.1\"\n",
        "l2tp.peer[0]",
        1,
    );
}

// ---- errors: semantics ---------------------------------------------------

#[test]
fn zero_intervals_are_refused() {
    for (text, key) in [
        ("[l2tp]\nhello_interval = 0\n", "l2tp.hello_interval"),
        (
            "[l2tp]\nretransmit_initial = \"0s\"\n",
            "l2tp.retransmit_initial",
        ),
        ("[l2tp]\nsetup_timeout = 0\n", "l2tp.setup_timeout"),
        ("[l2tp]\nack_delay = \"0ms\"\n", "l2tp.ack_delay"),
        ("[ppp]\nrestart_timer = 0\n", "ppp.restart_timer"),
        ("[ppp]\nauth_restart = 0\n", "ppp.auth_restart"),
    ] {
        let m = err_at(text, key, 2);
        assert!(m.contains("longer than zero"), "{m}");
        assert_eq!(err(text).kind, ErrorKind::Invalid);
    }
    let m = err_at("[ppp]\necho_interval = 0\n", "ppp.echo_interval", 2);
    assert!(m.contains("\"off\""), "{m}");
    let c = Config::from_toml_str("[ppp]\necho_interval = \"off\"\n").unwrap();
    assert_eq!(c.ppp.echo_interval, None);
    assert_eq!(c.link_config(false).echo_interval, Duration::ZERO);
    err_at(
        "[l2tp]\nhello_interval = \"2d\"\n",
        "l2tp.hello_interval",
        2,
    );
}

#[test]
fn zero_counts_are_refused() {
    for (text, key) in [
        ("[runtime]\nshards = 0\n", "runtime.shards"),
        ("[runtime]\nbatch_size = 0\n", "runtime.batch_size"),
        ("[runtime]\ntun_queue_len = 0\n", "runtime.tun_queue_len"),
        (
            "[runtime]\nnew_tunnels_per_second = 0\n",
            "runtime.new_tunnels_per_second",
        ),
        (
            "[runtime]\nnew_sessions_per_second = 0\n",
            "runtime.new_sessions_per_second",
        ),
        ("[l2tp]\nmax_retries = 0\n", "l2tp.max_retries"),
        ("[l2tp]\nreceive_window = 0\n", "l2tp.receive_window"),
        ("[l2tp]\nmax_tunnels = 0\n", "l2tp.max_tunnels"),
        (
            "[l2tp]\nmax_sessions_per_tunnel = 0\n",
            "l2tp.max_sessions_per_tunnel",
        ),
        (
            "[l2tp]\nmax_half_open_tunnels = 0\n",
            "l2tp.max_half_open_tunnels",
        ),
        (
            "[l2tp]\nmax_half_open_sessions = 0\n",
            "l2tp.max_half_open_sessions",
        ),
        ("[ppp]\necho_failures = 0\n", "ppp.echo_failures"),
        ("[ppp]\nmax_configure = 0\n", "ppp.max_configure"),
        ("[ppp]\nmax_terminate = 0\n", "ppp.max_terminate"),
        ("[ppp]\nmax_failure = 0\n", "ppp.max_failure"),
        (
            "[ppp]\nauth_max_transmissions = 0\n",
            "ppp.auth_max_transmissions",
        ),
    ] {
        err_at(text, key, 2);
    }
    let c =
        Config::from_toml_str("[runtime]\nshards = 3\nnew_tunnels_per_second = \"off\"\n").unwrap();
    assert_eq!(c.shard_count(64), 3);
    assert_eq!(c.runtime.new_tunnels_per_second, None);
}

#[test]
fn out_of_range_values_are_refused() {
    for (text, key) in [
        ("[ppp]\nmru = 100\n", "ppp.mru"),
        ("[ppp]\nmru = 9001\n", "ppp.mru"),
        ("[ppp]\npath_mtu = 500\n", "ppp.path_mtu"),
        ("[ppp]\nmin_peer_mru = 64\n", "ppp.min_peer_mru"),
        ("[ppp]\nmss_clamp = 100\n", "ppp.mss_clamp"),
        ("[l2tp]\nmax_tunnels = 65536\n", "l2tp.max_tunnels"),
        ("[l2tp]\nmax_retries = 1000\n", "l2tp.max_retries"),
        ("[runtime]\nshards = 2000\n", "runtime.shards"),
        (
            "[runtime]\ntunnel_refusal_result = 9\n",
            "runtime.tunnel_refusal_result",
        ),
        (
            "[runtime]\nsession_refusal_result = 12\n",
            "runtime.session_refusal_result",
        ),
        (
            "[runtime]\ntun_name = \"a-name-longer-than-15\"\n",
            "runtime.tun_name",
        ),
        ("[runtime]\ntun_name = \"lns/0\"\n", "runtime.tun_name"),
        ("[l2tp]\nhost_name = \"\"\n", "l2tp.host_name"),
        ("[l2tp]\nretransmit_cap = \"4s\"\n", "l2tp.retransmit_cap"),
        ("[ppp]\ngateway = \"0.0.0.0\"\n", "ppp.gateway"),
        (
            "[ppp]\ndns = [\"192.0.2.1\", \"192.0.2.2\", \"192.0.2.3\"]\n",
            "ppp.dns",
        ),
        (
            "[ppp]\ndns = [\"192.0.2.1\", \"255.255.255.255\"]\n",
            "ppp.dns[1]",
        ),
        ("[l2tp]\nlisten = []\n", "l2tp.listen"),
        ("[l2tp]\nlisten = [\"[::]:0\"]\n", "l2tp.listen[0]"),
        (
            "[l2tp]\nlisten = [\"[::]\", \"[::]:1701\"]\n",
            "l2tp.listen[1]",
        ),
        ("[l2tp]\nsecret = \"\"\n", "l2tp.secret"),
        ("[management]\nsocket = \"\"\n", "management.socket"),
        ("[metrics]\nlisten = \"127.0.0.1:0\"\n", "metrics.listen"),
    ] {
        err_at(text, key, 2);
    }
    let m = err_at("[ppp]\nmru = 100\n", "ppp.mru", 2);
    assert_eq!(m, "100 is outside 128..=9000");
    let long = format!("[management]\nsocket = \"/{}\"\n", "x".repeat(200));
    err_at(&long, "management.socket", 2);
}

#[test]
fn conflicting_keys_blame_the_one_the_file_sets() {
    // Both written: the first named key is blamed.
    let text = "[l2tp]\nretransmit_initial = \"10s\"\nretransmit_cap = \"9s\"\n";
    let m = err_at(text, "l2tp.retransmit_cap", 3);
    assert!(m.contains("below retransmit_initial"), "{m}");
    // Only the initial timeout written: it is the one blamed.
    let m = err_at(
        "[l2tp]\nretransmit_initial = \"9s\"\n",
        "l2tp.retransmit_initial",
        2,
    );
    assert!(m.contains("below retransmit_initial"), "{m}");
    err_at("[l2tp]\nack_delay = \"2s\"\n", "l2tp.ack_delay", 2);
    err_at(
        "[l2tp]\n\nretransmit_initial = \"50ms\"\n",
        "l2tp.retransmit_initial",
        3,
    );
    let m = err_at("[ppp]\nipcp = false\nipv6cp = false\n", "ppp.ipcp", 2);
    assert!(m.contains("both"), "{m}");
    err_at("[ppp]\nipv6cp = false\nipcp = false\n", "ppp.ipcp", 3);
}

#[test]
fn duplicate_auth_methods_are_refused() {
    let m = err_at(
        "[ppp]\nauth = [\"pap\", \"chap-md5\", \"PAP\"]\n",
        "ppp.auth[2]",
        2,
    );
    assert!(m.contains("twice"), "{m}");
    let c = Config::from_toml_str("[ppp]\nauth = [\"mschapv2\", \"chap-md5\"]\n").unwrap();
    assert_eq!(
        c.link_config(false).lcp.auth,
        [AuthMethod::MsChapV2, AuthMethod::ChapMd5]
    );
    let open = Config::from_toml_str("[ppp]\nauth = []\n").unwrap();
    assert!(open.link_config(false).lcp.auth.is_empty());
}

#[test]
fn overlapping_pools_are_refused() {
    let text = "\
[[pool]]
name = \"a\"
ranges = [\"10.0.0.0/24\"]

[[pool]]
name = \"b\"
ranges = [\"10.1.0.0/24\",
          \"10.0.0.200-10.0.1.5\"]
";
    let m = err_at(text, "pool[1].ranges[1]", 8);
    assert!(
        m.contains("overlaps 10.0.0.1-10.0.0.254 of pool \"a\""),
        "{m}"
    );
    // Within one pool too.
    let text = "[[pool]]\nname = \"a\"\nranges = [\"10.0.0.0/24\", \"10.0.0.7\"]\n";
    err_at(text, "pool[0].ranges[1]", 3);
}

#[test]
fn pools_may_not_hold_the_gateway() {
    // The gateway is the default one: the pool's range is blamed.
    let text = "[[pool]]\nname = \"a\"\nranges = [\"100.64.0.0/24\"]\n";
    let m = err_at(text, "pool[0].ranges[0]", 3);
    assert!(
        m.contains("gateway 100.64.0.1 lies inside pool \"a\""),
        "{m}"
    );
    // The gateway is written: it is blamed.
    let text = "[ppp]\ngateway = \"100.64.0.9\"\n";
    err_at(text, "ppp.gateway", 2);
}

#[test]
fn pool_names_are_unique_and_present() {
    let text = "[[pool]]\nname = \"a\"\nranges = [\"10.0.0.0/24\"]\n[[pool]]\nname = \"a\"\nranges = [\"10.1.0.0/24\"]\n";
    let m = err_at(text, "pool[1].name", 5);
    assert!(m.contains("defined twice"), "{m}");
    err_at(
        "[[pool]]\nname = \" \"\nranges = [\"10.0.0.0/24\"]\n",
        "pool[0].name",
        2,
    );
    err_at("[[pool]]\nname = \"a\"\nranges = []\n", "pool[0].ranges", 3);
    // No pools at all is allowed: only static addresses then.
    let c = Config::from_toml_str("pool = []\n").unwrap();
    assert!(c.pools().unwrap().is_empty());
}

#[test]
fn peer_secrets_are_checked() {
    let text = "[[l2tp.peer]]\naddress = \"192.0.2.0/24\"\nsecret = \"a\"\n\
                [[l2tp.peer]]\naddress = \"192.0.2.0/24\"\nsecret = \"b\"\n";
    err_at(text, "l2tp.peer[1].address", 5);
    err_at(
        "[[l2tp.peer]]\naddress = \"192.0.2.0/24\"\nsecret = \"\"\n",
        "l2tp.peer[0].secret",
        3,
    );
}

#[test]
fn semantic_errors_without_a_line_name_the_key() {
    let mut c = Config::default();
    c.ppp.max_configure = 0;
    let e = c.validate().unwrap_err();
    assert_eq!((e.key.as_str(), e.line), ("ppp.max_configure", None));
    assert_eq!(e.to_string(), "ppp.max_configure: must be at least 1");
}

#[test]
fn error_display_is_line_col_key_message() {
    let e = err("[ppp]\nmru = 100\n");
    assert_eq!(e.to_string(), "2:7: ppp.mru: 100 is outside 128..=9000");
}

// ---- values --------------------------------------------------------------

#[test]
fn values_read_in_their_documented_forms() {
    let c = Config::from_toml_str(
        "[l2tp]
listen = [\"192.0.2.1\", \"[2001:db8::1]:1702\"]
secret = \"s3cret\"
hidden_avps = \"all\"
hello_interval = 45
ack_delay = \"250ms\"
[ppp]
mru = 1400
mss_clamp = \"off\"
dns = [\"192.0.2.53\"]
echo_interval = \"1m\"
[runtime]
shards = 2
io = \"fallback\"
new_sessions_per_second = \"off\"
[metrics]
listen = \"off\"
[log]
level = \"debug\"
format = \"json\"
",
    )
    .unwrap();
    let listen: Vec<String> = c.l2tp.listen.iter().map(ToString::to_string).collect();
    assert_eq!(listen, ["192.0.2.1:1701", "[2001:db8::1]:1702"]);
    assert_eq!(c.l2tp.hello_interval, Duration::from_secs(45));
    assert_eq!(c.l2tp.ack_delay, Duration::from_millis(250));
    assert_eq!(c.ppp.mru, Mru::Fixed(1400));
    assert_eq!(c.ppp.mss_clamp, MssClamp::Off);
    assert_eq!(c.ppp.echo_interval, Some(Duration::from_secs(60)));
    assert_eq!(c.runtime.shards, Shards::Count(2));
    assert_eq!(c.runtime.io, IoMode::Fallback);
    assert_eq!(c.runtime.new_sessions_per_second, None);
    assert_eq!(c.metrics.listen, None);
    assert_eq!(c.log.level, LogLevel::Debug);
    assert_eq!(c.log.format, LogFormat::Json);
    let io: IoMode = toml::from_str::<RuntimeSection>("io = \"io-uring\"")
        .unwrap()
        .io;
    assert_eq!(io, IoMode::IoUring);
    // Secrets never show in a logged config.
    assert!(!format!("{c:?}").contains("s3cret"));
}

// ---- conversions ---------------------------------------------------------

#[test]
fn l2tp_config_carries_every_l2tp_key() {
    let c = Config::from_toml_str(
        "[l2tp]
host_name = \"lns-7.isp.example\"
secret = \"s3cret\"
hello_interval = \"20s\"
retransmit_initial = \"2s\"
retransmit_cap = \"16s\"
max_retries = 3
ack_delay = \"200ms\"
receive_window = 16
slow_start = false
fast_retransmit_after = 0
setup_timeout = \"10s\"
max_tunnels = 100
max_sessions_per_tunnel = 200
max_half_open_tunnels = 10
max_half_open_sessions = 20
",
    )
    .unwrap();
    let l = c.l2tp_config(ShardSpec { index: 1, count: 4 });
    assert_eq!(l.role, Role::Lns);
    assert_eq!(l.host_name, b"lns-7.isp.example");
    assert_eq!(l.secret.as_deref(), Some(&b"s3cret"[..]));
    assert_eq!(l.hidden_avps, L2tpConfig::sensitive_avps());
    assert!(l.hidden_avps.contains(AvpType::ProxyAuthenResponse.into()));
    assert_eq!(l.hello_interval, Duration::from_secs(20));
    assert_eq!(
        l.reliable,
        ReliableConfig {
            receive_window: 16,
            retransmit_initial: Duration::from_secs(2),
            retransmit_cap: Duration::from_secs(16),
            max_retries: 3,
            ack_delay: Duration::from_millis(200),
            slow_start: false,
            fast_retransmit_after: 0,
        }
    );
    // 2 + 4 + 8 + 16 s: the full cycle of the configured timers.
    assert_eq!(l.stop_hold, Duration::from_secs(30));
    assert_eq!(l.id_hold, l.stop_hold);
    assert_eq!(l.setup_timeout, Duration::from_secs(10));
    assert_eq!(
        l.limits,
        Limits {
            max_tunnels: 100,
            max_sessions_per_tunnel: 200,
            max_half_open_tunnels: 10,
            max_half_open_sessions: 20,
            // The embedded runtime defaults: 500 tunnels/s, 20,000 calls/s.
            new_tunnels_per_second: Some(500),
            tunnel_rate_result: 2,
            new_sessions_per_second: Some(20_000),
            session_rate_result: 4,
        }
    );
    assert_eq!(l.shard, ShardSpec { index: 1, count: 4 });
    let off = Config::from_toml_str("l2tp.hidden_avps = \"off\"").unwrap();
    assert_eq!(
        off.l2tp_config(ShardSpec::SINGLE).hidden_avps,
        AvpTypeSet::EMPTY
    );
}

#[test]
fn link_config_carries_every_ppp_key() {
    let c = Config::from_toml_str(
        "[l2tp]
host_name = \"edge\"
[ppp]
auth = [\"mschapv2\"]
min_peer_mru = 1000
magic_number = false
echo_interval = \"10s\"
echo_failures = 3
restart_timer = \"2s\"
max_configure = 4
max_terminate = 3
max_failure = 2
auth_restart = \"5s\"
auth_max_transmissions = 6
gateway = \"10.255.255.1\"
dns = [\"192.0.2.53\", \"192.0.2.54\"]
ipcp = true
ipv6cp = false
accept_proxy = false
[[pool]]
name = \"p\"
ranges = [\"10.0.0.0/16\"]
",
    )
    .unwrap();
    let l = c.link_config(false);
    let dns = [
        Some(Ipv4Addr::new(192, 0, 2, 53)),
        Some(Ipv4Addr::new(192, 0, 2, 54)),
    ];
    assert_eq!(
        l.role,
        crate::proto::ppp::link::LinkRole::Server {
            local: Ipv4Addr::new(10, 255, 255, 1),
            dns,
        }
    );
    assert_eq!(l.lcp.mru, Some(1456));
    assert_eq!(c.link_config(true).lcp.mru, Some(1436));
    assert_eq!(l.lcp.min_peer_mru, 1000);
    assert_eq!(l.lcp.auth, [AuthMethod::MsChapV2]);
    assert!(!l.lcp.magic);
    assert_eq!(l.echo_interval, Duration::from_secs(10));
    assert_eq!(l.echo_failures, 3);
    assert_eq!(
        *l.fsm,
        FsmConfig {
            restart: Duration::from_secs(2),
            max_terminate: 3,
            max_configure: 4,
            max_failure: 2,
            passive: false,
        }
    );
    assert_eq!(
        l.auth,
        AuthSettings {
            restart: Duration::from_secs(5),
            max_transmissions: 6,
            name: b"edge".to_vec(),
        }
    );
    assert!(l.ipcp && !l.ipv6cp && !l.accept_proxy);
}

#[test]
fn mru_and_mss_follow_the_path() {
    let c = Config::default();
    assert_eq!((c.mru(false), c.mru(true)), (1456, 1436));
    assert_eq!(
        c.mss_clamp(false),
        Some(MssLimits {
            ipv4: 1416,
            ipv6: 1396
        })
    );
    assert_eq!(
        c.mss_clamp(true),
        Some(MssLimits {
            ipv4: 1396,
            ipv6: 1376
        })
    );
    let jumbo = Config::from_toml_str("ppp.path_mtu = 9000").unwrap();
    assert_eq!(jumbo.mru(false), 8956);
    let fixed = Config::from_toml_str("ppp.mru = 1400\nppp.mss_clamp = 1300").unwrap();
    assert_eq!((fixed.mru(false), fixed.mru(true)), (1400, 1400));
    assert_eq!(
        fixed.mss_clamp(true),
        Some(MssLimits {
            ipv4: 1300,
            ipv6: 1280
        })
    );
    let off = Config::from_toml_str("ppp.mss_clamp = \"off\"").unwrap();
    assert_eq!(off.mss_clamp(false), None);
}

#[test]
fn pools_convert_in_order() {
    let c = Config::from_toml_str(
        "[ppp]
gateway = \"10.255.0.1\"
[[pool]]
name = \"residential\"
ranges = [\"10.0.0.0/24\", \"10.0.1.10-10.0.1.19\"]
quarantine = \"5m\"
[[pool]]
name = \"business\"
ranges = [\"10.9.9.9\"]
",
    )
    .unwrap();
    let pools = c.pools().unwrap();
    let names: Vec<(&str, u32)> = pools.iter().map(|p| (p.name(), p.size())).collect();
    assert_eq!(names, [("residential", 264), ("business", 1)]);
    assert!(pools[0].contains(Ipv4Addr::new(10, 0, 1, 19)));
    assert!(!pools[0].contains(Ipv4Addr::new(10, 0, 0, 0)));
    assert_eq!(c.pool[0].quarantine, Duration::from_secs(300));
    let demo = Config::default().pools().unwrap();
    assert_eq!(demo[0].size(), 65_533);
    assert!(!demo[0].contains(DEMO_GATEWAY));
}

#[test]
fn peer_secrets_take_the_longest_prefix() {
    let c = Config::from_toml_str(
        "[l2tp]
secret = \"everyone\"
[[l2tp.peer]]
address = \"192.0.2.0/24\"
secret = \"net\"
[[l2tp.peer]]
address = \"192.0.2.7\"
secret = \"host\"
[[l2tp.peer]]
address = \"2001:db8::/32\"
secret = \"v6\"
",
    )
    .unwrap();
    let at = |ip: &str| {
        c.secret_for(ip.parse::<IpAddr>().unwrap())
            .unwrap()
            .to_vec()
    };
    assert_eq!(at("192.0.2.7"), b"host");
    assert_eq!(at("192.0.2.8"), b"net");
    assert_eq!(at("::ffff:192.0.2.7"), b"host");
    assert_eq!(at("2001:db8::5"), b"v6");
    assert_eq!(at("203.0.113.1"), b"everyone");
    let none = Config::default();
    assert_eq!(none.secret_for("192.0.2.7".parse().unwrap()), None);
}

/// The endpoint built from a config picks, for every peer, the secret
/// `Config::secret_for` names: `[[l2tp.peer]]` reaches the tunnels.
#[test]
fn the_endpoint_takes_the_peer_secrets_of_the_config() {
    let text = "[l2tp]
secret = \"everyone\"
[[l2tp.peer]]
address = \"192.0.2.0/24\"
secret = \"net\"
[[l2tp.peer]]
address = \"::ffff:192.0.2.7\"
secret = \"host\"
[[l2tp.peer]]
address = \"2001:db8::/32\"
secret = \"v6\"
";
    let c = Config::from_toml_str(text).unwrap();
    let l2tp = c.l2tp_config(ShardSpec::SINGLE);
    assert_eq!(l2tp.peer_secrets.len(), 3);
    assert!(!format!("{l2tp:?}").contains("\"net\""));
    let endpoint = crate::proto::l2tp::Endpoint::new(l2tp, 1);
    for ip in [
        "192.0.2.7",
        "::ffff:192.0.2.7",
        "192.0.2.8",
        "::ffff:192.0.2.8",
        "2001:db8::5",
        "203.0.113.1",
        "2001:db9::1",
    ] {
        let ip: IpAddr = ip.parse().unwrap();
        assert_eq!(endpoint.secret_for(ip), c.secret_for(ip), "{ip}");
    }
    assert_eq!(
        endpoint.secret_for("192.0.2.7".parse().unwrap()),
        Some(&b"host"[..])
    );
    // Without any secret nobody is authenticated.
    let open = Config::default().l2tp_config(ShardSpec::SINGLE);
    assert!(open.peer_secrets.is_empty() && open.secret.is_none());
}

#[test]
fn a_mapped_peer_prefix_is_the_ipv4_prefix() {
    let text = "[[l2tp.peer]]\naddress = \"192.0.2.0/24\"\nsecret = \"a\"\n\
                [[l2tp.peer]]\naddress = \"::ffff:192.0.2.0/120\"\nsecret = \"b\"\n";
    err_at(text, "l2tp.peer[1].address", 5);
}

#[test]
fn a_node_builds_from_a_config() {
    let c = Config::from_toml_str(EXAMPLE).unwrap();
    let node = Node::new(
        c.l2tp_config(ShardSpec {
            index: 0,
            count: c.shard_count(2),
        }),
        c.link_config(false),
        c.local_aaa().unwrap(),
        c.pools().unwrap(),
        1,
    );
    assert_eq!(node.pools().len(), 2);
    assert_eq!(node.aaa().users().len(), 5);
    let _lac = Node::new(
        L2tpConfig::new(Role::Lac),
        LinkConfig::client(b"alice@demo.example", b"alice-demo"),
        NoAaa::default(),
        vec![],
        2,
    );
}

// ---- files ---------------------------------------------------------------

#[test]
fn load_reads_the_file_and_resolves_the_users_file() {
    let dir = scratch("load");
    std::fs::write(
        dir.join("users"),
        "sam@isp.example password=x pool=business\n*@isp.example password=y\n",
    )
    .unwrap();
    let config = dir.join("lns.toml");
    std::fs::write(
        &config,
        "[aaa]\nusers_file = \"users\"\n[[pool]]\nname = \"business\"\nranges = [\"10.0.0.0/24\"]\n",
    )
    .unwrap();
    let c = Config::load(&config).unwrap();
    assert_eq!(c.aaa.users_file, Some(dir.join("users")));
    let users = c.load_users().unwrap();
    assert_eq!(users.len(), 2);
    assert!(c.summary(&users, 2).contains("2 users from"));

    // A users file naming a pool that does not exist.
    std::fs::write(
        dir.join("users"),
        "# header\nsam@isp.example password=x pool=busines\n",
    )
    .unwrap();
    let e = c.load_users().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Users);
    assert_eq!(e.file, Some(dir.join("users")));
    assert_eq!((e.key.as_str(), e.line), ("aaa.users_file", Some(2)));
    assert!(
        e.message
            .contains("pool \"busines\" is not configured (pools: business)"),
        "{e}"
    );

    // A users file that does not parse.
    std::fs::write(dir.join("users"), "sam@isp.example passwd=x\n").unwrap();
    let e = c.load_users().unwrap_err();
    assert_eq!((e.kind, e.line), (ErrorKind::Users, Some(1)));

    // No users file at all.
    std::fs::remove_file(dir.join("users")).unwrap();
    let e = c.load_users().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Io);

    // Errors in the config file name it.
    std::fs::write(&config, "[ppp]\nmru = 1\n").unwrap();
    let e = Config::load(&config).unwrap_err();
    assert_eq!(e.file.as_deref(), Some(config.as_path()));
    assert!(e
        .to_string()
        .starts_with(&format!("{}:2:7: ppp.mru: ", config.display())));
    let e = Config::load(&dir.join("absent.toml")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Io);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_summary_names_what_runs() {
    let c = Config::default();
    let users = c.load_users().unwrap();
    let s = c.summary(&users, 2);
    for part in [
        "0.0.0.0:1701 and [::]:1701",
        "2 shards (one per core)",
        "no tunnel authentication",
        "chap-md5, then pap",
        "MRU 1456",
        "gateway 100.64.0.1",
        "pools demo (65533 addresses, /64s of fd00:64:1::/48)",
        "5 users from the embedded demo file",
        "/run/lns/lns.sock",
        "Prometheus metrics on http://127.0.0.1:9701/metrics",
    ] {
        assert!(s.contains(part), "{part:?} missing from {s}");
    }
}

// ---- IPv6 -----------------------------------------------------------------

#[test]
fn ipv6_prefix_pools_and_ra_settings_convert() {
    let c = Config::default();
    let pools = c.prefix_pools().unwrap();
    assert_eq!(pools.len(), 1);
    assert_eq!(pools[0].name(), "demo");
    assert_eq!(pools[0].network().to_string(), "fd00:64:1::");
    assert_eq!((pools[0].prefix_len(), pools[0].size()), (48, 65_536));
    assert_eq!(c.ipv6.gateway, DEMO_IPV6_GATEWAY);
    let ra = c.ra_config();
    assert_eq!(ra.interval, Duration::from_secs(300));
    assert_eq!(ra.router_lifetime, 1800);
    assert_eq!((ra.valid_lifetime, ra.preferred_lifetime), (86_400, 14_400));
    let text = "[ppp]\nipv6cp = true\n\n[[pool]]\nname = \"a\"\nranges = [\"10.0.0.0/24\"]\n\
                ipv6_prefix = \"2001:db8:100::/56\"\n\n[[pool]]\nname = \"b\"\n\
                ranges = [\"10.0.1.0/24\"]\n\n[ipv6]\ngateway = \"2001:db8::1\"\n\
                ra_interval = \"60s\"\nrouter_lifetime = \"3m\"\ndns = [\"2001:db8::53\"]\n";
    let c = Config::from_toml_str(text).unwrap();
    let pools = c.prefix_pools().unwrap();
    assert_eq!(pools.len(), 1, "pool b has no IPv6");
    assert_eq!(pools[0].size(), 256);
    let ra = c.ra_config();
    assert_eq!((ra.router_lifetime, ra.dns.len()), (180, 1));
    // IPv6CP off: no prefix pools at all.
    let c = Config::from_toml_str("[ppp]\nipv6cp = false\n").unwrap();
    assert!(c.prefix_pools().unwrap().is_empty());
}

#[test]
fn ipv6_mistakes_are_refused() {
    let pool = |prefix: &str| {
        format!("[[pool]]\nname = \"a\"\nranges = [\"10.0.0.0/24\"]\nipv6_prefix = \"{prefix}\"\n")
    };
    assert!(err_at(&pool("2001:db8::/32"), "pool[0].ipv6_prefix", 4).contains("/40 to /64"));
    assert!(err_at(&pool("2001:db8::/96"), "pool[0].ipv6_prefix", 4).contains("/40 to /64"));
    assert!(err_at(&pool("10.9.0.0/16"), "pool[0].ipv6_prefix", 4).contains("not an IPv6"));
    err_at(&pool("2001:db8::1/48"), "pool[0].ipv6_prefix", 4);
    // The gateway inside a prefix: blamed on the key the file sets.
    let m = err_at(&pool("fd00:64::/48"), "pool[0].ipv6_prefix", 4);
    assert!(m.contains("IPv6 gateway fd00:64::1 lies inside"), "{m}");
    let text = format!(
        "{}\n[ipv6]\ngateway = \"2001:db8:0:5::1\"\n",
        pool("2001:db8::/48")
    );
    err_at(&text, "ipv6.gateway", 7);
    // Two pools sharing /64s.
    let text = format!(
        "{}\n[[pool]]\nname = \"b\"\nranges = [\"10.0.1.0/24\"]\nipv6_prefix = \"2001:db8:1:100::/56\"\n",
        pool("2001:db8:1::/48")
    );
    assert!(err_at(&text, "pool[1].ipv6_prefix", 9).contains("overlaps"));
    // RA timing.
    // IPv6 links carry at least 1280 octets.
    let m = err_at("[ppp]\nmru = 1200\n", "ppp.mru", 2);
    assert!(m.contains("at least 1280"), "{m}");
    err_at("[ppp]\npath_mtu = 1300\n", "ppp.path_mtu", 2);
    Config::from_toml_str("[ppp]\nmru = 1200\nipv6cp = false\n").unwrap();
    Config::from_toml_str("[ppp]\nmru = 1280\n").unwrap();
    err_at("[ipv6]\nra_interval = \"2s\"\n", "ipv6.ra_interval", 2);
    err_at(
        "[ipv6]\nrouter_lifetime = \"1m\"\n",
        "ipv6.router_lifetime",
        2,
    );
    err_at(
        "[ipv6]\nrouter_lifetime = \"3h\"\n",
        "ipv6.router_lifetime",
        2,
    );
    err_at(
        "[ipv6]\npreferred_lifetime = \"2d\"\n",
        "ipv6.preferred_lifetime",
        2,
    );
    err_at("[ipv6]\nvalid_lifetime = 0\n", "ipv6.valid_lifetime", 2);
    err_at(
        "[ipv6]\ndns = [\"2001:db8::1\", \"2001:db8::2\", \"2001:db8::3\", \"2001:db8::4\"]\n",
        "ipv6.dns",
        2,
    );
}
