//! Custody of the step's command files while Codex runs.
//!
//! The runner creates a step's `GITHUB_ENV`, `GITHUB_PATH`, `GITHUB_OUTPUT`, `GITHUB_STATE`
//! and `GITHUB_STEP_SUMMARY` as its own user, mode 0644, and mounts their directory into a
//! container action at `/github/file_commands`; Codex runs as that user. A line Codex appends
//! would reach every later step (`LD_PRELOAD=…` in GITHUB_ENV), this action's post stage (which
//! holds the write token), its state or its outputs. So before Codex starts, the action takes
//! a copy of what it wrote itself; once Codex and everything it started have ended, it puts
//! each file back to exactly that, as a new regular file (whatever Codex left at the path,
//! a link, a directory or a file with extra lines, is removed, never followed), and only then
//! writes what comes after.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use super::Workflow;
use crate::untrusted::read_untrusted_with_metadata;

/// The most the action reads of a command file: the runner allows a step summary of 1 MiB;
/// the action's own lines are far fewer.
const MAX_BYTES: u64 = 8 << 20;

/// One command file as the action left it.
#[derive(Debug)]
struct Held {
    /// Its variable (`GITHUB_ENV`, …).
    variable: &'static str,
    path: PathBuf,
    /// Its bytes; `None` when there was no file.
    bytes: Option<Vec<u8>>,
    /// Owner, group and mode, to put back.
    #[cfg(unix)]
    owner: Option<(u32, u32, u32)>,
    /// The file's identity, to tell a replaced file from the same one.
    #[cfg(unix)]
    inode: Option<(u64, u64)>,
}

/// The command files as the action left them before Codex started.
#[derive(Debug)]
pub struct Custody {
    held: Vec<Held>,
}

impl Workflow {
    /// The command files, by variable name.
    fn command_files(&self) -> [(&'static str, Option<&PathBuf>); 5] {
        [
            ("GITHUB_ENV", self.env_file.as_ref()),
            ("GITHUB_PATH", self.path_file.as_ref()),
            ("GITHUB_OUTPUT", self.output_file.as_ref()),
            ("GITHUB_STATE", self.state_file.as_ref()),
            ("GITHUB_STEP_SUMMARY", self.summary_file.as_ref()),
        ]
    }

    /// Takes a copy of every command file, to put back with [`Custody::restore`] after Codex.
    pub fn take_custody(&self) -> io::Result<Custody> {
        let held = self
            .command_files()
            .into_iter()
            .filter_map(|(variable, path)| Some((variable, path?)))
            .map(|(variable, path)| hold(variable, path))
            .collect::<io::Result<_>>()?;
        Ok(Custody { held })
    }
}

fn hold(variable: &'static str, path: &Path) -> io::Result<Held> {
    let (bytes, meta) = match read_regular(path)? {
        Some((bytes, meta)) => (Some(bytes), Some(meta)),
        None => (None, None),
    };
    #[cfg(unix)]
    let (owner, inode) = {
        use std::os::unix::fs::MetadataExt as _;
        (
            meta.as_ref().map(|m| (m.uid(), m.gid(), m.mode() & 0o7777)),
            meta.as_ref().map(|m| (m.dev(), m.ino())),
        )
    };
    #[cfg(not(unix))]
    let _ = meta;
    Ok(Held {
        variable,
        path: path.to_owned(),
        bytes,
        #[cfg(unix)]
        owner,
        #[cfg(unix)]
        inode,
    })
}

/// Reads a regular file without following a link or blocking on a FIFO; `None` when the path
/// holds nothing.
fn read_regular(path: &Path) -> io::Result<Option<(Vec<u8>, fs::Metadata)>> {
    Ok(read_untrusted_with_metadata(path, MAX_BYTES)?.map(|(bytes, meta)| (bytes.to_vec(), meta)))
}

impl Custody {
    /// Puts every file back as the action left it. Returns the variables whose file had been
    /// changed (written to, replaced or removed). Call it only once nothing Codex started
    /// runs any more: a process still running could write again after.
    pub fn restore(self) -> io::Result<Vec<&'static str>> {
        let mut changed = Vec::new();
        for held in self.held {
            if !held.is_intact() {
                held.put_back()?;
                changed.push(held.variable);
            }
        }
        Ok(changed)
    }
}

impl Held {
    /// Whether the path still holds the very file the action left, with the same bytes.
    fn is_intact(&self) -> bool {
        let now = match read_regular(&self.path) {
            Ok(now) => now,
            Err(_) => return false,
        };
        match (&self.bytes, now) {
            (None, None) => true,
            (Some(bytes), Some((now, meta))) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::MetadataExt as _;
                    let same_file = self.inode == Some((meta.dev(), meta.ino()));
                    let same_mode =
                        self.owner == Some((meta.uid(), meta.gid(), meta.mode() & 0o7777));
                    same_file && same_mode && meta.nlink() == 1 && *bytes == now
                }
                #[cfg(not(unix))]
                {
                    let _ = meta;
                    *bytes == now
                }
            }
            _ => false,
        }
    }

    /// Removes whatever is at the path and writes the held bytes as a new file.
    fn put_back(&self) -> io::Result<()> {
        let context =
            |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", self.path.display()));
        match fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(&self.path).map_err(context)?,
            Ok(_) => fs::remove_file(&self.path).map_err(context)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(context(e)),
        }
        let Some(bytes) = &self.bytes else {
            return Ok(());
        };
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options
                .mode(self.owner.map_or(0o644, |(_, _, mode)| mode))
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
        }
        let mut file = options.open(&self.path).map_err(context)?;
        file.write_all(bytes).map_err(context)?;
        #[cfg(unix)]
        if let Some((uid, gid, mode)) = self.owner {
            // The runner reads the file as its own user after the step; as root, give it back.
            if rustix::process::geteuid().is_root() {
                std::os::unix::fs::fchown(&file, Some(uid), Some(gid)).map_err(context)?;
            }
            file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
                .map_err(context)?;
        }
        file.sync_all().map_err(context)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn workflow(dir: &Path) -> Workflow {
        let file = |name: &str| {
            let path = dir.join(name);
            fs::write(&path, "").ok();
            Some(path)
        };
        Workflow {
            output_file: file("output"),
            state_file: file("state"),
            summary_file: file("summary"),
            env_file: file("env"),
            path_file: file("path"),
        }
    }

    #[test]
    fn untouched_files_are_left_alone() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let workflow = workflow(dir.path());
        workflow.set_output("exit-code", "0")?;
        let custody = workflow.take_custody()?;
        assert_eq!(custody.restore()?, Vec::<&str>::new());
        assert_eq!(
            fs::read_to_string(dir.path().join("output"))?,
            "exit-code=0\n"
        );
        Ok(())
    }

    #[test]
    fn what_another_process_wrote_is_undone() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let workflow = workflow(dir.path());
        workflow.save_state("baseline", "abc")?;
        let custody = workflow.take_custody()?;
        // Appended lines, a file replaced by a link to a file elsewhere, one removed, one
        // replaced by a directory.
        let mut env = fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("env"))?;
        env.write_all(b"LD_PRELOAD=/tmp/x.so\n")?;
        fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("state"))?
            .write_all(b"baseline=forged\n")?;
        let elsewhere = dir.path().join("elsewhere");
        fs::write(&elsewhere, "keep me")?;
        fs::remove_file(dir.path().join("output"))?;
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("output"))?;
        fs::remove_file(dir.path().join("summary"))?;
        fs::create_dir(dir.path().join("summary"))?;
        fs::remove_file(dir.path().join("path"))?;
        let mut changed = custody.restore()?;
        changed.sort_unstable();
        assert_eq!(
            changed,
            [
                "GITHUB_ENV",
                "GITHUB_OUTPUT",
                "GITHUB_PATH",
                "GITHUB_STATE",
                "GITHUB_STEP_SUMMARY"
            ]
        );
        for (name, expected) in [
            ("env", ""),
            ("state", "baseline=abc\n"),
            ("output", ""),
            ("summary", ""),
            ("path", ""),
        ] {
            let path = dir.path().join(name);
            assert!(fs::symlink_metadata(&path)?.file_type().is_file(), "{name}");
            assert_eq!(fs::read_to_string(&path)?, expected, "{name}");
        }
        // The link's target was never written through.
        assert_eq!(fs::read_to_string(&elsewhere)?, "keep me");
        // What the action writes after lands in the restored files.
        workflow.set_env("CODEX_HOME", "/h")?;
        assert_eq!(
            fs::read_to_string(dir.path().join("env"))?,
            "CODEX_HOME=/h\n"
        );
        Ok(())
    }

    #[test]
    fn a_hard_link_to_the_file_is_cut_off() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let workflow = workflow(dir.path());
        let custody = workflow.take_custody()?;
        let link = dir.path().join("kept-link");
        fs::hard_link(dir.path().join("env"), &link)?;
        assert_eq!(custody.restore()?, ["GITHUB_ENV"]);
        fs::OpenOptions::new()
            .append(true)
            .open(&link)?
            .write_all(b"LD_PRELOAD=/tmp/x.so\n")?;
        assert_eq!(fs::read_to_string(dir.path().join("env"))?, "");
        Ok(())
    }
}
