//! IDX files (MNIST, Fashion-MNIST): a big-endian header (magic, then one `u32` per dimension)
//! followed by the `u8` data, either raw or gzip-compressed.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::DataError;

/// Magic number of an IDX file of `u8` with three dimensions (images).
const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of `u8` with one dimension (labels).
const LABELS_MAGIC: u32 = 0x0000_0801;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Upper bound on the buffer reserved before any data is read, so a forged header cannot make
/// us allocate more than the file really holds (the buffer grows as real bytes arrive).
const MAX_RESERVE: u64 = 1 << 24;

/// The most data bytes (after the header, uncompressed) an IDX file may hold: 4 GiB, eight
/// times EMNIST's largest file. A header declaring more is accepted only if the file ends
/// sooner (it is then [`DataError::Truncated`]); a file that really holds more is
/// [`DataError::DataTooLarge`], found after reading (not keeping) at most this many bytes.
pub const MAX_IDX_BYTES: u64 = 4 << 30;

/// Reads an IDX image file (`*-images-idx3-ubyte`, optionally `.gz`).
///
/// Returns `(pixels, count, rows, cols)` with `pixels.len() == count * rows * cols`, images one
/// after another in row-major order.
///
/// # Errors
/// [`DataError::Io`], [`DataError::BadMagic`] (not `0x00000803`), [`DataError::BadHeader`],
/// [`DataError::Truncated`] or [`DataError::TrailingData`] when the data does not match the header,
/// [`DataError::DataTooLarge`] for more than [`MAX_IDX_BYTES`] of data.
pub fn read_idx_images(path: &Path) -> Result<(Vec<u8>, usize, usize, usize), DataError> {
    let (dims, data) = read_idx(path, IMAGES_MAGIC, 3, "IDX images, idx3-ubyte")?;
    Ok((data, dims[0], dims[1], dims[2]))
}

/// Reads an IDX label file (`*-labels-idx1-ubyte`, optionally `.gz`): one `u8` label per item.
///
/// # Errors
/// As [`read_idx_images`], with magic `0x00000801`.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    let (_, data) = read_idx(path, LABELS_MAGIC, 1, "IDX labels, idx1-ubyte")?;
    Ok(data)
}

/// Reads a whole IDX file, checking its magic number and that the data length matches the header.
fn read_idx(
    path: &Path,
    magic: u32,
    ndims: usize,
    what: &'static str,
) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let reader = open_maybe_gz(path).map_err(|e| DataError::io(path, e))?;
    read_idx_from(reader, path, magic, ndims, what, MAX_IDX_BYTES)
}

/// [`read_idx`] from an open (decompressed) stream, with at most `max_bytes` of data: never
/// reads more than the header declares plus one byte, nor more than `max_bytes` plus one.
fn read_idx_from(
    mut reader: impl Read,
    path: &Path,
    magic: u32,
    ndims: usize,
    what: &'static str,
    max_bytes: u64,
) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let io_err = |e| DataError::io(path, e);
    let header_len = 4 + 4 * ndims;
    let mut header = vec![0u8; header_len];
    let got = read_full(&mut reader, &mut header[..4]).map_err(io_err)?;
    if got < 4 {
        return Err(truncated(path, header_len as u64, got as u64));
    }
    let found = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if found != magic {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            found,
            expected: magic,
            what,
        });
    }
    let got = read_full(&mut reader, &mut header[4..]).map_err(io_err)?;
    if got < header_len - 4 {
        return Err(truncated(path, header_len as u64, 4 + got as u64));
    }

    let dims: Vec<usize> = header[4..]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    // Only the item count may be zero: a zero row or column size is a broken header.
    if let Some(axis) = dims.iter().skip(1).position(|&d| d == 0) {
        return Err(DataError::BadHeader {
            path: path.to_path_buf(),
            reason: format!("dimension {} is zero (dimensions {dims:?})", axis + 1),
        });
    }
    // The data length and the whole file's (header included) must fit in u64 and usize.
    let overflow = || DataError::BadHeader {
        path: path.to_path_buf(),
        reason: format!("dimensions {dims:?} overflow the address space"),
    };
    let data_len = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(overflow)?;
    let total = data_len
        .checked_add(header_len as u64)
        .filter(|&n| usize::try_from(n).is_ok())
        .ok_or_else(overflow)?;
    if data_len > max_bytes {
        // Count, without keeping, the bytes up to one past the limit: a file that ends sooner
        // is truncated, one that does not is too large.
        let found = io::copy(
            &mut reader.take(max_bytes.saturating_add(1)),
            &mut io::sink(),
        )
        .map_err(io_err)?;
        if found <= max_bytes {
            return Err(truncated(path, total, header_len as u64 + found));
        }
        return Err(DataError::DataTooLarge {
            path: path.to_path_buf(),
            declared: data_len,
            limit: max_bytes,
            what: "repr_data::MAX_IDX_BYTES",
        });
    }

    // Read at most one byte more than the header promises: enough to detect trailing data,
    // never more than the file holds, whatever the header says.
    let mut data = Vec::with_capacity(data_len.min(MAX_RESERVE) as usize);
    reader
        .take(data_len + 1)
        .read_to_end(&mut data)
        .map_err(io_err)?;
    let found = data.len() as u64;
    if found < data_len {
        return Err(truncated(path, total, header_len as u64 + found));
    }
    if found > data_len {
        return Err(DataError::TrailingData {
            path: path.to_path_buf(),
            expected: total,
        });
    }
    Ok((dims, data))
}

fn truncated(path: &Path, expected: u64, found: u64) -> DataError {
    DataError::Truncated {
        path: path.to_path_buf(),
        expected,
        found,
    }
}

/// Opens `path`, transparently decompressing it when it starts with the gzip magic `1f 8b`.
fn open_maybe_gz(path: &Path) -> io::Result<Box<dyn Read>> {
    let mut file = File::open(path)?;
    let mut magic = [0u8; 2];
    let got = read_full(&mut file, &mut magic)?;
    file.seek(SeekFrom::Start(0))?;
    let reader = BufReader::new(file);
    Ok(if got == 2 && magic == GZIP_MAGIC {
        Box::new(MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    })
}

/// Fills `buf` as far as the reader allows; returns the number of bytes read (short only at EOF).
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    fn images_file(count: u32, rows: u32, cols: u32, data: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for v in [IMAGES_MAGIC, count, rows, cols] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        bytes.extend_from_slice(data);
        bytes
    }

    #[test]
    fn reads_raw_and_gzip_images() {
        let dir = tempfile::tempdir().unwrap();
        let pixels: Vec<u8> = (0..2 * 2 * 3).collect();
        let bytes = images_file(2, 2, 3, &pixels);

        let raw = dir.path().join("raw-images-idx3-ubyte");
        std::fs::write(&raw, &bytes).unwrap();
        let gz = dir.path().join("gz-images-idx3-ubyte.gz");
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(&bytes).unwrap();
        std::fs::write(&gz, encoder.finish().unwrap()).unwrap();

        for path in [raw, gz] {
            let (data, count, rows, cols) = read_idx_images(&path).unwrap();
            assert_eq!((count, rows, cols), (2, 2, 3));
            assert_eq!(data, pixels);
        }
    }

    #[test]
    fn reads_labels_and_rejects_images_as_labels() {
        let dir = tempfile::tempdir().unwrap();
        let labels = dir.path().join("labels");
        let mut bytes = LABELS_MAGIC.to_be_bytes().to_vec();
        bytes.extend_from_slice(&3u32.to_be_bytes());
        bytes.extend_from_slice(&[7, 0, 9]);
        std::fs::write(&labels, &bytes).unwrap();
        assert_eq!(read_idx_labels(&labels).unwrap(), vec![7, 0, 9]);

        let images = dir.path().join("images");
        std::fs::write(&images, images_file(1, 1, 1, &[5])).unwrap();
        let err = read_idx_labels(&images).unwrap_err();
        assert!(matches!(
            err,
            DataError::BadMagic {
                found: IMAGES_MAGIC,
                expected: LABELS_MAGIC,
                ..
            }
        ));
    }

    #[test]
    fn zero_sized_rows_are_a_bad_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("images");
        std::fs::write(&path, images_file(4, 0, 28, &[])).unwrap();
        let err = read_idx_images(&path).unwrap_err();
        assert!(matches!(err, DataError::BadHeader { .. }), "{err}");
    }

    #[test]
    fn trailing_bytes_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("images");
        std::fs::write(&path, images_file(1, 1, 2, &[1, 2, 3])).unwrap();
        let err = read_idx_images(&path).unwrap_err();
        assert!(
            matches!(err, DataError::TrailingData { expected: 18, .. }),
            "{err}"
        );
    }

    /// Header bytes, then endless data; counts every byte handed out.
    struct Endless {
        header: Vec<u8>,
        given: u64,
    }

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let at = self.given as usize;
            let n = if at < self.header.len() {
                let n = buf.len().min(self.header.len() - at);
                buf[..n].copy_from_slice(&self.header[at..at + n]);
                n
            } else {
                buf.fill(7);
                buf.len()
            };
            self.given += n as u64;
            Ok(n)
        }
    }

    #[test]
    fn a_longer_stream_is_read_one_byte_past_the_header_size_only() {
        // An endless stream (a gzip bomb, say) behind a header declaring 2 x 3 x 5 bytes.
        let header = images_file(2, 3, 5, &[]);
        let mut reader = Endless { header, given: 0 };
        let err = read_idx_from(
            &mut reader,
            Path::new("bomb.gz"),
            IMAGES_MAGIC,
            3,
            "images",
            MAX_IDX_BYTES,
        )
        .unwrap_err();
        assert!(
            matches!(err, DataError::TrailingData { expected: 46, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("bomb.gz"), "{err}");
        assert_eq!(reader.given, 16 + 30 + 1);
    }

    #[test]
    fn data_over_the_limit_is_refused_after_the_limit_plus_one_byte() {
        // 1000 x 10 x 10 bytes declared, a limit of 5000.
        let header = images_file(1000, 10, 10, &[]);
        let mut reader = Endless { header, given: 0 };
        let path = Path::new("big-images-idx3-ubyte");
        let err = read_idx_from(&mut reader, path, IMAGES_MAGIC, 3, "images", 5000).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::DataTooLarge {
                    declared: 100_000,
                    limit: 5000,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(reader.given, 16 + 5001);
        let message = err.to_string();
        assert!(message.contains("big-images-idx3-ubyte") && message.contains("MAX_IDX_BYTES"));

        // The same header with less data than the limit: truncated, as under the limit.
        let bytes = images_file(1000, 10, 10, &[0; 300]);
        let err = read_idx_from(&bytes[..], path, IMAGES_MAGIC, 3, "images", 5000).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Truncated {
                    expected: 100_016,
                    found: 316,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_file_size_past_u64_is_a_bad_header() {
        // 65535 x 42009217 x 6700417 = u64::MAX: the data fits in u64, the file does not.
        let bytes = images_file(65535, 42_009_217, 6_700_417, &[]);
        let err = read_idx_from(
            &bytes[..],
            Path::new("f"),
            IMAGES_MAGIC,
            3,
            "images",
            u64::MAX,
        )
        .unwrap_err();
        assert!(matches!(err, DataError::BadHeader { .. }), "{err}");
    }
}
