//! `sha256:<hex>` digests and a writer that hashes what passes through it.

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A content digest, always `sha256:` followed by 64 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

/// A string that is not a sha256 digest.
#[derive(Debug, thiserror::Error)]
#[error("invalid digest {0:?}: expected sha256: followed by 64 lowercase hex digits")]
pub struct DigestError(pub String);

impl Digest {
    /// The digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// From 64 lowercase hex digits known to be a sha256 (a hasher's output).
    pub(crate) fn from_hex_unchecked(hex: &str) -> Digest {
        Digest(format!("sha256:{hex}"))
    }

    /// The full `sha256:...` form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex part, as used for file names under `blobs/sha256/`.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The algorithm (always `sha256`).
    pub fn algorithm(&self) -> &str {
        "sha256"
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Digest, DigestError> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| DigestError(s.to_string()))?;
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError(s.to_string()));
        }
        Ok(Digest(s.to_string()))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Hashes and counts every byte written through it.
pub struct DigestWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> DigestWriter<W> {
    pub fn new(inner: W) -> Self {
        DigestWriter {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The digest of everything written, and the inner writer.
    pub fn finish(self) -> (Digest, W) {
        (
            Digest(format!("sha256:{}", hex::encode(self.hasher.finalize()))),
            self.inner,
        )
    }

    /// The digest, the byte count and the inner writer.
    pub fn finish_with_size(self) -> (Digest, u64, W) {
        let n = self.written;
        let (d, w) = self.finish();
        (d, n, w)
    }
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest_of_empty_input() {
        assert_eq!(
            Digest::sha256_of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parse_rejects_bad_digests() {
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!(
            "md5:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                .parse::<Digest>()
                .is_err()
        );
        assert!(
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
                .parse::<Digest>()
                .is_err()
        );
        let d: Digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            .parse()
            .unwrap();
        assert_eq!(d.hex().len(), 64);
    }

    #[test]
    fn writer_hashes_what_passes() {
        let mut w = DigestWriter::new(Vec::new());
        w.write_all(b"hello").unwrap();
        let (d, n, out) = w.finish_with_size();
        assert_eq!(n, 5);
        assert_eq!(out, b"hello");
        assert_eq!(d, Digest::sha256_of(b"hello"));
    }
}
