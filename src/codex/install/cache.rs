//! The copies' directories: whether a copy is still as it was verified, and making the way to
//! it this process's user's own.

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::{marker_path, set_mode, Kept, Marker, Package, Platform, MARKER, PACKAGE};
use crate::failure::Failure;

/// What the cache holds for a version.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Cache {
    Missing,
    Verified,
    /// There, but not all of it this user's alone ([`ours`]): why.
    NotOurs(String),
    /// There and all of it this user's, but not as it was verified (no marker, a file added,
    /// missing or changed): why.
    Changed(String),
    /// This user's, kept by an earlier codex-auth, whose marker lists no files to check.
    Earlier,
}

/// Whether the copy in `dir` is the one verified: every directory and file in it is this
/// user's alone ([`ours`]), and they are the directories and files its marker lists, each of
/// the size, mode and SHA-256 it was unpacked with (a copy root made can only be changed by
/// root, but the marker's word is not taken for it). Reads every file: about 330 MB for
/// the CLI's package.
pub(super) fn cached(dir: &Path, version: &str, platform: &Platform) -> Cache {
    if std::fs::symlink_metadata(dir).is_err() {
        return Cache::Missing;
    }
    let found = match owned_by_us(dir) {
        Ok(found) => found,
        Err(why) => return Cache::NotOurs(why),
    };
    let bytes = std::fs::read(dir.join(MARKER)).unwrap_or_default();
    let marker = match serde_json::from_slice::<Marker>(&bytes) {
        Ok(marker) => marker,
        Err(_) if earlier(&bytes) => return Cache::Earlier,
        Err(_) => return Cache::Changed("it has no marker of a verified copy".to_owned()),
    };
    let package = &marker.package;
    if package.package != PACKAGE || package.version != version || package.platform != platform.npm
    {
        return Cache::Changed("its marker names another version".to_owned());
    }
    if !marker
        .files
        .contains_key(&format!("bin/{}", platform.binary))
    {
        return Cache::Changed("its marker lists no binary".to_owned());
    }
    match as_listed(dir, &marker, &found).and_then(|()| as_hashed(dir, &marker)) {
        Ok(()) => Cache::Verified,
        Err(why) => Cache::Changed(why),
    }
}

/// Whether a marker is an earlier codex-auth's: the package alone, no files listed.
fn earlier(marker: &[u8]) -> bool {
    let listed = |v: &serde_json::Value| v.get("files").is_some() || v.get("directories").is_some();
    serde_json::from_slice::<serde_json::Value>(marker).is_ok_and(|v| !listed(&v))
        && serde_json::from_slice::<Package>(marker).is_ok()
}

/// What is in a copy: the directories and files the marker lists, of the sizes and modes it
/// lists (everything [`as_hashed`] reads is there, and the size it expects).
fn as_listed(
    dir: &Path,
    marker: &Marker,
    found: &[(PathBuf, std::fs::Metadata)],
) -> Result<(), String> {
    let (mut files, mut directories) = (0, 0);
    for (path, meta) in found {
        let name = path
            .strip_prefix(dir)
            .ok()
            .and_then(marker_path)
            .unwrap_or_default();
        if name == MARKER {
            continue;
        }
        if meta.is_dir() {
            if !marker.directories.contains(&name) {
                return Err(format!(
                    "{} is not a directory of the verified copy",
                    path.display()
                ));
            }
            directories += 1;
            continue;
        }
        let Some(kept) = marker.files.get(&name) else {
            return Err(format!(
                "{} is not a file of the verified copy",
                path.display()
            ));
        };
        files += 1;
        if meta.len() != kept.bytes {
            return Err(format!(
                "{} holds {} bytes, not the {} verified",
                path.display(),
                meta.len(),
                kept.bytes
            ));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = meta.permissions().mode() & 0o7777;
            if mode != kept.mode {
                return Err(format!(
                    "{} has mode {mode:o}, not the {:o} verified",
                    path.display(),
                    kept.mode
                ));
            }
        }
    }
    if files != marker.files.len() || directories != marker.directories.len() {
        // Something listed is not there: name the first.
        let missing = (marker.files.keys())
            .chain(&marker.directories)
            .map(|name| dir.join(name))
            .find(|path| std::fs::symlink_metadata(path).is_err())
            .unwrap_or_else(|| dir.to_owned());
        return Err(format!(
            "{} of the verified copy is missing",
            missing.display()
        ));
    }
    Ok(())
}

/// Each file the marker lists has the SHA-256 it was unpacked with.
fn as_hashed(dir: &Path, marker: &Marker) -> Result<(), String> {
    for (name, kept) in &marker.files {
        let path = dir.join(name);
        let sha256 = sha256_of(&path, kept)
            .map_err(|e| format!("{} cannot be read: {e}", path.display()))?;
        if sha256 != kept.sha256 {
            return Err(format!(
                "{} has the SHA-256 {sha256}, not the {} verified",
                path.display(),
                kept.sha256
            ));
        }
    }
    Ok(())
}

/// The SHA-256 of a file, in hex, read through the file opened (of the size listed, so that
/// what is hashed is what [`as_listed`] saw).
fn sha256_of(path: &Path, kept: &Kept) -> io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() != kept.bytes {
        return Err(io::Error::other("it changed while it was checked"));
    }
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
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

/// Every entry under `dir` (itself included) is [`ours`]: answers those below it, with their
/// metadata.
fn owned_by_us(dir: &Path) -> Result<Vec<(PathBuf, std::fs::Metadata)>, String> {
    let mut found = Vec::new();
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
        if path != dir {
            found.push((path, meta));
        }
    }
    Ok(found)
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
    use super::super::fixture::{linux, package, tarball};
    use super::super::unpack::unpack;
    use super::super::CACHE_DIR;
    use super::*;

    /// A copy of 1.2.3 as [`unpack`] keeps it: the binary, a helper in a directory of its
    /// own, a file beside them and an empty directory.
    fn unpacked(root: &Path) -> PathBuf {
        let dest = root.join("linux-x64");
        let file = tarball(&[
            (
                "package/vendor/x86_64-unknown-linux-musl/bin/codex",
                tar::EntryType::Regular,
                0o755,
                b"#!/bin/sh\necho codex-cli 1.2.3\n",
            ),
            (
                "package/vendor/x86_64-unknown-linux-musl/codex-path/rg",
                tar::EntryType::Regular,
                0o755,
                b"#!/bin/sh\n",
            ),
            (
                "package/vendor/x86_64-unknown-linux-musl/codex-package.json",
                tar::EntryType::Regular,
                0o644,
                b"{}",
            ),
            (
                "package/vendor/x86_64-unknown-linux-musl/codex-resources/",
                tar::EntryType::Directory,
                0o755,
                b"",
            ),
        ]);
        unpack(file, &linux(), &dest, package()).unwrap_or_else(|e| panic!("{e}"));
        dest
    }

    #[cfg(unix)]
    #[test]
    fn a_file_or_directory_added_or_removed_is_refused() {
        // Made with the modes the copy's own have, whatever the umask: only what they are
        // differs from the verified copy.
        let add_file = |path: PathBuf| {
            std::fs::write(&path, b"x")
                .and_then(|()| set_mode(&path, 0o755))
                .unwrap_or_else(|e| panic!("{e}"));
        };
        let add_dir = |path: PathBuf| {
            std::fs::create_dir(&path)
                .and_then(|()| set_mode(&path, 0o755))
                .unwrap_or_else(|e| panic!("{e}"));
        };
        // What the refusal ends with, and the change.
        type Case<'a> = (&'a str, &'a dyn Fn(&Path));
        let cases: [Case; 7] = [
            (
                "bin/codex-helper is not a file of the verified copy",
                &|c| {
                    add_file(c.join("bin/codex-helper"));
                },
            ),
            (
                "linux-x64/preload.so is not a file of the verified copy",
                &|c| {
                    add_file(c.join("preload.so"));
                },
            ),
            (
                "codex-resources/voice is not a directory of the verified copy",
                &|c| {
                    add_dir(c.join("codex-resources/voice"));
                },
            ),
            ("codex-path/rg of the verified copy is missing", &|c| {
                std::fs::remove_file(c.join("codex-path/rg")).unwrap_or_else(|e| panic!("{e}"));
            }),
            ("codex-resources of the verified copy is missing", &|c| {
                std::fs::remove_dir(c.join("codex-resources")).unwrap_or_else(|e| panic!("{e}"));
            }),
            (
                "codex-package.json has mode 755, not the 644 verified",
                &|c| {
                    set_mode(&c.join("codex-package.json"), 0o755)
                        .unwrap_or_else(|e| panic!("{e}"));
                },
            ),
            (
                "codex-package.json holds 3 bytes, not the 2 verified",
                &|c| {
                    std::fs::write(c.join("codex-package.json"), b"{ }")
                        .unwrap_or_else(|e| panic!("{e}"));
                },
            ),
        ];
        for (says, change) in cases {
            let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let copy = unpacked(root.path());
            assert_eq!(cached(&copy, "1.2.3", &linux()), Cache::Verified, "{says}");
            change(&copy);
            match cached(&copy, "1.2.3", &linux()) {
                Cache::Changed(why) => assert!(why.ends_with(says), "{says}: {why}"),
                other => panic!("{says}: {other:?}"),
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_link_where_a_file_was_is_refused() {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let copy = unpacked(root.path());
        // The same bytes, elsewhere, linked to from the helper's place.
        let elsewhere = root.path().join("rg");
        std::fs::copy(copy.join("codex-path/rg"), &elsewhere).unwrap_or_else(|e| panic!("{e}"));
        std::fs::remove_file(copy.join("codex-path/rg")).unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink(&elsewhere, copy.join("codex-path/rg"))
            .unwrap_or_else(|e| panic!("{e}"));
        match cached(&copy, "1.2.3", &linux()) {
            Cache::NotOurs(why) => assert!(
                why.ends_with("codex-path/rg is not a directory or a regular file"),
                "{why}"
            ),
            other => panic!("{other:?}"),
        }
    }

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
