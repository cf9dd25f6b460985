//! A blob: content-addressed bytes in memory or in a region of a file.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use crate::{Digest, ImageError};

/// Something that must outlive a blob stored in it (a temp file or temp
/// directory): dropped when the last blob pointing into it goes.
pub type KeepAlive = Arc<dyn std::any::Any + Send + Sync>;

/// Where a blob's bytes are.
#[derive(Clone)]
pub enum BlobData {
    /// Small blobs (manifests, configs) kept in memory.
    Bytes(Arc<[u8]>),
    /// `size` bytes at `offset` of a file: a layer written to a temp file, a
    /// blob in an OCI layout, or an entry inside an uncompressed tar.
    File {
        path: PathBuf,
        offset: u64,
        keep: Option<KeepAlive>,
    },
}

impl fmt::Debug for BlobData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobData::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            BlobData::File { path, offset, .. } => {
                write!(f, "File({}@{offset})", path.display())
            }
        }
    }
}

/// Content-addressed bytes with their media type.
#[derive(Clone, Debug)]
pub struct Blob {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub data: BlobData,
    /// Whether `digest` and `size` were computed from these very bytes by
    /// this process (a layer assemble just wrote, hashing it in the same
    /// pass, or a cache entry whose sha256 it just checked), so writers may
    /// skip hashing them again. Never set for bytes read from an image we
    /// were given. See [`Blob::made_here`].
    made_here: bool,
}

impl Blob {
    /// A blob held in memory; its digest is computed here.
    pub fn from_bytes(media_type: &str, bytes: Vec<u8>) -> Blob {
        let digest = Digest::sha256_of(&bytes);
        Blob {
            media_type: media_type.to_string(),
            digest,
            size: bytes.len() as u64,
            data: BlobData::Bytes(bytes.into()),
            made_here: false,
        }
    }

    /// A blob whose bytes are `size` bytes at `offset` of `path`, with a
    /// digest the caller already knows (computed while writing, or read
    /// from a manifest). Use [`Blob::verify`] when the file is untrusted.
    pub fn from_file(
        media_type: &str,
        digest: Digest,
        size: u64,
        path: PathBuf,
        offset: u64,
        keep: Option<KeepAlive>,
    ) -> Blob {
        Blob {
            media_type: media_type.to_string(),
            digest,
            size,
            data: BlobData::File { path, offset, keep },
            made_here: false,
        }
    }

    /// Marks the blob as made by this process: its digest and size were
    /// computed from the bytes now in its file, in this run, and the file
    /// is not written again. Writers then copy it without hashing it a
    /// second time (`Blob::open_verified` still checks, for whoever asks).
    /// Only for a file this process wrote and hashed in one pass, or
    /// checked in full just now; never for an input.
    pub fn made_here(mut self) -> Blob {
        self.made_here = true;
        self
    }

    /// Whether [`Blob::made_here`] marked it.
    pub fn is_made_here(&self) -> bool {
        self.made_here
    }

    /// The file and offset holding the bytes, for a blob in a file.
    pub fn file_region(&self) -> Option<(&std::path::Path, u64)> {
        match &self.data {
            BlobData::File { path, offset, .. } => Some((path.as_path(), *offset)),
            BlobData::Bytes(_) => None,
        }
    }

    /// A reader over the bytes for a writer: checked against the digest as
    /// it is read ([`Blob::open_verified`]) unless the blob was
    /// [`made_here`](Blob::made_here).
    pub fn open_for_copy(&self) -> io::Result<Box<dyn Read + Send>> {
        if self.made_here {
            self.open()
        } else {
            Ok(Box::new(self.open_verified()?))
        }
    }

    /// A reader over exactly this blob's bytes.
    pub fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        match &self.data {
            BlobData::Bytes(b) => Ok(Box::new(io::Cursor::new(b.clone()))),
            BlobData::File { path, offset, .. } => {
                let mut f = File::open(path)?;
                f.seek(SeekFrom::Start(*offset))?;
                Ok(Box::new(f.take(self.size)))
            }
        }
    }

    /// All the bytes (for manifests and configs; layers should be streamed).
    pub fn read_all(&self) -> Result<Vec<u8>, ImageError> {
        if let BlobData::Bytes(b) = &self.data {
            return Ok(b.to_vec());
        }
        let mut out = Vec::with_capacity(self.size.min(1 << 20) as usize);
        self.open()
            .and_then(|mut r| r.read_to_end(&mut out))
            .map_err(|source| ImageError::Io {
                digest: self.digest.to_string(),
                source,
            })?;
        Ok(out)
    }

    /// Where the bytes are, for error messages: the file (and the offset
    /// in it, for an entry inside a tar), or "memory".
    pub fn location(&self) -> String {
        match &self.data {
            BlobData::Bytes(_) => "memory".to_string(),
            BlobData::File {
                path, offset: 0, ..
            } => path.display().to_string(),
            BlobData::File { path, offset, .. } => {
                format!("{} (at byte {offset})", path.display())
            }
        }
    }

    /// A reader over this blob's bytes that hashes them as they pass and,
    /// at their end, fails with a [`BlobMismatch`] (inside the
    /// `io::Error`, kind `InvalidData`) unless digest and size match; it
    /// never returns more than `size` bytes' worth without failing.
    pub fn open_verified(&self) -> io::Result<VerifyingReader<Box<dyn Read + Send>>> {
        Ok(VerifyingReader::new(
            self.open()?,
            self.digest.clone(),
            self.size,
            self.location(),
        ))
    }

    /// Reads the blob and checks its size and digest.
    pub fn verify(&self) -> Result<(), ImageError> {
        let io_err = |source| ImageError::Io {
            digest: self.digest.to_string(),
            source,
        };
        let mut r = self.open_verified().map_err(io_err)?;
        match io::copy(&mut r, &mut io::sink()) {
            Ok(_) => Ok(()),
            Err(e) => match BlobMismatch::in_io(&e) {
                Some(m) => Err(ImageError::Mismatch(m.clone())),
                None => Err(io_err(e)),
            },
        }
    }

    /// The OCI descriptor `{mediaType, digest, size}`.
    pub fn descriptor_json(&self) -> serde_json::Value {
        serde_json::json!({
            "mediaType": self.media_type,
            "digest": self.digest.as_str(),
            "size": self.size,
        })
    }
}

/// A blob whose bytes do not match the digest or size its descriptor gives.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{location}: blob {expected} does not match its digest (corrupt): the content hashes to {} ({})", actual_text(.actual), size_text(.expected_size, .actual_size))]
pub struct BlobMismatch {
    /// The file holding it (see [`Blob::location`]).
    pub location: String,
    pub expected: Digest,
    /// `None` when reading stopped because there were more bytes than the
    /// descriptor's size.
    pub actual: Option<Digest>,
    pub expected_size: u64,
    /// Bytes read (size + 1 when there were too many).
    pub actual_size: u64,
}

fn actual_text(a: &Option<Digest>) -> String {
    match a {
        Some(d) => d.to_string(),
        None => "something else".to_string(),
    }
}

fn size_text(expected: &u64, actual: &u64) -> String {
    if expected == actual {
        format!("same size, {expected} bytes")
    } else if actual > expected {
        format!("{expected} bytes expected, more found")
    } else {
        format!("{expected} bytes expected, {actual} found")
    }
}

impl BlobMismatch {
    /// The mismatch inside an `io::Error` from a [`VerifyingReader`] (also
    /// when something wrapped that reader and passed its error on).
    pub fn in_io(e: &io::Error) -> Option<&BlobMismatch> {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|r| r as _);
        while let Some(err) = cur {
            if let Some(m) = err.downcast_ref::<BlobMismatch>() {
                return Some(m);
            }
            if let Some(io) = err.downcast_ref::<io::Error>() {
                cur = io.get_ref().map(|r| r as _);
                continue;
            }
            cur = err.source();
        }
        None
    }
}

/// Hashes and counts what is read through it; at the end of the input (or
/// past `size` bytes) checks digest and size and fails with a
/// [`BlobMismatch`] wrapped in an `io::Error` of kind `InvalidData`.
/// Consumers that may stop reading before the end (a tar reader stops at
/// its end marker) call [`VerifyingReader::finish`], which reads the rest.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
    expected: Digest,
    size: u64,
    read: u64,
    location: String,
    result: Option<Result<(), BlobMismatch>>,
}

impl<R: Read> VerifyingReader<R> {
    /// `location` names the file in errors.
    pub fn new(inner: R, expected: Digest, size: u64, location: String) -> Self {
        use sha2::Digest as _;
        VerifyingReader {
            inner,
            hasher: sha2::Sha256::new(),
            expected,
            size,
            read: 0,
            location,
            result: None,
        }
    }

    fn mismatch(&self, actual: Option<Digest>) -> BlobMismatch {
        BlobMismatch {
            location: self.location.clone(),
            expected: self.expected.clone(),
            actual,
            expected_size: self.size,
            actual_size: self.read,
        }
    }

    fn check(&mut self) -> Result<(), BlobMismatch> {
        if let Some(r) = &self.result {
            return r.clone();
        }
        use sha2::Digest as _;
        let hasher = std::mem::take(&mut self.hasher);
        let got = Digest::from_hex_unchecked(&hex::encode(hasher.finalize()));
        let r = if got == self.expected && self.read == self.size {
            Ok(())
        } else {
            Err(self.mismatch(Some(got)))
        };
        self.result = Some(r.clone());
        r
    }

    /// Reads whatever is left and checks digest and size.
    pub fn finish(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(|_| ())
    }

    /// Whether the blob was read to its end and matched.
    pub fn verified(&self) -> bool {
        matches!(self.result, Some(Ok(())))
    }
}

fn invalid(m: BlobMismatch) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, m)
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(r) = &self.result {
            return r.clone().map(|()| 0).map_err(invalid);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        // Read at most one byte past the size, to notice a longer input.
        let room = (self.size - self.read.min(self.size) + 1).min(buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..room])?;
        if n == 0 {
            return self.check().map(|()| 0).map_err(invalid);
        }
        use sha2::Digest as _;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        if self.read > self.size {
            let m = self.mismatch(None);
            self.result = Some(Err(m.clone()));
            return Err(invalid(m));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(bytes: &[u8]) -> Blob {
        Blob::from_bytes("x", bytes.to_vec())
    }

    #[test]
    fn verifying_reader_passes_intact_content() {
        let b = blob(b"hello world");
        let mut r = b.open_verified().unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello world");
        assert!(r.verified());
        b.verify().unwrap();
    }

    #[test]
    fn a_flipped_byte_of_the_same_size_is_a_mismatch_naming_both_digests() {
        let good = blob(b"hello world");
        let mut bad = blob(b"hello worle");
        bad.digest = good.digest.clone();
        let mut r = bad.open_verified().unwrap();
        let e = io::copy(&mut r, &mut io::sink()).unwrap_err();
        let m = BlobMismatch::in_io(&e).expect("a mismatch").clone();
        assert_eq!(m.expected, good.digest);
        assert_eq!(m.actual, Some(Digest::sha256_of(b"hello worle")));
        let text = m.to_string();
        assert!(text.contains(good.digest.as_str()), "{text}");
        assert!(
            text.contains(Digest::sha256_of(b"hello worle").as_str()),
            "{text}"
        );
        assert!(matches!(bad.verify(), Err(ImageError::Mismatch(_))));
    }

    #[test]
    fn more_bytes_than_the_size_stop_at_the_bound() {
        let mut b = blob(b"0123456789");
        b.size = 4;
        let mut r = VerifyingReader::new(
            io::Cursor::new(b"0123456789".to_vec()),
            b.digest.clone(),
            4,
            "f".into(),
        );
        let mut out = Vec::new();
        let e = r.read_to_end(&mut out).unwrap_err();
        let m = BlobMismatch::in_io(&e).unwrap();
        assert_eq!(m.actual, None);
        assert!(out.len() <= 5);
    }

    #[test]
    fn finish_reads_what_a_consumer_left() {
        let b = blob(b"abcdef");
        let mut r = b.open_verified().unwrap();
        let mut two = [0u8; 2];
        r.read_exact(&mut two).unwrap();
        r.finish().unwrap();
        assert!(r.verified());
    }
}
