//! `loadgen`: a LAC and PPP subscriber simulator (work in progress; it will
//! drive the `lns` library's LAC role against any LNS).

fn main() {
    eprintln!("loadgen {}: not built yet", env!("CARGO_PKG_VERSION"));
    std::process::exit(2);
}
