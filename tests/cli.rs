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
