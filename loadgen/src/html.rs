//! The `--html` report: one self-contained page (inline CSS, SVG charts
//! drawn here, a small inline script for hover read-outs), so it opens
//! offline and can be attached to a ticket as a single file.
//!
//! Everything the page shows comes from the [`Report`]; every string from
//! it is escaped. The page is also well-formed XML (closed tags, quoted
//! attributes, the script in a CDATA section), which keeps it honest and
//! lets tests parse it.

// Writing into a `String` cannot fail: the `let _ = write!(..)` below drop
// an `Ok` that is always there.
use std::fmt::Write;
use std::path::Path;

use crate::report::{Latency, LatencyBucket, Report};
use crate::timeline::{Counts, Timeline};

/// Chart size in SVG units (the page scales it to the window width).
const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 300.0;
/// Room for the axes: left (y tick labels and title), right, top (legend
/// and read-out), bottom (x tick labels and title).
const LEFT: f64 = 76.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 48.0;

/// Dots on the lines when there are this few points or fewer (a single
/// sample would otherwise draw nothing).
const DOTS_UP_TO: usize = 60;

/// Write the report as HTML to `path` (what `--html FILE` does).
pub fn write(report: &Report, path: &Path) -> std::io::Result<()> {
    std::fs::write(path, render(report))
}

/// The report as one HTML page.
pub fn render(report: &Report) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = format!("loadgen report: {} against {}", report.scenario, report.lns);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n");
    let _ = writeln!(out, "<title>{}</title>", escape(&title));
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>");
    let _ = writeln!(out, "<h1>{}</h1>", escape(&title));
    summary_line(&mut out, report);

    out.push_str("<h2>Session setup</h2>\n");
    setup_charts(&mut out, &report.timeline);
    out.push_str("<h2>Setup latency</h2>\n");
    latency_chart(
        &mut out,
        &report.setup_latency_histogram,
        report.setup_latency_ms.as_ref(),
    );
    if report.data.is_some() {
        out.push_str("<h2>Data throughput</h2>\n");
        throughput_charts(&mut out, &report.timeline);
    }

    out.push_str("<h2>Numbers</h2>\n<div class=\"tables\">\n");
    tables(&mut out, report);
    out.push_str("</div>\n");
    let _ = writeln!(
        out,
        "<p class=\"foot\">Report schema {}; the same numbers are in <code>--json</code>.</p>",
        escape(&report.schema)
    );
    let _ = writeln!(out, "<script>//<![CDATA[\n{SCRIPT}//]]></script>");
    out.push_str("</body>\n</html>\n");
    out
}

/// Escape text for an element or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0 text; they can
            // only come from a strange failure reason and mean nothing here.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn summary_line(out: &mut String, r: &Report) {
    let s = &r.sessions;
    let _ = writeln!(
        out,
        "<p class=\"summary\"><b>{}</b> of {} sessions up ({} failed, {} not attempted) in {} of {} tunnels; \
         {} sessions/s; wall {} s.</p>",
        s.established,
        s.planned,
        s.failed,
        s.not_attempted,
        r.tunnels.established,
        r.tunnels.attempted,
        fixed(r.setup_rate_per_s, 1),
        fixed(r.wall_s, 3)
    );
}

/// A line on a chart.
struct Series<'a> {
    name: &'a str,
    points: Vec<(f64, f64)>,
}

fn setup_charts(out: &mut String, t: &Timeline) {
    let x_max = t.samples.last().map_or(0.0, |s| s.t_s);
    line_chart(
        out,
        "setup-rate",
        "Setup rate per interval",
        "sessions/s",
        x_max,
        &[
            Series {
                name: "established/s",
                points: t.rates(|c| c.established),
            },
            Series {
                name: "dialled/s",
                points: t.rates(|c| c.attempted),
            },
            Series {
                name: "failed/s",
                points: t.rates(|c| c.failed),
            },
        ],
        "fewer than two samples: the run was too short for a rate",
    );
    let cumulative = |f: fn(&Counts) -> u64| -> Vec<(f64, f64)> {
        t.samples
            .iter()
            .map(|s| (s.t_s, f(&s.counts) as f64))
            .collect()
    };
    line_chart(
        out,
        "sessions",
        "Sessions so far",
        "sessions",
        x_max,
        &[
            Series {
                name: "established",
                points: cumulative(|c| c.established),
            },
            Series {
                name: "dialled",
                points: cumulative(|c| c.attempted),
            },
            Series {
                name: "failed",
                points: cumulative(|c| c.failed),
            },
        ],
        "no samples",
    );
}

fn throughput_charts(out: &mut String, t: &Timeline) {
    let x_max = t.samples.last().map_or(0.0, |s| s.t_s);
    let bits = |f: fn(&Counts) -> u64| -> Vec<(f64, f64)> {
        t.rates(f).into_iter().map(|(x, y)| (x, y * 8.0)).collect()
    };
    line_chart(
        out,
        "packets",
        "Data packets per second",
        "packets/s",
        x_max,
        &[
            Series {
                name: "up (sent)",
                points: t.rates(|c| c.data_sent),
            },
            Series {
                name: "down (back)",
                points: t.rates(|c| c.data_received),
            },
        ],
        "fewer than two samples: the run was too short for a rate",
    );
    line_chart(
        out,
        "bits",
        "Data bits per second (IP packets)",
        "bit/s",
        x_max,
        &[
            Series {
                name: "up (sent)",
                points: bits(|c| c.data_sent_bytes),
            },
            Series {
                name: "down (back)",
                points: bits(|c| c.data_received_bytes),
            },
        ],
        "fewer than two samples: the run was too short for a rate",
    );
}

/// A linear axis from 0 to a round number at or above `max`, and its
/// ticks (five or so).
fn axis(max: f64) -> (f64, Vec<f64>) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let rough = max / 5.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= rough)
        .unwrap_or(10.0 * magnitude);
    let steps = (max / step - 1e-9).ceil().max(1.0) as usize;
    let top = steps as f64 * step;
    (top, (0..=steps).map(|i| i as f64 * step).collect())
}

/// A tick label: at most two decimals, with k, M or G.
fn si(v: f64) -> String {
    let (number, prefix) = si_parts(v);
    format!("{number}{prefix}")
}

/// `v` with a unit and its prefix: `2.91 Mbit/s`.
fn si_unit(v: f64, unit: &str) -> String {
    let (number, prefix) = si_parts(v);
    format!("{number} {prefix}{unit}")
}

fn si_parts(v: f64) -> (String, &'static str) {
    let (scale, prefix) = match v.abs() {
        a if a >= 1e9 => (1e9, "G"),
        a if a >= 1e6 => (1e6, "M"),
        a if a >= 1e3 => (1e3, "k"),
        _ => (1.0, ""),
    };
    let text = format!("{:.2}", v / scale);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    (text.to_string(), prefix)
}

fn fixed(v: f64, decimals: usize) -> String {
    format!("{v:.decimals$}")
}

fn svg_open(out: &mut String, id: &str, class: &str, title: &str, extra: &str) {
    let _ = writeln!(
        out,
        "<figure><figcaption>{title}</figcaption>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
         class=\"chart {class}\" id=\"{id}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
         aria-label=\"{title}\"{extra}>",
        title = escape(title),
    );
    let _ = writeln!(
        out,
        "<rect class=\"plot\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{}\" height=\"{}\"/>",
        WIDTH - LEFT - RIGHT,
        HEIGHT - TOP - BOTTOM
    );
}

fn svg_close(out: &mut String) {
    out.push_str("</svg></figure>\n");
}

/// Horizontal grid lines with labels for a linear y axis up to `top`.
fn y_axis(out: &mut String, top: f64, ticks: &[f64], title: &str) {
    let plot_h = HEIGHT - TOP - BOTTOM;
    for &t in ticks {
        let y = TOP + plot_h * (1.0 - t / top);
        let _ = writeln!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            si(t)
        );
    }
    let _ = writeln!(
        out,
        "<text class=\"axis-title\" transform=\"translate(16 {:.1}) rotate(-90)\" \
         text-anchor=\"middle\">{}</text>",
        TOP + plot_h / 2.0,
        escape(title)
    );
}

fn x_title(out: &mut String, title: &str) {
    let _ = writeln!(
        out,
        "<text class=\"axis-title\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
        HEIGHT - 8.0,
        escape(title)
    );
}

fn x_tick(out: &mut String, x: f64, label: &str) {
    let bottom = HEIGHT - BOTTOM;
    let _ = writeln!(
        out,
        "<line class=\"tick-mark\" x1=\"{x:.1}\" y1=\"{bottom}\" x2=\"{x:.1}\" y2=\"{:.1}\"/>\
         <text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        bottom + 5.0,
        bottom + 18.0,
        escape(label)
    );
}

fn empty_note(out: &mut String, note: &str) {
    let _ = writeln!(
        out,
        "<text class=\"empty\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
        TOP + (HEIGHT - TOP - BOTTOM) / 2.0,
        escape(note)
    );
}

fn legend(out: &mut String, names: &[&str]) {
    let mut x = LEFT;
    for (i, name) in names.iter().enumerate() {
        let _ = writeln!(
            out,
            "<rect class=\"swatch s{i}\" x=\"{x:.1}\" y=\"8\" width=\"12\" height=\"12\"/>\
             <text class=\"legend\" x=\"{:.1}\" y=\"18\">{}</text>",
            x + 16.0,
            escape(name)
        );
        // Wide enough for the names used here at the page's font size.
        x += 26.0 + 7.0 * name.chars().count() as f64;
    }
}

/// A time chart: x from 0 to `x_max` seconds, one line per series.
fn line_chart(
    out: &mut String,
    id: &str,
    title: &str,
    unit: &str,
    x_max: f64,
    series: &[Series<'_>],
    note: &str,
) {
    let (x_top, x_ticks) = axis(x_max);
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let (y_top, y_ticks) = axis(y_max);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let px = |x: f64| LEFT + plot_w * (x / x_top).clamp(0.0, 1.0);
    let py = |y: f64| TOP + plot_h * (1.0 - (y / y_top).clamp(0.0, 1.0));
    svg_open(
        out,
        id,
        "line",
        title,
        &format!(
            " data-left=\"{LEFT}\" data-right=\"{}\" data-x-max=\"{x_top}\" data-unit=\"{}\"",
            WIDTH - RIGHT,
            escape(unit)
        ),
    );
    y_axis(out, y_top, &y_ticks, unit);
    for &t in &x_ticks {
        x_tick(out, px(t), &si(t));
    }
    x_title(out, "time into the run (s)");
    let names: Vec<&str> = series.iter().map(|s| s.name).collect();
    legend(out, &names);
    // The first series is the one that matters: drawn last, on top of
    // the others where they coincide.
    for (i, s) in series.iter().enumerate().rev() {
        let join = |f: &dyn Fn(&(f64, f64)) -> String| {
            s.points.iter().map(f).collect::<Vec<_>>().join(",")
        };
        let points: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = writeln!(
            out,
            "<polyline class=\"series s{i}\" data-index=\"{i}\" data-name=\"{}\" data-xs=\"{}\" data-ys=\"{}\" points=\"{}\"/>",
            escape(s.name),
            join(&|p| format!("{:.3}", p.0)),
            join(&|p| format!("{:.3}", p.1)),
            points.join(" ")
        );
        if s.points.len() <= DOTS_UP_TO {
            for &(x, y) in &s.points {
                let _ = writeln!(
                    out,
                    "<circle class=\"dot s{i}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\"><title>{}: {} {} at {} s</title></circle>",
                    px(x),
                    py(y),
                    escape(s.name),
                    si(y),
                    escape(unit),
                    fixed(x, 2)
                );
            }
        }
    }
    if series.iter().all(|s| s.points.is_empty()) {
        empty_note(out, note);
    }
    // Filled in by the script as the pointer moves.
    let _ = writeln!(
        out,
        "<line class=\"cursor\" x1=\"0\" y1=\"{TOP}\" x2=\"0\" y2=\"{:.1}\" visibility=\"hidden\"/>\
         <text class=\"readout\" x=\"{:.1}\" y=\"34\" text-anchor=\"end\"></text>",
        HEIGHT - BOTTOM,
        WIDTH - RIGHT
    );
    svg_close(out);
}

/// The setup latency distribution: one bar per bucket on a logarithmic
/// millisecond axis, the percentiles marked.
fn latency_chart(out: &mut String, buckets: &[LatencyBucket], latency: Option<&Latency>) {
    svg_open(
        out,
        "latency",
        "histogram",
        "Setup latency distribution (dial to PPP up)",
        "",
    );
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    // A bucket's lower bound, never 0 on a log axis: the first may start
    // at 0 µs; draw it one bucket wide.
    let lower = |b: &LatencyBucket| {
        if b.from_ms > 0.0 {
            b.from_ms
        } else {
            b.to_ms / 10f64.powf(0.1)
        }
    };
    let positive = |v: f64| v.is_finite() && v > 0.0;
    let low = buckets
        .iter()
        .map(lower)
        .filter(|&v| positive(v))
        .fold(f64::INFINITY, f64::min);
    let high = buckets
        .iter()
        .map(|b| b.to_ms)
        .filter(|&v| positive(v))
        .fold(0.0, f64::max);
    let (decade_lo, decade_hi) = if low.is_finite() && high > 0.0 {
        let lo = low.log10().floor();
        (lo, high.log10().ceil().max(lo + 1.0))
    } else {
        (0.0, 3.0)
    };
    let px = |ms: f64| {
        let d = (ms.max(1e-12).log10() - decade_lo) / (decade_hi - decade_lo);
        LEFT + plot_w * d.clamp(0.0, 1.0)
    };
    let y_max = buckets.iter().map(|b| b.count).max().unwrap_or(0) as f64;
    let (y_top, y_ticks) = axis(y_max);
    y_axis(out, y_top, &y_ticks, "sessions per bucket");
    let mut decade = decade_lo;
    while decade <= decade_hi + 1e-9 {
        let ms = 10f64.powf(decade);
        x_tick(out, px(ms), &duration_label(ms));
        decade += 1.0;
    }
    x_title(out, "setup latency (log scale; ten buckets a decade)");
    for b in buckets {
        let x0 = px(lower(b));
        let x1 = px(b.to_ms);
        let h = plot_h * (b.count as f64 / y_top);
        let _ = writeln!(
            out,
            "<rect class=\"bar\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\">\
             <title>{} to {} ms: {} sessions</title></rect>",
            TOP + plot_h - h,
            (x1 - x0 - 0.5).max(0.5),
            si(b.from_ms),
            si(b.to_ms),
            b.count
        );
    }
    match latency {
        Some(l) if !buckets.is_empty() => {
            let marks = [
                ("p50", l.p50),
                ("p90", l.p90),
                ("p99", l.p99),
                ("p99.9", l.p99_9),
            ];
            for (i, (name, ms)) in marks.into_iter().enumerate() {
                let x = px(ms);
                // Stagger the labels: close percentiles would overlap.
                let y = TOP + 12.0 + 13.0 * i as f64;
                // Near the right edge the label goes to the left of its line.
                let (label_x, anchor) = if x > LEFT + 0.75 * plot_w {
                    (x - 3.0, "end")
                } else {
                    (x + 3.0, "start")
                };
                let _ = writeln!(
                    out,
                    "<line class=\"marker\" x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{:.1}\"/>\
                     <text class=\"marker-label\" x=\"{label_x:.1}\" y=\"{y:.1}\" \
                     text-anchor=\"{anchor}\">{name} {} ms</text>",
                    HEIGHT - BOTTOM,
                    fixed(ms, 3)
                );
            }
        }
        _ => empty_note(out, "no session came up"),
    }
    svg_close(out);
}

/// `ms` as a short label with a unit: µs, ms or s.
fn duration_label(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} s", si(ms / 1000.0))
    } else if ms >= 1.0 {
        format!("{} ms", si(ms))
    } else {
        format!("{} µs", si(ms * 1000.0))
    }
}

/// A two-column table; values are escaped here.
fn table(out: &mut String, caption: &str, rows: &[(&str, String)]) {
    let _ = writeln!(out, "<table>\n<caption>{}</caption>", escape(caption));
    for (name, value) in rows {
        let _ = writeln!(
            out,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(name),
            escape(value)
        );
    }
    out.push_str("</table>\n");
}

fn reason_rows(map: &std::collections::BTreeMap<String, u64>) -> Vec<(&str, String)> {
    map.iter()
        .map(|(r, n)| (r.as_str(), n.to_string()))
        .collect()
}

fn latency_rows(l: Option<&Latency>) -> Vec<(&'static str, String)> {
    match l {
        Some(l) => vec![
            ("p50", fixed(l.p50, 3)),
            ("p90", fixed(l.p90, 3)),
            ("p99", fixed(l.p99, 3)),
            ("p99.9", fixed(l.p99_9, 3)),
            ("max", fixed(l.max, 3)),
            ("mean", fixed(l.mean, 3)),
        ],
        None => vec![("", "no session came up".to_string())],
    }
}

fn bits(bps: f64) -> String {
    si_unit(bps, "bit/s")
}

fn tables(out: &mut String, r: &Report) {
    let s = &r.sessions;
    table(
        out,
        "Sessions",
        &[
            ("planned", s.planned.to_string()),
            ("attempted", s.attempted.to_string()),
            ("established", s.established.to_string()),
            ("failed", s.failed.to_string()),
            ("not attempted", s.not_attempted.to_string()),
            ("setup rate", format!("{} /s", fixed(r.setup_rate_per_s, 1))),
            ("setup window", format!("{} s", fixed(r.setup_window_s, 3))),
            ("dial rate", format!("{} /s", fixed(r.dial_rate_per_s, 1))),
            ("retransmissions", r.retransmissions.to_string()),
        ],
    );
    if !s.failed_by_reason.is_empty() {
        table(
            out,
            "Sessions failed, by reason",
            &reason_rows(&s.failed_by_reason),
        );
    }
    if !s.lost_by_reason.is_empty() {
        table(
            out,
            "Sessions lost after coming up, by reason",
            &reason_rows(&s.lost_by_reason),
        );
    }
    let t = &r.tunnels;
    table(
        out,
        "Tunnels",
        &[
            ("attempted", t.attempted.to_string()),
            ("established", t.established.to_string()),
            ("failed", t.failed.to_string()),
        ],
    );
    if !t.failed_by_reason.is_empty() {
        table(
            out,
            "Tunnels failed, by reason",
            &reason_rows(&t.failed_by_reason),
        );
    }
    table(
        out,
        "Setup latency (ms)",
        &latency_rows(r.setup_latency_ms.as_ref()),
    );
    if let Some(d) = &r.data {
        table(
            out,
            "Data",
            &[
                ("sessions sending", d.sessions.to_string()),
                ("window", format!("{} s", fixed(d.window_s, 3))),
                ("sent", d.sent.to_string()),
                ("received", d.received.to_string()),
                (
                    "lost",
                    format!("{} ({}%)", d.lost, fixed(d.loss_percent, 3)),
                ),
                ("duplicates", d.duplicates.to_string()),
                ("reordered", d.reordered.to_string()),
                ("unmatched", d.unmatched.to_string()),
                ("unsendable", d.unsendable.to_string()),
                (
                    "sent / received over IPv6",
                    format!("{} / {}", d.sent_ipv6, d.received_ipv6),
                ),
                (
                    "up",
                    format!(
                        "{} packets/s, {}",
                        fixed(d.upstream_pps, 1),
                        bits(d.upstream_bps)
                    ),
                ),
                (
                    "down",
                    format!(
                        "{} packets/s, {}",
                        fixed(d.downstream_pps, 1),
                        bits(d.downstream_bps)
                    ),
                ),
            ],
        );
        table(
            out,
            "Round-trip time (ms)",
            &latency_rows(d.rtt_ms.as_ref()),
        );
    }
    if let Some(c) = &r.churn {
        let mut rows = vec![
            (
                "cycles",
                format!(
                    "{} in {} s ({} /s)",
                    c.cycles,
                    fixed(c.window_s, 3),
                    fixed(c.cycles_per_s, 1)
                ),
            ),
            ("torn down", c.teardowns.to_string()),
            ("dialled", c.dialled.to_string()),
            ("up", c.setups.to_string()),
            ("failed", c.failed.to_string()),
            ("unfinished", c.unfinished.to_string()),
        ];
        rows.extend(reason_rows(&c.failed_by_reason));
        table(out, "Churn", &rows);
        table(
            out,
            "Churn setup latency (ms)",
            &latency_rows(c.setup_latency_ms.as_ref()),
        );
    }
    if let Some(p) = &r.flap {
        let mut rows = vec![
            ("flaps", p.flaps.to_string()),
            ("tunnels vanished", p.tunnels_vanished.to_string()),
            (
                "sessions up when they vanished",
                p.sessions_vanished.to_string(),
            ),
            ("tunnels reopened", p.tunnels_reopened.to_string()),
            ("tunnels back", p.tunnels_back.to_string()),
            ("sessions dialled again", p.redialled.to_string()),
            ("re-established", p.reestablished.to_string()),
            ("unfinished", p.unfinished.to_string()),
        ];
        rows.extend(reason_rows(&p.tunnels_failed_by_reason));
        rows.extend(reason_rows(&p.failed_by_reason));
        table(out, "Flap", &rows);
        table(
            out,
            "Flap setup latency (ms)",
            &latency_rows(p.setup_latency_ms.as_ref()),
        );
    }
    let d = &r.teardown;
    table(
        out,
        "Teardown",
        &[
            ("style", d.style.clone()),
            ("sessions closed", d.sessions_closed.to_string()),
            ("tunnels closed", d.tunnels_closed.to_string()),
            ("tunnels acked", d.tunnels_acked.to_string()),
            ("took", format!("{} s", fixed(d.duration_s, 3))),
        ],
    );
    table(
        out,
        "loadgen CPU",
        &[
            ("user", format!("{} s", fixed(r.cpu.user_s, 3))),
            ("system", format!("{} s", fixed(r.cpu.system_s, 3))),
            (
                "of one core",
                format!("{}%", fixed(r.cpu.percent_of_one_core, 1)),
            ),
            ("wall", format!("{} s", fixed(r.wall_s, 3))),
        ],
    );
    if let Some(t) = &r.target {
        table(
            out,
            "LNS process",
            &[
                ("process", format!("{} (pid {})", t.name, t.pid)),
                ("cpu user", format!("{} s", fixed(t.cpu_user_s, 3))),
                ("cpu system", format!("{} s", fixed(t.cpu_system_s, 3))),
                (
                    "of one core",
                    format!("{}%", fixed(t.cpu_percent_of_one_core, 1)),
                ),
                ("rss before", format!("{} KiB", t.rss_before_kib)),
                ("rss max", format!("{} KiB", t.rss_max_kib)),
                ("rss after", format!("{} KiB", t.rss_after_kib)),
                (
                    "rss per session",
                    t.rss_per_session_b
                        .map_or("-".to_string(), |b| format!("{b:.0} B")),
                ),
            ],
        );
    }
    let o = &r.settings;
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_string());
    let opt_f = |v: Option<f64>| v.map_or("-".to_string(), |v| v.to_string());
    table(
        out,
        "Options",
        &[
            ("lns", r.lns.clone()),
            ("scenario", r.scenario.clone()),
            ("tunnels", o.tunnels.to_string()),
            ("sessions per tunnel", o.sessions_per_tunnel.to_string()),
            (
                "rate",
                o.rate_per_s
                    .map_or("unlimited".to_string(), |r| format!("{r} /s")),
            ),
            ("workers", o.workers.to_string()),
            ("proxy", o.proxy.to_string()),
            ("tunnel auth", o.tunnel_auth.to_string()),
            ("hidden AVPs", o.hidden_avps.to_string()),
            ("auth", o.auth.join(", ")),
            ("hold", format!("{} s", o.hold_s)),
            ("timeout", format!("{} s", o.timeout_s)),
            (
                "data",
                format!("{} packets/s of {} B", o.data_pps, o.data_size),
            ),
            ("reflector", opt(&o.reflector)),
            ("reflector6", opt(&o.reflector6)),
            ("duration (s)", opt_f(o.duration_s)),
            ("churn rate (/s)", opt_f(o.churn_rate_per_s)),
            ("flap interval (s)", opt_f(o.flap_interval_s)),
        ],
    );
}

const STYLE: &str = "
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 960px; color: #222; padding: 0 1em; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
figure { margin: 1em 0; } figcaption { font-weight: 600; margin-bottom: .3em; }
svg.chart { width: 100%; height: auto; background: #fff; border: 1px solid #e4e4e4; }
.plot { fill: #fafafa; stroke: #bbb; }
.grid { stroke: #e6e6e6; } .tick-mark { stroke: #888; }
.tick, .legend, .readout, .marker-label, .empty { font-size: 11px; fill: #444; }
.axis-title { font-size: 12px; fill: #222; } .empty { font-size: 14px; fill: #999; }
.series { fill: none; stroke-width: 1.8; } .dot { stroke: none; }
.s0 { stroke: #1f77b4; fill: #1f77b4; } polyline.s0 { fill: none; }
.s1 { stroke: #ff7f0e; fill: #ff7f0e; } polyline.s1 { fill: none; }
.s2 { stroke: #d62728; fill: #d62728; } polyline.s2 { fill: none; }
.bar { fill: #4c8bc4; } .bar:hover { fill: #1f4f7f; }
.marker { stroke: #d62728; stroke-dasharray: 4 3; } .marker-label { fill: #d62728; }
.cursor { stroke: #555; stroke-dasharray: 2 2; } .readout { fill: #000; }
.tables { display: flex; flex-wrap: wrap; gap: 1em 2em; align-items: flex-start; }
table { border-collapse: collapse; } caption { text-align: left; font-weight: 600; padding-bottom: .2em; }
th, td { padding: 1px 8px; border-bottom: 1px solid #eee; text-align: left; } td { text-align: right; font-variant-numeric: tabular-nums; }
.summary { font-size: 1.05em; } .foot { color: #777; font-size: .9em; margin-top: 2em; }
";

/// Hover read-outs on the time charts. It records its own errors on the
/// root element (`data-script-errors`) and says it ran (`data-report-ready`,
/// the number of charts it serves), which the browser test checks.
const SCRIPT: &str = r#"(function () {
  var root = document.documentElement;
  window.onerror = function (message, source, line) {
    var seen = root.getAttribute('data-script-errors');
    root.setAttribute('data-script-errors', (seen ? seen + ' | ' : '') + message + ' (line ' + line + ')');
    return false;
  };
  function numbers(text) {
    return text ? text.split(',').map(Number) : [];
  }
  function format(v) {
    return Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en') : v.toPrecision(3);
  }
  var charts = document.querySelectorAll('svg.line');
  Array.prototype.forEach.call(charts, function (svg) {
    var readout = svg.querySelector('.readout');
    var cursor = svg.querySelector('.cursor');
    var left = Number(svg.getAttribute('data-left'));
    var right = Number(svg.getAttribute('data-right'));
    var xMax = Number(svg.getAttribute('data-x-max'));
    var unit = svg.getAttribute('data-unit');
    var series = Array.prototype.map.call(svg.querySelectorAll('polyline.series'), function (line) {
      return {
        index: Number(line.getAttribute('data-index')),
        name: line.getAttribute('data-name'),
        xs: numbers(line.getAttribute('data-xs')),
        ys: numbers(line.getAttribute('data-ys'))
      };
    });
    // Drawn last-first so the first is on top; read out first-first.
    series.sort(function (a, b) { return a.index - b.index; });
    svg.addEventListener('mousemove', function (event) {
      var matrix = svg.getScreenCTM();
      if (!matrix) { return; }
      var point = svg.createSVGPoint();
      point.x = event.clientX;
      point.y = event.clientY;
      var local = point.matrixTransform(matrix.inverse());
      var t = (local.x - left) / (right - left) * xMax;
      var parts = [];
      series.forEach(function (s) {
        var best = -1;
        s.xs.forEach(function (x, i) {
          if (best === -1 || Math.abs(x - t) < Math.abs(s.xs[best] - t)) { best = i; }
        });
        if (best !== -1) { parts.push(s.name + ' ' + format(s.ys[best])); }
      });
      if (parts.length === 0) { return; }
      readout.textContent = 't ' + t.toFixed(2) + ' s: ' + parts.join(', ') + ' (' + unit + ')';
      cursor.setAttribute('x1', local.x);
      cursor.setAttribute('x2', local.x);
      cursor.setAttribute('visibility', 'visible');
    });
    svg.addEventListener('mouseleave', function () {
      cursor.setAttribute('visibility', 'hidden');
      readout.textContent = '';
    });
  });
  root.setAttribute('data-report-ready', String(charts.length));
})();
"#;

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::options::Options;
    use crate::report::Tally;
    use crate::timeline::Counts;

    fn options() -> Options {
        Options::new("192.0.2.1:1701".parse().unwrap())
    }

    /// 200 sessions up over two seconds with data, sampled as `run` does.
    fn busy_report() -> Report {
        let t0 = Instant::now();
        let mut tally = Tally::default();
        for i in 0..200u64 {
            let dial = t0 + Duration::from_millis(10 * i);
            tally.dialled(dial);
            tally.up(dial, dial + Duration::from_micros(500 + 97 * i));
        }
        tally.fail("auth_failed");
        tally.data_sessions = 200;
        tally.data.sent = 4000;
        tally.data.received = 3990;
        tally.data.start = Some(t0);
        tally.data.end = Some(t0 + Duration::from_secs(2));
        let mut o = options();
        o.tunnels = 2;
        o.data_pps = 10.0;
        o.hold = 2.0;
        o.reflector = Some("100.64.0.1:7".parse().unwrap());
        let mut r = Report::build(&o, 2, &tally, Duration::from_secs(4), Duration::ZERO);
        for i in 0..=40u64 {
            let n = (i * 5).min(200);
            r.timeline.offer(
                Duration::from_millis(100 * i),
                Counts {
                    attempted: n,
                    established: n,
                    data_sent: 100 * i,
                    data_received: 99 * i,
                    data_sent_bytes: 9200 * i,
                    data_received_bytes: 9108 * i,
                    ..Counts::default()
                },
            );
        }
        r
    }

    /// Parse as XML (the page is written to be well-formed) and hand back
    /// the document's text for further checks.
    fn parse(html: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse_with_options(
            html,
            roxmltree::ParsingOptions {
                allow_dtd: true,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("not well-formed: {e}\n{html}"))
    }

    fn assert_numbers_finite(html: &str) {
        for bad in ["NaN", "\"inf", ",inf", " inf", "-inf"] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
    }

    fn chart_ids(doc: &roxmltree::Document<'_>) -> Vec<String> {
        doc.descendants()
            .filter(|n| n.tag_name().name() == "svg")
            .filter_map(|n| n.attribute("id").map(str::to_string))
            .collect()
    }

    #[test]
    fn escape_covers_markup_quotes_and_control_characters() {
        assert_eq!(
            escape(r#"<a href="x" title='y'>&amp;</a>"#),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;"
        );
        assert_eq!(escape("a\u{1}b"), "a\u{fffd}b");
        assert_eq!(escape("µs\tok"), "µs\tok");
    }

    #[test]
    fn a_busy_run_has_every_chart_marked_percentiles_and_the_tables() {
        let r = busy_report();
        let html = render(&r);
        let doc = parse(&html);
        assert_eq!(
            chart_ids(&doc),
            ["setup-rate", "sessions", "latency", "packets", "bits"]
        );
        // Lines with points on the time charts, bars on the histogram.
        let lines: Vec<_> = doc
            .descendants()
            .filter(|n| n.tag_name().name() == "polyline")
            .collect();
        assert_eq!(lines.len(), 3 + 3 + 2 + 2);
        assert!(lines
            .iter()
            .filter(|l| l.attribute("data-name") == Some("established/s"))
            .all(|l| l
                .attribute("points")
                .is_some_and(|p| p.split(' ').count() > 10)));
        let bars = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("bar"))
            .count();
        assert_eq!(bars, r.setup_latency_histogram.len());
        assert!(bars > 5, "{bars}");
        for p in ["p50 ", "p90 ", "p99 ", "p99.9 "] {
            assert!(html.contains(&format!("\">{p}")), "{p} marker");
        }
        // Ticks with units on the axes.
        for unit in [
            "sessions/s",
            "packets/s",
            "bit/s",
            "time into the run (s)",
            " ms<",
        ] {
            assert!(html.contains(unit), "{unit}");
        }
        let tables: Vec<String> = doc
            .descendants()
            .filter(|n| n.tag_name().name() == "caption")
            .filter_map(|n| n.text().map(str::to_string))
            .collect();
        for caption in [
            "Sessions",
            "Sessions failed, by reason",
            "Tunnels",
            "Setup latency (ms)",
            "Data",
            "Round-trip time (ms)",
            "Teardown",
            "loadgen CPU",
            "Options",
        ] {
            assert!(
                tables.iter().any(|t| t == caption),
                "{caption} in {tables:?}"
            );
        }
        assert!(html.contains("<th>auth_failed</th><td>1</td>"));
        // Nothing that works only online.
        assert_eq!(
            html.matches("http").count(),
            html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
        );
        assert!(!html.contains(" src=") && !html.contains("<link"));
        assert_numbers_finite(&html);
    }

    #[test]
    fn strings_from_the_run_are_escaped() {
        let mut r = busy_report();
        r.sessions
            .failed_by_reason
            .insert("<script>alert('x')</script> & co".into(), 3);
        r.settings.reflector = Some("\"><img>".into());
        let html = render(&r);
        parse(&html);
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"));
        assert!(html.contains("&quot;&gt;&lt;img&gt;"));
        assert_eq!(html.matches("<script>").count(), 1, "only our own");
    }

    #[test]
    fn an_empty_run_renders_notes_instead_of_charts_of_nothing() {
        let r = Report::build(
            &options(),
            1,
            &Tally::default(),
            Duration::from_secs(1),
            Duration::ZERO,
        );
        assert!(r.timeline.samples.is_empty());
        let html = render(&r);
        let doc = parse(&html);
        // No data asked for: no throughput charts.
        assert_eq!(chart_ids(&doc), ["setup-rate", "sessions", "latency"]);
        assert!(html.contains(">no session came up</text>"));
        assert!(html.contains(">no samples</text>"));
        assert_numbers_finite(&html);
        assert!(html.contains("<caption>Setup latency (ms)</caption>"));
    }

    #[test]
    fn one_sample_draws_dots_and_no_rate() {
        let mut r = busy_report();
        r.timeline = Timeline::default();
        r.timeline.finish(
            Duration::from_millis(40),
            Counts {
                attempted: 1,
                established: 1,
                ..Counts::default()
            },
        );
        let html = render(&r);
        let doc = parse(&html);
        assert_eq!(chart_ids(&doc).len(), 5);
        // The cumulative chart shows its one point as dots; the rates have
        // none and say why.
        let dots = doc
            .descendants()
            .filter(|n| n.attribute("class").is_some_and(|c| c.starts_with("dot ")))
            .count();
        assert_eq!(dots, 3);
        assert_eq!(html.matches("too short for a rate").count(), 3);
        assert_numbers_finite(&html);
    }

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!((axis(0.0).0, axis(0.0).1.len()), (1.0, 6));
        assert_eq!(axis(7.3), (8.0, vec![0.0, 2.0, 4.0, 6.0, 8.0]));
        assert_eq!(axis(10.0).0, 10.0);
        assert_eq!(axis(1234.0).0, 1250.0);
        assert_eq!(axis(f64::NAN).0, 1.0);
        assert_eq!(si(1250.0), "1.25k");
        assert_eq!(si(3_000_000.0), "3M");
        assert_eq!(si(0.25), "0.25");
        assert_eq!(si(0.0), "0");
        assert_eq!(bits(2_912_345.0), "2.91 Mbit/s");
        assert_eq!(bits(12.0), "12 bit/s");
        assert_eq!(duration_label(0.1), "100 µs");
        assert_eq!(duration_label(1000.0), "1 s");
    }
}
