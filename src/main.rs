//! The `lns` daemon entry point. The runtime arrives with the daemon issue;
//! for now the binary reports its version and what it can do.

fn main() {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("--version") | Some("version") => println!("lns {}", env!("CARGO_PKG_VERSION")),
        _ => {
            eprintln!(
                "lns {}: the L2TPv2 protocol core is built; the daemon runtime is not yet.",
                env!("CARGO_PKG_VERSION")
            );
            std::process::exit(2);
        }
    }
}
