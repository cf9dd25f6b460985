//! Deterministic parallel gzip (pigz's scheme).
//!
//! The input is cut into fixed-size chunks ([`CHUNK_SIZE`]). Each chunk is
//! compressed on its own as raw deflate, primed with the last 32 KiB of the
//! previous chunk as a preset dictionary (so matches reach back across the
//! cut and the ratio stays that of one stream), and ended with a sync flush
//! (an empty stored block that byte-aligns the output); the last chunk ends
//! the stream. The pieces are concatenated in order inside ONE gzip member
//! with a fixed 10-byte header and the combined CRC-32 and size.
//!
//! The bytes depend only on the input, the chunk size, the level and the
//! deflate implementation (zlib-rs, pinned by Cargo.lock) -- never on the
//! number of threads or on which thread compressed which chunk, and not on
//! the CPU's SIMD features either (zlib-rs uses the same hash everywhere and
//! its SIMD paths compute the same matches).
//!
//! Memory is bounded: at most `2 * threads + 2` chunks (input and output)
//! are in flight at once, whatever the input size.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use sha2::{Digest as _, Sha256};

/// Uncompressed bytes per independently compressed chunk. Part of the
/// output format: changing it changes every layer digest.
pub const CHUNK_SIZE: usize = 1 << 20;
/// Bytes of the previous chunk used as the preset dictionary.
pub const DICT_SIZE: usize = 32 * 1024;
/// The compression level used for layers. Part of the output format.
/// Level 5 rather than the customary 6: on a 100 MB binary it takes 15 %
/// less CPU for a layer 0.3 % larger, which keeps `pack` (verify included)
/// faster than `umoci insert` with a smaller layer (docs/reproducibility.md).
pub const DEFAULT_LEVEL: u32 = 5;

/// The fixed gzip member header: magic, CM=deflate, FLG=0 (no name, no
/// comment, no extra), MTIME=0, XFL=0, OS=255 (unknown), as Go's
/// compress/gzip and flate2 write it.
pub const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff];

/// How to compress.
#[derive(Clone, Copy, Debug)]
pub struct GzipOptions {
    /// deflate level 0-9 (output bytes depend on it).
    pub level: u32,
    /// Worker threads (output bytes do NOT depend on it).
    pub threads: usize,
    /// Chunk size (output bytes depend on it).
    pub chunk_size: usize,
}

impl Default for GzipOptions {
    fn default() -> Self {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(8);
        GzipOptions {
            level: DEFAULT_LEVEL,
            threads,
            chunk_size: CHUNK_SIZE,
        }
    }
}

/// What [`compress`] measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GzipSummary {
    /// sha256 of the uncompressed stream (hex).
    pub uncompressed_sha256: String,
    /// Uncompressed size.
    pub uncompressed_size: u64,
    /// sha256 of the gzip stream written to `out` (hex).
    pub compressed_sha256: String,
    /// Size of the gzip stream.
    pub compressed_size: u64,
}

struct Job {
    seq: u64,
    input: Vec<u8>,
    dict: Option<Vec<u8>>,
    last: bool,
}

struct Done {
    seq: u64,
    output: Vec<u8>,
    crc: Crc,
}

/// A writer handed to the producer closure of [`compress`]: it hashes what
/// it is given and cuts it into chunks for the workers.
pub struct ChunkWriter<'a> {
    buf: Vec<u8>,
    chunk_size: usize,
    seq: u64,
    prev_tail: Option<Vec<u8>>,
    hasher: Sha256,
    total: u64,
    jobs: &'a SyncSender<Job>,
    tokens: &'a Receiver<()>,
}

impl ChunkWriter<'_> {
    fn submit(&mut self, last: bool) -> io::Result<()> {
        let input = std::mem::replace(&mut self.buf, Vec::with_capacity(self.chunk_size));
        let tail_start = input.len().saturating_sub(DICT_SIZE);
        let next_tail = if last {
            None
        } else {
            Some(input[tail_start..].to_vec())
        };
        let dict = std::mem::replace(&mut self.prev_tail, next_tail);
        // Wait for a free slot: bounds the chunks in flight.
        self.tokens.recv().map_err(|_| broken())?;
        self.jobs
            .send(Job {
                seq: self.seq,
                input,
                dict,
                last,
            })
            .map_err(|_| broken())?;
        self.seq += 1;
        Ok(())
    }
}

fn broken() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "compression worker stopped")
}

impl Write for ChunkWriter<'_> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        self.hasher.update(data);
        self.total += n as u64;
        while !data.is_empty() {
            let room = self.chunk_size - self.buf.len();
            let take = room.min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == self.chunk_size {
                self.submit(false)?;
            }
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Compresses everything `produce` writes into one gzip member written to
/// `out`, using `opts.threads` compressing threads, and returns the sha256
/// and sizes of both the uncompressed and compressed streams. `out` sees
/// the gzip bytes in order; the calling thread runs `produce`.
pub fn compress<W, F>(out: W, opts: GzipOptions, produce: F) -> io::Result<(GzipSummary, W)>
where
    W: Write + Send,
    F: FnOnce(&mut ChunkWriter<'_>) -> io::Result<()>,
{
    let threads = opts.threads.max(1);
    let chunk_size = opts.chunk_size.max(DICT_SIZE);
    let level = opts.level.min(9);
    let slots = 2 * threads + 2;

    let (job_tx, job_rx) = sync_channel::<Job>(threads);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (done_tx, done_rx) = sync_channel::<io::Result<Done>>(slots);
    let (tok_tx, tok_rx) = sync_channel::<()>(slots);
    for _ in 0..slots {
        tok_tx.send(()).expect("fresh channel has room");
    }

    std::thread::scope(|s| {
        for _ in 0..threads {
            let job_rx = Arc::clone(&job_rx);
            let done_tx = done_tx.clone();
            s.spawn(move || loop {
                let job = match job_rx.lock().map(|r| r.recv()) {
                    Ok(Ok(job)) => job,
                    _ => return,
                };
                let r = compress_chunk(level, &job);
                if done_tx.send(r).is_err() {
                    return;
                }
            });
        }
        // Only the workers hold the job receiver: if they all stop, a
        // blocked send fails instead of waiting forever.
        drop(job_rx);
        drop(done_tx);

        let writer = s.spawn(move || -> io::Result<(String, u64, W)> {
            let mut out = out;
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            let mut crc = Crc::new();
            let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
            let mut next = 0u64;
            let mut emit = |bytes: &[u8], out: &mut W| -> io::Result<()> {
                out.write_all(bytes)?;
                hasher.update(bytes);
                size += bytes.len() as u64;
                Ok(())
            };
            emit(&GZIP_HEADER, &mut out)?;
            for done in done_rx.iter() {
                let done = done?;
                pending.insert(done.seq, done);
                while let Some(d) = pending.remove(&next) {
                    emit(&d.output, &mut out)?;
                    crc.combine(&d.crc);
                    next += 1;
                    // A slot is free again; the producer may have finished.
                    let _ = tok_tx.send(());
                }
            }
            if !pending.is_empty() {
                return Err(broken());
            }
            let mut trailer = [0u8; 8];
            trailer[..4].copy_from_slice(&crc.sum().to_le_bytes());
            trailer[4..].copy_from_slice(&crc.amount().to_le_bytes());
            emit(&trailer, &mut out)?;
            out.flush()?;
            Ok((hex(hasher.finalize().as_slice()), size, out))
        });

        let mut cw = ChunkWriter {
            buf: Vec::with_capacity(chunk_size),
            chunk_size,
            seq: 0,
            prev_tail: None,
            hasher: Sha256::new(),
            total: 0,
            jobs: &job_tx,
            tokens: &tok_rx,
        };
        let produced = produce(&mut cw).and_then(|()| cw.submit(true));
        let (uncompressed_sha256, uncompressed_size) =
            (hex(cw.hasher.clone().finalize().as_slice()), cw.total);
        drop(cw);
        drop(job_tx);
        drop(tok_rx);
        let written = writer.join().unwrap_or_else(|_| Err(broken()));
        let (compressed_sha256, compressed_size, out) = match (produced, written) {
            (Ok(()), w) => w?,
            // The output failed (disk full, ...): that is the cause, and the
            // producer only saw the pipe break.
            (Err(_), Err(w)) if w.kind() != io::ErrorKind::BrokenPipe => return Err(w),
            (Err(p), _) => return Err(p),
        };
        Ok((
            GzipSummary {
                uncompressed_sha256,
                uncompressed_size,
                compressed_sha256,
                compressed_size,
            },
            out,
        ))
    })
}

fn compress_chunk(level: u32, job: &Job) -> io::Result<Done> {
    // A fresh stream per chunk: zlib-rs's reset() does not give output
    // identical to a new stream (seen with preset dictionaries), and the
    // bytes must not depend on which worker saw which chunks before.
    let mut c = Compress::new(Compression::new(level), false);
    if let Some(dict) = &job.dict {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let flush = if job.last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let input = &job.input;
    let mut output = Vec::with_capacity(input.len() / 2 + 1024);
    let start_in = c.total_in();
    loop {
        if output.capacity() - output.len() < 1024 {
            output.reserve(output.capacity().max(4096));
        }
        let consumed = (c.total_in() - start_in) as usize;
        let status = c
            .compress_vec(&input[consumed..], &mut output, flush)
            .map_err(io::Error::other)?;
        let consumed = (c.total_in() - start_in) as usize;
        match status {
            Status::StreamEnd => break,
            Status::Ok | Status::BufError => {
                // A sync flush is complete when all input is consumed and
                // the compressor stopped with room left in the output.
                if !job.last && consumed == input.len() && output.len() < output.capacity() {
                    break;
                }
            }
        }
    }
    let mut crc = Crc::new();
    crc.update(input);
    Ok(Done {
        seq: job.seq,
        output,
        crc,
    })
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(n: usize) -> Vec<u8> {
        // Compressible but not trivial: a text-ish pseudo-random stream.
        let mut x: u32 = 12345;
        (0..n)
            .map(|i| {
                x = x.wrapping_mul(1103515245).wrapping_add(12345);
                if i % 7 == 0 {
                    b"abcdefgh"[(x >> 29) as usize]
                } else {
                    (x >> 24) as u8 % 16 + b'a'
                }
            })
            .collect()
    }

    fn gz(data: &[u8], threads: usize, chunk: usize) -> (GzipSummary, Vec<u8>) {
        let opts = GzipOptions {
            level: 6,
            threads,
            chunk_size: chunk,
        };
        compress(Vec::new(), opts, |w| w.write_all(data)).unwrap()
    }

    #[test]
    fn output_is_valid_gzip_and_roundtrips() {
        for n in [0, 1, 1000, DICT_SIZE, 3 * 65536 + 17, 65536 * 4] {
            let data = sample(n);
            let (sum, out) = gz(&data, 3, 65536);
            assert_eq!(&out[..10], &GZIP_HEADER);
            assert_eq!(sum.compressed_size, out.len() as u64);
            assert_eq!(sum.uncompressed_size, n as u64);
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&out[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "n={n}");
            // Exactly one gzip member: a single-member decoder reads it all.
            let mut d = flate2::read::GzDecoder::new(&out[..]);
            let mut all = Vec::new();
            d.read_to_end(&mut all).unwrap();
            assert_eq!(all.len(), n);
        }
    }

    #[test]
    fn bytes_do_not_depend_on_thread_count() {
        let data = sample(700_000);
        let (a, ga) = gz(&data, 1, 65536);
        let (b, gb) = gz(&data, 2, 65536);
        let (c, gc) = gz(&data, 7, 65536);
        assert_eq!(ga, gb);
        assert_eq!(ga, gc);
        assert_eq!(a, b);
        assert_eq!(a, c);
    }

    #[test]
    fn dictionary_keeps_the_ratio_of_one_stream() {
        let data = sample(1 << 20);
        let (_, chunked) = gz(&data, 2, 64 * 1024);
        let mut single = flate2::write::GzEncoder::new(Vec::new(), Compression::new(6));
        single.write_all(&data).unwrap();
        let single = single.finish().unwrap();
        assert!(
            (chunked.len() as f64) < single.len() as f64 * 1.01,
            "chunked {} vs single {}",
            chunked.len(),
            single.len()
        );
    }

    #[derive(Debug)]
    struct FullDisk;
    impl Write for FullDisk {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "no space left on device",
            ))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn output_error_is_reported_not_a_broken_pipe() {
        let opts = GzipOptions {
            level: 6,
            threads: 2,
            chunk_size: 65536,
        };
        let err = compress(FullDisk, opts, |w| w.write_all(&sample(2_000_000))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull, "{err}");
    }

    #[test]
    fn producer_error_is_reported() {
        let opts = GzipOptions {
            level: 6,
            threads: 2,
            chunk_size: 65536,
        };
        let err = compress(Vec::new(), opts, |w| {
            w.write_all(&sample(200_000))?;
            Err(io::Error::other("input vanished"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "input vanished");
    }
}

#[cfg(test)]
mod golden {
    use super::*;

    /// The compressed bytes are part of every layer digest: this pins them.
    /// If it fails after a dependency update (flate2, zlib-rs) or a change
    /// here, digests of every image change: say so in the release notes.
    #[test]
    fn compressed_digest_is_pinned() {
        let data: Vec<u8> = (0..3_000_000u32)
            .map(|i| ((i / 3) ^ (i >> 7)).wrapping_mul(2654435761) as u8 % 64)
            .collect();
        let opts = GzipOptions {
            threads: 2,
            ..GzipOptions::default()
        };
        let (sum, _) = compress(std::io::sink(), opts, |w| w.write_all(&data)).unwrap();
        assert_eq!(
            sum.compressed_sha256,
            "6a74f8bd0b968c987f652a0f418b2fd6573686a964eaeb80cbcea9e7dfd1bc74"
        );
    }
}
