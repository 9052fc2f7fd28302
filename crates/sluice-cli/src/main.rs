//! `sluice`: the command-line face of the sluice engine. Glue only:
//! argument parsing, key sources, progress, atomic output and exit codes.

#![forbid(unsafe_code)]

mod cli;
mod client;
mod cmd;
mod exit;
mod keys;
mod output;
mod progress;

use std::io::Write;
use std::process::ExitCode;

use clap::FromArgMatches;

/// jemalloc returns freed memory to the system (background purging); with
/// glibc's malloc, the service's many I/O threads left freed upload buffers
/// in per-thread arenas and its resident memory 1.6-2x higher
/// (docs/PERFORMANCE.md, "The service").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
use sluice_engine::{CancelToken, Engine, EngineConfig};

fn main() -> ExitCode {
    // Settings renamed to one name per knob: their old variables still work.
    for (old, new) in sluice_service::settings::RENAMED_ENV {
        if std::env::var_os(new).is_none() {
            if let Some(v) = std::env::var_os(old) {
                std::env::set_var(new, v);
            }
        }
    }
    let command = cli::command();
    let matches = command.clone().get_matches();
    let cli = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let origins = cli::setting_origins(&matches, &command);
    let cancel = CancelToken::new();
    let on_signal = cancel.clone();
    // On Ctrl-C or SIGTERM: stop, delete temporary outputs, exit 130 — unless
    // the output is already complete and in place, in which case the command
    // finishes and exits 0: the status always matches what is on disk.
    // The service handles its own signals (graceful shutdown).
    let serving = matches!(cli.command, cli::Command::Serve(_) | cli::Command::Worker(_));
    let _ = (!serving).then(|| {
        ctrlc::set_handler(move || {
            if output::interrupt() {
                on_signal.cancel();
                eprintln!("sluice: interrupted");
                std::process::exit(exit::Code::Interrupted as i32);
            }
        })
    });
    match run(cli, origins, cancel) {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            let code = exit::code_for(&err);
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "error: {err:#}");
            if let Some(hint) = exit::hint_for(&err) {
                let _ = writeln!(stderr, "hint: {hint}");
            }
            ExitCode::from(code as u8)
        }
    }
}

fn run(cli: cli::Cli, origins: sluice_service::settings::Origins, cancel: CancelToken) -> anyhow::Result<exit::Code> {
    let engine = || -> anyhow::Result<Engine> {
        Ok(Engine::new(EngineConfig {
            threads: cli.global.threads,
            in_flight: cli.global.in_flight,
            memory_budget: cli.global.max_memory.map(|mib| mib.saturating_mul(1 << 20)),
            shared_memory: None,
        })?)
    };
    match cli.command {
        cli::Command::Process(args) => cmd::process::run(&args, &engine()?, &cli.global, cancel),
        cli::Command::Restore(args) => cmd::restore::run(&args, &engine()?, &cli.global, cancel),
        cli::Command::Verify(args) => cmd::verify::run(&args, &engine()?, &cli.global, cancel),
        cli::Command::Info(args) => cmd::info::run(&args),
        cli::Command::Keygen(args) => cmd::keygen::run(&args),
        cli::Command::Bench(args) => cmd::bench::run(&args, &engine()?, &cli.global),
        cli::Command::Serve(args) => cmd::serve::run(*args, &cli.global, origins),
        cli::Command::Worker(args) => cmd::serve::run_worker(*args, &cli.global, origins),
        cli::Command::Admin(args) => cmd::admin::run(*args, &cli.global, origins),
        cli::Command::Push(args) => cmd::push::run(&args),
        cli::Command::Pull(args) => cmd::pull::run(&args),
    }
}

/// A closed standard output (e.g. `| head`) is not an error worth a message.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        let io = c
            .downcast_ref::<std::io::Error>()
            .or_else(|| match c.downcast_ref::<sluice_engine::Error>() {
                Some(sluice_engine::Error::Write(e)) => Some(e),
                _ => None,
            });
        io.is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
