//! Reading files that a less trusted process (Codex, and whatever it started) may have
//! written or replaced: never through a link, never blocking on a FIFO, never more than a bound.

use std::fs;
use std::io::{self, Read as _};
use std::path::Path;

use zeroize::Zeroizing;

/// Reads a file in a directory another user may write to (Codex's, while it runs): a regular
/// file only, opened without following a symbolic link (which could point at this process's
/// own `/proc/self/environ`) and without blocking (a FIFO would hang the stage), at most
/// `max_bytes`. `None` when there is no file.
pub fn read_untrusted(path: &Path, max_bytes: u64) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
    Ok(read_untrusted_with_metadata(path, max_bytes)?.map(|(bytes, _)| bytes))
}

/// [`read_untrusted`], with the metadata of the file that was read (its owner, mode and
/// identity, to tell whether the same file is still there later).
pub fn read_untrusted_with_metadata(
    path: &Path,
    max_bytes: u64,
) -> io::Result<Option<(Zeroizing<Vec<u8>>, fs::Metadata)>> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
        options.custom_flags(flags.bits() as i32);
    }
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("{} (it may not be a symbolic link)", e),
            ))
        }
    };
    read_open(file, path, max_bytes).map(Some)
}

/// [`read_untrusted`] of `name` inside a directory opened with [`open_dir`]: the directory
/// cannot be swapped for a link between the two.
#[cfg(unix)]
pub fn read_untrusted_in(
    dir: &std::os::fd::OwnedFd,
    dir_path: &Path,
    name: &str,
    max_bytes: u64,
) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let path = dir_path.join(name);
    match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => Ok(Some(read_open(fs::File::from(fd), &path, max_bytes)?.0)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(io::Error::new(
            io::Error::from(e).kind(),
            format!("{}: {e} (it may not be a symbolic link)", path.display()),
        )),
    }
}

/// Reads an opened file: a regular file of at most `max_bytes`.
fn read_open(
    file: fs::File,
    path: &Path,
    max_bytes: u64,
) -> io::Result<(Zeroizing<Vec<u8>>, fs::Metadata)> {
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a regular file", path.display()),
        ));
    }
    let mut bytes = Zeroizing::new(Vec::new());
    io::Read::take(file, max_bytes + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is larger than {max_bytes} bytes", path.display()),
        ));
    }
    Ok((bytes, metadata))
}

/// Opens a directory another user may have replaced (Codex's user can write the directory
/// that holds CODEX_HOME): never through a symbolic link in its last component, so that what
/// root then does through the handle (`fchown`, `openat`, `renameat`) stays inside it. A link
/// there is an error that says so.
#[cfg(unix)]
pub fn open_dir(path: &Path) -> io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rustix::fs::openat(rustix::fs::CWD, path, flags, Mode::empty()).map_err(|e| {
        let e = io::Error::from(e);
        match e.raw_os_error() {
            Some(code)
                if code == rustix::io::Errno::LOOP.raw_os_error()
                    || code == rustix::io::Errno::NOTDIR.raw_os_error() =>
            {
                io::Error::new(
                    e.kind(),
                    format!(
                        "{} is a symbolic link or not a directory, which codex-auth never \
                         follows ({e})",
                        path.display()
                    ),
                )
            }
            _ => io::Error::new(e.kind(), format!("{}: {e}", path.display())),
        }
    })
}

/// Opens the directory `relative` (components only: no root, no `.`, no `..`) beneath `root`,
/// one component at a time, never through a symbolic link: a checkout or Codex can plant links
/// in the workspace, and what root then reads or writes through the handle stays inside it.
/// An empty `relative` opens `root` itself.
#[cfg(unix)]
pub fn open_dir_beneath(root: &Path, relative: &Path) -> io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut dir = open_dir(root)?;
    let mut reached = root.to_path_buf();
    for component in relative.components() {
        if component == std::path::Component::CurDir {
            continue;
        }
        let std::path::Component::Normal(name) = component else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a plain relative path", relative.display()),
            ));
        };
        reached.push(name);
        dir = rustix::fs::openat(&dir, name, flags, Mode::empty())
            .map_err(|e| beneath_error(&reached, e))?;
    }
    Ok(dir)
}

/// An error on the way to a path beneath a directory, saying when a link or a non-directory
/// was in the way.
#[cfg(unix)]
fn beneath_error(path: &Path, e: rustix::io::Errno) -> io::Error {
    let kind = io::Error::from(e).kind();
    if e == rustix::io::Errno::LOOP || e == rustix::io::Errno::NOTDIR {
        io::Error::new(
            kind,
            format!(
                "{} is a symbolic link or not a directory, which codex-auth never follows",
                path.display()
            ),
        )
    } else {
        io::Error::new(kind, format!("{}: {e}", path.display()))
    }
}

/// Splits a plain relative path into its directory and its file name.
#[cfg(unix)]
fn parent_and_name(relative: &Path) -> io::Result<(&Path, &str)> {
    let name = relative
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} names no file", relative.display()),
            )
        })?;
    Ok((relative.parent().unwrap_or(Path::new("")), name))
}

/// Reads the file `relative` beneath `root` ([`open_dir_beneath`]): no link on the way or at
/// the end, a regular file of at most `max_bytes`. `None` when there is no such file. With
/// `reader`, the file must be one that user could read itself, with no other name: this
/// process may be root, and a file of root's (say 0600, left by an earlier step) renamed to
/// the path by that user would otherwise be read with root's rights.
#[cfg(unix)]
pub fn read_beneath(
    root: &Path,
    relative: &Path,
    max_bytes: u64,
    reader: Option<u32>,
) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
    use rustix::fs::{Mode, OFlags};
    use std::os::unix::fs::MetadataExt as _;
    let (parent, name) = parent_and_name(relative)?;
    let dir = open_dir_beneath(root, parent)?;
    let path = root.join(relative);
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let file = match rustix::fs::openat(&dir, name, flags, Mode::empty()) {
        Ok(fd) => fs::File::from(fd),
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(beneath_error(&path, e)),
    };
    let (bytes, metadata) = read_open(file, &path, max_bytes)?;
    if let Some(uid) = reader {
        let readable = metadata.uid() == uid || metadata.mode() & 0o004 != 0;
        if !readable || metadata.nlink() != 1 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} is not a file its user could read (owner {}, mode {:o}, {} names), \
                     and codex-auth reads it with more rights than that user has",
                    path.display(),
                    metadata.uid(),
                    metadata.mode() & 0o7777,
                    metadata.nlink()
                ),
            ));
        }
    }
    Ok(Some(bytes))
}

/// Windows: the action runs on Linux only; the command-line tool never reads the workspace.
#[cfg(not(unix))]
pub fn read_beneath(
    _root: &Path,
    relative: &Path,
    _max_bytes: u64,
    _reader: Option<u32>,
) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{}: reading the workspace needs Linux", relative.display()),
    ))
}

/// Whether `relative` beneath `root` is a directory reached without a link.
#[cfg(unix)]
pub fn is_dir_beneath(root: &Path, relative: &Path) -> io::Result<()> {
    open_dir_beneath(root, relative).map(drop)
}

/// Windows: see [`read_beneath`].
#[cfg(not(unix))]
pub fn is_dir_beneath(_root: &Path, relative: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{}: reading the workspace needs Linux", relative.display()),
    ))
}

/// Writes `contents` to the file `relative` beneath `root`, in a directory another user may
/// write to: the directory is reached without a link ([`open_dir_beneath`]); an existing entry
/// that is a link or not a regular file is refused, never followed or replaced; the file is
/// written as a new one beside it (mode 0644: readable by all, as a checkout's files are;
/// owned by `owner` when given) and renamed over the name, so that a hard link to the old file
/// is left as it was.
#[cfg(unix)]
pub fn write_beneath(
    root: &Path,
    relative: &Path,
    contents: &[u8],
    owner: Option<(u32, u32)>,
) -> io::Result<()> {
    use std::io::Write as _;

    use rustix::fs::{fchmod, fchown, openat, renameat, statat, unlinkat, AtFlags, Gid};
    use rustix::fs::{FileType, Mode, OFlags, Uid};
    let (parent, name) = parent_and_name(relative)?;
    let dir = open_dir_beneath(root, parent)?;
    let path = root.join(relative);
    match statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile => {}
            FileType::Symlink => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{} is a symbolic link, which codex-auth never writes through",
                        path.display()
                    ),
                ))
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} exists and is not a regular file", path.display()),
                ))
            }
        },
        Err(rustix::io::Errno::NOENT) => {}
        Err(e) => {
            return Err(io::Error::new(
                io::Error::from(e).kind(),
                format!("{}: {e}", path.display()),
            ))
        }
    }
    let temp = format!(".{name}.codex-auth.{}", unique());
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = openat(&dir, temp.as_str(), flags, Mode::from_raw_mode(0o600))?;
    let written = (|| -> io::Result<()> {
        if let Some((uid, gid)) = owner {
            fchown(&fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
        }
        fchmod(&fd, Mode::from_raw_mode(0o644))?;
        let mut file = fs::File::from(fd);
        file.write_all(contents)?;
        file.sync_all()?;
        Ok(renameat(&dir, temp.as_str(), &dir, name)?)
    })();
    if let Err(e) = written {
        let _ = unlinkat(&dir, temp.as_str(), AtFlags::empty());
        return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display())));
    }
    Ok(())
}

/// Windows: see [`read_beneath`].
#[cfg(not(unix))]
pub fn write_beneath(
    _root: &Path,
    relative: &Path,
    _contents: &[u8],
    _owner: Option<(u32, u32)>,
) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{}: writing the workspace needs Linux", relative.display()),
    ))
}

/// A name no other file beside it has, in this process or another at the same time: this
/// process, the time, a counter.
#[cfg(unix)]
pub(crate) fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{}.{nanos}.{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn links_fifos_and_huge_files_are_not_read() -> io::Result<()> {
        let root = tempfile::tempdir()?;
        let target = root.path().join("elsewhere");
        fs::write(&target, "secret")?;
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&target, &link)?;
        assert!(
            read_untrusted(&link, 100).is_err(),
            "a link is not followed"
        );
        let fifo = root.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )?;
        assert!(
            read_untrusted(&fifo, 100).is_err(),
            "a FIFO is refused without blocking"
        );
        assert!(read_untrusted(&target, 3).is_err(), "too large");
        assert_eq!(
            read_untrusted(&target, 6)?.as_deref().map(Vec::as_slice),
            Some(&b"secret"[..])
        );
        assert!(read_untrusted(&root.path().join("missing"), 6)?.is_none());
        Ok(())
    }

    /// Read for a user (as root in the container): only a file that user could read itself,
    /// under one name.
    #[cfg(unix)]
    #[test]
    fn beneath_a_directory_only_what_the_reader_could_read() -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let root = tempfile::tempdir()?;
        let file = |name: &str, mode: u32| -> io::Result<()> {
            let path = root.path().join(name);
            fs::write(&path, name)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))
        };
        file("public.md", 0o644)?;
        file("private.md", 0o600)?;
        fs::hard_link(root.path().join("public.md"), root.path().join("linked.md"))?;
        let owner = std::os::unix::fs::MetadataExt::uid(&fs::metadata(root.path())?);
        let other = owner.wrapping_add(1001);
        let read = |name: &str, reader| read_beneath(root.path(), Path::new(name), 100, reader);
        // Its owner, or anyone for a file all may read (one name only).
        assert!(read("private.md", Some(owner))?.is_some());
        assert!(read("./private.md", None)?.is_some());
        for (name, reader) in [
            ("private.md", other),
            ("linked.md", other),
            ("linked.md", owner),
        ] {
            let error = read(name, Some(reader))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                error.contains("not a file its user could read"),
                "{name}: {error}"
            );
        }
        fs::remove_file(root.path().join("linked.md"))?;
        assert!(read("public.md", Some(other))?.is_some());
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn beneath_a_directory_no_link_is_followed() -> io::Result<()> {
        let root = tempfile::tempdir()?;
        let outside = tempfile::tempdir()?;
        let secret = outside.path().join("secret");
        fs::write(&secret, "outside")?;
        fs::create_dir(root.path().join("sub"))?;
        fs::write(root.path().join("sub/prompt.md"), "inside")?;
        std::os::unix::fs::symlink(outside.path(), root.path().join("out"))?;
        std::os::unix::fs::symlink(&secret, root.path().join("sub/link"))?;
        let read = |rel: &str| read_beneath(root.path(), Path::new(rel), 100, None);
        assert_eq!(
            read("sub/prompt.md")?.as_deref().map(Vec::as_slice),
            Some(&b"inside"[..])
        );
        assert!(read("sub/missing")?.is_none());
        for linked in ["out/secret", "sub/link"] {
            let error = read(linked)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains("symbolic link"), "{linked}: {error}");
        }
        assert!(is_dir_beneath(root.path(), Path::new("sub")).is_ok());
        assert!(is_dir_beneath(root.path(), Path::new("out")).is_err());
        assert!(is_dir_beneath(root.path(), Path::new("sub/prompt.md")).is_err());
        assert!(read("../x").is_err(), "`..` is refused");

        // Writing: a new file, a regular file replaced, a link or a FIFO refused.
        let write = |rel: &str| write_beneath(root.path(), Path::new(rel), b"answer", None);
        write("sub/answer.txt")?;
        write("sub/prompt.md")?;
        assert_eq!(
            fs::read_to_string(root.path().join("sub/prompt.md"))?,
            "answer"
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &fs::metadata(root.path().join("sub/answer.txt"))?.permissions(),
        );
        assert_eq!(mode & 0o777, 0o644);
        assert!(write("sub/link").is_err());
        assert!(write("out/secret").is_err());
        assert_eq!(fs::read_to_string(&secret)?, "outside");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.path().join("fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )?;
        assert!(write("fifo").is_err());
        let left: Vec<String> = fs::read_dir(root.path().join("sub"))?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<io::Result<_>>()?;
        assert!(!left.iter().any(|n| n.contains("codex-auth")), "{left:?}");
        Ok(())
    }
}
