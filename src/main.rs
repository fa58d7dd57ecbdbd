//! The `codex-auth` binary: parse, run, render the error.

use std::process::ExitCode;

use codex_auth::cli;
use codex_auth::workflow::annotation;

fn main() -> ExitCode {
    let cli = codex_auth::cli::parse(std::env::args_os().collect());
    let in_action = matches!(cli.command, codex_auth::cli::Command::Action { .. });
    match codex_auth::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if in_action {
                annotation("error", cli::title(&error), &format!("{error:#}"));
            } else {
                eprintln!("{}", cli::error_line(&error));
            }
            ExitCode::FAILURE
        }
    }
}
