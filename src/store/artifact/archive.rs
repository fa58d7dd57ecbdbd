//! The zip a codex-auth artifact holds: one file, [`ENTRY`], with the sealed login.
//!
//! GitHub stores every workflow artifact as a zip. codex-auth writes it stored (the sealed
//! login is ciphertext, which does not compress) with a fixed timestamp, so the same blob
//! always gives the same bytes. Reading accepts deflate too, which the official
//! `@actions/artifact` client uses, and treats the download as hostile: the artifact is
//! writable by any workflow run in the repository.

use std::io::{self, Cursor, Read as _, Write as _};

use zip::result::{ZipError, ZipResult};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

/// The name of the one file in the artifact's zip.
pub const ENTRY: &str = "auth.json.enc";

/// The largest zip [`unzip`] reads. codex-auth's own are under 50 KiB.
pub const MAX_ZIP_BYTES: usize = 1 << 20;

/// The largest [`ENTRY`] [`unzip`] decompresses: a sealed login is at most the 48 KiB of
/// `auth.json` plus 41 bytes.
pub const MAX_ENTRY_BYTES: usize = 64 * 1024;

/// The file type bits of a Unix mode, and the type of a regular file.
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;

/// How many entry names an error lists, and how many characters of each.
const SHOWN_NAMES: usize = 5;
const SHOWN_NAME_CHARS: usize = 64;

/// Why the artifact's zip does not hold a sealed login. Names from the zip are escaped and
/// truncated before they appear in a message.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Larger than any zip codex-auth writes.
    #[error(
        "the artifact's zip is {len} bytes, more than the {MAX_ZIP_BYTES} bytes codex-auth reads: \
         it was not written by codex-auth"
    )]
    TooLarge {
        /// The zip's length.
        len: usize,
    },
    /// Not a zip, or a damaged one.
    #[error(
        "the artifact is not a readable zip archive: it was not written by codex-auth or is \
         damaged"
    )]
    NotZip(#[source] ZipError),
    /// A zip without entries.
    #[error("the artifact's zip is missing entries: it holds no files, expected `{ENTRY}`")]
    MissingEntry,
    /// Entries other than exactly one [`ENTRY`].
    #[error(
        "the artifact's zip has extra entries: it holds {count} ({names}), expected only \
         `{ENTRY}`: it was not written by codex-auth"
    )]
    ExtraEntries {
        /// How many entries the zip holds.
        count: usize,
        /// The first few names, escaped, truncated and quoted.
        names: String,
    },
    /// The entry is a directory or a symbolic link.
    #[error(
        "the artifact's zip entry {name} is a directory or a symbolic link, expected the file \
         `{ENTRY}`"
    )]
    NotAFile {
        /// The entry's name, escaped, truncated and quoted.
        name: String,
    },
    /// The entry is encrypted with a zip password.
    #[error("`{ENTRY}` in the artifact's zip is password-protected; codex-auth never writes that")]
    Encrypted,
    /// Neither stored nor deflated.
    #[error(
        "`{ENTRY}` in the artifact's zip uses the zip compression method `{method}`; codex-auth \
         reads only stored and deflated entries"
    )]
    UnsupportedCompression {
        /// The zip compression method, as the zip crate names it.
        method: String,
    },
    /// Decompresses to more than [`MAX_ENTRY_BYTES`].
    #[error(
        "`{ENTRY}` in the artifact's zip decompresses to more than {MAX_ENTRY_BYTES} bytes, more \
         than any sealed login: it was not written by codex-auth"
    )]
    EntryTooLarge,
    /// The entry's size disagrees with the size the zip declares.
    #[error(
        "`{ENTRY}` in the artifact's zip holds {actual} bytes but declares {declared}: the zip is \
         damaged"
    )]
    SizeMismatch {
        /// The size the zip's directory gives.
        declared: u64,
        /// The size of the decompressed data.
        actual: usize,
    },
    /// Reading the entry failed: a CRC mismatch, a broken deflate stream, truncated data.
    #[error(
        "`{ENTRY}` in the artifact's zip is damaged (the download may have been cut short, or the \
         zip was changed); re-run the job first"
    )]
    Corrupt(#[source] io::Error),
}

/// A zip holding `blob` as [`ENTRY`]: stored, mode 0600, dated 1980-01-01 (the zip epoch), so
/// that the output depends on `blob` alone.
pub fn zip(blob: &[u8]) -> Vec<u8> {
    #[allow(
        clippy::expect_used,
        reason = "writing one entry into memory has no I/O to fail, and blobs too large for a \
                  plain zip are written as Zip64"
    )]
    write(blob).expect("writing a zip into memory")
}

fn write(blob: &[u8]) -> ZipResult<Vec<u8>> {
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .last_modified_time(DateTime::DEFAULT)
        .unix_permissions(0o600)
        .large_file(u32::try_from(blob.len()).is_err());
    let mut writer = ZipWriter::new(Cursor::new(Vec::with_capacity(blob.len() + 256)));
    writer.start_file(ENTRY, options)?;
    writer.write_all(blob)?;
    Ok(writer.finish()?.into_inner())
}

/// The sealed login from an artifact's zip: the contents of its one entry, [`ENTRY`].
///
/// The zip may be hostile. It is rejected, without decompressing more than
/// [`MAX_ENTRY_BYTES`] + 1 bytes, unless it holds exactly one stored or deflated, unencrypted
/// file named [`ENTRY`] whose data matches its CRC and declared size.
pub fn unzip(bytes: &[u8]) -> Result<Vec<u8>, ArchiveError> {
    if bytes.len() > MAX_ZIP_BYTES {
        return Err(ArchiveError::TooLarge { len: bytes.len() });
    }
    let mut archive = ZipArchive::new(Cursor::new(bytes)).map_err(ArchiveError::NotZip)?;
    if archive.is_empty() {
        return Err(ArchiveError::MissingEntry);
    }
    if archive.len() > 1 || archive.name_for_index(0) != Some(ENTRY) {
        return Err(ArchiveError::ExtraEntries {
            count: archive.len(),
            names: shown_names(archive.len(), archive.file_names()),
        });
    }

    // Check the metadata before anything is decrypted or decompressed.
    let declared = {
        let entry = archive.by_index_raw(0).map_err(ArchiveError::NotZip)?;
        // Unix file type bits, or the MS-DOS directory bit, which the zip crate maps to them.
        let special = entry
            .unix_mode()
            .is_some_and(|mode| !matches!(mode & S_IFMT, 0 | S_IFREG));
        if entry.is_dir() || special {
            return Err(ArchiveError::NotAFile {
                name: shown_name(entry.name()),
            });
        }
        if entry.encrypted() {
            return Err(ArchiveError::Encrypted);
        }
        match entry.compression() {
            CompressionMethod::Stored | CompressionMethod::Deflated => {}
            method => {
                return Err(ArchiveError::UnsupportedCompression {
                    method: method.to_string(),
                })
            }
        }
        entry.size()
    };
    if declared > MAX_ENTRY_BYTES as u64 {
        return Err(ArchiveError::EntryTooLarge);
    }

    let entry = archive.by_index(0).map_err(ArchiveError::NotZip)?;
    // The declared size is only a claim: the limit holds on what the stream yields. Reading to
    // the end also makes the zip crate check the CRC.
    let mut blob = Vec::with_capacity(declared as usize);
    entry
        .take(MAX_ENTRY_BYTES as u64 + 1)
        .read_to_end(&mut blob)
        .map_err(ArchiveError::Corrupt)?;
    if blob.len() > MAX_ENTRY_BYTES {
        return Err(ArchiveError::EntryTooLarge);
    }
    if blob.len() as u64 != declared {
        return Err(ArchiveError::SizeMismatch {
            declared,
            actual: blob.len(),
        });
    }
    Ok(blob)
}

/// A name from the zip, safe to print: ASCII-escaped, truncated, in backticks.
fn shown_name(name: &str) -> String {
    let mut shown: String = name
        .chars()
        .take(SHOWN_NAME_CHARS)
        .flat_map(char::escape_default)
        .collect();
    if name.chars().nth(SHOWN_NAME_CHARS).is_some() {
        shown.push_str("...");
    }
    format!("`{shown}`")
}

fn shown_names<'a>(count: usize, names: impl Iterator<Item = &'a str>) -> String {
    let mut shown: Vec<String> = names.take(SHOWN_NAMES).map(shown_name).collect();
    if count > SHOWN_NAMES {
        shown.push(format!("and {} more", count - SHOWN_NAMES));
    }
    shown.join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// A stand-in for a sealed login: incompressible enough, and recognisable.
    fn blob() -> Vec<u8> {
        (0..49_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect()
    }

    /// A zip with the given entries, written by the zip crate.
    fn zip_of(entries: &[(&str, &[u8])], method: CompressionMethod) -> Vec<u8> {
        let options = SimpleFileOptions::default().compression_method(method);
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in entries {
            writer.start_file(*name, options).unwrap();
            writer.write_all(data).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    /// Overwrites every little-endian `from` with `to`; returns how many were replaced.
    fn patch_u32(bytes: &mut [u8], from: u32, to: u32) -> usize {
        let (from, to) = (from.to_le_bytes(), to.to_le_bytes());
        let mut count = 0;
        for i in 0..bytes.len().saturating_sub(3) {
            if bytes[i..i + 4] == from {
                bytes[i..i + 4].copy_from_slice(&to);
                count += 1;
            }
        }
        count
    }

    #[test]
    fn round_trip() {
        let blob = blob();
        let zipped = zip(&blob);
        assert_eq!(unzip(&zipped).unwrap(), blob);
        assert_eq!(unzip(&zip(b"")).unwrap(), b"");
    }

    #[test]
    fn writes_one_stored_private_entry_deterministically() {
        let blob = blob();
        let zipped = zip(&blob);
        assert_eq!(zipped, zip(&blob));
        let mut archive = ZipArchive::new(Cursor::new(&zipped)).unwrap();
        assert_eq!(archive.len(), 1);
        let entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name(), ENTRY);
        assert_eq!(entry.compression(), CompressionMethod::Stored);
        assert_eq!(entry.unix_mode().map(|mode| mode & 0o777), Some(0o600));
        assert_eq!(entry.last_modified(), Some(DateTime::DEFAULT));
        assert!(zipped.len() < blob.len() + 200, "{}", zipped.len());
    }

    #[test]
    fn accepts_a_deflated_entry() {
        let data = b"{\"sealed\": true}".repeat(100);
        let zipped = zip_of(&[(ENTRY, &data)], CompressionMethod::Deflated);
        assert!(zipped.len() < data.len());
        assert_eq!(unzip(&zipped).unwrap(), data);
    }

    #[test]
    fn accepts_an_entry_of_exactly_the_limit() {
        let data = vec![7u8; MAX_ENTRY_BYTES];
        for method in [CompressionMethod::Stored, CompressionMethod::Deflated] {
            let zipped = zip_of(&[(ENTRY, &data)], method);
            assert_eq!(unzip(&zipped).unwrap(), data);
        }
    }

    #[test]
    fn rejects_a_zip_bomb() {
        let zeros = vec![0u8; 10 << 20];
        let zipped = zip_of(&[(ENTRY, &zeros)], CompressionMethod::Deflated);
        assert!(zipped.len() < MAX_ZIP_BYTES, "{}", zipped.len());
        assert!(matches!(unzip(&zipped), Err(ArchiveError::EntryTooLarge)));

        let stored = zip_of(
            &[(ENTRY, &[1u8; MAX_ENTRY_BYTES + 1])],
            CompressionMethod::Stored,
        );
        assert!(matches!(unzip(&stored), Err(ArchiveError::EntryTooLarge)));
    }

    #[test]
    fn rejects_a_zip_bomb_that_lies_about_its_size() {
        let zeros = vec![0u8; 10 << 20];
        let mut zipped = zip_of(&[(ENTRY, &zeros)], CompressionMethod::Deflated);
        // The uncompressed size, in the local header and the central directory.
        assert_eq!(patch_u32(&mut zipped, 10 << 20, 100), 2);
        let declared = ZipArchive::new(Cursor::new(&zipped))
            .unwrap()
            .by_index_raw(0)
            .unwrap()
            .size();
        assert_eq!(declared, 100);
        let err = unzip(&zipped).unwrap_err();
        assert!(matches!(err, ArchiveError::EntryTooLarge), "{err:?}");
    }

    #[test]
    fn rejects_a_size_that_disagrees_with_the_data() {
        let data = b"sealed login".repeat(10);
        let mut zipped = zip_of(&[(ENTRY, &data)], CompressionMethod::Deflated);
        assert_eq!(patch_u32(&mut zipped, 120, 119), 2);
        let err = unzip(&zipped).unwrap_err();
        assert!(
            matches!(
                err,
                ArchiveError::SizeMismatch {
                    declared: 119,
                    actual: 120
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn rejects_a_crc_mismatch() {
        let blob = blob();
        let mut zipped = zip(&blob);
        // Flip a byte in the middle of the stored data.
        let middle = zipped.len() / 2;
        zipped[middle] ^= 0x55;
        let err = unzip(&zipped).unwrap_err();
        assert!(matches!(err, ArchiveError::Corrupt(_)), "{err:?}");
    }

    #[test]
    fn rejects_extra_entries_and_names_them() {
        let zipped = zip_of(
            &[(ENTRY, b"a"), ("notes.txt", b"b")],
            CompressionMethod::Stored,
        );
        let err = unzip(&zipped).unwrap_err();
        let ArchiveError::ExtraEntries { count, names } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(
            (*count, names.as_str()),
            (2, "`auth.json.enc`, `notes.txt`")
        );
        assert!(err.to_string().contains("extra entries"), "{err}");
    }

    #[test]
    fn rejects_a_wrong_name() {
        for name in [
            "auth.json",
            "AUTH.JSON.ENC",
            "dir/auth.json.enc",
            "auth.json.enc ",
        ] {
            let zipped = zip_of(&[(name, b"a")], CompressionMethod::Stored);
            let err = unzip(&zipped).unwrap_err();
            assert!(
                matches!(&err, ArchiveError::ExtraEntries { count: 1, .. }),
                "{name}: {err:?}"
            );
        }
    }

    #[test]
    fn escapes_and_truncates_names() {
        let long = "x".repeat(500);
        let entries: Vec<(String, &[u8])> = [
            "evil\n::error::\u{202e}name".to_owned(),
            long.clone(),
            "c".into(),
            "d".into(),
            "e".into(),
            "f".into(),
            "g".into(),
        ]
        .into_iter()
        .map(|name| (name, &b"x"[..]))
        .collect();
        let entries: Vec<(&str, &[u8])> = entries.iter().map(|(n, d)| (n.as_str(), *d)).collect();
        let zipped = zip_of(&entries, CompressionMethod::Stored);
        let message = unzip(&zipped).unwrap_err().to_string();
        assert!(!message.contains('\n'), "{message}");
        assert!(message.is_ascii(), "{message}");
        assert!(
            message.contains(r"`evil\n::error::\u{202e}name`"),
            "{message}"
        );
        assert!(
            message.contains(&format!("`{}...`", "x".repeat(64))),
            "{message}"
        );
        assert!(!message.contains(&long), "{message}");
        assert!(message.contains("and 2 more"), "{message}");
        assert!(!message.contains("`f`"), "{message}");
    }

    #[test]
    fn rejects_a_zip_without_entries() {
        let empty = ZipWriter::new(Cursor::new(Vec::new()))
            .finish()
            .unwrap()
            .into_inner();
        let err = unzip(&empty).unwrap_err();
        assert!(matches!(err, ArchiveError::MissingEntry), "{err:?}");
        assert!(err.to_string().contains("missing entries"), "{err}");
    }

    #[test]
    fn rejects_a_directory() {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        writer
            .add_directory(ENTRY, SimpleFileOptions::default())
            .unwrap();
        let zipped = writer.finish().unwrap().into_inner();
        let err = unzip(&zipped).unwrap_err();
        // The zip crate stores a directory as `name/`, which is not the entry's name.
        assert!(
            matches!(&err, ArchiveError::ExtraEntries { names, .. } if names == "`auth.json.enc/`"),
            "{err:?}"
        );

        // An entry with the exact name, marked a directory by its external attributes only:
        // a Unix mode, or the MS-DOS directory bit.
        for (made_by, attributes) in [(3, 0o040_755 << 16), (0, 0x10)] {
            let mut zipped = zip(b"");
            let (_, central) = header_offsets(&zipped);
            zipped[central + 5] = made_by;
            zipped[central + 38..central + 42].copy_from_slice(&u32::to_le_bytes(attributes));
            let err = unzip(&zipped).unwrap_err();
            assert!(matches!(err, ArchiveError::NotAFile { .. }), "{err:?}");
        }
    }

    #[test]
    fn accepts_regular_file_modes() {
        for (made_by, attributes) in [(3, 0o100_644 << 16), (3, 0), (0, 0x20), (0, 0)] {
            let mut zipped = zip(b"sealed");
            let (_, central) = header_offsets(&zipped);
            zipped[central + 5] = made_by;
            zipped[central + 38..central + 42].copy_from_slice(&u32::to_le_bytes(attributes));
            assert_eq!(unzip(&zipped).unwrap(), b"sealed");
        }
    }

    #[test]
    fn rejects_a_symlink() {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        writer
            .add_symlink(ENTRY, "/etc/passwd", SimpleFileOptions::default())
            .unwrap();
        let zipped = writer.finish().unwrap().into_inner();
        let err = unzip(&zipped).unwrap_err();
        assert!(matches!(err, ArchiveError::NotAFile { .. }), "{err:?}");
    }

    #[test]
    fn rejects_encrypted_and_unknown_compression() {
        // General-purpose flag bit 0 (encrypted), in the local header and the central directory.
        let zipped = zip(b"sealed");
        let mut encrypted = zipped.clone();
        set_flag_bit(&mut encrypted, 0x01);
        let err = unzip(&encrypted).unwrap_err();
        assert!(matches!(err, ArchiveError::Encrypted), "{err:?}");

        // Compression method 12 (bzip2), which this build cannot read.
        let mut bzip2 = zipped;
        set_method(&mut bzip2, 12);
        let err = unzip(&bzip2).unwrap_err();
        let ArchiveError::UnsupportedCompression { method } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(method, "Unsupported(12)");
    }

    /// Offsets of the local file header and the central directory header of a one-entry zip.
    fn header_offsets(zipped: &[u8]) -> (usize, usize) {
        let find = |signature: &[u8]| {
            zipped
                .windows(4)
                .position(|window| window == signature)
                .unwrap()
        };
        (find(b"PK\x03\x04"), find(b"PK\x01\x02"))
    }

    fn set_flag_bit(zipped: &mut [u8], bit: u8) {
        let (local, central) = header_offsets(zipped);
        zipped[local + 6] |= bit;
        zipped[central + 8] |= bit;
    }

    fn set_method(zipped: &mut [u8], method: u16) {
        let (local, central) = header_offsets(zipped);
        zipped[local + 8..local + 10].copy_from_slice(&method.to_le_bytes());
        zipped[central + 10..central + 12].copy_from_slice(&method.to_le_bytes());
    }

    #[test]
    fn rejects_too_large_input_before_parsing() {
        let big = vec![0u8; MAX_ZIP_BYTES + 1];
        assert!(matches!(
            unzip(&big),
            Err(ArchiveError::TooLarge { len }) if len == MAX_ZIP_BYTES + 1
        ));
    }

    #[test]
    fn rejects_what_is_not_a_zip() {
        for bytes in [&b""[..], b"PK", b"not a zip at all", &[0u8; 100]] {
            let err = unzip(bytes).unwrap_err();
            assert!(matches!(err, ArchiveError::NotZip(_)), "{err:?}");
        }
    }

    #[test]
    fn no_prefix_of_a_zip_panics() {
        for zipped in [
            zip(&blob()[..300]),
            zip_of(&[(ENTRY, &[b'a'; 300])], CompressionMethod::Deflated),
        ] {
            for len in 0..zipped.len() {
                assert!(unzip(&zipped[..len]).is_err(), "prefix of {len} bytes");
            }
        }
    }

    #[test]
    fn no_single_byte_change_panics() {
        for zipped in [
            zip(&blob()[..200]),
            zip_of(&[(ENTRY, &[b'a'; 200])], CompressionMethod::Deflated),
        ] {
            for index in 0..zipped.len() {
                for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                    let mut changed = zipped.clone();
                    changed[index] = value;
                    let _ = unzip(&changed);
                }
            }
        }
    }

    #[test]
    fn random_garbage_never_panics() {
        // A fixed xorshift stream: reproducible without a dependency.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let valid = zip(&blob()[..500]);
        for round in 0..2_000 {
            let len = (next() % 2_048) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if round % 2 == 0 {
                // Garbage that ends like a zip, so the parser gets past the end record.
                let tail = &valid[valid.len() - 22..];
                bytes.extend_from_slice(tail);
            }
            let _ = unzip(&bytes);
        }
    }
}
