//! `loadgen run --html` against our daemon in a private network namespace
//! (needs root and TUN, as CI has; says SKIPPED loudly otherwise), and the
//! page it writes rendered in headless Chromium: its script runs without
//! errors, the charts are in the DOM, and a screenshot shows them.
//!
//! Chromium comes from Debian (`chromium-headless-shell`, or `chromium`).
//! Without it the browser half says SKIPPED, except under CI (`CI=true`),
//! which installs it: there its absence fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lns::io::netns::in_private_netns;

mod support;
use support::{gateway_reflector, skipped, Lns};

const BIN: &str = env!("CARGO_BIN_EXE_loadgen");

/// The browser window, and so the screenshot's size.
const WINDOW: (u32, u32) = (1000, 1600);

/// The histogram bars' fill (`.bar` in the page's style).
const BAR: [u8; 3] = [0x4c, 0x8b, 0xc4];

#[test]
fn the_html_report_of_a_real_run_renders_in_headless_chromium() {
    let name = "the_html_report_of_a_real_run_renders_in_headless_chromium";
    let dir = std::env::temp_dir().join(format!("loadgen-html-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let html = dir.join("report.html");
    let json = dir.join("report.json");
    let (html_in, json_in) = (html.clone(), json.clone());
    let ran = in_private_netns(move || {
        let (running, lns) = Lns::default().start();
        let (reflector, reflector_addr) = gateway_reflector(1);
        // 200 sessions at 200/s (a second of setup: several samples), then
        // 1.5 s of data at 20 packets/s each.
        let out = Command::new(BIN)
            .args(["run", "--lns", &lns.to_string()])
            .args(["--tunnels", "4", "--sessions-per-tunnel", "50"])
            .args(["--rate", "200", "--workers", "2", "--timeout", "30"])
            .args(["--hold", "1.5", "--data-pps", "20"])
            .args(["--reflector", &reflector_addr.to_string()])
            .arg("--json")
            .arg(&json_in)
            .arg("--html")
            .arg(&html_in)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(
            stdout.contains("200 established of 200 attempted"),
            "{stdout}"
        );
        reflector.stop().unwrap();
        running.stop();
        running.wait();
    });
    if !ran {
        skipped(name);
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }

    // The JSON report carries what the page draws.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["schema"], "loadgen-report/4");
    let samples = report["timeline"]["samples"].as_array().unwrap();
    assert!(samples.len() >= 8, "a 2.5 s run sampled every 250 ms");
    let last = samples.last().unwrap();
    assert_eq!(last["established"], 200);
    // Every worker added its data counts before it ended.
    assert_eq!(last["data_sent"], report["data"]["sent"]);
    assert_eq!(last["data_received"], report["data"]["received"]);
    assert!(last["data_sent"].as_u64().unwrap() > 1000, "{last}");
    let counted: u64 = report["setup_latency_histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 200);

    let page = std::fs::read_to_string(&html).unwrap();
    for id in ["setup-rate", "sessions", "latency", "packets", "bits"] {
        assert!(page.contains(&format!("id=\"{id}\"")), "chart {id}");
    }

    let Some(browser) = chromium() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI installs chromium-headless-shell (.ci/run), but no Chromium is on PATH"
        );
        eprintln!("SKIPPED {name} (browser half): no chromium-headless-shell or chromium on PATH");
        let _ = std::fs::remove_dir_all(&dir);
        return;
    };
    eprintln!("rendering with {}", browser.display());

    // The DOM after the page's script ran.
    let dom = chromium_run(&browser, &dir, &html, "--dump-dom");
    let root = root_tag(&dom);
    assert!(
        root.contains("data-report-ready=\"4\""),
        "the script ran over the four time charts:\n{}",
        head(&dom)
    );
    assert!(!root.contains("data-script-errors"), "{root}");
    assert_eq!(dom.matches("<svg ").count(), 5, "{}", head(&dom));
    assert!(dom.matches("<polyline ").count() >= 10);
    assert!(dom.contains("class=\"bar\""));

    // The check would catch a broken script: the same page with a call to
    // nothing before the marker records the error and never gets ready.
    let broken = dir.join("broken.html");
    std::fs::write(
        &broken,
        page.replace(
            "root.setAttribute('data-report-ready'",
            "noSuchFunction(); root.setAttribute('data-report-ready'",
        ),
    )
    .unwrap();
    let dom = chromium_run(&browser, &dir, &broken, "--dump-dom");
    let root = root_tag(&dom);
    assert!(root.contains("data-script-errors=\""), "{}", head(&dom));
    assert!(root.contains("noSuchFunction"), "{root}");
    assert!(!root.contains("data-report-ready"), "{root}");

    // The hover read-out: a pointer over the setup rate chart reads the
    // three rates there, in legend order.
    let hover = dir.join("hover.html");
    std::fs::write(
        &hover,
        page.replace(
            "</body>",
            "<script>\
             var svg = document.getElementById('setup-rate');\
             var box = svg.getBoundingClientRect();\
             svg.dispatchEvent(new MouseEvent('mousemove', {clientX: box.left + 0.4 * box.width, \
                 clientY: box.top + box.height / 2, bubbles: true}));\
             document.body.setAttribute('data-readout', svg.querySelector('.readout').textContent);\
             </script></body>",
        ),
    )
    .unwrap();
    let dom = chromium_run(&browser, &dir, &hover, "--dump-dom");
    let readout = dom
        .split("data-readout=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no read-out: {}", head(&dom)));
    // The time under the pointer: 40% of the width is within the run.
    let t: f64 = readout
        .strip_prefix("t ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{readout}"));
    let wall = report["wall_s"].as_f64().unwrap();
    assert!(t > 0.0 && t < wall, "{readout}");
    let names: Vec<usize> = ["established/s ", "dialled/s ", "failed/s ", "(sessions/s)"]
        .iter()
        .map(|name| {
            readout
                .find(name)
                .unwrap_or_else(|| panic!("{name} in {readout}"))
        })
        .collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "{readout}");

    // A screenshot: a PNG of the window's size that shows the bars.
    let png = dir.join("report.png");
    let arg = format!("--screenshot={}", png.display());
    chromium_run(&browser, &dir, &html, &arg);
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), WINDOW);
    let (pixels, channels) = decode(&bytes);
    let first = &pixels[..channels];
    assert!(
        pixels.chunks(channels).any(|p| p != first),
        "the screenshot is one colour"
    );
    let bar_pixels = pixels
        .chunks(channels)
        .filter(|p| p.len() >= 3 && p[..3] == BAR)
        .count();
    assert!(
        bar_pixels > 200,
        "histogram bars painted: {bar_pixels} pixels"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The first Chromium of Debian's on PATH.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium-headless-shell", "chromium"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

/// Run the browser on `page` with `action` (`--dump-dom` or
/// `--screenshot=FILE`), bounded in time; its standard output.
fn chromium_run(browser: &Path, dir: &Path, page: &Path, action: &str) -> String {
    let out_path = dir.join("chromium.out");
    let err_path = dir.join("chromium.err");
    let mut command = Command::new(browser);
    command
        .args(["--headless", "--disable-gpu", "--hide-scrollbars"])
        .args(["--no-first-run", "--no-default-browser-check"])
        .arg(format!("--window-size={},{}", WINDOW.0, WINDOW.1))
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(action)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    // The sandbox refuses to start as root.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        command.arg("--no-sandbox");
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} {action} took over 90 s:\n{}",
                browser.display(),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "{} {action}: {status}\n{}",
        browser.display(),
        std::fs::read_to_string(&err_path).unwrap_or_default()
    );
    std::fs::read_to_string(&out_path).unwrap()
}

/// The PNG's pixels as 8-bit samples, and samples per pixel.
fn decode(bytes: &[u8]) -> (Vec<u8>, usize) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), WINDOW);
    buf.truncate(info.buffer_size());
    (buf, info.color_type.samples())
}

/// The `<html ...>` start tag of a dumped DOM: where the page's script
/// leaves its marks.
fn root_tag(dom: &str) -> &str {
    let start = dom.find("<html").expect("an html element");
    let end = dom[start..].find('>').map_or(dom.len(), |e| start + e + 1);
    &dom[start..end]
}

/// The start of a long document, for failure messages.
fn head(text: &str) -> &str {
    let end = text.char_indices().nth(3000).map_or(text.len(), |(i, _)| i);
    &text[..end]
}
