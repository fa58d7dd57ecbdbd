//! Unpacking a checked package: the platform's tree only, plain files and directories.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read as _, Write};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::cache::{cached, Cache};
use super::{marker_path, set_mode, Kept, Marker, Package, Platform, MARKER, TRIMMED};

/// The most the unpacked files may hold (the CLI's tree is about 330 MB).
const MAX_UNPACKED_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// Unpacks `package/vendor/<target>/` of a verified tarball into `dest`, less [`TRIMMED`]:
/// directories and regular files only, each path checked to stay inside, files 0755 when
/// the package marks them executable, else 0644, at most [`MAX_UNPACKED_BYTES`] in all.
/// Written to a directory beside `dest` and renamed into place, with the marker written
/// last, so that a copy cut short is never taken for a verified one. The marker lists every
/// file (its size, mode and SHA-256, hashed as it is written) and directory kept.
pub(super) fn unpack(
    tarball: std::fs::File,
    platform: &Platform,
    dest: &Path,
    package: Package,
) -> io::Result<()> {
    let parent = dest.parent().unwrap_or(dest);
    let staging = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(parent)?;
    let prefix = Path::new("package").join("vendor").join(platform.target);
    let binary = Path::new("bin").join(platform.binary);
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(io::BufReader::new(tarball)));
    let mut found = false;
    let mut written = 0u64;
    let mut files = BTreeMap::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let Ok(rest) = path.strip_prefix(&prefix) else {
            continue;
        };
        if rest.as_os_str().is_empty() || TRIMMED.iter().any(|t| rest.starts_with(t)) {
            continue;
        }
        // Normal names only, which the marker can name (and never the marker's own).
        let Some(name) = marker_path(rest).filter(|name| name != MARKER) else {
            return Err(io::Error::other(format!("unsafe path {}", path.display())));
        };
        let out = staging.path().join(rest);
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            std::fs::create_dir_all(&out)?;
            continue;
        }
        if !kind.is_file() {
            return Err(io::Error::other(format!(
                "{} is not a regular file or a directory (a link or a device), which the \
                 package never holds",
                path.display()
            )));
        }
        written += entry.header().size()?;
        if written > MAX_UNPACKED_BYTES {
            return Err(io::Error::other(format!(
                "the package holds more than {MAX_UNPACKED_BYTES} bytes"
            )));
        }
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mode = match entry.header().mode()? & 0o111 {
            0 => 0o644,
            _ => 0o755,
        };
        let mut file = HashedFile {
            file: std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&out)?,
            hasher: Sha256::new(),
        };
        let bytes = io::copy(&mut (&mut entry).take(MAX_UNPACKED_BYTES), &mut file)?;
        file.file.sync_all()?;
        set_mode(&out, mode)?;
        let sha256 = hex::encode(file.hasher.finalize());
        files.insert(
            name,
            Kept {
                bytes,
                mode,
                sha256,
            },
        );
        found |= rest == binary;
    }
    if !found {
        return Err(io::Error::other(format!(
            "the package has no {}",
            prefix.join(&binary).display()
        )));
    }
    let mut directories = BTreeSet::new();
    set_modes(staging.path(), Path::new(""), &mut directories)?;
    let version = package.version.clone();
    let marker = Marker {
        package,
        files,
        directories,
    };
    let marker_file = staging.path().join(MARKER);
    std::fs::write(&marker_file, serde_json::to_vec(&marker)?)?;
    set_mode(&marker_file, 0o644)?;
    let staged = staging.keep();
    // Another job on the same machine (a shared tool cache) may have put a verified copy
    // there meanwhile: it is kept, and this one dropped.
    if let Err(e) = std::fs::rename(&staged, dest) {
        let _ = std::fs::remove_dir_all(&staged);
        if cached(dest, &version, platform) != Cache::Verified {
            return Err(e);
        }
    }
    Ok(())
}

/// A file being unpacked, hashed as it is written.
struct HashedFile {
    file: std::fs::File,
    hasher: Sha256,
}

impl Write for HashedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.file.write(buf)?;
        self.hasher.update(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Directories 0755 (a temporary directory starts as 0700; the host's steps must enter it);
/// adds each one below `dir` to `directories`, by its path in the copy (`dir` is at `at`).
fn set_modes(dir: &Path, at: &Path, directories: &mut BTreeSet<String>) -> io::Result<()> {
    set_mode(dir, 0o755)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            let below = at.join(entry.file_name());
            let name = marker_path(&below)
                .ok_or_else(|| io::Error::other(format!("unsafe path {}", below.display())))?;
            directories.insert(name);
            set_modes(&entry.path(), &below, directories)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{linux, package, tarball, Entry};
    use super::*;

    const BIN: &str = "package/vendor/x86_64-unknown-linux-musl/bin/codex";

    #[cfg(unix)]
    #[test]
    fn the_platform_tree_is_unpacked_trimmed_with_plain_modes() {
        use std::os::unix::fs::PermissionsExt as _;
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dest = root.path().join("linux-x64");
        let file = tarball(&[
            (
                "package/package.json",
                tar::EntryType::Regular,
                0o644,
                b"{}",
            ),
            (BIN, tar::EntryType::Regular, 0o4777, b"#!/bin/sh\n"),
            (
                "package/vendor/x86_64-unknown-linux-musl/codex-resources/voice/lib.so",
                tar::EntryType::Regular,
                0o755,
                b"x",
            ),
            (
                "package/vendor/x86_64-unknown-linux-musl/codex-package.json",
                tar::EntryType::Regular,
                0o666,
                b"{}",
            ),
            (
                "package/vendor/aarch64-unknown-linux-musl/bin/codex",
                tar::EntryType::Regular,
                0o755,
                b"other",
            ),
        ]);
        unpack(file, &linux(), &dest, package()).unwrap_or_else(|e| panic!("{e}"));
        let mode = |p: &str| {
            std::fs::metadata(dest.join(p))
                .map(|m| m.permissions().mode() & 0o7777)
                .unwrap_or(0)
        };
        assert_eq!(mode("bin/codex"), 0o755, "no setuid, no write for others");
        assert_eq!(mode("codex-package.json"), 0o644);
        assert_eq!(mode(MARKER), 0o644);
        assert!(!dest.join("codex-resources/voice").exists());
        assert!(!dest.join("package.json").exists());
        assert_eq!(cached(&dest, "1.2.3", &linux()), Cache::Verified);
    }

    #[cfg(unix)]
    #[test]
    fn links_escapes_the_markers_name_and_a_missing_binary_are_refused() {
        let cases: [(&str, Vec<Entry>); 5] = [
            (
                "not a regular file",
                vec![
                    (BIN, tar::EntryType::Regular, 0o755, b"x"),
                    (
                        "package/vendor/x86_64-unknown-linux-musl/bin/sh",
                        tar::EntryType::Symlink,
                        0o777,
                        b"",
                    ),
                ],
            ),
            (
                "not a regular file",
                vec![
                    (
                        "package/vendor/x86_64-unknown-linux-musl/bin/passwd",
                        tar::EntryType::Link,
                        0o644,
                        b"",
                    ),
                    (BIN, tar::EntryType::Regular, 0o755, b"x"),
                ],
            ),
            (
                "unsafe path",
                vec![
                    (BIN, tar::EntryType::Regular, 0o755, b"x"),
                    (
                        "package/vendor/x86_64-unknown-linux-musl/../../../escaped",
                        tar::EntryType::Regular,
                        0o644,
                        b"x",
                    ),
                ],
            ),
            (
                "unsafe path",
                vec![
                    (BIN, tar::EntryType::Regular, 0o755, b"x"),
                    (
                        "package/vendor/x86_64-unknown-linux-musl/.codex-auth-verified.json",
                        tar::EntryType::Regular,
                        0o644,
                        b"{}",
                    ),
                ],
            ),
            (
                "the package has no",
                vec![(
                    "package/vendor/x86_64-unknown-linux-musl/bin/other",
                    tar::EntryType::Regular,
                    0o755,
                    b"x",
                )],
            ),
        ];
        for (says, entries) in cases {
            let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let dest = root.path().join("linux-x64");
            let refused = unpack(tarball(&entries), &linux(), &dest, package())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(refused.contains(says), "{says}: {refused}");
            assert!(!dest.exists(), "{says}: nothing put in place");
            assert!(!root.path().join("escaped").exists());
            let left: Vec<_> = std::fs::read_dir(root.path())
                .map(|d| d.filter_map(Result::ok).collect())
                .unwrap_or_default();
            assert!(left.is_empty(), "{says}: the staging directory is removed");
        }
    }

    #[test]
    fn the_trim_is_the_dockerfiles() {
        let dockerfile =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile"))
                .unwrap_or_default();
        for trimmed in TRIMMED {
            assert!(
                dockerfile.contains(&format!("/opt-codex/{trimmed}")),
                "the Dockerfile does not trim {trimmed}"
            );
        }
    }
}
