//! The copies' directories: whether a copy is still as it was verified, and making the way to
//! it this process's user's own.

use std::io;
use std::path::Path;

use super::unpack::set_mode;
use super::{Marker, Platform, MARKER, PACKAGE};
use crate::failure::Failure;

/// What the cache holds for a version.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Cache {
    Missing,
    Verified,
    /// There, but not as it was verified: why.
    Changed(String),
}

pub(super) fn cached(dir: &Path, version: &str, platform: &Platform) -> Cache {
    if std::fs::symlink_metadata(dir).is_err() {
        return Cache::Missing;
    }
    if let Err(why) = owned_by_us(dir) {
        return Cache::Changed(why);
    }
    let marker = std::fs::read(dir.join(MARKER))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Marker>(&bytes).ok());
    match marker {
        Some(m) if m.package == PACKAGE && m.version == version && m.platform == platform.npm => {
            if dir.join("bin").join(platform.binary).is_file() {
                Cache::Verified
            } else {
                Cache::Changed("its binary is missing".to_owned())
            }
        }
        Some(_) => Cache::Changed("its marker names another version".to_owned()),
        None => Cache::Changed("it has no marker of a verified copy".to_owned()),
    }
}

/// Whether what is not this user's may be replaced: only as root (the container), where it
/// can only be what Codex's user put there. On the host it may be another user's, whose
/// files are not this action's to remove.
pub(super) fn may_replace() -> bool {
    #[cfg(unix)]
    return rustix::process::geteuid().is_root();
    #[cfg(not(unix))]
    false
}

/// Makes each directory from `root` down through `below` a real directory of this process's
/// user that no one else can write, replacing (as root) whatever else is there; answers what
/// was replaced. What lies under them is then this user's alone to change.
pub(super) fn own_the_way(root: &Path, below: &[&str]) -> Result<Option<String>, String> {
    let mut path = root.to_owned();
    let mut replaced = None;
    for part in below {
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) => {
                if let Err(why) = ours(&path, &meta) {
                    if !may_replace() {
                        return Err(format!("{why}; remove it by hand"));
                    }
                    remove(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                    make_dir(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                    replaced.get_or_insert(why);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir_all(path.parent().unwrap_or(&path))
                    .and_then(|()| make_dir(&path))
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    Ok(replaced)
}

pub(super) fn make_dir(path: &Path) -> io::Result<()> {
    std::fs::create_dir(path)?;
    set_mode(path, 0o755)
}

/// Every entry under `dir` (itself included) is [`ours`].
fn owned_by_us(dir: &Path) -> Result<(), String> {
    let mut pending = vec![dir.to_owned()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| format!("{} cannot be read: {e}", path.display()))?;
        ours(&path, &meta)?;
        if meta.is_dir() {
            let entries = std::fs::read_dir(&path)
                .map_err(|e| format!("{} cannot be listed: {e}", path.display()))?;
            for entry in entries {
                pending.push(
                    entry
                        .map_err(|e| format!("{} cannot be listed: {e}", path.display()))?
                        .path(),
                );
            }
        }
    }
    Ok(())
}

/// A directory or a regular file (not a link) of this process's user that no one else can
/// write; on Windows, which has no such owner check here, only the kind.
pub(super) fn ours(path: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    if !meta.is_dir() && !meta.is_file() {
        return Err(format!(
            "{} is not a directory or a regular file",
            path.display()
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me {
            return Err(format!("{} belongs to uid {}", path.display(), meta.uid()));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!("others can write {}", path.display()));
        }
    }
    Ok(())
}

/// How old a partial download or unpack must be before [`sweep`] takes it for a leftover:
/// well past the longest fetch (three tries of the tarball's 20 minutes, then the unpack).
const STALE: std::time::Duration = std::time::Duration::from_secs(3 * 60 * 60);

/// Removes the partial downloads and unpacks (`.download-*`, `.unpack-*`) in `parent` that a
/// fetch killed outright left behind (a SIGKILL runs no cleanup), so a persistent tool cache
/// does not keep half a gigabyte per killed job. Only this user's, and only those older than
/// [`STALE`]: a younger one may be another job's fetch on the same machine. Nothing else in
/// `parent` is touched; what cannot be removed is left.
pub(super) fn sweep(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(".download-") || name.starts_with(".unpack-")) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let stale = meta
            .modified()
            .ok()
            .and_then(|at| at.elapsed().ok())
            .is_some_and(|age| age > STALE);
        if stale && ours(&path, &meta).is_ok() {
            let _ = remove(&path);
        }
    }
}

pub(super) fn remove(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        // remove_dir_all follows no link inside.
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        _ => std::fs::remove_file(path),
    }
}

pub(super) fn cannot_keep(dir: &Path, why: &str) -> Failure {
    Failure::new(
        "Cannot keep the Codex package",
        format!("The Codex package cannot be kept in {}: {why}.", dir.display()),
    )
    .before_codex()
    .fix("Check that the runner's temporary directory (RUNNER_TEMP) or tool cache is writable and has about 1 GB free.")
}

#[cfg(test)]
mod tests {
    use super::super::CACHE_DIR;
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_way_to_the_cache_is_made_this_users_own() {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let elsewhere = root.path().join("elsewhere");
        std::fs::create_dir_all(elsewhere.join("kept")).unwrap_or_else(|e| panic!("{e}"));
        // What a Codex could leave: a link in place of the cache's directory.
        std::os::unix::fs::symlink(&elsewhere, root.path().join(CACHE_DIR))
            .unwrap_or_else(|e| panic!("{e}"));
        let answer = own_the_way(root.path(), &[CACHE_DIR, "1.2.3"]);
        if may_replace() {
            let replaced = answer.unwrap_or_else(|e| panic!("{e}"));
            assert!(replaced.is_some_and(|why| why.contains("not a directory")));
            let meta = std::fs::symlink_metadata(root.path().join(CACHE_DIR))
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(meta.is_dir(), "the link was replaced by a directory");
            assert!(root.path().join(CACHE_DIR).join("1.2.3").is_dir());
            assert!(
                elsewhere.join("kept").is_dir(),
                "the link's target is untouched"
            );
            // Another pass finds everything in order.
            assert_eq!(own_the_way(root.path(), &[CACHE_DIR, "1.2.3"]), Ok(None));
        } else {
            assert!(answer.is_err_and(|e| e.contains("remove it by hand")));
            assert!(elsewhere.join("kept").is_dir());
        }
    }

    // (Windows opens no directory as a file to date it.)
    #[cfg(unix)]
    #[test]
    fn only_stale_partial_fetches_are_swept() {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = root.path();
        let old = std::time::SystemTime::now() - STALE - std::time::Duration::from_secs(60);
        let age = |path: &Path| {
            std::fs::File::open(path)
                .and_then(|f| f.set_modified(old))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        };
        // Modes as tempfile makes them, whatever the umask.
        let make_dir = |name: &str| {
            let path = dir.join(name);
            std::fs::create_dir_all(path.join("bin")).unwrap_or_else(|e| panic!("{e}"));
            set_mode(&path, 0o700).unwrap_or_else(|e| panic!("{e}"));
            path
        };
        let make_file = |name: &str| {
            let path = dir.join(name);
            std::fs::write(&path, b"partial").unwrap_or_else(|e| panic!("{e}"));
            set_mode(&path, 0o600).unwrap_or_else(|e| panic!("{e}"));
            path
        };
        // Left by fetches killed hours ago.
        let (old_download, old_unpack) = (make_file(".download-a1"), make_dir(".unpack-b2"));
        age(&old_download);
        age(&old_unpack);
        // Another job's fetch under way, and an old copy that is not a partial fetch.
        let (young_download, young_unpack) = (make_file(".download-c3"), make_dir(".unpack-d4"));
        let copy = make_dir("linux-x64");
        age(&copy);
        sweep(dir);
        assert!(!old_download.exists() && !old_unpack.exists());
        assert!(young_download.exists() && young_unpack.exists() && copy.exists());
        // A parent that is not there is no error.
        sweep(&dir.join("missing"));
    }
}
