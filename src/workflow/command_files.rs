//! Custody of the step's command files while Codex runs.
//!
//! The runner creates a step's `GITHUB_ENV`, `GITHUB_PATH`, `GITHUB_OUTPUT`, `GITHUB_STATE`
//! and `GITHUB_STEP_SUMMARY` as its own user, mode 0644, and mounts their directory into a
//! container action at `/github/file_commands`; Codex runs as that user. A line Codex appends
//! would reach every later step (`LD_PRELOAD=…` in GITHUB_ENV), this action's post stage (which
//! holds the write token), its state or its outputs. The runner reads the files after the
//! step whatever happened to it: a failed step, a cancelled one (actions/runner reads them
//! right after its kill), or a stage that died.
//!
//! So the custody has two layers, and fails closed:
//!
//! 1. **Locked** (a container action, where this process is root and Codex is not): before
//!    Codex starts, `/github/file_commands` is made root's, mode 0700, and its files root's,
//!    so that Codex's user cannot reach them at all, at any moment; `/github/workflow` (the
//!    event payload later steps read) is made root's, mode 0755, its files root's and not
//!    writable by others, so that Codex can still read the event but change nothing. They are
//!    given back only once Codex and everything it started have ended. Should this process
//!    die first, the files stay locked: the runner then reads nothing, which is nothing of
//!    Codex's.
//! 2. **Held**: a copy of each file as the action left it is taken before Codex starts, and
//!    each file is put back to exactly that after (a new regular file; a link or file left
//!    at the path is removed, a directory renamed aside, never followed nor walked). Every
//!    file is visited whatever fails with another, and a guard ([`Custody`]'s drop) does it on
//!    every way out, a panic included. Outside a container (Codex runs as this process's own
//!    user, or as another when run as root by hand) this is the layer there is.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use super::Workflow;
use crate::untrusted::read_untrusted_with_metadata;

/// The most the action reads of a command file: the runner allows a step summary of 1 MiB;
/// the action's own lines are far fewer.
const MAX_BYTES: u64 = 8 << 20;

/// Where the runner mounts the step's command files in a container action (actions/runner,
/// `ContainerActionHandler`).
pub const FILE_COMMANDS: &str = "/github/file_commands";

/// Where the runner mounts the workflow's files (the event payload, `GITHUB_EVENT_PATH`) in a
/// container action; later steps read them.
pub const WORKFLOW_FILES: &str = "/github/workflow";

/// Where the runner mounts its temporary directory (`RUNNER_TEMP`, runner 2.329 and later),
/// which holds the two directories above by their host names (`_runner_file_commands`,
/// `_github_workflow`). It belongs to Codex's user, who could rename them there (renaming an
/// entry takes only the parent's write permission) and plant a link in their place for later
/// steps: for the run it is made root's with the sticky bit (mode 1777), so that nobody but
/// root renames or removes an entry root owns, while Codex can still use it as before.
pub const RUNNER_TEMP: &str = "/github/runner_temp";

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

/// The command files as the action left them before Codex started, and the directories
/// locked for the run. Dropped without [`Custody::restore`] (a panic, a stage future
/// dropped), it puts the files back and keeps the directories locked.
#[derive(Debug)]
pub struct Custody {
    held: Vec<Held>,
    locked: Vec<Locked>,
    done: bool,
}

/// Why the command files could not all be put back, or given back. Every file was visited.
#[derive(Debug, thiserror::Error)]
#[error("{}", .failures.join("; "))]
pub struct NotRestored {
    /// One line per file or directory that failed.
    pub failures: Vec<String>,
    /// The variables whose files were changed (the ones that could be put back included).
    pub changed: Vec<&'static str>,
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
    /// With `lock` (a container action run as root, Codex as another user), also locks
    /// [`FILE_COMMANDS`] (when it holds the command files) and [`WORKFLOW_FILES`]; a lock that
    /// cannot be taken is an error, and whatever was locked already is given back.
    pub fn take_custody(&self, lock: bool) -> io::Result<Custody> {
        let file_commands = Path::new(FILE_COMMANDS);
        let mut dirs = Vec::new();
        if lock {
            dirs.push((Path::new(RUNNER_TEMP), Access::Sticky));
            if self
                .command_files()
                .iter()
                .any(|(_, path)| path.and_then(|p| p.parent()) == Some(file_commands))
            {
                dirs.push((file_commands, Access::None));
            }
            dirs.push((Path::new(WORKFLOW_FILES), Access::Read));
        }
        self.take_custody_locking(&dirs)
    }

    /// [`Workflow::take_custody`], locking `dirs`.
    fn take_custody_locking(&self, dirs: &[(&Path, Access)]) -> io::Result<Custody> {
        let held = self
            .command_files()
            .into_iter()
            .filter_map(|(variable, path)| Some((variable, path?)))
            .map(|(variable, path)| hold(variable, path))
            .collect::<io::Result<Vec<_>>>()?;
        super::record_own_writes(held.iter().map(|h| &h.path));
        let mut custody = Custody {
            held,
            locked: Vec::new(),
            done: false,
        };
        for &(dir, access) in dirs {
            match lock_dir(dir, access) {
                Ok(Some(locked)) => custody.locked.push(locked),
                Ok(None) => {}
                Err(e) => {
                    custody.done = true;
                    let more = match custody.give_back() {
                        Ok(()) => String::new(),
                        Err(failures) => {
                            format!("; giving the others back failed: {}", failures.join("; "))
                        }
                    };
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot lock {}: {e}{more}", dir.display()),
                    ));
                }
            }
        }
        Ok(custody)
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
    /// Whether directories are locked (Codex's user cannot reach the command files).
    pub fn is_locked(&self) -> bool {
        !self.locked.is_empty()
    }

    /// Puts every file back as the action left it, then, with `release`, gives the locked
    /// directories back. Returns the variables whose file had been changed (written to,
    /// replaced or removed). Release only once nothing Codex started runs any more: a process
    /// still running could write after. Without `release` the directories stay locked (the
    /// runner then reads nothing of the step's files), which the error says.
    pub fn restore(mut self, release: bool) -> Result<Vec<&'static str>, NotRestored> {
        self.finish(release)
    }

    fn finish(&mut self, release: bool) -> Result<Vec<&'static str>, NotRestored> {
        self.done = true;
        // What the action itself appended meanwhile is part of what it left.
        for held in &mut self.held {
            let own = super::own_writes_to(&held.path);
            if !own.is_empty() {
                held.bytes
                    .get_or_insert_with(Vec::new)
                    .extend_from_slice(&own);
            }
        }
        let mut changed = Vec::new();
        let mut failures = Vec::new();
        // Every file, whatever fails with another.
        for held in &self.held {
            let locked = self
                .locked
                .iter()
                .find_map(|l| l.owner_while_locked(&held.path));
            if !held.is_intact(locked) {
                changed.push(held.variable);
                if let Err(e) = held.put_back() {
                    failures.push(e.to_string());
                }
            }
        }
        if release {
            if let Err(more) = self.give_back() {
                failures.extend(more);
            }
        } else if !self.locked.is_empty() {
            let dirs: Vec<_> = self
                .locked
                .iter()
                .map(|l| l.path.display().to_string())
                .collect();
            failures.push(format!(
                "{} kept root's, since something Codex started may still run: the runner reads \
                 none of the step's files",
                dirs.join(" and ")
            ));
        }
        if failures.is_empty() {
            Ok(changed)
        } else {
            Err(NotRestored { failures, changed })
        }
    }

    /// Gives every locked directory back, the last locked first, whatever fails.
    fn give_back(&mut self) -> Result<(), Vec<String>> {
        let failures: Vec<String> = std::mem::take(&mut self.locked)
            .into_iter()
            .rev()
            .filter_map(|locked| locked.unlock().err())
            .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures)
        }
    }
}

impl Drop for Custody {
    /// The guard: a custody never restored (a panic, a future dropped) puts the files back and
    /// keeps the directories locked (fail closed: the caller could not say that Codex ended).
    fn drop(&mut self) {
        if !self.done {
            let _ = self.finish(false);
        }
    }
}

impl Held {
    /// Whether the path still holds the very file the action left, with the same bytes, and
    /// its owner, group and mode, or those the lock gave it (`locked`).
    fn is_intact(&self, locked: Option<(u32, u32, u32)>) -> bool {
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
                    let owner = Some((meta.uid(), meta.gid(), meta.mode() & 0o7777));
                    let same_mode = self.owner == owner || (locked.is_some() && locked == owner);
                    same_file && same_mode && meta.nlink() == 1 && *bytes == now
                }
                #[cfg(not(unix))]
                {
                    let _ = (meta, locked);
                    *bytes == now
                }
            }
            _ => false,
        }
    }

    /// Clears the path (a directory is renamed aside in one step, never walked: a deep tree
    /// would exhaust file descriptors or the stack; a file or link is removed) and writes the
    /// held bytes as a new file.
    fn put_back(&self) -> io::Result<()> {
        let context =
            |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", self.path.display()));
        match fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.is_dir() => {
                fs::rename(&self.path, aside(&self.path)).map_err(context)?
            }
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

/// A name beside `path`, for what was found there, that nothing else uses.
fn aside(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    path.with_file_name(format!(
        ".{name}.left-by-codex.{}.{nanos}",
        std::process::id()
    ))
}

/// What Codex's user may do in a locked directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Nothing: root's, mode 0700.
    None,
    /// Read its files: root's, mode 0755, the files not writable by others.
    Read,
    /// Add entries and change its own, never root's: root's, mode 1777, the entries left as
    /// they are.
    Sticky,
}

/// A directory made root's for Codex's run, with what it and its files were before.
#[derive(Debug)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
struct Locked {
    path: PathBuf,
    #[cfg(target_os = "linux")]
    access: Access,
    #[cfg(target_os = "linux")]
    dir: std::os::fd::OwnedFd,
    /// Owner, group and mode of the directory.
    #[cfg(target_os = "linux")]
    owner: (u32, u32, u32),
    /// Each entry's name, owner, group and mode (a link's mode is not changed).
    #[cfg(target_os = "linux")]
    entries: Vec<(std::ffi::OsString, (u32, u32, u32))>,
}

/// Locks `path` (see the module's doc): opened without following a link, the directory first
/// (after which no user but root can add, remove or rename an entry), then each entry, one
/// level, through the open directory. `None` when there is no such directory.
#[cfg(target_os = "linux")]
fn lock_dir(path: &Path, access: Access) -> io::Result<Option<Locked>> {
    use rustix::fs::{chmodat, chownat, fchmod, fchown, fstat, statat, AtFlags, Dir, FileType};
    use rustix::fs::{Gid, Mode, Uid};
    let dir = match rustix::fs::openat(
        rustix::fs::CWD,
        path,
        rustix::fs::OFlags::RDONLY
            | rustix::fs::OFlags::DIRECTORY
            | rustix::fs::OFlags::NOFOLLOW
            | rustix::fs::OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(dir) => dir,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let stat = fstat(&dir)?;
    let mut locked = Locked {
        path: path.to_owned(),
        access,
        owner: (stat.st_uid, stat.st_gid, stat.st_mode & 0o7777),
        entries: Vec::new(),
        dir,
    };
    let dir_mode = match access {
        Access::None => 0o700,
        Access::Read => 0o755,
        Access::Sticky => 0o1777,
    };
    let entries = fchown(&locked.dir, Some(Uid::ROOT), Some(Gid::ROOT))
        .and_then(|()| fchmod(&locked.dir, Mode::from_raw_mode(dir_mode)))
        .and_then(|()| Dir::read_from(&locked.dir));
    let entries = match entries {
        Ok(_) if access == Access::Sticky => return Ok(Some(locked)),
        Ok(entries) => entries,
        Err(e) => {
            let _ = locked.unlock();
            return Err(e.into());
        }
    };
    for entry in entries {
        let step = entry.and_then(|entry| {
            let name = entry.file_name();
            if name.to_bytes() == b"." || name.to_bytes() == b".." {
                return Ok(());
            }
            let stat = statat(&locked.dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
            let mode = stat.st_mode & 0o7777;
            let os_name =
                <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name.to_bytes())
                    .to_owned();
            locked
                .entries
                .push((os_name, (stat.st_uid, stat.st_gid, mode)));
            chownat(
                &locked.dir,
                name,
                Some(Uid::ROOT),
                Some(Gid::ROOT),
                AtFlags::SYMLINK_NOFOLLOW,
            )?;
            // The directory is root's now: nobody else can swap this entry for a link.
            if access == Access::Read && FileType::from_raw_mode(stat.st_mode) != FileType::Symlink
            {
                chmodat(
                    &locked.dir,
                    name,
                    Mode::from_raw_mode(mode & !0o022),
                    AtFlags::empty(),
                )?;
            }
            Ok(())
        });
        if let Err(e) = step {
            let _ = locked.unlock();
            return Err(e.into());
        }
    }
    Ok(Some(locked))
}

/// Nothing to lock outside Linux, where no container action runs.
#[cfg(not(target_os = "linux"))]
fn lock_dir(_path: &Path, _access: Access) -> io::Result<Option<Locked>> {
    Ok(None)
}

impl Locked {
    /// The owner, group and mode the lock gave the file at `path`, when it is an entry of this
    /// directory.
    #[cfg(target_os = "linux")]
    fn owner_while_locked(&self, path: &Path) -> Option<(u32, u32, u32)> {
        if path.parent() != Some(self.path.as_path()) {
            return None;
        }
        let name = path.file_name()?;
        let (_, (_, _, mode)) = self.entries.iter().find(|(entry, _)| entry == name)?;
        match self.access {
            Access::None => Some((0, 0, *mode)),
            Access::Read => Some((0, 0, mode & !0o022)),
            Access::Sticky => None,
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn owner_while_locked(&self, _path: &Path) -> Option<(u32, u32, u32)> {
        None
    }

    /// Gives each entry, then the directory, back its owner and mode, whatever fails.
    #[cfg(target_os = "linux")]
    fn unlock(self) -> Result<(), String> {
        use rustix::fs::{chmodat, chownat, fchmod, fchown, statat, AtFlags, FileType};
        use rustix::fs::{Gid, Mode, Uid};
        let mut failures = Vec::new();
        for (name, (uid, gid, mode)) in &self.entries {
            let given = statat(&self.dir, name, AtFlags::SYMLINK_NOFOLLOW).and_then(|now| {
                if FileType::from_raw_mode(now.st_mode) != FileType::Symlink
                    && now.st_mode & 0o7777 != *mode
                {
                    chmodat(
                        &self.dir,
                        name,
                        Mode::from_raw_mode(*mode),
                        AtFlags::empty(),
                    )?;
                }
                chownat(
                    &self.dir,
                    name,
                    Some(Uid::from_raw(*uid)),
                    Some(Gid::from_raw(*gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
            });
            match given {
                Ok(()) | Err(rustix::io::Errno::NOENT) => {}
                Err(e) => failures.push(format!("{}: {e}", self.path.join(name).display())),
            }
        }
        let (uid, gid, mode) = self.owner;
        if let Err(e) = fchmod(&self.dir, Mode::from_raw_mode(mode)).and_then(|()| {
            fchown(
                &self.dir,
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
            )
        }) {
            failures.push(format!("{}: {e}", self.path.display()));
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(format!("cannot give back {}", failures.join(", ")))
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn unlock(self) -> Result<(), String> {
        Ok(())
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
    fn untouched_files_are_left_alone() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let workflow = workflow(dir.path());
        workflow.set_output("exit-code", "0")?;
        let custody = workflow.take_custody(false)?;
        assert_eq!(custody.restore(true)?, Vec::<&str>::new());
        assert_eq!(
            fs::read_to_string(dir.path().join("output"))?,
            "exit-code=0\n"
        );
        Ok(())
    }

    #[test]
    fn what_another_process_wrote_is_undone() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let workflow = workflow(dir.path());
        workflow.save_state("baseline", "abc")?;
        let custody = workflow.take_custody(false)?;
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
        let mut changed = custody.restore(true)?;
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
    fn what_the_action_itself_writes_meanwhile_is_kept() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let workflow = workflow(dir.path());
        let custody = workflow.take_custody(false)?;
        workflow.summary("### Sign in\n")?;
        fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("env"))?
            .write_all(b"LD_PRELOAD=/x.so\n")?;
        assert_eq!(custody.restore(true)?, ["GITHUB_ENV"]);
        assert_eq!(
            fs::read_to_string(dir.path().join("summary"))?,
            "### Sign in\n"
        );
        assert_eq!(fs::read_to_string(dir.path().join("env"))?, "");
        Ok(())
    }

    #[test]
    fn a_hard_link_to_the_file_is_cut_off() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let workflow = workflow(dir.path());
        let custody = workflow.take_custody(false)?;
        let link = dir.path().join("kept-link");
        fs::hard_link(dir.path().join("env"), &link)?;
        assert_eq!(custody.restore(true)?, ["GITHUB_ENV"]);
        fs::OpenOptions::new()
            .append(true)
            .open(&link)?
            .write_all(b"LD_PRELOAD=/tmp/x.so\n")?;
        assert_eq!(fs::read_to_string(dir.path().join("env"))?, "");
        Ok(())
    }

    #[test]
    fn every_file_is_visited_whatever_fails_and_a_directory_is_moved_aside(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let mut workflow = workflow(dir.path());
        // GITHUB_ENV in a directory of its own, which is then replaced by a file: putting it
        // back fails.
        fs::create_dir(dir.path().join("sub"))?;
        fs::write(dir.path().join("sub/env"), "")?;
        workflow.env_file = Some(dir.path().join("sub/env"));
        workflow.set_output("exit-code", "0")?;
        let custody = workflow.take_custody(false)?;
        fs::remove_dir_all(dir.path().join("sub"))?;
        fs::write(dir.path().join("sub"), "not a directory")?;
        // A tree far deeper than a walk could go with few file descriptors, in place of
        // GITHUB_OUTPUT; a link in place of GITHUB_STATE.
        fs::remove_file(dir.path().join("output"))?;
        deep_tree(&dir.path().join("output"), 3000)?;
        fs::remove_file(dir.path().join("state"))?;
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("state"))?;
        let failed = custody.restore(true).err().ok_or("restore did not fail")?;
        assert_eq!(failed.failures.len(), 1, "{failed}");
        assert!(failed.failures[0].contains("sub/env"), "{failed}");
        let mut changed = failed.changed.clone();
        changed.sort_unstable();
        assert_eq!(changed, ["GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_STATE"]);
        // The files after the failed one were put back all the same.
        assert_eq!(
            fs::read_to_string(dir.path().join("output"))?,
            "exit-code=0\n"
        );
        assert!(fs::symlink_metadata(dir.path().join("state"))?.is_file());
        // The tree was renamed aside whole, not walked.
        let aside: Vec<_> = fs::read_dir(dir.path())?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".output.left-by-codex."))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        assert!(dir.path().join(&aside[0]).join("d").is_dir());
        Ok(())
    }

    /// A directory `depth` levels deep at `path` (built through open directories: its full
    /// path is far longer than PATH_MAX).
    fn deep_tree(path: &Path, depth: usize) -> io::Result<()> {
        use rustix::fs::{mkdirat, openat, Mode, OFlags};
        fs::create_dir(path)?;
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let mut fd = openat(rustix::fs::CWD, path, flags, Mode::empty())?;
        for _ in 0..depth {
            mkdirat(&fd, "d", Mode::from_raw_mode(0o755))?;
            fd = openat(&fd, "d", flags, Mode::empty())?;
        }
        Ok(())
    }

    #[test]
    fn a_custody_dropped_unrestored_puts_the_files_back() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let workflow = workflow(dir.path());
        workflow.save_state("baseline", "abc")?;
        let custody = workflow.take_custody(false)?;
        fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("state"))?
            .write_all(b"baseline=forged\n")?;
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _custody = custody;
            panic!("a panic while Codex runs");
        }));
        assert!(unwound.is_err());
        assert_eq!(
            fs::read_to_string(dir.path().join("state"))?,
            "baseline=abc\n"
        );
        Ok(())
    }

    #[cfg(target_os = "linux")]
    /// The runner's user on GitHub's hosted runners.
    const RUNNER_UID: u32 = 1001;

    #[cfg(target_os = "linux")]
    /// Whether `uid` can open `path` for appending, tried by a process of that user.
    fn can_append(uid: u32, path: &Path) -> bool {
        use std::os::unix::process::CommandExt as _;
        std::process::Command::new("sh")
            .args(["-c", "echo planted >> \"$0\""])
            .arg(path)
            .uid(uid)
            .gid(65534)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_locked_directory_is_out_of_reach_until_given_back(
    ) -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::{chown, MetadataExt as _, PermissionsExt as _};
        use std::os::unix::process::CommandExt as _;
        assert!(
            rustix::process::geteuid().is_root(),
            "locking needs root, as the container action is: run the tests as root (scripts/test)"
        );
        let root = tempfile::tempdir()?;
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755))?;
        let commands = root.path().join("file_commands");
        let workflow_files = root.path().join("workflow");
        for dir in [&commands, &workflow_files] {
            fs::create_dir(dir)?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o775))?;
            chown(dir, Some(RUNNER_UID), Some(RUNNER_UID))?;
        }
        let env = commands.join("set_env_1");
        let event = workflow_files.join("event.json");
        fs::write(&env, "")?;
        fs::write(&event, "{}")?;
        fs::set_permissions(&event, fs::Permissions::from_mode(0o664))?;
        for file in [&env, &event] {
            chown(file, Some(RUNNER_UID), Some(RUNNER_UID))?;
        }
        assert!(can_append(RUNNER_UID, &env), "the check could not fail");

        let locked = [
            lock_dir(&commands, Access::None)?.ok_or("no directory")?,
            lock_dir(&workflow_files, Access::Read)?.ok_or("no directory")?,
        ];
        assert!(!can_append(RUNNER_UID, &env));
        assert!(!can_append(RUNNER_UID, &event));
        assert!(!can_append(RUNNER_UID, &commands.join("new")));
        let meta = fs::metadata(&commands)?;
        assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o700));
        // The event stays readable.
        let read = std::process::Command::new("cat")
            .arg(&event)
            .uid(RUNNER_UID)
            .gid(65534)
            .output()?;
        assert_eq!(read.stdout, b"{}");

        for locked in locked {
            locked.unlock()?;
        }
        for (path, mode) in [
            (&commands, 0o775),
            (&workflow_files, 0o775),
            (&env, 0o644),
            (&event, 0o664),
        ] {
            let meta = fs::symlink_metadata(path)?;
            assert_eq!(
                (meta.uid(), meta.gid(), meta.mode() & 0o7777),
                (RUNNER_UID, RUNNER_UID, mode),
                "{}",
                path.display()
            );
        }
        assert!(can_append(RUNNER_UID, &env));
        Ok(())
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_locked_custody_with_nothing_written_reports_nothing_and_gives_all_back(
    ) -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::{chown, MetadataExt as _, PermissionsExt as _};
        let root = tempfile::tempdir()?;
        let dir = root.path().join("file_commands");
        fs::create_dir(&dir)?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
        let workflow = workflow(&dir);
        workflow.save_state("handoff", "x")?;
        for entry in fs::read_dir(&dir)? {
            chown(entry?.path(), Some(RUNNER_UID), Some(RUNNER_UID))?;
        }
        chown(&dir, Some(RUNNER_UID), Some(RUNNER_UID))?;
        let custody = workflow.take_custody_locking(&[(&dir, Access::None)])?;
        assert!(custody.is_locked());
        assert_eq!(fs::metadata(dir.join("state"))?.uid(), 0);
        assert_eq!(custody.restore(true)?, Vec::<&str>::new());
        for path in [dir.clone(), dir.join("state"), dir.join("env")] {
            assert_eq!(fs::metadata(&path)?.uid(), RUNNER_UID, "{}", path.display());
        }
        assert_eq!(fs::read_to_string(dir.join("state"))?, "handoff=x\n");
        Ok(())
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_link_in_place_of_a_directory_is_not_locked_through(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let root = tempfile::tempdir()?;
        let elsewhere = root.path().join("elsewhere");
        fs::create_dir(&elsewhere)?;
        let link = root.path().join("file_commands");
        std::os::unix::fs::symlink(&elsewhere, &link)?;
        assert!(lock_dir(&link, Access::None).is_err());
        Ok(())
    }
}
