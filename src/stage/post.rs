//! The post stage: runs on every outcome of the job (`post-if: always()`) and saves whatever
//! changed since the store last saved: a main stage that was cancelled or failed to save,
//! later steps of the job that ran Codex themselves. Then it removes auth.json unless input
//! `keep` says otherwise.
//!
//! The main stage saves as soon as Codex exits, so that its `persisted` output is real (GitHub
//! Actions drops outputs set by post steps) and the rotated token spends as little time as
//! possible only on disk.

use super::{clean_up, read_refreshed, summary, BASELINE};
use crate::codex_home::CodexHome;
use crate::config::{ActionConfig, Mode};
use crate::store::{self, Stage};

/// Runs the post stage.
pub async fn run(config: &ActionConfig) -> anyhow::Result<()> {
    let workflow = &config.workflow;
    let mut store = store::open(config, Stage::Post)?;
    store.finish().await;
    if config.mode == Mode::Login {
        workflow.info("`mode: login` stored the new login in the main stage: nothing to do here.");
        return Ok(());
    }
    let Some(baseline) = config.state.get(BASELINE) else {
        workflow.info("The main stage stopped before restoring auth.json: nothing to write back.");
        return Ok(());
    };
    let home = CodexHome::new(&config.codex_home);
    let file = read_refreshed(config, &home, store.as_ref())?;
    workflow.mask_login(&file)?;

    if file.fingerprint() == *baseline {
        workflow.info("The tokens did not change since they were last stored: nothing to write.");
        return clean_up(config, &home);
    }
    let saved = store.save(&file, Stage::Post).await;
    let where_ = match &saved {
        Ok(saved) => format!("yes, {}", saved.place),
        Err(_) => "no: the write failed (see the error)".to_owned(),
    };
    summary(workflow, &file, true, &where_, &[])?;
    saved?;
    clean_up(config, &home)
}
