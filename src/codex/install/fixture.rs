//! Test packages: tarballs of a platform's tree, as the registry serves them.

use std::io::{Seek as _, Write as _};

use super::{Package, Platform, PACKAGE};

pub(super) fn linux() -> Platform {
    Platform::of("linux", "x86_64").unwrap_or_else(|| unreachable!())
}

/// An entry of a test tarball: path, kind, mode, content.
pub(super) type Entry<'a> = (&'a str, tar::EntryType, u32, &'a [u8]);

/// The gzipped tarball of these entries, written as given (links point at `/etc/passwd`).
pub(super) fn tarball_bytes(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (path, kind, mode, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_mode(*mode);
        header.set_size(content.len() as u64);
        if kind.is_symlink() || kind.is_hard_link() {
            header.set_size(0);
            header
                .set_link_name("/etc/passwd")
                .unwrap_or_else(|e| panic!("{e}"));
        }
        // Written raw: the builder's own path checks would refuse the hostile names.
        let name = path.as_bytes();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_cksum();
        let body: &[u8] = if kind.is_file() { content } else { &[] };
        builder
            .append(&header, body)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    builder
        .into_inner()
        .and_then(|gz| gz.finish())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The same, in a file opened at its start.
pub(super) fn tarball(entries: &[Entry]) -> std::fs::File {
    let mut file = tempfile::tempfile().unwrap_or_else(|e| panic!("{e}"));
    file.write_all(&tarball_bytes(entries))
        .unwrap_or_else(|e| panic!("{e}"));
    file.rewind().unwrap_or_else(|e| panic!("{e}"));
    file
}

/// Version 1.2.3's linux-x64 package, as checked.
pub(super) fn package() -> Package {
    Package {
        package: PACKAGE.to_owned(),
        version: "1.2.3".to_owned(),
        platform: "linux-x64".to_owned(),
        integrity: "sha512-x".to_owned(),
    }
}
