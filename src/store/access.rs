//! A task job's store when input `auth-json` is an access-only copy (README, "Many jobs, one
//! login"): the keeper job refreshes the login and publishes the copy; a task job only reads
//! it. It needs no write token, proves nothing and writes nothing: Codex cannot refresh a
//! copy, so there is never a rotation to keep. Which jobs a copy can serve, and whether it
//! outlives the job, the main stage decides.

use async_trait::async_trait;

use super::{CannotSave, Loaded, NotLoaded, NotSaved, Place, Saved, Store};
use crate::auth_file::{AuthFile, Kind};
use crate::config::ActionConfig;

/// Whether input `auth-json` is an access-only copy (an input, not `GITHUB_STATE`: a step of
/// the job cannot change it between the stages).
pub fn given(config: &ActionConfig) -> bool {
    config
        .auth_json
        .as_ref()
        .and_then(|input| AuthFile::decode(input.expose()).ok())
        .is_some_and(|login| login.kind() == Kind::AccessOnly)
}

/// The store of a task job that runs on an access-only copy.
pub struct AccessCopyStore {
    /// Input `auth-json`, decoded and masked.
    copy: AuthFile,
}

impl AccessCopyStore {
    /// The store of `copy` (input `auth-json`, decoded and masked).
    pub fn new(copy: AuthFile) -> Self {
        Self { copy }
    }
}

#[async_trait(?Send)]
impl Store for AccessCopyStore {
    fn place(&self) -> Place {
        Place::AccessCopy
    }

    async fn load(&mut self) -> Result<Loaded, NotLoaded> {
        Ok(self.copy.clone().into())
    }

    /// Nothing a job on a copy has can be saved.
    async fn prove_can_save(&mut self) -> Result<(), CannotSave> {
        Err(CannotSave::Refused(
            "a job on an access-only copy writes nothing back".to_owned(),
        ))
    }

    async fn save(&mut self, _file: &AuthFile) -> Result<Saved, NotSaved> {
        Err(NotSaved::Failed(
            "a job on an access-only copy writes nothing back".to_owned(),
        ))
    }

    async fn close(&mut self) {}
}
