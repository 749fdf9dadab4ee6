//! Thumbnails of indexed images: made on demand, kept in memory up to a size, least recently
//! used dropped first.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;

use axum::body::Bytes;
use image::codecs::jpeg::JpegEncoder;
use repr_data::{DataError, decode_image, into_rgb8};

use crate::FileId;

/// JPEG quality of thumbnails.
const QUALITY: u8 = 85;

/// A thumbnail's key: the image and its content (a changed file gets a new thumbnail).
pub(super) type Key = (FileId, [u8; 32]);

/// The JPEG thumbnail of the image file `path`: its longer side `side` pixels (smaller images
/// keep their size), aspect ratio kept.
///
/// # Errors
/// As [`repr_data::decode_image`].
pub(super) fn make(path: &Path, side: u32, max_pixels: u64) -> Result<Bytes, DataError> {
    let image = decode_image(path, max_pixels)?;
    let image = if image.width() > side || image.height() > side {
        image.thumbnail(side, side)
    } else {
        image
    };
    let rgb = into_rgb8(image);
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, QUALITY)
        .encode_image(&rgb)
        .map_err(|e| DataError::BadImage {
            path: path.to_path_buf(),
            reason: format!("cannot encode its thumbnail: {e}"),
        })?;
    Ok(Bytes::from(jpeg))
}

/// Thumbnails already made, at most `capacity` bytes of them.
#[derive(Debug)]
pub(super) struct ThumbnailCache {
    capacity: usize,
    inner: Mutex<Lru>,
}

#[derive(Debug, Default)]
struct Lru {
    /// Each thumbnail and when it was last used.
    entries: HashMap<Key, (Bytes, u64)>,
    /// The keys by last use, oldest first.
    by_use: BTreeMap<u64, Key>,
    clock: u64,
    bytes: usize,
}

impl ThumbnailCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Lru::default()),
        }
    }

    /// The thumbnail of `key`, if kept; it becomes the most recently used.
    pub fn get(&self, key: &Key) -> Option<Bytes> {
        let mut lru = self.lock();
        lru.clock += 1;
        let now = lru.clock;
        let (bytes, used) = lru.entries.get_mut(key)?;
        let (bytes, before) = (bytes.clone(), std::mem::replace(used, now));
        lru.by_use.remove(&before);
        lru.by_use.insert(now, *key);
        Some(bytes)
    }

    /// Keeps `thumbnail` for `key`, dropping the least recently used ones beyond the capacity
    /// (a thumbnail larger than the whole capacity is not kept).
    pub fn insert(&self, key: Key, thumbnail: Bytes) {
        if thumbnail.len() > self.capacity {
            return;
        }
        let mut lru = self.lock();
        lru.clock += 1;
        let now = lru.clock;
        lru.bytes += thumbnail.len();
        if let Some((old, used)) = lru.entries.insert(key, (thumbnail, now)) {
            lru.bytes -= old.len();
            lru.by_use.remove(&used);
        }
        lru.by_use.insert(now, key);
        while lru.bytes > self.capacity {
            let Some((_, oldest)) = lru.by_use.pop_first() else {
                break;
            };
            if let Some((bytes, _)) = lru.entries.remove(&oldest) {
                lru.bytes -= bytes.len();
            }
        }
    }

    /// The bytes kept.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        // The cache holds no invariant a panicking holder could break half-way that matters
        // more than serving: recover it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use image::{Rgb, RgbImage};

    use super::*;

    fn key(id: u64) -> Key {
        (FileId(id), [id as u8; 32])
    }

    #[test]
    fn the_least_recently_used_go_first() {
        let cache = ThumbnailCache::new(30);
        cache.insert(key(1), Bytes::from(vec![1; 10]));
        cache.insert(key(2), Bytes::from(vec![2; 10]));
        cache.insert(key(3), Bytes::from(vec![3; 10]));
        assert!(cache.get(&key(1)).is_some()); // 2 is now the oldest
        cache.insert(key(4), Bytes::from(vec![4; 10]));
        assert!(cache.get(&key(2)).is_none());
        assert_eq!(cache.get(&key(1)).unwrap()[0], 1);
        assert!(cache.get(&key(3)).is_some() && cache.get(&key(4)).is_some());
        assert_eq!(cache.bytes(), 30);
        cache.insert(key(5), Bytes::from(vec![5; 31]));
        assert!(cache.get(&key(5)).is_none());
        cache.insert(key(3), Bytes::from(vec![3; 5]));
        assert_eq!(cache.bytes(), 25);
    }

    #[test]
    fn thumbnails_keep_the_aspect_ratio_and_small_images_their_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wide.png");
        RgbImage::from_pixel(400, 100, Rgb([200, 10, 10]))
            .save(&path)
            .unwrap();
        let jpeg = make(&path, 64, 1 << 20).unwrap();
        let thumbnail = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((thumbnail.width(), thumbnail.height()), (64, 16));
        let small = make(&path, 1000, 1 << 20).unwrap();
        let small = image::load_from_memory(&small).unwrap();
        assert_eq!((small.width(), small.height()), (400, 100));
        assert!(matches!(
            make(&path, 64, 100),
            Err(DataError::ImageTooLarge { .. })
        ));
    }
}
