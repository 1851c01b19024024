//! The `loadgen` command line: see the crate README.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Parser;
use loadgen::options::{Cli, Command, ReflectOptions};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Reflect(options) => reflect(&options),
        Command::Demo(options) => demo(&options),
        Command::DemoDaemon(options) => match loadgen::demo::serve_daemon(&options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("loadgen demo-daemon: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run(options) => {
            if let Err(e) = options.check() {
                eprintln!("loadgen: {e}");
                return ExitCode::from(2);
            }
            let report = match loadgen::run(&options) {
                Ok(report) => report,
                Err(e) => {
                    eprintln!("loadgen: cannot start the run: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Err(e) = report.emit(options.json.as_deref()) {
                let path = options.json.as_deref().unwrap_or_default();
                eprintln!("loadgen: cannot write {path}: {e}");
                return ExitCode::from(2);
            }
            if let Some(path) = &options.html {
                if let Err(e) = loadgen::html::write(&report, path) {
                    eprintln!("loadgen: cannot write {}: {e}", path.display());
                    return ExitCode::from(2);
                }
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

/// `loadgen demo`: a private network namespace, the daemon, a load; the
/// report, then how the daemon stopped.
fn demo(options: &loadgen::demo::DemoOptions) -> ExitCode {
    if let Err(e) = loadgen::demo::enter_private_netns() {
        eprintln!("loadgen demo: {e}");
        return ExitCode::from(2);
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("loadgen demo: cannot find this program to start the daemon: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = match loadgen::demo::run(options, &exe) {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("loadgen demo: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = outcome.report.emit(options.json.as_deref()) {
        let path = options.json.as_deref().unwrap_or_default();
        eprintln!("loadgen demo: cannot write {path}: {e}");
        return ExitCode::from(2);
    }
    if let Some(path) = &options.html {
        if let Err(e) = loadgen::html::write(&outcome.report, path) {
            eprintln!("loadgen demo: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
        eprintln!("demo: HTML report in {}", path.display());
    }
    eprintln!(
        "demo: lns stopped on SIGTERM in {:.1} s ({})",
        outcome.daemon_stop.as_secs_f64(),
        outcome.daemon_exit
    );
    if outcome.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `loadgen reflect`: serve until SIGINT/SIGTERM or `--duration`, then
/// print the counts.
fn reflect(options: &ReflectOptions) -> ExitCode {
    if let Err(e) = lns::io::signals::install() {
        eprintln!("loadgen: cannot install signal handlers: {e}");
        return ExitCode::from(2);
    }
    let reflector = match loadgen::reflect::Reflector::bind(options.listen, options.worker_count())
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadgen: cannot listen on {}: {e}", options.listen);
            return ExitCode::from(2);
        }
    };
    eprintln!(
        "loadgen reflect: listening on {} with {} threads",
        reflector.local_addr(),
        options.worker_count()
    );
    let stop = AtomicBool::new(false);
    let deadline = options.duration().map(|d| std::time::Instant::now() + d);
    let result = std::thread::scope(|scope| {
        let serving = scope.spawn(|| reflector.serve(&stop));
        while !serving.is_finished() {
            let over = deadline.is_some_and(|d| std::time::Instant::now() >= d);
            if over || lns::io::signals::take_stop() {
                stop.store(true, Ordering::Relaxed);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        match serving.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    match result {
        Ok(stats) => {
            println!("loadgen reflect: {stats}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadgen: reflector failed: {e}");
            ExitCode::from(1)
        }
    }
}
