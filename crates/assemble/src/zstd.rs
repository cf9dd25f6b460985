//! Deterministic multithreaded zstd, in the shape of [`crate::gzip`]: the
//! tar stream a producer writes is hashed and compressed in one pass, the
//! compressed stream hashed on its way to the output.
//!
//! libzstd's own multithreading cuts the input into jobs of a fixed size
//! ([`JOB_SIZE`]), each compressed by a worker with the tail of the previous
//! job as its history (the "overlap"), and emits them in order as ONE zstd
//! frame. libzstd documents that with `nbWorkers >= 1` the output does not
//! depend on the number of workers, but differs from the single-threaded
//! mode (`nbWorkers = 0`): so the multithreaded mode is always used, with at
//! least one worker, and the job size, overlap and checksum are fixed here
//! rather than left to the level's defaults.
//!
//! The bytes depend on the input, the level, [`JOB_SIZE`], [`OVERLAP_LOG`],
//! the content checksum and the libzstd version (zstd-sys, pinned by
//! Cargo.lock; built from its bundled source) -- never on the number of
//! workers or on how the producer splits its writes (docs/reproducibility.md).
//!
//! Memory is bounded by libzstd's job buffers: a few jobs per worker,
//! whatever the input size.

use std::io::{self, Write};

use ::zstd::stream::raw::{CParameter, Encoder, InBuffer, Operation, OutBuffer};
use sha2::{Digest as _, Sha256};

use crate::Summary;

/// Default zstd level of `--compression zstd` (zstd's own default).
pub const DEFAULT_LEVEL: i32 = 3;
/// Highest level accepted: above it (zstd's `--ultra` levels 20-22) the
/// window outgrows the 8 MiB that decoders such as containerd's accept by
/// default.
pub const MAX_LEVEL: i32 = 19;
/// Uncompressed bytes per job. Part of the output format: changing it
/// changes every layer digest. 8 MiB (libzstd's own choice at level 3)
/// was measured 2 % faster, but doubles the job buffers: 63 MiB peak RSS
/// at 100 MB against 34 MiB.
pub const JOB_SIZE: u32 = 4 << 20;
/// How much of the previous job each job sees as history: a window of
/// `2^(windowLog - (9 - OVERLAP_LOG))` bytes. Part of the output format.
pub const OVERLAP_LOG: u32 = 6;
/// Whether frames end with a content checksum (xxh64), as the `zstd` tool
/// writes them. Part of the output format.
pub const CHECKSUM: bool = true;
/// Bytes handed to libzstd per call and read back per call.
const BUF: usize = 1 << 17;

/// How to compress.
#[derive(Clone, Copy, Debug)]
pub struct ZstdOptions {
    /// zstd level 1-[`MAX_LEVEL`] (output bytes depend on it).
    pub level: i32,
    /// Worker threads, at least 1 (output bytes do NOT depend on it).
    pub threads: usize,
}

impl Default for ZstdOptions {
    fn default() -> Self {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(8);
        ZstdOptions {
            level: DEFAULT_LEVEL,
            threads,
        }
    }
}

/// The libzstd version the layers are written with (`1.5.7`).
pub fn library_version() -> String {
    ::zstd::zstd_safe::version_string().to_string()
}

/// A writer handed to the producer closure of [`compress`]: it hashes what
/// it is given and feeds it to libzstd, writing what comes out to `out`.
/// `flush` does nothing: a flush would end a job early and change the bytes.
pub struct ZstdWriter<'a, W: Write> {
    encoder: Encoder<'a>,
    out: W,
    buf: Vec<u8>,
    in_hasher: Sha256,
    in_size: u64,
    out_hasher: Sha256,
    out_size: u64,
    /// The output failed: later writes fail with the same kind.
    failed: Option<io::ErrorKind>,
}

impl<W: Write> ZstdWriter<'_, W> {
    fn emit(&mut self, n: usize) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        let bytes = &self.buf[..n];
        if let Err(e) = self.out.write_all(bytes) {
            self.failed = Some(e.kind());
            return Err(e);
        }
        self.out_hasher.update(bytes);
        self.out_size += n as u64;
        Ok(())
    }

    fn check(&self) -> io::Result<()> {
        match self.failed {
            Some(kind) => Err(io::Error::new(kind, "the layer output failed earlier")),
            None => Ok(()),
        }
    }

    /// Ends the frame; returns what was written.
    fn finish(mut self) -> io::Result<(Summary, W)> {
        self.check()?;
        loop {
            let mut ob = OutBuffer::around(&mut self.buf[..]);
            let left = self.encoder.finish(&mut ob, true)?;
            let n = ob.pos();
            self.emit(n)?;
            if left == 0 {
                break;
            }
        }
        self.out.flush()?;
        Ok((
            Summary {
                uncompressed_sha256: format!("{:x}", self.in_hasher.finalize()),
                uncompressed_size: self.in_size,
                compressed_sha256: format!("{:x}", self.out_hasher.finalize()),
                compressed_size: self.out_size,
            },
            self.out,
        ))
    }
}

impl<W: Write> Write for ZstdWriter<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.check()?;
        self.in_hasher.update(data);
        self.in_size += data.len() as u64;
        let mut input = InBuffer::around(data);
        while input.pos() < data.len() {
            let mut ob = OutBuffer::around(&mut self.buf[..]);
            self.encoder.run(&mut input, &mut ob)?;
            let n = ob.pos();
            self.emit(n)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The encoder with every parameter that changes the bytes set.
fn encoder(opts: ZstdOptions) -> io::Result<Encoder<'static>> {
    let level = opts.level.clamp(1, MAX_LEVEL);
    let mut e = Encoder::new(level)?;
    e.set_parameter(CParameter::NbWorkers(opts.threads.max(1) as u32))?;
    e.set_parameter(CParameter::JobSize(JOB_SIZE))?;
    e.set_parameter(CParameter::OverlapSizeLog(OVERLAP_LOG))?;
    e.set_parameter(CParameter::ChecksumFlag(CHECKSUM))?;
    // No size in the frame header: the producer streams, and a pledged size
    // would change the parameters libzstd derives from the level.
    e.set_parameter(CParameter::ContentSizeFlag(false))?;
    Ok(e)
}

/// Compresses everything `produce` writes into one zstd frame written to
/// `out`, with `opts.threads` libzstd workers, and returns the sha256 and
/// sizes of both the uncompressed and compressed streams. The calling
/// thread runs `produce` and writes `out`.
pub fn compress<W, F>(out: W, opts: ZstdOptions, produce: F) -> io::Result<(Summary, W)>
where
    W: Write,
    F: FnOnce(&mut ZstdWriter<'_, W>) -> io::Result<()>,
{
    let mut w = ZstdWriter {
        encoder: encoder(opts)?,
        out,
        buf: vec![0u8; BUF],
        in_hasher: Sha256::new(),
        in_size: 0,
        out_hasher: Sha256::new(),
        out_size: 0,
        failed: None,
    };
    produce(&mut w)?;
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    use crate::compression::{sample, FullDisk};

    fn zst(data: &[u8], threads: usize, piece: usize) -> (Summary, Vec<u8>) {
        let opts = ZstdOptions { level: 3, threads };
        compress(Vec::new(), opts, |w| {
            for p in data.chunks(piece.max(1)) {
                w.write_all(p)?;
                w.flush()?;
            }
            Ok(())
        })
        .unwrap()
    }

    fn unzstd(z: &[u8]) -> Vec<u8> {
        let mut back = Vec::new();
        ::zstd::stream::read::Decoder::new(z)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        back
    }

    #[test]
    fn output_is_one_zstd_frame_and_roundtrips() {
        for n in [0, 1, 1000, 3 * 65536 + 17, JOB_SIZE as usize + 5] {
            let data = sample(n);
            let (sum, out) = zst(&data, 2, 100_000);
            assert_eq!(out[..4], distroless_pack_image::ZSTD_MAGIC);
            assert_eq!(sum.compressed_size, out.len() as u64);
            assert_eq!(sum.uncompressed_size, n as u64);
            assert_eq!(
                sum.uncompressed_sha256,
                format!("{:x}", Sha256::digest(&data))
            );
            assert_eq!(sum.compressed_sha256, format!("{:x}", Sha256::digest(&out)));
            assert_eq!(unzstd(&out), data, "n={n}");
            // One frame: its compressed size is the whole stream.
            assert_eq!(
                ::zstd::zstd_safe::find_frame_compressed_size(&out).unwrap(),
                out.len()
            );
        }
    }

    #[test]
    fn bytes_do_not_depend_on_worker_count_or_write_sizes() {
        // Several jobs, so the workers really share the work.
        let data = sample(3 * JOB_SIZE as usize + 12345);
        let (a, za) = zst(&data, 1, 1 << 20);
        let (b, zb) = zst(&data, 2, 4096);
        let (c, zc) = zst(&data, 5, 333_333);
        assert_eq!(za, zb);
        assert_eq!(za, zc);
        assert_eq!(a, b);
        assert_eq!(a, c);
    }

    #[test]
    fn level_changes_the_bytes() {
        let data = sample(200_000);
        let one = compress(
            Vec::new(),
            ZstdOptions {
                level: 1,
                threads: 2,
            },
            |w| w.write_all(&data),
        )
        .unwrap()
        .1;
        let (_, three) = zst(&data, 2, 1 << 20);
        assert_ne!(one, three);
        assert_eq!(unzstd(&one), data);
    }

    #[test]
    fn output_error_is_reported() {
        let err = compress(FullDisk, ZstdOptions::default(), |w| {
            w.write_all(&sample(3 * JOB_SIZE as usize))
        })
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull, "{err}");
    }

    #[test]
    fn producer_error_is_reported() {
        let err = compress(Vec::new(), ZstdOptions::default(), |w| {
            w.write_all(&sample(200_000))?;
            Err(io::Error::other("input vanished"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("input vanished"), "{err}");
    }
}

#[cfg(test)]
mod golden {
    use super::*;

    /// The compressed bytes are part of every zstd layer digest: this pins
    /// them. If it fails after a dependency update (zstd, zstd-sys: the
    /// libzstd version) or a change of a parameter here, the digest of
    /// every zstd image changes: say so in the release notes.
    #[test]
    fn compressed_digest_is_pinned() {
        // Over two jobs, so the multithreaded framing is pinned too.
        let data: Vec<u8> = (0..9_000_000u32)
            .map(|i| ((i / 3) ^ (i >> 7)).wrapping_mul(2654435761) as u8 % 64)
            .collect();
        assert_eq!(library_version(), "1.5.7");
        for threads in [1, 2] {
            let opts = ZstdOptions { level: 3, threads };
            let (sum, _) = compress(std::io::sink(), opts, |w| w.write_all(&data)).unwrap();
            assert_eq!(
                sum.compressed_sha256,
                "670a840461d14997107a7aaa13ea378f53145af5cbe667bdc319f6f479d8976a",
                "threads={threads}"
            );
        }
    }
}
