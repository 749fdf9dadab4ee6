//! Image decoding under a pixel limit: PNG and JPEG files whose headers declare fuzzed sizes
//! (and PNG colour types, bit depths, interlacing; JPEG frame types), decoded by the image-folder
//! reader's own path (`decode_into`) with a limit of 4096 pixels.
//!
//! Input: byte 0, bit 0: PNG (0) or JPEG (1), bit 1: 1 or 3 channels; bytes 1..9: width and
//! height (big-endian u32; a JPEG keeps the low 16 bits); PNG: byte 9 colour type, byte 10 bit
//! depth, byte 11 interlace method, the rest the pixel rows (zlib-compressed into `IDAT`, after
//! a 16-colour `PLTE`); JPEG: byte 10's low nibble picks the frame marker `SOF0..SOF15`, the rest
//! replaces the scan data of `jpeg-source/dot.jpg`.
//!
//! Asserts: a declared size over the limit is `ImageTooLarge` naming that size; a decoded image
//! is within the limit; and at most `BUDGET` bytes are live at once during any call (counted by
//! the global allocator), so a forged size never reaches an allocation.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use libfuzzer_sys::fuzz_target;
use repr_fuzz::DataError;
use repr_fuzz::decode::decode_into;

/// The per-image pixel limit.
const MAX_PIXELS: u64 = 4096;
/// The most bytes the decode path may hold at once: the decoded image (at most 8 bytes per
/// pixel), its 8-bit copy, the resize's intermediate (`width × 5 × 16` bytes), the file and the
/// decoders' own buffers all fit, with room to spare.
const BUDGET: usize = 4 << 20;
const SIZE: (usize, usize) = (5, 4);
const DOT_JPG: &[u8] = include_bytes!("../jpeg-source/dot.jpg");
/// Offsets in `dot.jpg`: the SOF0 marker's second byte, the frame's height, and the scan data.
const SOF_MARKER: usize = 251;
const SOF_HEIGHT: usize = 255;
const SCAN_DATA: usize = 715;

/// The system allocator, counting the bytes live and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) {
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(body);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

fn png(width: u32, height: u32, colour: u8, depth: u8, interlace: u8, rows: &[u8]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = [width.to_be_bytes(), height.to_be_bytes()].concat();
    ihdr.extend_from_slice(&[depth, colour, 0, 0, interlace]);
    chunk(&mut out, b"IHDR", &ihdr);
    if colour == 3 {
        let palette: Vec<u8> = (0..48u8).map(|i| i.wrapping_mul(37)).collect();
        chunk(&mut out, b"PLTE", &palette);
    }
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    zlib.write_all(rows).unwrap();
    chunk(&mut out, b"IDAT", &zlib.finish().unwrap());
    chunk(&mut out, b"IEND", &[]);
    out
}

fn jpeg(width: u16, height: u16, frame: u8, scan: &[u8]) -> Vec<u8> {
    let mut out = DOT_JPG.to_vec();
    out[SOF_MARKER] = 0xc0 | (frame & 0x0f);
    out[SOF_HEIGHT..SOF_HEIGHT + 2].copy_from_slice(&height.to_be_bytes());
    out[SOF_HEIGHT + 2..SOF_HEIGHT + 4].copy_from_slice(&width.to_be_bytes());
    if !scan.is_empty() {
        out.truncate(SCAN_DATA);
        out.extend_from_slice(scan);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 12 {
        return;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let (mut width, mut height) = (be(&data[1..5]), be(&data[5..9]));
    let is_jpeg = data[0] & 1 == 1;
    let channels = if data[0] & 2 == 0 { 1 } else { 3 };
    let (bytes, name) = if is_jpeg {
        let frame = data[10] & 0x0f;
        (width, height) = (width & 0xffff, height & 0xffff);
        (
            jpeg(width as u16, height as u16, frame, &data[12..]),
            "x.jpg",
        )
    } else {
        (
            png(width, height, data[9], data[10], data[11], &data[12..]),
            "x.png",
        )
    };
    let path = DIR
        .get_or_init(|| repr_fuzz::scratch_dir("image_header"))
        .join(name);
    std::fs::write(&path, &bytes).unwrap();

    let mut out = vec![0u8; channels * SIZE.0 * SIZE.1];
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let result = decode_into(&path, channels, SIZE, MAX_PIXELS, &mut out);
    let held = PEAK.load(Ordering::Relaxed) - before;
    assert!(
        held <= BUDGET,
        "{held} bytes live at once for {width}x{height}: {result:?}"
    );

    let declared = u64::from(width) * u64::from(height);
    match result {
        Ok(()) => assert!(declared <= MAX_PIXELS, "{width}x{height} decoded"),
        Err(DataError::ImageTooLarge {
            width: w,
            height: h,
            limit,
            ..
        }) => {
            assert_eq!((w, h), (width, height));
            assert!(u64::from(w) * u64::from(h) > limit);
        }
        Err(DataError::BadImage { .. } | DataError::Io { .. }) => {
            // A JPEG frame marker that is not a frame (DHT, JPG, DAC) hides the size.
            let size_is_read = !is_jpeg || !matches!(data[10] & 0x0f, 4 | 8 | 12);
            assert!(
                !size_is_read || declared <= MAX_PIXELS,
                "{width}x{height} over the limit but not refused by size: {result:?}"
            );
        }
        Err(other) => panic!("unexpected error {other}"),
    }
});
