//! Where rendered WAVs are kept: a bounded map in memory, and files named by their key on
//! disk. Keys are SHA-256 of (backend, voice, text), each part length-prefixed so no two
//! triples share a key. Disk I/O runs on the blocking pool; files are written to a
//! temporary name and renamed, so a reader never sees half a WAV.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::MAX_WAV_BYTES;
use super::checks::check_wav_blocking;

/// The most bytes of audio held in memory, whatever `tts.cache_entries` says.
pub const MAX_MEMORY_BYTES: usize = 256 * 1024 * 1024;

/// SHA-256 of (backend, voice, text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// The key's bytes: a render's identity for caches downstream (the prompt cache), so
    /// nothing hashes the audio again.
    pub fn bytes(&self) -> [u8; 32] {
        self.0
    }

    /// Lower-case hex: the disk file's name.
    pub fn hex(&self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

/// The key of `text` rendered by `backend` in `voice`.
pub fn cache_key(backend: &str, voice: &str, text: &str) -> CacheKey {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [backend, voice, text] {
        context.update(&(part.len() as u64).to_le_bytes());
        context.update(part.as_bytes());
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(context.finish().as_ref());
    CacheKey(key)
}

/// A bounded map, oldest entry out first.
#[derive(Debug)]
pub(super) struct MemoryCache {
    entries: HashMap<CacheKey, Arc<[u8]>>,
    order: VecDeque<CacheKey>,
    capacity: usize,
    bytes: usize,
}

impl MemoryCache {
    pub(super) fn new(capacity: usize) -> Self {
        MemoryCache { entries: HashMap::new(), order: VecDeque::new(), capacity, bytes: 0 }
    }

    pub(super) fn get(&self, key: &CacheKey) -> Option<Arc<[u8]>> {
        self.entries.get(key).cloned()
    }

    pub(super) fn insert(&mut self, key: CacheKey, wav: Arc<[u8]>) {
        if self.capacity == 0 || self.entries.contains_key(&key) {
            return;
        }
        self.bytes += wav.len();
        self.entries.insert(key, wav);
        self.order.push_back(key);
        while self.entries.len() > self.capacity || self.bytes > MAX_MEMORY_BYTES {
            let Some(oldest) = self.order.pop_front() else { break };
            if let Some(old) = self.entries.remove(&oldest) {
                self.bytes -= old.len();
            }
        }
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// WAV files in one folder, named `<hex key>.wav`.
#[derive(Debug, Clone)]
pub(super) struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    pub(super) fn new(dir: &Path) -> Self {
        DiskCache { dir: dir.to_path_buf() }
    }

    fn path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(format!("{}.wav", key.hex()))
    }

    /// The stored WAV, if there is one (blocking: call from the blocking pool).
    pub(super) fn read(&self, key: &CacheKey) -> std::io::Result<Option<Vec<u8>>> {
        let path = self.path(key);
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        if meta.len() > MAX_WAV_BYTES as u64 {
            return Err(std::io::Error::other(format!("{} is too large", path.display())));
        }
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Stores a WAV atomically (blocking: call from the blocking pool).
    pub(super) fn write(&self, key: &CacheKey, wav: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path(key);
        let temp = self.dir.join(format!(
            ".{}.{}.{}.tmp",
            key.hex(),
            std::process::id(),
            rand::random::<u32>()
        ));
        let written = std::fs::write(&temp, wav).and_then(|()| std::fs::rename(&temp, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written
    }

    /// The stored WAV if it is there and decodes; an invalid one is removed. Runs on the
    /// blocking pool; a failure to read is logged and counts as a miss.
    pub(super) async fn load(self, key: CacheKey) -> Option<Arc<[u8]>> {
        let read = tokio::task::spawn_blocking(move || {
            let valid = self.read(&key)?.filter(|bytes| check_wav_blocking(bytes).is_ok());
            if valid.is_none() {
                let _ = std::fs::remove_file(self.path(&key));
            }
            Ok::<_, std::io::Error>(valid)
        });
        match read.await {
            Ok(Ok(found)) => found.map(Arc::from),
            Ok(Err(err)) => {
                tracing::warn!(%err, "TTS disk cache read failed; rendering");
                None
            }
            Err(err) => {
                tracing::warn!(%err, "TTS disk cache read task failed; rendering");
                None
            }
        }
    }

    /// Stores a WAV on the blocking pool; a failure is logged.
    pub(super) async fn store(self, key: CacheKey, wav: Arc<[u8]>) {
        match tokio::task::spawn_blocking(move || self.write(&key, &wav)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(%err, "TTS disk cache write failed"),
            Err(err) => tracing::warn!(%err, "TTS disk cache write task failed"),
        }
    }
}
