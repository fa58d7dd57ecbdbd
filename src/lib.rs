//! codex-auth keeps a Codex CLI ChatGPT login alive on CI: it restores `auth.json` from a
//! secret, runs Codex, and writes the refreshed (rotated) file back to the secret.
//!
//! The binary is a thin shell around [`run`]; each stage or subcommand is one module.

pub mod auth_file;
pub mod cancel;
pub mod checkout;
pub mod cli;
pub mod codex;
pub mod codex_home;
pub mod config;
pub mod context;
pub mod failure;
pub mod github;
pub mod inspect;
pub mod jwt;
pub mod net;
pub mod redacted;
pub mod seal;
pub mod seed;
pub mod stage;
pub mod store;
pub mod untrusted;
pub mod workflow;

use cli::{ActionStage, Command};

/// Runs one command. Errors carry a [`failure::Failure`] when the user has something to do.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Action { stage } => {
            // Processes of the same user that lack CAP_SYS_PTRACE (Codex, when it does not run
            // as root) may then not read this process's memory or /proc/<pid>/environ, which
            // holds the write token.
            #[cfg(target_os = "linux")]
            let _ = rustix::process::set_dumpable_behavior(
                rustix::process::DumpableBehavior::NotDumpable,
            );
            let mut config = match (config::ActionConfig::from_process(), stage) {
                (Ok(config), _) => config,
                (Err(error), ActionStage::Post) => {
                    return Ok(stage::post::unconfigured(
                        error,
                        config::main_stage_saved(stage::post::MAIN_STATE),
                    )?)
                }
                (Err(error), ActionStage::Main) => return Err(failure::Failure::from(error).into()),
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                match stage {
                    ActionStage::Main => {
                        stage::main::connect(&mut config)?;
                        stage::main::run(&config).await
                    }
                    ActionStage::Post => stage::post::run(config).await,
                }
            })
        }
        Command::Inspect { file } => inspect::run(file.as_deref()),
        Command::Seed(args) => seed::run(&args),
        Command::Keygen => {
            println!(
                "{}",
                seal::artifact::ArtifactKey::generate().to_base64().expose()
            );
            Ok(())
        }
    }
}
