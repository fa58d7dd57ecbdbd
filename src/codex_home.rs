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
    /// [`read_untrusted`] reads: never through a link, never from a FIFO; on Unix inside the
    /// directory opened without following a link (a CODEX_HOME that is a link is an error).
    pub fn read(&self) -> io::Result<OnDisk> {
        #[cfg(unix)]
        let bytes = match crate::untrusted::open_dir(&self.dir) {
            Ok(dir) => crate::untrusted::read_untrusted_in(
                &dir,
                &self.dir,
                AUTH_FILE,
                MAX_FILE_BYTES as u64,
            )?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        #[cfg(not(unix))]
        let bytes = read_untrusted(&self.auth_path(), MAX_FILE_BYTES as u64)?;
        match bytes {
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
    ///
    /// On Unix every step goes through the directory opened without following a link
    /// ([`crate::untrusted::open_dir`]): Codex's user may have turned CODEX_HOME into a link
    /// (to `/run`, say) for a later stage that runs as root to write through.
    pub fn write(&self, file: &AuthFile) -> io::Result<()> {
        let contents = file.to_pretty_json().map_err(io::Error::other)?;
        #[cfg(unix)]
        {
            use rustix::fs::{fsync, openat, renameat, unlinkat, AtFlags, Mode, OFlags};
            let dir = self.create_dir()?;
            let temp = format!(".auth.json.{}", crate::untrusted::unique());
            let flags =
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let mut out = fs::File::from(openat(
                &dir,
                temp.as_str(),
                flags,
                Mode::from_raw_mode(0o600),
            )?);
            let written = out
                .write_all(contents.expose().as_bytes())
                .and_then(|()| out.sync_all())
                .and_then(|()| Ok(renameat(&dir, temp.as_str(), &dir, AUTH_FILE)?));
            if let Err(e) = written {
                let _ = unlinkat(&dir, temp.as_str(), AtFlags::empty());
                return Err(e);
            }
            // The rename itself is made durable by syncing the directory.
            fsync(&dir)?;
            Ok(())
        }
        #[cfg(not(unix))]
        {
            self.create_dir()?;
            let mut temp = tempfile::Builder::new()
                .prefix(".auth.json.")
                .tempfile_in(&self.dir)?;
            temp.write_all(contents.expose().as_bytes())?;
            temp.as_file().sync_all()?;
            temp.persist(self.auth_path()).map_err(|e| e.error)?;
            Ok(())
        }
    }

    /// Writes a `config.toml` that pins file storage for credentials, unless one exists:
    /// Codex steps run later on the same home (or by hand) then read and rewrite the file.
    /// Created inside the directory opened without following a link, never through one.
    pub fn ensure_config(&self) -> io::Result<bool> {
        const PINNED: &[u8] = b"cli_auth_credentials_store = \"file\"\n";
        #[cfg(unix)]
        let created = {
            use rustix::fs::{openat, Mode, OFlags};
            let dir = self.create_dir()?;
            let flags =
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            openat(&dir, CONFIG_FILE, flags, Mode::from_raw_mode(0o644))
                .map(fs::File::from)
                .map_err(io::Error::from)
        };
        #[cfg(not(unix))]
        let created = {
            self.create_dir()?;
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(self.dir.join(CONFIG_FILE))
        };
        match created {
            Ok(mut out) => {
                out.write_all(PINNED)?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes `auth.json` (a missing file, or a missing directory, is fine), inside the
    /// directory opened without following a link.
    pub fn remove_auth(&self) -> io::Result<()> {
        #[cfg(unix)]
        let removed = match crate::untrusted::open_dir(&self.dir) {
            Ok(dir) => rustix::fs::unlinkat(&dir, AUTH_FILE, rustix::fs::AtFlags::empty())
                .map_err(io::Error::from),
            Err(e) => Err(e),
        };
        #[cfg(not(unix))]
        let removed = fs::remove_file(self.auth_path());
        match removed {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Creates the directory (and its parents) if needed, then opens it without following a
    /// link and makes it 0700 through that handle.
    #[cfg(unix)]
    fn create_dir(&self) -> io::Result<std::os::fd::OwnedFd> {
        let mut builder = DirBuilder::new();
        builder.recursive(true);
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        if let Some(parent) = self.dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            builder.create(parent)?;
        }
        match fs::DirBuilder::new().create(&self.dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        let dir = crate::untrusted::open_dir(&self.dir)?;
        rustix::fs::fchmod(&dir, rustix::fs::Mode::from_raw_mode(0o700))?;
        Ok(dir)
    }

    #[cfg(not(unix))]
    fn create_dir(&self) -> io::Result<()> {
        DirBuilder::new().recursive(true).create(&self.dir)
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
                } else if !stored.account().admits(&disk.account()) {
                    // By the tokens' claims: a hostile job may have left a login of another
                    // account here with the stored account's id in the plain field.
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

    /// A CODEX_HOME that Codex's user turned into a link (to `/run`, say) is never written or
    /// read through (handing over: `codex::tests`): root would otherwise create auth.json there and give the
    /// directory's files (the Docker socket) to Codex's user.
    #[cfg(unix)]
    #[test]
    fn a_codex_home_that_is_a_link_is_never_followed() -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::MetadataExt as _;
        let root = tempfile::tempdir()?;
        let elsewhere = root.path().join("run");
        fs::create_dir(&elsewhere)?;
        fs::write(elsewhere.join("docker.sock"), "")?;
        let before = fs::metadata(elsewhere.join("docker.sock"))?;
        let link = root.path().join(".codex");
        std::os::unix::fs::symlink(&elsewhere, &link)?;
        let home = CodexHome::new(&link);
        let file = AuthFile::decode(&sample().to_string())?;
        for (what, refused) in [
            ("write", home.write(&file).err()),
            ("ensure_config", home.ensure_config().err()),
            ("read", home.read().err()),
            ("remove_auth", home.remove_auth().err()),
        ] {
            let refused = refused.ok_or(format!("{what} went through the link"))?;
            assert!(
                refused.to_string().contains("symbolic link"),
                "{what}: {refused}"
            );
        }
        let names: Vec<_> = fs::read_dir(&elsewhere)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["docker.sock"]);
        let after = fs::metadata(elsewhere.join("docker.sock"))?;
        assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
        Ok(())
    }
}
