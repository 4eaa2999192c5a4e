//! The `vmcore-report` binary: parse, validate, run; the work is in the library.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use vmcore_report::app::{self, exit};
use vmcore_report::cli::{Cli, Config};
use vmcore_report::report::{interrupt, log};

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            // --help and --version come here too, with exit code 0
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(exit::USAGE));
        }
    };
    if let Some(kind) = cli.generate {
        return match vmcore_report::cli::generate(kind, &mut std::io::stdout().lock()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("vmcore-report: writing to stdout: {e}");
                ExitCode::from(exit::INTERNAL)
            }
        };
    }
    let captured = log::init(log::Settings {
        verbosity: cli.verbose,
        quiet: cli.quiet,
    });
    if let Err(e) = interrupt::install() {
        tracing::warn!(
            "cannot handle SIGINT/SIGTERM: {e}; an interrupted run may leave files behind"
        );
    }
    let plugins = vmcore_report::plugins::all();
    let (config, warnings) =
        match Config::from_cli(cli, &args, &plugins, &|k| std::env::var(k).ok()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::from(exit::USAGE);
            }
        };
    for w in warnings {
        tracing::warn!("{w}");
    }
    ExitCode::from(app::run(&config, &plugins, &captured))
}
