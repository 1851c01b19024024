//! The dashboards and alert rules work against a real Prometheus: in a
//! private network namespace, a real `prometheus` server (Debian's) scrapes
//! the daemon and loadgen every second with `deploy/prometheus.yml` (its
//! interval shortened and targets pointed at this run) and
//! `deploy/lns.rules.yml`, while loadgen brings up 100 sessions (five with
//! a password the LNS refuses) and sends traffic through them. Then every
//! panel query of every dashboard in `grafana/dashboards/` must succeed
//! and return data, every template variable must list values, Prometheus
//! must have loaded every alert rule and evaluated it without error, and
//! each rule's expression must be valid when queried.
//!
//! Needs root, TUN and `prometheus` (CI installs it): says SKIPPED loudly
//! otherwise, and fails under CI if prometheus is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lns::io::netns::in_private_netns;
use loadgen::Options;
use serde_json::Value;

mod support;
use support::{gateway_reflector, skipped, Lns};

const TUNNELS: u32 = 2;
const PER_TUNNEL: u32 = 50;
/// Subscribers (of the 100) whose password the LNS does not take, so the
/// failure panels show a real reason and not only zeros.
const REFUSED: u32 = 5;
const PROMETHEUS: &str = "127.0.0.1:9090";
const LOADGEN_METRICS: &str = "127.0.0.1:9702";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// A child process killed and reaped when dropped, even on a failed assert.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Percent-encode a query-string value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// GET `path` from Prometheus: status and body. HTTP/1.0, so the answer
/// is neither chunked nor kept alive.
fn get(path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(PROMETHEUS).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {PROMETHEUS}\r\n\r\n").ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let answer = String::from_utf8(answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// An API call: its JSON answer (any HTTP status: errors are JSON too).
fn api(path: &str) -> Value {
    let (_, body) = get(path).unwrap_or_else(|| panic!("no answer from Prometheus to {path}"));
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// An instant query: the API's answer.
fn query(expr: &str) -> Value {
    api(&format!("/api/v1/query?query={}", encode(expr)))
}

/// The single value of an instant query that must return one sample.
fn scalar(expr: &str) -> f64 {
    let answer = query(expr);
    let result = answer["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "{expr}: {answer}");
    result[0]["value"][1].as_str().unwrap().parse().unwrap()
}

/// Grafana's variables as a dashboard would fill them for this run: the
/// daemon's instance, shard 0, and windows wide enough to span the run at
/// a 1 s scrape interval.
fn substitute(expr: &str, instance: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$__interval", "5s")
        .replace("$__range", "5m")
        .replace("${instance}", instance)
        .replace("$instance", instance)
        .replace("${shard}", "0")
        .replace("$shard", "0")
}

/// `deploy/prometheus.yml` for this run: scrape and evaluate every second,
/// the lns job pointed at the daemon's endpoint (the loadgen job already
/// names 127.0.0.1:9702). Fails if the file no longer has the lines this
/// rewrites, rather than testing something else.
fn config_for_this_run(daemon: SocketAddr) -> String {
    let shipped = std::fs::read_to_string(repo("deploy/prometheus.yml")).unwrap();
    let mut config = shipped.clone();
    for (from, to) in [
        ("scrape_interval: 15s", "scrape_interval: 1s".to_string()),
        (
            "evaluation_interval: 15s",
            "evaluation_interval: 1s".to_string(),
        ),
        ("- 127.0.0.1:9701", format!("- {daemon}")),
    ] {
        assert_eq!(config.matches(from).count(), 1, "{from} in {shipped}");
        config = config.replace(from, &to);
    }
    assert!(
        config.contains(&format!("- {LOADGEN_METRICS}")),
        "{shipped}"
    );
    assert!(config.contains("- lns.rules.yml"), "{shipped}");
    config
}

/// Every panel query of a dashboard: (panel title, expression).
fn panel_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut panels: Vec<&Value> = dashboard["panels"].as_array().unwrap().iter().collect();
    while let Some(panel) = panels.pop() {
        // Collapsed rows keep their panels inside.
        if let Some(inner) = panel["panels"].as_array() {
            panels.extend(inner);
        }
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            out.push((
                panel["title"].as_str().unwrap().to_string(),
                expr.to_string(),
            ));
        }
    }
    out
}

fn prometheus_missing(name: &str) -> bool {
    let found = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join("prometheus").is_file())
    });
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "prometheus missing under CI: .ci/run installs it"
        );
        eprintln!("\n*** SKIPPED {name}: no prometheus (apt-get install prometheus) ***\n");
    }
    !found
}

#[test]
fn every_dashboard_panel_and_alert_rule_works_on_a_real_prometheus() {
    let name = "every_dashboard_panel_and_alert_rule_works_on_a_real_prometheus";
    if prometheus_missing(name) {
        return;
    }
    let ran = in_private_netns(move || {
        let started = Instant::now();
        let users: String = (0..REFUSED)
            .map(|i| format!("user{}@loadgen.example password=other\n", i * 20))
            .collect();
        // IPv6 sessions too, so the prefix pool families exist.
        let (running, lns) = Lns {
            users,
            metrics: true,
            ipv6_sessions: true,
            ..Lns::default()
        }
        .start();
        let endpoint = running.metrics.expect("the endpoint is served");
        let instance = endpoint.to_string();

        let dir = std::env::temp_dir().join(format!("lns-prometheus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("prometheus.yml"), config_for_this_run(endpoint)).unwrap();
        std::fs::copy(repo("deploy/lns.rules.yml"), dir.join("lns.rules.yml")).unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        // Spawned from this thread: in the test's namespace, on its loopback.
        let _prometheus = Killed(
            Command::new("prometheus")
                .arg(format!(
                    "--config.file={}",
                    dir.join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg(format!("--web.listen-address={PROMETHEUS}"))
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        let said = || std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(20);
        while get("/-/ready").map(|(status, _)| status) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "Prometheus not ready:\n{}",
                said()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // Ready is not scraping: targets are applied on a timer (up to 5 s).
        // Start the load once both jobs have been scraped (loadgen's as
        // down: its endpoint comes with the run).
        while ["lns", "loadgen"].iter().any(|job| {
            let answer = query(&format!("up{{job=\"{job}\"}}"));
            answer["data"]["result"]
                .as_array()
                .is_none_or(Vec::is_empty)
        }) {
            assert!(Instant::now() < deadline, "no scrapes:\n{}", said());
            std::thread::sleep(Duration::from_millis(100));
        }

        // Sessions and traffic, with loadgen's own endpoint scraped too.
        let (reflector, reflector_addr) = gateway_reflector(1);
        let mut options = Options::new(lns);
        options.tunnels = TUNNELS;
        options.sessions_per_tunnel = PER_TUNNEL;
        options.workers = Some(1);
        options.hold = 5.0;
        options.timeout = 30.0;
        options.data_pps = 5.0;
        options.reflector = Some(reflector_addr);
        options.metrics = Some(LOADGEN_METRICS.parse().unwrap());
        options.quiet = true;
        let report = loadgen::run(&options).unwrap();
        reflector.stop().unwrap();
        let planned = TUNNELS * PER_TUNNEL;
        assert_eq!(
            report.sessions.established,
            u64::from(planned - REFUSED),
            "{report}"
        );
        assert!(
            report.data.as_ref().is_some_and(|d| d.received > 0),
            "{report}"
        );

        // Let a few more scrapes land after the teardown.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let answer = query(&format!(
                "sum(lns_sessions_down_total{{instance=\"{instance}\"}})"
            ));
            let down = answer["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok());
            if down == Some(f64::from(planned - REFUSED)) {
                break;
            }
            assert!(Instant::now() < deadline, "scrapes missing: {answer}");
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_secs(2));

        // What Prometheus stored agrees with what happened.
        let i = format!("instance=\"{instance}\"");
        assert_eq!(scalar(&format!("up{{job=\"lns\", {i}}}")), 1.0);
        assert_eq!(
            scalar(&format!(
                "sum(lns_session_setups_total{{{i}, result=\"success\"}})"
            )),
            f64::from(planned - REFUSED)
        );
        assert_eq!(
            scalar(&format!(
                "sum(lns_session_setups_total{{{i}, reason=\"auth_rejected\"}})"
            )),
            f64::from(REFUSED)
        );
        // loadgen was watched live: its job saw the sessions come up.
        assert_eq!(
            scalar(
                "max_over_time(loadgen_sessions_total{job=\"loadgen\", outcome=\"established\"}[5m])"
            ),
            f64::from(planned - REFUSED)
        );

        // Every panel of every dashboard shows data.
        let mut boards = 0;
        let mut checked = 0;
        let mut failures = Vec::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(repo("grafana/dashboards"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        for file in &files {
            let board: Value =
                serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
            boards += 1;
            // The template variables list this run's instance and shards.
            let instances = api(&format!(
                "/api/v1/label/instance/values?{}",
                encode_match("lns_build_info")
            ));
            assert!(
                instances["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|v| v == instance.as_str()),
                "{instances}"
            );
            for variable in board["templating"]["list"].as_array().unwrap() {
                if variable["type"] != "query" {
                    continue;
                }
                let definition = variable["definition"].as_str().unwrap();
                let inner = definition
                    .strip_prefix("label_values(")
                    .and_then(|d| d.strip_suffix(')'))
                    .unwrap_or_else(|| panic!("not label_values: {definition}"));
                let (selector, label) = inner.rsplit_once(", ").unwrap();
                let values = api(&format!(
                    "/api/v1/label/{label}/values?{}",
                    encode_match(&substitute(selector, &instance))
                ));
                let values = values["data"].as_array().unwrap();
                assert!(!values.is_empty(), "{}: {definition}", file.display());
                checked += 1;
            }
            for (title, expr) in panel_queries(&board) {
                let expr = substitute(&expr, &instance);
                let answer = query(&expr);
                checked += 1;
                let empty = answer["data"]["result"]
                    .as_array()
                    .is_none_or(|r| r.is_empty());
                if answer["status"] != "success" || empty {
                    failures.push(format!("{} / {title}: {expr}\n  {answer}", file.display()));
                }
            }
        }
        assert!(boards >= 4, "{files:?}");
        assert!(
            failures.is_empty(),
            "{} panel queries without data:\n{}",
            failures.len(),
            failures.join("\n")
        );

        // Every alert rule loaded, evaluated without error, and valid.
        let shipped = std::fs::read_to_string(repo("deploy/lns.rules.yml")).unwrap();
        let alerts = shipped
            .lines()
            .filter(|l| l.trim().starts_with("- alert: "))
            .count();
        let rules = api("/api/v1/rules");
        assert_eq!(rules["status"], "success", "{rules}");
        let mut loaded = 0;
        for group in rules["data"]["groups"].as_array().unwrap() {
            for rule in group["rules"].as_array().unwrap() {
                loaded += 1;
                assert_eq!(rule["type"], "alerting", "{rule}");
                assert_eq!(rule["health"], "ok", "{rule}");
                assert!(
                    rule["lastError"].as_str().is_none_or(str::is_empty),
                    "{rule}"
                );
                let answer = query(rule["query"].as_str().unwrap());
                assert_eq!(answer["status"], "success", "{rule}: {answer}");
                checked += 1;
            }
        }
        assert_eq!(loaded, alerts, "{rules}");
        eprintln!(
            "{boards} dashboards, {loaded} alert rules, {checked} queries checked in {:?}",
            started.elapsed()
        );

        running.stop();
        running.wait();
        std::fs::remove_dir_all(&dir).unwrap();
    });
    if !ran {
        skipped(name);
    }
}

/// `match[]=SELECTOR`, encoded.
fn encode_match(selector: &str) -> String {
    format!("{}={}", encode("match[]"), encode(selector))
}
