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
    Ok(Some((bytes, metadata)))
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
