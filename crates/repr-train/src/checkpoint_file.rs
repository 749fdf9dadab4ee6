//! The byte layout of a checkpoint file, apart from what its sections mean (no Burn types, so
//! the fuzz targets compile this file on its own).
//!
//! Version 2 (written now): the magic `REPRCKPT2\n`, then three sections, `state`, `model` and
//! `optimizer`, each as its length (u64 little-endian), the SHA-256 of its bytes, and the bytes.
//! A flipped bit anywhere in the file is found on load and named by its section: in a length it
//! leaves the sections misaligned (a truncated or over-long file, or a checksum that no longer
//! matches), in a checksum or in the data the checksum does not match.
//!
//! Version 1 (`REPRCKPT1\n`, lengths and bytes, no checksums) is still read, so runs saved
//! before checksums existed resume; it cannot be verified.

use sha2::{Digest, Sha256};

/// The magic of the version written now.
pub const MAGIC: &[u8] = b"REPRCKPT2\n";
/// The magic of version 1 (no checksums).
pub const MAGIC_V1: &[u8] = b"REPRCKPT1\n";
/// The sections, in file order.
pub const SECTIONS: [&str; 3] = ["state", "model", "optimizer"];

const DIGEST: usize = 32;

/// The three sections of a checkpoint file, borrowed from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sections<'a> {
    /// The loop position (JSON).
    pub state: &'a [u8],
    /// The model record (burnpack).
    pub model: &'a [u8],
    /// The optimizer record (burnpack).
    pub optimizer: &'a [u8],
    /// Whether the file carried checksums, all of which matched (version 2); `false` for a
    /// version-1 file, which has none.
    pub verified: bool,
}

/// What is wrong with the bytes of a checkpoint file; the message names the section.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The file does not start with either magic.
    #[error("not a repr checkpoint (bad magic)")]
    BadMagic,
    /// The file ends inside a section's header.
    #[error("truncated before the {section} section")]
    TruncatedHeader {
        /// The section.
        section: &'static str,
    },
    /// The file ends inside a section's bytes.
    #[error("truncated {section} section: {available} of {declared} bytes")]
    TruncatedSection {
        /// The section.
        section: &'static str,
        /// The bytes left in the file.
        available: u64,
        /// The length the section header declares.
        declared: u64,
    },
    /// A section's bytes differ from the ones its checksum was computed on.
    #[error(
        "{section} section is corrupt: its SHA-256 is {found}, the file recorded {recorded} \
         (a changed or damaged file)"
    )]
    Checksum {
        /// The section.
        section: &'static str,
        /// The checksum stored in the file (hex, first 8 bytes).
        recorded: String,
        /// The checksum of the bytes found (hex, first 8 bytes).
        found: String,
    },
    /// Bytes after the last section.
    #[error("{0} trailing bytes after the optimizer section")]
    Trailing(u64),
}

impl FormatError {
    /// The section the error is in (`None`: the magic).
    pub fn section(&self) -> Option<&'static str> {
        match self {
            FormatError::BadMagic => None,
            FormatError::TruncatedHeader { section }
            | FormatError::TruncatedSection { section, .. }
            | FormatError::Checksum { section, .. } => Some(section),
            FormatError::Trailing(_) => Some("optimizer"),
        }
    }
}

/// The bytes of a version-2 checkpoint file holding `state`, `model` and `optimizer`.
pub fn encode(state: &[u8], model: &[u8], optimizer: &[u8]) -> Vec<u8> {
    let sections = [state, model, optimizer];
    let len = MAGIC.len() + sections.iter().map(|s| 8 + DIGEST + s.len()).sum::<usize>();
    let mut bytes = Vec::with_capacity(len);
    bytes.extend_from_slice(MAGIC);
    for section in sections {
        bytes.extend_from_slice(&(section.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&Sha256::digest(section));
        bytes.extend_from_slice(section);
    }
    bytes
}

/// The sections of a checkpoint file (version 2, checksums verified, or version 1).
pub fn decode(bytes: &[u8]) -> Result<Sections<'_>, FormatError> {
    let (mut rest, checksums) = if let Some(rest) = bytes.strip_prefix(MAGIC) {
        (rest, true)
    } else if let Some(rest) = bytes.strip_prefix(MAGIC_V1) {
        (rest, false)
    } else {
        return Err(FormatError::BadMagic);
    };
    let mut found: [&[u8]; 3] = [&[]; 3];
    for (slot, section) in found.iter_mut().zip(SECTIONS) {
        let header = 8 + if checksums { DIGEST } else { 0 };
        if rest.len() < header {
            return Err(FormatError::TruncatedHeader { section });
        }
        let (head, tail) = rest.split_at(header);
        let declared = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let available = tail.len() as u64;
        if declared > available {
            return Err(FormatError::TruncatedSection {
                section,
                available,
                declared,
            });
        }
        let (data, after) = tail.split_at(declared as usize);
        if checksums {
            let recorded = &head[8..];
            let computed = Sha256::digest(data);
            if computed.as_slice() != recorded {
                return Err(FormatError::Checksum {
                    section,
                    recorded: hex(&recorded[..8]),
                    found: hex(&computed[..8]),
                });
            }
        }
        *slot = data;
        rest = after;
    }
    if !rest.is_empty() {
        return Err(FormatError::Trailing(rest.len() as u64));
    }
    Ok(Sections {
        state: found[0],
        model: found[1],
        optimizer: found[2],
        verified: checksums,
    })
}

/// The `state` section of the file that starts with `head` (the first bytes of a checkpoint
/// file, enough to hold its state section), unverified: for naming a checkpoint by its step
/// without reading the whole file. `None` when `head` does not hold it.
pub fn peek_state(head: &[u8]) -> Option<&[u8]> {
    let (rest, header) = if let Some(rest) = head.strip_prefix(MAGIC) {
        (rest, 8 + DIGEST)
    } else {
        (head.strip_prefix(MAGIC_V1)?, 8)
    };
    let len = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
    rest.get(header..)?.get(..usize::try_from(len).ok()?)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        encode(b"{\"epoch\":1}", &[7; 100], &[9; 50])
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        let sections = decode(&bytes).unwrap();
        assert_eq!(sections.state, b"{\"epoch\":1}");
        assert_eq!(sections.model, &[7; 100]);
        assert_eq!(sections.optimizer, &[9; 50]);
        assert!(sections.verified);
        assert_eq!(peek_state(&bytes[..80]), Some(&b"{\"epoch\":1}"[..]));
        assert_eq!(peek_state(&bytes[..40]), None);
    }

    /// Every single-byte change of a file is found, and named by the section it falls in.
    #[test]
    fn every_flipped_byte_is_found_in_its_section() {
        let bytes = sample();
        let state_end = MAGIC.len() + 8 + DIGEST + 11;
        let model_end = state_end + 8 + DIGEST + 100;
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            let err = decode(&bad).expect_err("a changed byte is found");
            if at < MAGIC.len() {
                assert_eq!(err, FormatError::BadMagic);
                continue;
            }
            let expected = if at < state_end {
                "state"
            } else if at < model_end {
                "model"
            } else {
                "optimizer"
            };
            // A changed length moves every later boundary: the error may then surface in the
            // section the length belongs to (truncated or checksum) or in a later one
            // (trailing bytes); it is never attributed to an earlier section.
            let index = |s: &str| SECTIONS.iter().position(|x| *x == s).unwrap();
            let section = err.section().unwrap();
            assert!(index(section) >= index(expected), "byte {at}: {err}");
            if !matches!(err, FormatError::Trailing(_)) {
                assert_eq!(section, expected, "byte {at}: {err}");
            }
        }
    }

    #[test]
    fn version_1_files_are_read_unverified() {
        let mut bytes = MAGIC_V1.to_vec();
        for section in [&b"{}"[..], &[1, 2, 3], &[4]] {
            bytes.extend_from_slice(&(section.len() as u64).to_le_bytes());
            bytes.extend_from_slice(section);
        }
        let sections = decode(&bytes).unwrap();
        assert_eq!(
            (sections.state, sections.model),
            (&b"{}"[..], &[1u8, 2, 3][..])
        );
        assert!(!sections.verified);
        assert_eq!(peek_state(&bytes), Some(&b"{}"[..]));
    }

    #[test]
    fn truncation_and_trailing_bytes_name_the_section() {
        let bytes = sample();
        let err = decode(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(
            err.to_string().contains("truncated optimizer section"),
            "{err}"
        );
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(decode(&long).unwrap_err(), FormatError::Trailing(1));
        let err = decode(&bytes[..MAGIC.len() + 4]).unwrap_err();
        assert_eq!(err, FormatError::TruncatedHeader { section: "state" });
    }
}
