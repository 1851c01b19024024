//! The `loadgen` command line: see the crate README.

use std::process::ExitCode;

use clap::Parser;
use loadgen::options::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(options) => {
            let report = match loadgen::run(&options) {
                Ok(report) => report,
                Err(e) => {
                    eprintln!("loadgen: cannot start the run: {e}");
                    return ExitCode::from(2);
                }
            };
            match options.json.as_deref() {
                Some("-") => println!("{}", report.to_json()),
                Some(path) => {
                    print!("{report}");
                    if let Err(e) = report.write_json(path.as_ref()) {
                        eprintln!("loadgen: cannot write {path}: {e}");
                        return ExitCode::from(2);
                    }
                }
                None => print!("{report}"),
            }
            // Scripts can tell a clean run from one with failures.
            if report.sessions.established == report.sessions.planned {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
    }
}
