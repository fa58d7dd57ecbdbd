//! The `codex-auth` binary: parse, run, render the error.

use std::process::ExitCode;

use codex_auth::failure::Failure;
use codex_auth::workflow::annotation;

fn main() -> ExitCode {
    let cli = codex_auth::cli::parse(std::env::args_os().collect());
    let in_action = matches!(cli.command, codex_auth::cli::Command::Action { .. });
    match codex_auth::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let title = error
                .chain()
                .find_map(|e| e.downcast_ref::<Failure>())
                .map_or("codex-auth failed", |f| f.title);
            let message = format!("{error:#}");
            if in_action {
                annotation("error", title, &message);
            } else {
                eprintln!("error: {message}");
            }
            ExitCode::FAILURE
        }
    }
}
