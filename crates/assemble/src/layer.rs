//! `LayerWriter`: a reproducible tar+gzip layer, streamed in one pass.
//!
//! Entries are collected first (paths, modes and where the bytes come
//! from; never the bytes of a file), then written in sorted order with
//! every parent directory, as ustar headers with uid/gid 0 (unless asked),
//! empty user/group names, fixed modes and one mtime. The tar stream is
//! hashed (the `diff_id`) and compressed by [`crate::gzip`] while it is
//! produced; the gzip stream is hashed and written to a temp file in the
//! directory given to [`LayerWriter::finish`]. Files are read through a
//! fixed buffer, so memory does not grow with their size.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use distroless_pack_image::{Blob, Digest, KeepAlive};
use tar::{EntryType, Header};

use crate::cache::{self, Cache, CacheUse, Lookup, Meta};
use crate::gzip::{self, GzipOptions};
use crate::zstd::{self, ZstdOptions};
use crate::{AssembleError, Compression};

/// Mode of executables.
pub const MODE_EXEC: u32 = 0o755;
/// Mode of data files.
pub const MODE_FILE: u32 = 0o644;
/// Mode of directories.
pub const MODE_DIR: u32 = 0o755;
/// Mode of /tmp.
pub const MODE_TMP: u32 = 0o1777;

const BLOCK: usize = 512;
const COPY_BUF: usize = 256 * 1024;

/// Where an entry's content comes from.
#[derive(Clone, Debug)]
pub enum Content {
    Dir,
    /// A host file, read when the layer is written.
    File(PathBuf),
    /// Small generated content (passwd, group).
    Bytes(Arc<[u8]>),
    /// A symbolic link to this target.
    Symlink(String),
}

/// One entry of a layer.
#[derive(Clone, Debug)]
pub struct Entry {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub content: Content,
}

/// A finished layer.
#[derive(Clone, Debug)]
pub struct Layer {
    /// The gzip blob, backed by a temp file that lives as long as the blob.
    pub blob: Blob,
    /// sha256 of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// Size of the uncompressed tar.
    pub uncompressed_size: u64,
    /// Whether it came from the layer cache, was stored in it, or neither.
    pub cache: CacheUse,
}

/// What the compressor measured: both digests (hex) and sizes.
struct Sums {
    tar_sha256: String,
    tar_size: u64,
    sha256: String,
    size: u64,
}

/// Collects entries, then writes them as one reproducible layer.
#[derive(Clone, Debug)]
pub struct LayerWriter {
    entries: BTreeMap<PathBuf, Entry>,
    mtime: u64,
    gzip: GzipOptions,
    compression: Compression,
    /// The layer cache and the format id of the compression (part of the key).
    cache: Option<(Cache, String)>,
}

impl LayerWriter {
    /// A writer stamping every entry with `mtime` (seconds since the epoch:
    /// `SOURCE_DATE_EPOCH`, else 0).
    pub fn new(mtime: u64) -> LayerWriter {
        LayerWriter {
            entries: BTreeMap::new(),
            mtime,
            gzip: GzipOptions::default(),
            compression: Compression::default(),
            cache: None,
        }
    }

    /// Looks the layer up in `cache` before compressing, and stores it
    /// there after (see [`crate::cache`]). `format_id` names everything
    /// about the compression that changes the bytes
    /// ([`crate::Compression::layer_format_id`]); it is part of the key. `None`: no cache.
    pub fn with_cache(mut self, cache: Option<Cache>, format_id: impl Into<String>) -> LayerWriter {
        let format_id = format_id.into();
        self.cache = cache.map(|c| (c, format_id));
        self
    }

    /// Changes the compression settings (level and chunk size change the
    /// bytes; the thread count does not).
    pub fn with_gzip(mut self, gzip: GzipOptions) -> LayerWriter {
        self.gzip = gzip;
        self
    }

    /// Chooses the compressor and its level (gzip by default); for gzip the
    /// level given here wins over [`GzipOptions::level`].
    pub fn with_compression(mut self, compression: Compression) -> LayerWriter {
        self.compression = compression;
        self
    }

    /// Number of entries added (parent directories not counted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a host file at `path` (absolute in the image) with `mode`. The
    /// file must exist and be a regular file (or a link to one) now and when
    /// the layer is written.
    pub fn add_file(&mut self, path: &str, source: &Path, mode: u32) -> Result<(), AssembleError> {
        let meta = std::fs::metadata(source).map_err(crate::read_error(source))?;
        if !meta.is_file() {
            return Err(AssembleError::NotAFile {
                path: source.to_path_buf(),
            });
        }
        self.insert(
            path,
            Entry {
                mode,
                uid: 0,
                gid: 0,
                content: Content::File(source.to_path_buf()),
            },
        )
    }

    /// Adds generated bytes.
    pub fn add_bytes(
        &mut self,
        path: &str,
        bytes: impl Into<Arc<[u8]>>,
        mode: u32,
    ) -> Result<(), AssembleError> {
        self.insert(
            path,
            Entry {
                mode,
                uid: 0,
                gid: 0,
                content: Content::Bytes(bytes.into()),
            },
        )
    }

    /// Adds a directory (parents of other entries are added by themselves,
    /// 0755 root; use this for other modes or owners).
    pub fn add_dir(
        &mut self,
        path: &str,
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> Result<(), AssembleError> {
        self.insert(
            path,
            Entry {
                mode,
                uid,
                gid,
                content: Content::Dir,
            },
        )
    }

    /// Adds a symbolic link.
    pub fn add_symlink(&mut self, path: &str, target: &str) -> Result<(), AssembleError> {
        if target.is_empty() || target.contains('\0') {
            return Err(AssembleError::InvalidImagePath {
                path: target.to_string(),
                reason: "invalid symlink target".into(),
            });
        }
        self.insert(
            path,
            Entry {
                mode: 0o777,
                uid: 0,
                gid: 0,
                content: Content::Symlink(target.to_string()),
            },
        )
    }

    /// Adds a host directory tree under `path`: directories 0755, files
    /// 0644, symbolic links kept as links (their targets unchanged). Other
    /// kinds of file (sockets, devices) are an error.
    pub fn add_tree(&mut self, path: &str, source: &Path) -> Result<(), AssembleError> {
        let meta = std::fs::metadata(source).map_err(crate::read_error(source))?;
        if !meta.is_dir() {
            return Err(AssembleError::NotADirectory {
                path: source.to_path_buf(),
            });
        }
        self.add_dir(path, MODE_DIR, 0, 0)?;
        let mut stack = vec![(path.trim_end_matches('/').to_string(), source.to_path_buf())];
        while let Some((image_dir, host_dir)) = stack.pop() {
            let rd = std::fs::read_dir(&host_dir).map_err(crate::read_error(&host_dir))?;
            for de in rd {
                let de = de.map_err(crate::read_error(&host_dir))?;
                let host = de.path();
                let name = de.file_name();
                let name = name
                    .to_str()
                    .ok_or_else(|| AssembleError::InvalidImagePath {
                        path: host.display().to_string(),
                        reason: "file name is not UTF-8".into(),
                    })?;
                let image = format!("{image_dir}/{name}");
                let ft = de.file_type().map_err(crate::read_error(&host))?;
                if ft.is_symlink() {
                    let target = std::fs::read_link(&host).map_err(crate::read_error(&host))?;
                    let target =
                        target
                            .to_str()
                            .ok_or_else(|| AssembleError::InvalidImagePath {
                                path: host.display().to_string(),
                                reason: "symlink target is not UTF-8".into(),
                            })?;
                    self.add_symlink(&image, target)?;
                } else if ft.is_dir() {
                    self.add_dir(&image, MODE_DIR, 0, 0)?;
                    stack.push((image, host));
                } else if ft.is_file() {
                    self.insert(
                        &image,
                        Entry {
                            mode: MODE_FILE,
                            uid: 0,
                            gid: 0,
                            content: Content::File(host),
                        },
                    )?;
                } else {
                    return Err(AssembleError::NotAFile { path: host });
                }
            }
        }
        Ok(())
    }

    fn insert(&mut self, path: &str, entry: Entry) -> Result<(), AssembleError> {
        let key = normalise(path)?;
        if self.entries.contains_key(&key) {
            return Err(AssembleError::Conflict {
                path: format!("/{}", key.display()),
            });
        }
        self.entries.insert(key, entry);
        Ok(())
    }

    /// The sorted entries with every missing parent directory filled in:
    /// exactly what the tar will hold, in its order.
    pub fn plan(&self) -> Result<Vec<(PathBuf, Entry)>, AssembleError> {
        let mut all = self.entries.clone();
        for (path, _) in self.entries.iter() {
            for anc in path.ancestors().skip(1) {
                if anc.as_os_str().is_empty() {
                    break;
                }
                match all.get(anc) {
                    Some(Entry {
                        content: Content::Dir,
                        ..
                    }) => {}
                    Some(_) => {
                        return Err(AssembleError::Conflict {
                            path: format!("/{}", anc.display()),
                        });
                    }
                    None => {
                        all.insert(
                            anc.to_path_buf(),
                            Entry {
                                mode: MODE_DIR,
                                uid: 0,
                                gid: 0,
                                content: Content::Dir,
                            },
                        );
                    }
                }
            }
        }
        Ok(all.into_iter().collect())
    }

    /// Writes the layer to a temp file in `dir` and returns it; with a
    /// cache, returns the cached layer when there is a good one, else
    /// writes the layer into the cache.
    pub fn finish(self, dir: &Path) -> Result<Layer, AssembleError> {
        let plan = self.plan()?;
        // Writing into the cache can fail where the temp dir would not (a
        // full or read-only cache disk): then the layer is written again
        // without it.
        let uncached = self.cache.as_ref().map(|_| LayerWriter {
            cache: None,
            ..self.clone()
        });
        let media_type = self.compression.media_type();
        let mut rebuilt = None;
        let mut keyed = None;
        if let Some((c, format_id)) = &self.cache {
            let (key, hashes) = cache::layer_key(&plan, self.mtime, format_id)?;
            match c.lookup(&key, media_type) {
                Lookup::Hit(found) => {
                    return Ok(Layer {
                        blob: found.blob,
                        diff_id: found.diff_id,
                        uncompressed_size: found.uncompressed_size,
                        cache: CacheUse::Hit,
                    })
                }
                Lookup::Miss => {}
                Lookup::Bad(reason) => rebuilt = Some(reason),
            }
            keyed = Some((c, key, hashes));
        }

        // Into the cache when there is one (no copy afterwards), else a
        // temp file in `dir` that has no name.
        let mut not_stored = None;
        let pending = match &keyed {
            Some((c, key, _)) => match c.begin(key) {
                Ok(p) => Some(p),
                Err(e) => {
                    not_stored = Some(format!("{}: {e}", c.dir().display()));
                    None
                }
            },
            None => None,
        };
        let werr = |source: io::Error| AssembleError::Write {
            path: dir.to_path_buf(),
            source,
        };
        let (writer, plain) = match &pending {
            Some(p) => (p.writer().map_err(werr)?, None),
            None => {
                let (writer, path, keep) = temp_file(dir)?;
                (writer, Some((path, keep)))
            }
        };

        let mtime = self.mtime;
        let mut seen = keyed.as_ref().map(|_| Vec::new());
        let mut failure: Option<AssembleError> = None;
        let mut tar =
            |mut w: &mut dyn Write| match write_tar(&mut w, &plan, mtime, dir, seen.as_mut()) {
                Ok(()) => Ok(()),
                Err(e) => {
                    failure = Some(e);
                    Err(io::Error::other("tar stream failed"))
                }
            };
        // The one choice of compressor: both hash the tar and their own
        // output in the same pass.
        let result = match self.compression {
            Compression::Gzip { level } => {
                let opts = GzipOptions { level, ..self.gzip };
                gzip::compress(writer, opts, |w| tar(w)).map(|(s, w)| {
                    let sums = Sums {
                        tar_sha256: s.uncompressed_sha256,
                        tar_size: s.uncompressed_size,
                        sha256: s.compressed_sha256,
                        size: s.compressed_size,
                    };
                    (sums, w)
                })
            }
            Compression::Zstd { level } => {
                let opts = ZstdOptions {
                    level,
                    ..ZstdOptions::default()
                };
                zstd::compress(writer, opts, |w| tar(w)).map(|(s, w)| {
                    let sums = Sums {
                        tar_sha256: s.uncompressed_sha256,
                        tar_size: s.uncompressed_size,
                        sha256: s.compressed_sha256,
                        size: s.compressed_size,
                    };
                    (sums, w)
                })
            }
        };
        let written = match (failure, result) {
            // The tar side saw a broken pipe: the writing side failed
            // (disk full, ...) and its error is the cause.
            (Some(AssembleError::Write { source, .. }), Err(w))
                if source.kind() == io::ErrorKind::BrokenPipe =>
            {
                Err(werr(w))
            }
            (Some(e), _) => Err(e),
            (None, r) => r.map_err(werr),
        };
        let (summary, writer): (Sums, File) = match (written, &pending, uncached) {
            (Ok(w), _, _) => w,
            (Err(AssembleError::Write { source, .. }), Some(_), Some(uncached)) => {
                let reason = match &keyed {
                    Some((c, _, _)) => format!("writing to {}: {source}", c.dir().display()),
                    None => source.to_string(),
                };
                drop(pending);
                let mut layer = uncached.finish(dir)?;
                layer.cache = CacheUse::NotStored { reason };
                return Ok(layer);
            }
            (Err(e), _, _) => return Err(e),
        };
        drop(writer);
        let digest: Digest = format!("sha256:{}", summary.sha256)
            .parse()
            .expect("hex digest");
        let diff_id: Digest = format!("sha256:{}", summary.tar_sha256)
            .parse()
            .expect("hex digest");
        let meta = Meta {
            media_type: media_type.to_string(),
            digest,
            size: summary.size,
            diff_id,
            uncompressed_size: summary.tar_size,
        };
        let (found, used) = match (pending, plain, keyed) {
            (Some(p), _, Some((c, key, hashes))) => {
                if seen.as_ref() != Some(&hashes) {
                    let reason = "an input file changed while the layer was written".to_string();
                    (p.abandon(meta), CacheUse::NotStored { reason })
                } else {
                    match p.commit(c, &key, meta) {
                        (found, None) => (
                            found,
                            match rebuilt {
                                Some(reason) => CacheUse::Rebuilt { reason },
                                None => CacheUse::Stored,
                            },
                        ),
                        (found, Some(e)) => (
                            found,
                            CacheUse::NotStored {
                                reason: format!("{}: {e}", c.dir().display()),
                            },
                        ),
                    }
                }
            }
            (_, Some((path, keep)), keyed) => {
                let used = match (keyed, not_stored) {
                    (Some(_), Some(reason)) => CacheUse::NotStored { reason },
                    _ => CacheUse::Off,
                };
                let found = cache::Found {
                    blob: Blob::from_file(media_type, meta.digest, meta.size, path, 0, Some(keep))
                        .made_here(),
                    diff_id: meta.diff_id,
                    uncompressed_size: meta.uncompressed_size,
                };
                (found, used)
            }
            _ => unreachable!("a layer goes to the cache or to a temp file"),
        };
        Ok(Layer {
            blob: found.blob,
            diff_id: found.diff_id,
            uncompressed_size: found.uncompressed_size,
            cache: used,
        })
    }
}

/// A temp file for a layer in `dir` that can never be left behind: on
/// Linux it has no name at all (O_TMPFILE, or unlinked at once) and is
/// reached through `/proc/PID/fd/N` while the returned keep-alive holds it
/// open, so even a killed process leaves nothing. Where /proc is missing, a
/// named temp file removed when the keep-alive is dropped. Returns a handle
/// to write through, the path to read from, and the keep-alive.
fn temp_file(dir: &Path) -> Result<(File, PathBuf, KeepAlive), AssembleError> {
    use std::os::fd::AsRawFd;
    let werr = |e: io::Error| AssembleError::Write {
        path: dir.to_path_buf(),
        source: e,
    };
    if Path::new("/proc/self/fd").is_dir() {
        let file = tempfile::tempfile_in(dir).map_err(werr)?;
        let path = PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            file.as_raw_fd()
        ));
        if File::open(&path).is_ok() {
            let writer = file.try_clone().map_err(werr)?;
            return Ok((writer, path, Arc::new(file)));
        }
    }
    let tmp = tempfile::Builder::new()
        .prefix(".distroless-pack-layer-")
        .tempfile_in(dir)
        .map_err(werr)?;
    let file = tmp.as_file().try_clone().map_err(werr)?;
    let path = tmp.path().to_path_buf();
    Ok((file, path, Arc::new(tmp)))
}

/// `/a/b/` -> `a/b`; rejects empty, `.`/`..` components and NUL bytes.
fn normalise(path: &str) -> Result<PathBuf, AssembleError> {
    let bad = |reason: &str| AssembleError::InvalidImagePath {
        path: path.to_string(),
        reason: reason.into(),
    };
    if path.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err(bad("names the root directory"));
    }
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(bad("contains `.` or `..`"));
    }
    Ok(parts.iter().collect())
}

fn write_tar(
    w: &mut impl Write,
    plan: &[(PathBuf, Entry)],
    mtime: u64,
    dir: &Path,
    mut seen: Option<&mut Vec<blake3::Hash>>,
) -> Result<(), AssembleError> {
    let werr = |e: io::Error| AssembleError::Write {
        path: dir.to_path_buf(),
        source: e,
    };
    let mut buf = vec![0u8; COPY_BUF];
    for (path, entry) in plan {
        let name = path.to_str().expect("paths are built from UTF-8");
        match &entry.content {
            Content::Dir => {
                let h = header(
                    &format!("{name}/"),
                    EntryType::Directory,
                    entry,
                    0,
                    mtime,
                    None,
                )?;
                w.write_all(h.as_bytes()).map_err(werr)?;
            }
            Content::Symlink(target) => {
                let h = header(name, EntryType::Symlink, entry, 0, mtime, Some(target))?;
                w.write_all(h.as_bytes()).map_err(werr)?;
            }
            Content::Bytes(bytes) => {
                let h = header(
                    name,
                    EntryType::Regular,
                    entry,
                    bytes.len() as u64,
                    mtime,
                    None,
                )?;
                w.write_all(h.as_bytes()).map_err(werr)?;
                w.write_all(bytes).map_err(werr)?;
                pad(w, bytes.len() as u64).map_err(werr)?;
            }
            Content::File(source) => {
                let rerr = |e: io::Error| AssembleError::Read {
                    path: source.clone(),
                    source: e,
                };
                let mut f = File::open(source).map_err(rerr)?;
                let meta = f.metadata().map_err(rerr)?;
                if !meta.is_file() {
                    return Err(AssembleError::NotAFile {
                        path: source.clone(),
                    });
                }
                let size = meta.len();
                let h = header(name, EntryType::Regular, entry, size, mtime, None)?;
                w.write_all(h.as_bytes()).map_err(werr)?;
                // With a cache: the content's hash, to check it is what was keyed.
                let mut hasher = seen.is_some().then(blake3::Hasher::new);
                let mut left = size;
                while left > 0 {
                    let want = (buf.len() as u64).min(left) as usize;
                    let n = f.read(&mut buf[..want]).map_err(rerr)?;
                    if n == 0 {
                        return Err(AssembleError::Changed {
                            path: source.clone(),
                            expected: size,
                        });
                    }
                    w.write_all(&buf[..n]).map_err(werr)?;
                    if let Some(h) = hasher.as_mut() {
                        h.update(&buf[..n]);
                    }
                    left -= n as u64;
                }
                if let (Some(list), Some(h)) = (seen.as_deref_mut(), hasher) {
                    list.push(h.finalize());
                }
                pad(w, size).map_err(werr)?;
            }
        }
    }
    w.write_all(&[0u8; 2 * BLOCK]).map_err(werr)?;
    Ok(())
}

fn pad(w: &mut impl Write, size: u64) -> io::Result<()> {
    let rem = (size % BLOCK as u64) as usize;
    if rem != 0 {
        w.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
    }
    Ok(())
}

/// A ustar header with only deterministic content. Names longer than 100
/// bytes use the ustar prefix field; longer still is an error (no PAX or
/// GNU long-name records are ever written).
fn header(
    name: &str,
    kind: EntryType,
    e: &Entry,
    size: u64,
    mtime: u64,
    link: Option<&str>,
) -> Result<Header, AssembleError> {
    let too_long = |what: &str| AssembleError::InvalidImagePath {
        path: format!("/{name}"),
        reason: format!("{what} too long for a ustar header"),
    };
    let mut h = Header::new_ustar();
    {
        let ustar = h.as_ustar_mut().expect("ustar header");
        let bytes = name.as_bytes();
        if bytes.len() <= 100 {
            ustar.name[..bytes.len()].copy_from_slice(bytes);
        } else {
            // Split at a '/' so the prefix fits 155 bytes and the rest 100.
            let trimmed = name.trim_end_matches('/');
            let split = trimmed
                .char_indices()
                .filter(|&(i, c)| c == '/' && i <= 155 && bytes.len() - i - 1 <= 100 && i > 0)
                .map(|(i, _)| i)
                .next()
                .ok_or_else(|| too_long("path"))?;
            ustar.prefix[..split].copy_from_slice(&bytes[..split]);
            ustar.name[..bytes.len() - split - 1].copy_from_slice(&bytes[split + 1..]);
        }
    }
    h.set_entry_type(kind);
    h.set_mode(e.mode);
    h.set_uid(e.uid);
    h.set_gid(e.gid);
    h.set_size(size);
    h.set_mtime(mtime);
    h.set_device_major(0).expect("ustar has device fields");
    h.set_device_minor(0).expect("ustar has device fields");
    if let Some(target) = link {
        if target.len() > 100 {
            return Err(too_long("symlink target"));
        }
        h.set_link_name_literal(target.as_bytes())
            .map_err(|_| too_long("symlink target"))?;
    }
    h.set_cksum();
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// path, mode, uid, gid, mtime, content, link target
    type Listed = (String, u32, u64, u64, u64, Vec<u8>, Option<String>);

    fn entries_of(layer: &Layer) -> Vec<Listed> {
        let gz = std::fs::read(match &layer.blob.data {
            distroless_pack_image::BlobData::File { path, .. } => path.clone(),
            _ => unreachable!(),
        })
        .unwrap();
        let mut tar_bytes = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut tar_bytes)
            .unwrap();
        assert_eq!(Digest::sha256_of(&tar_bytes), layer.diff_id);
        assert_eq!(Digest::sha256_of(&gz), layer.blob.digest);
        let mut ar = tar::Archive::new(&tar_bytes[..]);
        ar.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let h = e.header().clone();
                assert!(h.as_ustar().is_some(), "ustar header");
                assert_eq!(h.username_bytes(), Some(&b""[..]));
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (
                    String::from_utf8(e.path_bytes().to_vec()).unwrap(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.mtime().unwrap(),
                    data,
                    e.link_name().unwrap().map(|l| l.display().to_string()),
                )
            })
            .collect()
    }

    #[test]
    fn entries_are_sorted_with_parents_and_fixed_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("hello");
        std::fs::write(&bin, b"\x7fELF fake").unwrap();
        let mut w = LayerWriter::new(0);
        w.add_file("/app/hello", &bin, MODE_EXEC).unwrap();
        w.add_bytes(
            "/etc/passwd",
            b"root:x:0:0:root:/root:/sbin/nologin\n".to_vec(),
            MODE_FILE,
        )
        .unwrap();
        w.add_dir("/tmp", MODE_TMP, 0, 0).unwrap();
        w.add_dir("/home/nonroot", 0o700, 65532, 65532).unwrap();
        w.add_symlink("/etc/localtime", "/usr/share/zoneinfo/UTC")
            .unwrap();
        let layer = w.finish(dir.path()).unwrap();
        let got = entries_of(&layer);
        let names: Vec<_> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "app/",
                "app/hello",
                "etc/",
                "etc/localtime",
                "etc/passwd",
                "home/",
                "home/nonroot/",
                "tmp/"
            ]
        );
        let modes: Vec<_> = got.iter().map(|e| e.1).collect();
        assert_eq!(
            modes,
            [0o755, 0o755, 0o755, 0o777, 0o644, 0o755, 0o700, 0o1777]
        );
        assert!(got.iter().all(|e| e.4 == 0));
        assert_eq!(got[6].2, 65532);
        assert!(got
            .iter()
            .filter(|e| e.0 != "home/nonroot/")
            .all(|e| e.2 == 0 && e.3 == 0));
        assert_eq!(got[1].5, b"\x7fELF fake");
        assert_eq!(got[3].6.as_deref(), Some("/usr/share/zoneinfo/UTC"));
    }

    #[test]
    fn same_content_same_digest_whatever_mtime_mode_or_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("sub/b");
        std::fs::create_dir_all(b.parent().unwrap()).unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&a, &data).unwrap();
        std::fs::write(&b, &data).unwrap();
        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o777)).unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        File::options()
            .write(true)
            .open(&a)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let _ = std::os::unix::fs::chown(&b, Some(1234), Some(5678));

        let pack = |src: &Path, threads: usize| {
            let mut w = LayerWriter::new(0).with_gzip(GzipOptions {
                threads,
                ..GzipOptions::default()
            });
            w.add_file("/app/x", src, MODE_EXEC).unwrap();
            w.finish(dir.path()).unwrap()
        };
        let la = pack(&a, 1);
        let lb = pack(&b, 4);
        assert_eq!(la.blob.digest, lb.blob.digest);
        assert_eq!(la.diff_id, lb.diff_id);

        let mut w = LayerWriter::new(1_700_000_000);
        w.add_file("/app/x", &a, MODE_EXEC).unwrap();
        let lc = w.finish(dir.path()).unwrap();
        assert_ne!(la.diff_id, lc.diff_id);
        assert!(entries_of(&lc).iter().all(|e| e.4 == 1_700_000_000));
    }

    #[test]
    fn layer_temp_files_have_no_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LayerWriter::new(0);
        w.add_bytes("/x", vec![7u8; 100_000], MODE_FILE).unwrap();
        let layer = w.finish(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing to leave behind"
        );
        let copy = layer.blob.clone();
        drop(layer);
        copy.verify().unwrap();
        assert!(copy.read_all().unwrap().len() > 10);
    }

    #[test]
    fn zstd_layer_has_the_zstd_media_type_and_the_tar_of_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..9_000_000u32)
            .map(|i| ((i % 251) ^ (i >> 13)) as u8)
            .collect();
        let bin = dir.path().join("big");
        std::fs::write(&bin, &data).unwrap();
        let pack = |c: Compression, threads: usize| {
            let mut w = LayerWriter::new(0)
                .with_gzip(GzipOptions {
                    threads,
                    ..GzipOptions::default()
                })
                .with_compression(c);
            w.add_file("/app/big", &bin, MODE_EXEC).unwrap();
            w.finish(dir.path()).unwrap()
        };
        let z = pack(Compression::Zstd { level: 3 }, 1);
        let g = pack(Compression::default(), 2);
        assert_eq!(
            z.blob.media_type,
            distroless_pack_image::MEDIA_TYPE_LAYER_ZSTD
        );
        assert_eq!(
            g.blob.media_type,
            distroless_pack_image::MEDIA_TYPE_LAYER_GZIP
        );
        // The same tar under either compressor.
        assert_eq!(z.diff_id, g.diff_id);
        assert_eq!(z.uncompressed_size, g.uncompressed_size);
        let bytes = z.blob.read_all().unwrap();
        assert_eq!(bytes[..4], distroless_pack_image::ZSTD_MAGIC);
        assert_eq!(Digest::sha256_of(&bytes), z.blob.digest);
        let mut tar_bytes = Vec::new();
        ::zstd::stream::read::Decoder::new(&bytes[..])
            .unwrap()
            .read_to_end(&mut tar_bytes)
            .unwrap();
        assert_eq!(Digest::sha256_of(&tar_bytes), z.diff_id);
        assert_eq!(
            pack(Compression::Zstd { level: 3 }, 2).blob.digest,
            z.blob.digest
        );
        assert_ne!(
            pack(Compression::Zstd { level: 1 }, 2).blob.digest,
            z.blob.digest
        );
    }

    #[test]
    fn gzip_header_is_fixed() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LayerWriter::new(1_700_000_000);
        w.add_bytes("/x", b"x".to_vec(), MODE_FILE).unwrap();
        let layer = w.finish(dir.path()).unwrap();
        let bytes = layer.blob.read_all().unwrap();
        assert_eq!(&bytes[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    }

    #[test]
    fn long_names_use_the_ustar_prefix_and_too_long_fails() {
        let dir = tempfile::tempdir().unwrap();
        let long = format!("/{}/{}/{}", "d".repeat(60), "e".repeat(60), "f".repeat(90));
        let mut w = LayerWriter::new(0);
        w.add_bytes(&long, b"1".to_vec(), MODE_FILE).unwrap();
        let got = entries_of(&w.finish(dir.path()).unwrap());
        assert_eq!(got.last().unwrap().0, long[1..]);

        let mut w = LayerWriter::new(0);
        w.add_bytes(&format!("/{}", "x".repeat(300)), b"1".to_vec(), MODE_FILE)
            .unwrap();
        let err = w.finish(dir.path()).unwrap_err();
        assert!(err.to_string().contains("too long"), "{err}");
    }

    #[test]
    fn conflicts_and_bad_paths_are_errors() {
        let mut w = LayerWriter::new(0);
        w.add_bytes("/etc/passwd", b"1".to_vec(), MODE_FILE)
            .unwrap();
        assert!(matches!(
            w.add_bytes("etc/passwd/", b"2".to_vec(), MODE_FILE),
            Err(AssembleError::Conflict { .. })
        ));
        w.add_bytes("/etc/passwd/x", b"2".to_vec(), MODE_FILE)
            .unwrap();
        assert!(matches!(w.plan(), Err(AssembleError::Conflict { .. })));
        assert!(LayerWriter::new(0).add_bytes("/", b"".to_vec(), 0).is_err());
        assert!(LayerWriter::new(0)
            .add_bytes("/a/../b", b"".to_vec(), 0)
            .is_err());
        let err = LayerWriter::new(0)
            .add_file("/x", Path::new("/nonexistent/file"), 0)
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/file"), "{err}");
        let err = LayerWriter::new(0)
            .add_file("/x", Path::new("/tmp"), 0)
            .unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn no_temp_file_is_left_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("gone");
        std::fs::write(&src, b"abc").unwrap();
        let mut w = LayerWriter::new(0);
        w.add_file("/x", &src, MODE_FILE).unwrap();
        std::fs::remove_file(&src).unwrap();
        let out = tempfile::tempdir().unwrap();
        assert!(w.finish(out.path()).is_err());
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
    }
}
