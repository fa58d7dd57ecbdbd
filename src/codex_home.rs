//! `CODEX_HOME`: where Codex keeps `auth.json`.
//!
//! Writes follow Codex's own (`codex-rs/login/src/auth/storage.rs`): a temp file in the same
//! directory, mode 0600, fsync, rename; the directory 0700. The whole directory is used, never
//! a bind-mounted single file: Codex renames over auth.json, which fails on a mount point.
//!
//! The restore itself is here too: [`CodexHome::plan_restore`] decides between the login a
//! store loaded and a file already on disk (a persistent runner), [`CodexHome::restore`] does it.

use std::fs::{self, DirBuilder};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::auth_file::{AuthError, AuthFile, Kind, MAX_FILE_BYTES};
pub use crate::untrusted::read_untrusted;
use crate::workflow::Workflow;

/// The file name Codex reads.
pub const AUTH_FILE: &str = "auth.json";
/// Codex's configuration file, which this tool never replaces.
pub const CONFIG_FILE: &str = "config.toml";

/// What an `auth.json` on disk turned out to be.
#[derive(Debug)]
pub enum OnDisk {
    /// No file.
    Missing,
    /// A file that is not a usable ChatGPT login.
    Invalid(AuthError),
    /// A valid login.
    Valid(AuthFile),
}

/// A Codex home directory.
#[derive(Debug, Clone)]
pub struct CodexHome {
    dir: PathBuf,
}

impl CodexHome {
    /// The directory (it need not exist yet).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of `auth.json`.
    pub fn auth_path(&self) -> PathBuf {
        self.dir.join(AUTH_FILE)
    }

    /// Reads and validates `auth.json`.
    ///
    /// The directory belongs to Codex's user while Codex runs, so the file is read as
    /// [`read_untrusted`] reads: never through a link, never from a FIFO.
    pub fn read(&self) -> io::Result<OnDisk> {
        match read_untrusted(&self.auth_path(), MAX_FILE_BYTES as u64)? {
            Some(bytes) => Ok(match AuthFile::parse_file(&bytes) {
                Ok(file) => OnDisk::Valid(file),
                Err(error) => OnDisk::Invalid(error),
            }),
            None => Ok(OnDisk::Missing),
        }
    }

    /// Creates the directory (0700) if needed and writes `auth.json` atomically (0600). On
    /// Windows the file takes the directory's access control (a user profile's is the user's
    /// own), as Codex's own writes do there.
    pub fn write(&self, file: &AuthFile) -> io::Result<()> {
        self.create_dir()?;
        let contents = file.to_pretty_json().map_err(io::Error::other)?;
        let mut builder = tempfile::Builder::new();
        builder.prefix(".auth.json.");
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600));
        let mut temp = builder.tempfile_in(&self.dir)?;
        temp.write_all(contents.expose().as_bytes())?;
        temp.as_file().sync_all()?;
        temp.persist(self.auth_path()).map_err(|e| e.error)?;
        // The rename itself is made durable by syncing the directory (Unix only: Windows
        // opens no directory as a file).
        #[cfg(unix)]
        fs::File::open(&self.dir)?.sync_all()?;
        Ok(())
    }

    /// Writes a `config.toml` that pins file storage for credentials, unless one exists:
    /// Codex steps run later on the same home (or by hand) then read and rewrite the file.
    pub fn ensure_config(&self) -> io::Result<bool> {
        self.create_dir()?;
        let path = self.dir.join(CONFIG_FILE);
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut out) => {
                out.write_all(b"cli_auth_credentials_store = \"file\"\n")?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes `auth.json` (a missing file is fine).
    pub fn remove_auth(&self) -> io::Result<()> {
        match fs::remove_file(self.auth_path()) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn create_dir(&self) -> io::Result<()> {
        let mut builder = DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&self.dir)?;
        #[cfg(unix)]
        fs::set_permissions(
            &self.dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
        Ok(())
    }
}

/// What the restore will do with CODEX_HOME.
#[derive(Debug)]
pub enum Plan {
    /// Keep the file on disk: a newer login of the same account (a persistent runner whose
    /// file Codex refreshed after the store last saved it).
    KeepDisk(Box<AuthFile>),
    /// Write the stored login, replacing what the words say ("" when there was nothing).
    WriteStored(&'static str),
    /// Leave everything alone: the stored login is an access-only copy, and CODEX_HOME holds a
    /// full login, which may carry a rotation stored nowhere else (a persistent runner).
    FullLoginThere,
}

impl Plan {
    /// Whether Codex starts from the login the store loaded (not from a newer file on disk).
    pub fn uses_stored(&self) -> bool {
        matches!(self, Plan::WriteStored(_))
    }

    /// The login Codex starts from: the file kept on disk, or the stored one.
    pub fn starting_login<'a>(&'a self, stored: &'a AuthFile) -> &'a AuthFile {
        match self {
            Plan::KeepDisk(disk) => disk,
            Plan::WriteStored(_) | Plan::FullLoginThere => stored,
        }
    }
}

impl CodexHome {
    /// Decides between the stored login and a file already in CODEX_HOME, masking the latter's
    /// tokens before anything about it is printed.
    pub fn plan_restore(&self, workflow: &Workflow, stored: &AuthFile) -> io::Result<Plan> {
        let path = self.auth_path();
        Ok(match self.read()? {
            OnDisk::Valid(disk) => {
                workflow.mask_login(&disk).map_err(io::Error::other)?;
                if stored.kind() == Kind::AccessOnly && disk.kind() == Kind::Full {
                    Plan::FullLoginThere
                } else if disk.account_id() != stored.account_id() {
                    Plan::WriteStored("a login of another account")
                } else if disk.kind() != Kind::Full || stored.kind() != Kind::Full {
                    // A task job runs on the copy it was given; a keeper never starts from a
                    // copy left on the runner (Codex cannot refresh one).
                    Plan::WriteStored(
                        "what was there (an access-only copy is never mixed with a full login)",
                    )
                } else if disk.last_refresh() > stored.last_refresh() {
                    Plan::KeepDisk(Box::new(disk))
                } else {
                    Plan::WriteStored("an older login of the same account")
                }
            }
            OnDisk::Invalid(error) => {
                workflow.warning(
                    "Replacing an invalid auth.json",
                    &format!(
                        "{} was not a usable login ({error}); replacing it with auth-json.",
                        path.display()
                    ),
                );
                Plan::WriteStored("an invalid file")
            }
            OnDisk::Missing => Plan::WriteStored(""),
        })
    }

    /// Carries out the plan; returns the login Codex starts from.
    pub fn restore(
        &self,
        workflow: &Workflow,
        stored: &AuthFile,
        plan: Plan,
    ) -> io::Result<AuthFile> {
        let path = self.auth_path();
        match plan {
            Plan::KeepDisk(disk) => {
                workflow.info(&format!(
                    "Kept {}: it was refreshed at {}, after the login in auth-json ({}).",
                    path.display(),
                    disk.last_refresh(),
                    stored.last_refresh()
                ));
                Ok(*disk)
            }
            Plan::WriteStored(replaced) => {
                self.write(stored)?;
                if replaced.is_empty() {
                    workflow.info(&format!("Restored auth-json to {}.", path.display()));
                } else {
                    workflow.info(&format!(
                        "Restored auth-json to {}, replacing {replaced}.",
                        path.display()
                    ));
                }
                Ok(stored.clone())
            }
            Plan::FullLoginThere => Err(io::Error::other(format!(
                "{} holds a full login, which an access-only copy must not replace",
                path.display()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth_file::tests::sample;

    #[cfg(unix)]
    #[test]
    fn writes_atomically_with_tight_permissions() -> Result<(), Box<dyn std::error::Error>> {
        let root = tempfile::tempdir()?;
        let home = CodexHome::new(root.path().join("nested/.codex"));
        assert!(matches!(home.read()?, OnDisk::Missing));
        let file = AuthFile::decode(&sample().to_string())?;
        home.write(&file)?;
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode(&home.auth_path())?, 0o600);
        assert_eq!(mode(home.dir())?, 0o700);
        let OnDisk::Valid(back) = home.read()? else {
            panic!("the written file does not read back");
        };
        assert_eq!(back.fingerprint(), file.fingerprint());
        let leftovers: Vec<_> = fs::read_dir(home.dir())?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers, [AUTH_FILE]);
        Ok(())
    }

    #[test]
    fn never_replaces_an_existing_config() -> io::Result<()> {
        let root = tempfile::tempdir()?;
        let home = CodexHome::new(root.path());
        fs::write(root.path().join(CONFIG_FILE), "model = \"mine\"\n")?;
        assert!(!home.ensure_config()?);
        assert_eq!(
            fs::read_to_string(root.path().join(CONFIG_FILE))?,
            "model = \"mine\"\n"
        );
        Ok(())
    }

    #[test]
    fn reports_invalid_files_without_failing() -> io::Result<()> {
        let root = tempfile::tempdir()?;
        let home = CodexHome::new(root.path());
        fs::write(home.auth_path(), "{\"tokens\": ")?;
        assert!(matches!(
            home.read()?,
            OnDisk::Invalid(AuthError::Syntax(_))
        ));
        Ok(())
    }
}
