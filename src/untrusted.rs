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
}
