//! The `lns` command as a user runs it.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn lns(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lns"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn simulate_brings_every_session_up_and_down() {
    let (code, out, err) = lns(&[
        "simulate",
        "--tunnels",
        "3",
        "--sessions",
        "50",
        "--loss",
        "0.05",
        "--secret",
        "s3cret",
    ]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("tunnels: 3/3 up"), "{out}");
    assert!(out.contains("sessions: 150/150 up"), "{out}");
    assert!(
        out.contains("teardown: 0 tunnels and 0 sessions left"),
        "{out}"
    );
    assert!(out.contains("100% at"), "{out}");
}

#[test]
fn simulate_rejects_bad_options() {
    let (code, _, err) = lns(&["simulate", "--loss", "2"]);
    assert_eq!(code, 2);
    assert!(err.contains("--loss"), "{err}");
    let (code, _, err) = lns(&["simulate", "--tunnels"]);
    assert_eq!(code, 2);
    assert!(err.contains("needs a value"), "{err}");
    let (code, _, _) = lns(&["bogus"]);
    assert_eq!(code, 2);
    let (code, out, _) = lns(&["version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("lns "));
}

/// A scratch directory of this test process's own.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lns-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn check_config_accepts_the_example_and_summarises_it() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/lns.toml");
    let (code, out, err) = lns(&["check-config", example]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.starts_with(&format!("{example}: ok\n")), "{out}");
    // One paragraph: listen addresses, shards, pools and sizes, users.
    let summary = out.lines().skip(1).collect::<Vec<_>>().join(" ");
    for part in [
        "0.0.0.0:1701 and [::]:1701",
        "shards (one per core)",
        "demo (65533 addresses, /64s of fd00:64:1::/48), wholesale (65534 addresses, /64s of \
         2001:db8:100::/48)",
        "5 users from the embedded demo file",
    ] {
        assert!(summary.contains(part), "{part:?} missing from {out}");
    }
    assert!(err.is_empty(), "{err}");
}

#[test]
fn check_config_names_file_line_column_and_key() {
    let dir = scratch("check");
    let file = dir.join("lns.toml");
    let path = file.to_str().unwrap();

    std::fs::write(&file, "[ppp]\nmru = 1400\necho_intervl = \"10s\"\n").unwrap();
    let (code, out, err) = lns(&["check-config", path]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.starts_with(&format!(
            "{path}:3:1: ppp.echo_intervl: unknown key `echo_intervl`, did you mean `echo_interval`?"
        )),
        "{err}"
    );

    std::fs::write(&file, "[l2tp]\nhello_interval = 0\n").unwrap();
    let (code, _, err) = lns(&["check-config", path]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        format!("{path}:2:18: l2tp.hello_interval: must be longer than zero\n")
    );

    std::fs::write(
        &file,
        "[[pool]]\nname = \"a\"\nranges = [\"100.64.0.0/24\"]\n",
    )
    .unwrap();
    let (code, _, err) = lns(&["check-config", path]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with(&format!(
            "{path}:3:11: pool[0].ranges[0]: gateway 100.64.0.1 lies inside"
        )),
        "{err}"
    );

    std::fs::write(&file, "[runtime]\nshards = 0\n").unwrap();
    let (code, _, err) = lns(&["check-config", path]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        format!("{path}:2:10: runtime.shards: 0 is outside 1..=1024\n")
    );

    // A syntax error.
    std::fs::write(&file, "[log]\nlevel = info\n").unwrap();
    let (code, _, err) = lns(&["check-config", path]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with(&format!("{path}:2:9: log.level: ")),
        "{err}"
    );

    // A mistake in the users file is reported at its own line.
    let users = dir.join("users");
    std::fs::write(
        &users,
        "# subscribers\nsam@isp.example password=x pool=nowhere\n",
    )
    .unwrap();
    std::fs::write(&file, "[aaa]\nusers_file = \"users\"\n").unwrap();
    let (code, _, err) = lns(&["check-config", path]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        format!(
            "{}:2: aaa.users_file: pool \"nowhere\" is not configured (pools: demo)\n",
            users.display()
        )
    );
    std::fs::write(&users, "sam@isp.example password=x\n").unwrap();
    let (code, out, err) = lns(&["check-config", path]);
    assert_eq!(code, 0, "{err}");
    // The summary is wrapped: read it as one line.
    let summary = out.lines().collect::<Vec<_>>().join(" ");
    assert!(
        summary.contains(&format!("1 user from {}", users.display())),
        "{out}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_config_needs_a_readable_file() {
    let (code, _, err) = lns(&["check-config", "/nonexistent/lns.toml"]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("/nonexistent/lns.toml: cannot read: "),
        "{err}"
    );
    let (code, _, err) = lns(&["check-config"]);
    assert_eq!(code, 2);
    assert!(err.contains("expects exactly one FILE"), "{err}");
    let (code, _, _) = lns(&["check-config", "a.toml", "b.toml"]);
    assert_eq!(code, 2);
}

#[test]
fn run_refuses_a_bad_config_before_touching_the_system() {
    let path = scratch("run-bad").join("lns.toml");
    std::fs::write(&path, "[ppp]\necho_interval = \"0s\"\n").unwrap();
    let (code, _, err) = lns(&["run", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ppp.echo_interval"), "{err}");
    let (code, _, err) = lns(&["run", "--frobnicate"]);
    assert_eq!(code, 2);
    assert!(err.contains("usage"), "{err}");
}

#[test]
fn management_commands_check_their_words_and_say_when_no_daemon_listens() {
    let (code, _, err) = lns(&["show", "everything"]);
    assert_eq!(code, 2);
    assert!(err.contains("show tunnels"), "{err}");
    let socket = scratch("no-daemon").join("lns.sock");
    let (code, _, err) = lns(&["show", "stats", "--socket", socket.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot reach the daemon"), "{err}");
}
