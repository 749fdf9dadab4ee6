//! The size a PNG or JPEG file declares, read from its header without decoding anything, so
//! that an image over the pixel limit is refused before a decoder touches the file (the JPEG
//! decoder reads a whole file into memory before it looks at the size).

use std::io::{self, Read, Seek, SeekFrom};

const PNG_SIGNATURE: [u8; 8] = *b"\x89PNG\r\n\x1a\n";

/// `(width, height)` as the header of the PNG or JPEG image `reader` holds (from its start)
/// declares them; `None` for another format or a header this reader does not find (the decoder
/// then reports it).
///
/// # Errors
/// The stream cannot be read (a stream shorter than its header is `None`).
pub fn declared_size_from(mut reader: impl Read + Seek) -> io::Result<Option<(u32, u32)>> {
    let mut start = [0u8; 2];
    let size = match read_or_none(&mut reader, &mut start)? {
        None => None,
        Some(()) if start == PNG_SIGNATURE[..2] => png_size(&mut reader)?,
        Some(()) if start == [0xff, 0xd8] => jpeg_size(&mut reader)?,
        Some(()) => None,
    };
    Ok(size)
}

/// A PNG's `IHDR` chunk, which the format requires first: after the rest of the signature, the
/// chunk length and its type come the big-endian width and height.
fn png_size(reader: &mut impl Read) -> io::Result<Option<(u32, u32)>> {
    let mut head = [0u8; 22];
    if read_or_none(reader, &mut head)?.is_none()
        || head[..6] != PNG_SIGNATURE[2..]
        || head[10..14] != *b"IHDR"
    {
        return Ok(None);
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Ok(Some((be(&head[14..18]), be(&head[18..22]))))
}

/// The size in a JPEG's first start-of-frame segment (`SOF0`..`SOF15`, except `DHT`, `JPG` and
/// `DAC`, which share the marker range), walking the segments before it after `SOI`.
fn jpeg_size(reader: &mut (impl Read + Seek)) -> io::Result<Option<(u32, u32)>> {
    loop {
        let mut byte = [0u8; 1];
        if read_or_none(reader, &mut byte)?.is_none() || byte[0] != 0xff {
            return Ok(None);
        }
        // Any number of 0xff fill bytes may precede a marker.
        let marker = loop {
            if read_or_none(reader, &mut byte)?.is_none() {
                return Ok(None);
            }
            if byte[0] != 0xff {
                break byte[0];
            }
        };
        match marker {
            // Markers without a segment: TEM, RSTn, a repeated SOI.
            0x01 | 0xd0..=0xd8 => continue,
            // End of image or start of scan before any frame header.
            0xd9 | 0xda => return Ok(None),
            _ => {}
        }
        let mut length = [0u8; 2];
        if read_or_none(reader, &mut length)?.is_none() {
            return Ok(None);
        }
        let length = u16::from_be_bytes(length);
        if length < 2 {
            return Ok(None);
        }
        if matches!(marker, 0xc0..=0xcf) && !matches!(marker, 0xc4 | 0xc8 | 0xcc) {
            // Sample precision, then the height and the width.
            let mut frame = [0u8; 5];
            if read_or_none(reader, &mut frame)?.is_none() {
                return Ok(None);
            }
            let height = u16::from_be_bytes([frame[1], frame[2]]);
            let width = u16::from_be_bytes([frame[3], frame[4]]);
            return Ok(Some((u32::from(width), u32::from(height))));
        }
        reader.seek(SeekFrom::Current(i64::from(length) - 2))?;
    }
}

/// Fills `buf`, or `None` if the stream ends first.
fn read_or_none(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<Option<()>> {
    match reader.read_exact(buf) {
        Ok(()) => Ok(Some(())),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use image::{ImageFormat, Rgb, RgbImage};

    use super::*;

    fn size_of(bytes: &[u8]) -> Option<(u32, u32)> {
        declared_size_from(Cursor::new(bytes)).unwrap()
    }

    #[test]
    fn encoded_images_declare_their_size() {
        let image = RgbImage::from_pixel(7, 5, Rgb([1, 2, 3]));
        for format in [ImageFormat::Png, ImageFormat::Jpeg] {
            let mut bytes = Cursor::new(Vec::new());
            image.write_to(&mut bytes, format).unwrap();
            assert_eq!(size_of(bytes.get_ref()), Some((7, 5)), "{format:?}");
        }
    }

    #[test]
    fn jpeg_segments_before_the_frame_are_skipped() {
        // SOI, fill bytes, an APP1 segment of 6 bytes, DHT (not a frame), SOF2 of 300 x 20000.
        let bytes = [
            0xff, 0xd8, 0xff, 0xff, 0xe1, 0x00, 0x06, 1, 2, 3, 4, 0xff, 0xc4, 0x00, 0x03, 9, 0xff,
            0xc2, 0x00, 0x0b, 8, 0x4e, 0x20, 0x01, 0x2c, 1, 1, 0x11, 0,
        ];
        assert_eq!(size_of(&bytes), Some((300, 20_000)));
        // Cut inside the frame header, or a scan before any frame: no size.
        assert_eq!(size_of(&bytes[..20]), None);
        assert_eq!(size_of(&[0xff, 0xd8, 0xff, 0xda, 0x00, 0x02]), None);
    }

    #[test]
    fn other_and_short_files_declare_nothing() {
        assert_eq!(size_of(b""), None);
        assert_eq!(size_of(b"GIF89a\x01\x00\x01\x00"), None);
        assert_eq!(size_of(&PNG_SIGNATURE), None);
        let mut png = PNG_SIGNATURE.to_vec();
        png.extend_from_slice(&[0, 0, 0, 13]);
        png.extend_from_slice(b"IHDR");
        png.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1]);
        assert_eq!(size_of(&png), Some((0x7fff_ffff, 1)));
    }
}
