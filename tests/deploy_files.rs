//! The files in `deploy/` are checked by the tools that will read them:
//! promtool checks the scrape configuration and alert rules and runs the
//! rules' unit tests; systemd-analyze verifies the unit; and the daemon
//! runs, and says READY=1, as an unprivileged user holding exactly the
//! capabilities the unit grants (and fails to start without them).
//!
//! A tool that is missing is reported as SKIPPED, loudly — except under CI
//! (`CI` set), where `.ci/run` installs them and a missing one fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

mod support;
use support::tools::{daemon_config, which, Killed};

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(file)
}

/// `program`, or None after saying loudly that `test` skipped (a failure
/// under CI, where it must be installed).
fn tool(program: &str, package: &str, test: &str) -> Option<PathBuf> {
    let found = which(program);
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} missing under CI: .ci/run installs {package}"
        );
        eprintln!("\n*** SKIPPED {test}: no {program} (apt-get install {package}) ***\n");
    }
    found
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A scratch directory of this test's own, removed first if left over.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lns-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn promtool_accepts_config_and_rules_and_the_rule_tests_pass() {
    let name = "promtool_accepts_config_and_rules_and_the_rule_tests_pass";
    let Some(promtool) = tool("promtool", "prometheus", name) else {
        return;
    };
    // `check config` also checks the rule files the configuration names.
    for args in [
        vec!["check", "config", "prometheus.yml"],
        vec!["check", "rules", "lns.rules.yml"],
        vec!["test", "rules", "lns.rules.test.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(&args)
            .current_dir(deploy(""))
            .output()
            .unwrap();
        let said = text(&out);
        eprintln!("promtool {}:\n{said}", args.join(" "));
        assert!(out.status.success(), "promtool {args:?}: {said}");
        assert!(!said.contains("FAILED"), "{said}");
    }
    let rules = std::fs::read_to_string(deploy("lns.rules.yml")).unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert!(alerts.len() >= 10, "{alerts:?}");
    // Every alert has a unit test that expects it to fire (an exp_labels
    // entry follows its alertname) and one that expects silence (before its
    // `for` or its window fills, or once the cause is gone).
    let tests = std::fs::read_to_string(deploy("lns.rules.test.yml")).unwrap();
    for alert in alerts {
        let cases: Vec<&str> = tests
            .split("- eval_time:")
            .filter(|case| case.contains(&format!("alertname: {alert}\n")))
            .collect();
        assert!(
            cases.iter().any(|c| c.contains("exp_labels:")),
            "no test where {alert} fires"
        );
        assert!(
            cases.iter().any(|c| c.contains("exp_alerts: []")),
            "no test where {alert} stays quiet"
        );
    }
}

#[test]
fn systemd_unit_verifies() {
    let name = "systemd_unit_verifies";
    let Some(analyze) = tool("systemd-analyze", "systemd", name) else {
        return;
    };
    // `verify` insists that ExecStart's binary exists: check a copy whose
    // commands name the binary just built instead of /usr/local/bin/lns.
    // Everything else is the unit as shipped.
    let unit = std::fs::read_to_string(deploy("systemd/lns.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/lns run"));
    let dir = scratch(name);
    let copy = dir.join("lns.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/local/bin/lns", env!("CARGO_BIN_EXE_lns")),
    )
    .unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let said = text(&out);
    eprintln!("systemd-analyze verify:\n{said}");
    assert!(out.status.success(), "{said}");
    // Unknown keys and bad values are only warnings (exit 0): none may
    // concern our unit. (Other installed units may have their own.)
    let ours: Vec<&str> = said.lines().filter(|l| l.contains("lns.service")).collect();
    assert!(ours.is_empty(), "{ours:?}");
    for setting in [
        "Type=notify",
        "Restart=on-failure",
        "LimitMEMLOCK=infinity",
        "DeviceAllow=/dev/net/tun rw",
    ] {
        assert!(unit.lines().any(|l| l == setting), "no {setting}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The capabilities a unit line grants, in setpriv's spelling
/// (`CAP_NET_ADMIN` → `+net_admin`).
fn capabilities(unit: &str, key: &str) -> String {
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key} in the unit"));
    line.split_whitespace()
        .map(|cap| format!("+{}", cap.trim_start_matches("CAP_").to_lowercase()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Start the daemon as `nobody` holding only `caps` (setpriv syntax, or
/// empty for none), in this thread's namespace; its notifications go to
/// `notify`.
fn start_unprivileged(setpriv: &Path, dir: &Path, caps: &str) -> Killed {
    let set = format!("-all{}", if caps.is_empty() { "" } else { "," }) + caps;
    Killed::spawn_logged(
        Command::new(setpriv)
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(format!("--inh-caps={set}"))
            .arg(format!("--ambient-caps={set}"))
            .arg(format!("--bounding-set={set}"))
            .arg(env!("CARGO_BIN_EXE_lns"))
            .args(["run", "--config"])
            .arg(dir.join("lns.toml"))
            .env("NOTIFY_SOCKET", dir.join("notify")),
        &dir.join(format!("lns{caps}.log")),
    )
}

#[test]
fn the_units_capabilities_are_enough_and_needed() {
    let name = "the_units_capabilities_are_enough_and_needed";
    let Some(setpriv) = tool("setpriv", "util-linux", name) else {
        return;
    };
    let unit = std::fs::read_to_string(deploy("systemd/lns.service")).unwrap();
    let ambient = capabilities(&unit, "AmbientCapabilities");
    assert_eq!(ambient, capabilities(&unit, "CapabilityBoundingSet"));
    let ran = lns::io::netns::in_private_netns(move || {
        use std::os::unix::fs::PermissionsExt;
        lns::io::netns::link_up("lo").unwrap();
        let dir = scratch(name);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let run = dir.join("run");
        std::fs::create_dir(&run).unwrap();
        std::os::unix::fs::chown(&run, Some(65534), Some(65534)).unwrap();
        std::fs::write(
            dir.join("lns.toml"),
            daemon_config("lnscap", &run.join("lns.sock")),
        )
        .unwrap();
        let manager = UnixDatagram::bind(dir.join("notify")).unwrap();
        std::fs::set_permissions(dir.join("notify"), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        manager
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let log = |caps: &str| {
            std::fs::read_to_string(dir.join(format!("lns{caps}.log"))).unwrap_or_default()
        };

        // Without any capability the daemon cannot make its TUN device.
        let mut bare = start_unprivileged(&setpriv, &dir, "");
        let status = bare
            .wait_exit(Duration::from_secs(20))
            .unwrap_or_else(|| panic!("still running: {}", log("")));
        assert!(!status.success(), "{}", log(""));
        assert!(log("").contains("Operation not permitted"), "{}", log(""));

        // With the unit's set it starts, says so, and stops on SIGTERM.
        let mut daemon = start_unprivileged(&setpriv, &dir, &ambient);
        let mut buf = [0u8; 512];
        let n = manager
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no READY=1 ({e}):\n{}", log(&ambient)));
        let ready = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(ready.starts_with("READY=1\n"), "{ready}");
        // SAFETY: kill(2) of the setpriv process, which exec'd the daemon.
        assert_eq!(
            unsafe { libc::kill(daemon.0.id() as libc::pid_t, libc::SIGTERM) },
            0
        );
        let n = manager.recv(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"STOPPING=1\n"));
        let status = daemon
            .wait_exit(Duration::from_secs(20))
            .unwrap_or_else(|| panic!("{}", log(&ambient)));
        assert!(status.success(), "{}", log(&ambient));
        eprintln!("as nobody with {ambient}: {ready:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    });
    if !ran {
        eprintln!(
            "\n*** SKIPPED {name}: needs root with network namespaces and /dev/net/tun ***\n"
        );
    }
}

/// The metric names a file uses: `lns_…`, `loadgen_…` and `process_…`
/// words, histogram series folded into their family.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if !["lns_", "loadgen_", "process_"]
            .iter()
            .any(|p| word.starts_with(p))
        {
            continue;
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| word.strip_suffix(s))
            .unwrap_or(word);
        names.insert(family.to_string());
    }
    names
}

#[test]
fn dashboards_and_rules_name_only_documented_metrics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let documented = metric_names(&std::fs::read_to_string(root.join("docs/metrics.md")).unwrap());
    let mut files = vec![root.join("deploy/lns.rules.yml")];
    for entry in std::fs::read_dir(root.join("grafana/dashboards")).unwrap() {
        files.push(entry.unwrap().path());
    }
    assert!(files.len() >= 5, "{files:?}");
    for file in files {
        let used = metric_names(&std::fs::read_to_string(&file).unwrap());
        assert!(!used.is_empty(), "{}", file.display());
        let unknown: Vec<_> = used.difference(&documented).collect();
        assert!(unknown.is_empty(), "{}: {unknown:?}", file.display());
    }
}

/// `lns check-config` (the unit's ExecStartPre) on `file`.
fn check_config(file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lns"))
        .arg("check-config")
        .arg(file)
        .output()
        .unwrap()
}

#[test]
fn container_and_kubernetes_files_carry_a_valid_configuration() {
    // The Containerfile ships deploy/lns.toml as /etc/lns/lns.toml.
    let containerfile = std::fs::read_to_string(deploy("Containerfile")).unwrap();
    assert!(containerfile.contains("COPY deploy/lns.toml /etc/lns/lns.toml"));
    let out = check_config(&deploy("lns.toml"));
    assert!(out.status.success(), "{}", text(&out));

    // The manifest is a host-network DaemonSet adding only NET_ADMIN, and
    // the lns.toml in its ConfigMap is one the daemon accepts.
    let manifest = std::fs::read_to_string(deploy("kubernetes.yaml")).unwrap();
    for needed in [
        "kind: DaemonSet",
        "hostNetwork: true",
        "drop: [\"ALL\"]",
        "add: [\"NET_ADMIN\"]",
        "path: /dev/net/tun",
    ] {
        assert!(manifest.contains(needed), "no {needed}");
    }
    let config: String = manifest
        .lines()
        .skip_while(|l| l.trim() != "lns.toml: |")
        .skip(1)
        .take_while(|l| l.starts_with("    ") || l.is_empty())
        .map(|l| format!("{}\n", l.get(4..).unwrap_or("")))
        .collect();
    assert!(config.contains("[metrics]"), "{config}");
    let dir = scratch("kubernetes-config");
    std::fs::write(dir.join("lns.toml"), &config).unwrap();
    let out = check_config(&dir.join("lns.toml"));
    assert!(out.status.success(), "{config}\n{}", text(&out));
    assert!(
        text(&out).contains("http://0.0.0.0:9701/metrics"),
        "{}",
        text(&out)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dashboards_are_what_generate_py_writes() {
    let name = "dashboards_are_what_generate_py_writes";
    let Some(python) = tool("python3", "python3", name) else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = scratch(name);
    let out = Command::new(python)
        .arg(root.join("grafana/generate.py"))
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let mut written = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let committed = root
            .join("grafana/dashboards")
            .join(path.file_name().unwrap());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            std::fs::read_to_string(&committed).unwrap_or_default(),
            "{} is stale: run python3 grafana/generate.py",
            committed.display()
        );
        written += 1;
    }
    assert_eq!(
        written,
        std::fs::read_dir(root.join("grafana/dashboards"))
            .unwrap()
            .count()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
