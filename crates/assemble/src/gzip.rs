//! Deterministic parallel gzip: independent chunks, one gzip member each.
//!
//! The input is cut into fixed-size chunks ([`CHUNK_SIZE`]). Each chunk is
//! compressed on its own by libdeflate (whole-buffer, no state carried from
//! the chunk before) and written as a complete gzip member: the fixed
//! 10-byte [`GZIP_HEADER`], the raw deflate stream, and the chunk's CRC-32
//! and size. The members are concatenated in input order. A gzip file of
//! several members is valid RFC 1952 (section 2.2) and every reader of
//! layers inflates it as the concatenation of the members' data. An empty
//! input is one member holding an empty deflate stream, so the output is
//! never empty.
//!
//! The bytes depend only on the input, the chunk size, the level and the
//! deflate implementation (libdeflate, pinned by Cargo.lock) -- never on
//! the number of threads or on which thread compressed which chunk, and not
//! on the CPU: libdeflate picks SIMD code at run time only for checksums
//! and for clearing its hash tables, which compute the same values
//! everywhere (docs/reproducibility.md).
//!
//! Memory is bounded: at most [`max_in_flight`] chunks (each held once as
//! input, then once as output) are alive at once, whatever the input size.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use libdeflater::{CompressionLvl, Compressor};
use sha2::{Digest as _, Sha256};

use crate::Summary;

/// Uncompressed bytes per gzip member. Part of the output format: changing
/// it changes every layer digest.
pub const CHUNK_SIZE: usize = 1 << 20;
/// The smallest chunk size [`compress`] accepts (smaller requests are
/// raised to it): below it the per-member overhead and the lost matches
/// across cuts cost too much ratio.
pub const MIN_CHUNK_SIZE: usize = 64 * 1024;
/// The largest chunk size [`compress`] accepts (larger requests are
/// lowered to it), which keeps [`max_in_flight`] chunks within the memory
/// budget.
pub const MAX_CHUNK_SIZE: usize = 4 << 20;
/// The libdeflate level used for layers. Part of the output format.
/// Level 2 (greedy parsing over hash chains): on the 100 MB benchmark
/// binary it takes 40 % less CPU than level 6 for a layer 4.7 % larger,
/// still 1.9 % smaller than umoci's; level 1 would be larger than umoci's
/// (docs/design.md has the table).
pub const DEFAULT_LEVEL: u32 = 2;
/// The most compressing threads [`GzipOptions::default`] starts.
pub const MAX_THREADS: usize = 8;

/// The deflate implementation and its version, as pinned by Cargo.lock
/// (a unit test keeps the two in step): part of the layer format, so of
/// every layer cache key.
pub const LIBRARY: &str = "libdeflater 1.26.1; libdeflate-sys 1.26.1";

/// The chunk size actually used for `asked` (kept within
/// [`MIN_CHUNK_SIZE`]..=[`MAX_CHUNK_SIZE`]).
pub fn clamp_chunk_size(asked: usize) -> usize {
    asked.clamp(MIN_CHUNK_SIZE, MAX_CHUNK_SIZE)
}

/// The fixed gzip member header: magic, CM=deflate, FLG=0 (no name, no
/// comment, no extra), MTIME=0, XFL=0, OS=255 (unknown), as Go's
/// compress/gzip and flate2 write it.
pub const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff];

/// How to compress.
#[derive(Clone, Copy, Debug)]
pub struct GzipOptions {
    /// libdeflate level 0-12 (output bytes depend on it).
    pub level: u32,
    /// Worker threads (output bytes do NOT depend on it).
    pub threads: usize,
    /// Uncompressed bytes per gzip member (output bytes depend on it).
    pub chunk_size: usize,
}

impl Default for GzipOptions {
    fn default() -> Self {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(MAX_THREADS);
        GzipOptions {
            level: DEFAULT_LEVEL,
            threads,
            chunk_size: CHUNK_SIZE,
        }
    }
}

/// The most chunks alive at once (read but not yet written out) for
/// `threads` workers: one being filled by the producer, and `2 * threads`
/// handed over (queued, being compressed, or compressed and waiting for
/// their turn to be written). Peak buffer memory is at most this many
/// chunks, plus `threads + 1` spare input buffers, `threads + 1` spare
/// member buffers, and one compressor and one worst-case scratch buffer
/// per worker: independent of the input size.
pub fn max_in_flight(threads: usize) -> usize {
    2 * threads.max(1) + 1
}

struct Job {
    seq: u64,
    input: Vec<u8>,
}

struct Done {
    seq: u64,
    /// A whole gzip member.
    member: Vec<u8>,
}

/// A writer handed to the producer closure of [`compress`]: it hashes what
/// it is given and cuts it into chunks for the workers.
pub struct ChunkWriter<'a> {
    buf: Vec<u8>,
    chunk_size: usize,
    seq: u64,
    hasher: Sha256,
    total: u64,
    jobs: &'a SyncSender<Job>,
    tokens: &'a Receiver<()>,
    /// Input buffers handed back by the workers once compressed (at most
    /// `threads + 1` wait here), reused so that the allocator is not asked
    /// for a fresh megabyte per chunk.
    spare: &'a Receiver<Vec<u8>>,
}

impl ChunkWriter<'_> {
    fn submit(&mut self) -> io::Result<()> {
        let mut next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(self.chunk_size));
        next.clear();
        let input = std::mem::replace(&mut self.buf, next);
        // Wait for a free slot: bounds the chunks in flight.
        self.tokens.recv().map_err(|_| broken())?;
        self.jobs
            .send(Job {
                seq: self.seq,
                input,
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
                self.submit()?;
            }
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Compresses everything `produce` writes into a gzip stream of one member
/// per chunk written to `out`, using `opts.threads` compressing threads,
/// and returns the sha256 and sizes of both the uncompressed and compressed
/// streams. `out` sees the gzip bytes in order; the calling thread runs
/// `produce`.
pub fn compress<W, F>(out: W, opts: GzipOptions, produce: F) -> io::Result<(Summary, W)>
where
    W: Write + Send,
    F: FnOnce(&mut ChunkWriter<'_>) -> io::Result<()>,
{
    let threads = opts.threads.max(1);
    let chunk_size = clamp_chunk_size(opts.chunk_size);
    let level = CompressionLvl::new(opts.level.min(12) as i32)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "gzip level is not 0-12"))?;
    let slots = max_in_flight(threads);
    // One token per chunk alive; the chunk being filled holds none.
    let tokens = slots - 1;

    let (job_tx, job_rx) = sync_channel::<Job>(threads);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (done_tx, done_rx) = sync_channel::<io::Result<Done>>(tokens);
    let (tok_tx, tok_rx) = sync_channel::<()>(tokens);
    let (spare_tx, spare_rx) = sync_channel::<Vec<u8>>(threads + 1);
    // Written members' buffers, back from the writer to the workers.
    let (used_tx, used_rx) = sync_channel::<Vec<u8>>(threads + 1);
    let used_rx = Arc::new(Mutex::new(used_rx));
    for _ in 0..tokens {
        tok_tx.send(()).expect("fresh channel has room");
    }

    std::thread::scope(|s| {
        for _ in 0..threads {
            let job_rx = Arc::clone(&job_rx);
            let done_tx = done_tx.clone();
            let spare_tx = spare_tx.clone();
            let used_rx = Arc::clone(&used_rx);
            s.spawn(move || {
                let mut compressor = Compressor::new(level);
                let mut scratch = Vec::new();
                loop {
                    let job = match job_rx.lock().map(|r| r.recv()) {
                        Ok(Ok(job)) => job,
                        _ => return,
                    };
                    let member = used_rx
                        .lock()
                        .ok()
                        .and_then(|r| r.try_recv().ok())
                        .unwrap_or_default();
                    let r =
                        compress_member(&mut compressor, &mut scratch, member, job.seq, &job.input);
                    // The input buffer goes back to the producer for reuse.
                    let _ = spare_tx.try_send(job.input);
                    if done_tx.send(r).is_err() {
                        return;
                    }
                }
            });
        }
        // Only the workers hold the job receiver: if they all stop, a
        // blocked send fails instead of waiting forever.
        drop(job_rx);
        drop(done_tx);
        drop(spare_tx);

        let writer = s.spawn(move || -> io::Result<(String, u64, W)> {
            let mut out = out;
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
            let mut next = 0u64;
            for done in done_rx.iter() {
                let done = done?;
                pending.insert(done.seq, done);
                while let Some(d) = pending.remove(&next) {
                    out.write_all(&d.member)?;
                    hasher.update(&d.member);
                    size += d.member.len() as u64;
                    next += 1;
                    let _ = used_tx.try_send(d.member);
                    // A slot is free again; the producer may have finished.
                    let _ = tok_tx.send(());
                }
            }
            if !pending.is_empty() {
                return Err(broken());
            }
            out.flush()?;
            Ok((hex::encode(hasher.finalize()), size, out))
        });

        let mut cw = ChunkWriter {
            buf: Vec::with_capacity(chunk_size),
            chunk_size,
            seq: 0,
            hasher: Sha256::new(),
            total: 0,
            jobs: &job_tx,
            tokens: &tok_rx,
            spare: &spare_rx,
        };
        // The last, partial chunk; or the one empty member of an empty input.
        let produced = produce(&mut cw).and_then(|()| {
            if !cw.buf.is_empty() || cw.seq == 0 {
                cw.submit()
            } else {
                Ok(())
            }
        });
        let (uncompressed_sha256, uncompressed_size) =
            (hex::encode(cw.hasher.clone().finalize()), cw.total);
        drop(cw);
        drop(job_tx);
        drop(tok_rx);
        drop(spare_rx);
        let written = writer.join().unwrap_or_else(|_| Err(broken()));
        let (compressed_sha256, compressed_size, out) = match (produced, written) {
            (Ok(()), w) => w?,
            // The output failed (disk full, ...): that is the cause, and the
            // producer only saw the pipe break.
            (Err(_), Err(w)) if w.kind() != io::ErrorKind::BrokenPipe => return Err(w),
            (Err(p), _) => return Err(p),
        };
        Ok((
            Summary {
                uncompressed_sha256,
                uncompressed_size,
                compressed_sha256,
                compressed_size,
            },
            out,
        ))
    })
}

/// One whole gzip member of `input`: header, deflate stream, CRC-32, size.
/// The deflate stream is made in the worker's `scratch` (sized once for
/// the worst case) and copied into `member` (a buffer the writer gave
/// back, or a new one), so no chunk pays for zeroing a worst-case buffer.
fn compress_member(
    c: &mut Compressor,
    scratch: &mut Vec<u8>,
    mut member: Vec<u8>,
    seq: u64,
    input: &[u8],
) -> io::Result<Done> {
    let bound = c.deflate_compress_bound(input.len());
    if scratch.len() < bound {
        scratch.resize(bound, 0);
    }
    let n = c
        .deflate_compress(input, &mut scratch[..bound])
        .map_err(io::Error::other)?;
    member.clear();
    member.reserve(GZIP_HEADER.len() + n + 8);
    member.extend_from_slice(&GZIP_HEADER);
    member.extend_from_slice(&scratch[..n]);
    member.extend_from_slice(&libdeflater::crc32(input).to_le_bytes());
    // ISIZE is the size modulo 2^32; chunks are far smaller.
    member.extend_from_slice(&(input.len() as u32).to_le_bytes());
    Ok(Done { seq, member })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::compression::{sample, FullDisk};

    fn gz(data: &[u8], threads: usize, chunk: usize) -> (Summary, Vec<u8>) {
        let opts = GzipOptions {
            level: DEFAULT_LEVEL,
            threads,
            chunk_size: chunk,
        };
        compress(Vec::new(), opts, |w| w.write_all(data)).unwrap()
    }

    /// One parsed gzip member: its uncompressed bytes, and the CRC-32 and
    /// ISIZE its trailer claims.
    struct Member {
        data: Vec<u8>,
        crc: u32,
        isize: u32,
    }

    /// Splits a gzip stream into its members by inflating each one's raw
    /// deflate stream and reading the trailer after it.
    fn members(mut gz: &[u8]) -> Vec<Member> {
        let mut all = Vec::new();
        while !gz.is_empty() {
            assert!(gz.len() >= 18, "truncated member");
            assert_eq!(gz[..10], GZIP_HEADER, "member {} header", all.len());
            let mut d = flate2::Decompress::new(false);
            let mut data = Vec::with_capacity(4 * CHUNK_SIZE);
            let status = d
                .decompress_vec(&gz[10..], &mut data, flate2::FlushDecompress::Finish)
                .unwrap();
            assert_eq!(status, flate2::Status::StreamEnd, "member {}", all.len());
            let end = 10 + d.total_in() as usize;
            let t = &gz[end..end + 8];
            all.push(Member {
                data,
                crc: u32::from_le_bytes(t[..4].try_into().unwrap()),
                isize: u32::from_le_bytes(t[4..].try_into().unwrap()),
            });
            gz = &gz[end + 8..];
        }
        all
    }

    #[test]
    fn every_member_has_its_own_crc_and_size_and_they_concatenate_to_the_input() {
        let chunk = MIN_CHUNK_SIZE;
        for n in [1, 1000, 3 * chunk + 17, 7 * chunk + chunk / 2] {
            let data = sample(n);
            let (sum, out) = gz(&data, 3, chunk);
            assert_eq!(sum.compressed_size, out.len() as u64);
            assert_eq!(sum.uncompressed_size, n as u64);
            let ms = members(&out);
            assert_eq!(ms.len(), n.div_ceil(chunk), "n={n}");
            let mut joined = Vec::new();
            for (i, m) in ms.iter().enumerate() {
                assert_eq!(m.crc, libdeflater::crc32(&m.data), "n={n} member {i}");
                assert_eq!(m.isize as usize, m.data.len(), "n={n} member {i}");
                let want = if i + 1 < ms.len() {
                    chunk
                } else {
                    n - i * chunk
                };
                assert_eq!(m.data.len(), want, "n={n} member {i}");
                joined.extend_from_slice(&m.data);
            }
            assert_eq!(joined, data, "n={n}");
            // A multi-member reader gives back the whole input.
            let mut back = Vec::new();
            flate2::read::MultiGzDecoder::new(&out[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "n={n}");
        }
    }

    #[test]
    fn exact_multiples_of_the_chunk_size_have_no_empty_last_member() {
        let chunk = MIN_CHUNK_SIZE;
        for k in [1, 2, 5] {
            let data = sample(k * chunk);
            let (_, out) = gz(&data, 2, chunk);
            let ms = members(&out);
            assert_eq!(ms.len(), k);
            assert!(ms.iter().all(|m| m.data.len() == chunk));
            // One byte either side of the boundary.
            let (_, less) = gz(&data[..k * chunk - 1], 2, chunk);
            assert_eq!(members(&less).len(), k);
            let mut more = data.clone();
            more.push(b'x');
            let (_, more) = gz(&more, 2, chunk);
            let ms = members(&more);
            assert_eq!(ms.len(), k + 1);
            assert_eq!(ms[k].data, b"x");
        }
    }

    #[test]
    fn empty_input_is_one_empty_member() {
        let (sum, out) = gz(&[], 2, CHUNK_SIZE);
        assert_eq!(sum.uncompressed_size, 0);
        assert_eq!(
            sum.uncompressed_sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let ms = members(&out);
        assert_eq!(ms.len(), 1);
        assert!(ms[0].data.is_empty());
        assert_eq!((ms[0].crc, ms[0].isize), (0, 0));
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty());
    }

    #[test]
    fn bytes_do_not_depend_on_thread_count() {
        let data = sample(11 * MIN_CHUNK_SIZE + 321);
        let (a, ga) = gz(&data, 1, MIN_CHUNK_SIZE);
        for threads in [2, 3, 8] {
            let (b, gb) = gz(&data, threads, MIN_CHUNK_SIZE);
            assert!(ga == gb, "{threads} threads give other bytes than 1");
            assert_eq!(a, b);
        }
        // Nor on how the producer's writes are cut.
        let opts = GzipOptions {
            level: DEFAULT_LEVEL,
            threads: 2,
            chunk_size: MIN_CHUNK_SIZE,
        };
        let (_, gc) = compress(Vec::new(), opts, |w| {
            data.chunks(4093).try_for_each(|p| w.write_all(p))
        })
        .unwrap();
        assert!(ga == gc);
    }

    #[test]
    fn chunk_size_is_clamped_to_the_bounds() {
        let data = sample(MAX_CHUNK_SIZE + 5);
        let (_, big) = gz(&data, 2, usize::MAX);
        assert_eq!(members(&big).len(), 2);
        let (_, small) = gz(&data[..3 * MIN_CHUNK_SIZE], 2, 1);
        assert_eq!(members(&small).len(), 3);
    }

    /// An output that takes its time, counting the members written (the
    /// writer hands over one whole member per call).
    struct Slow<'a>(&'a AtomicUsize);
    impl Write for Slow<'_> {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            std::thread::sleep(std::time::Duration::from_millis(3));
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn chunks_in_flight_are_bounded_whatever_the_input_size() {
        // The memory bound is structural: the producer cannot run more
        // than max_in_flight chunks ahead of the output, however slow the
        // output and however long the input.
        for threads in [1, 2, 4] {
            let written = AtomicUsize::new(0);
            let chunk = MIN_CHUNK_SIZE;
            let data = sample(chunk);
            let mut most_ahead = 0;
            let opts = GzipOptions {
                level: 1,
                threads,
                chunk_size: chunk,
            };
            compress(Slow(&written), opts, |w| {
                for k in 0..60 {
                    let ahead = k - written.load(Ordering::SeqCst).min(k);
                    most_ahead = most_ahead.max(ahead);
                    assert!(
                        ahead < max_in_flight(threads),
                        "{threads} threads: chunk {k} read while {ahead} were not written"
                    );
                    w.write_all(&data)?;
                }
                Ok(())
            })
            .unwrap();
            // The producer did run ahead as far as allowed: the bound is
            // what held it back, not the test's timing.
            assert_eq!(most_ahead, max_in_flight(threads) - 1, "{threads} threads");
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
    /// If it fails after a dependency update (libdeflater, libdeflate-sys)
    /// or a change here, digests of every image change: say so in the
    /// release notes.
    #[test]
    fn compressed_digest_is_pinned() {
        let data: Vec<u8> = (0..3_000_000u32)
            .map(|i| ((i / 3) ^ (i >> 7)).wrapping_mul(2654435761) as u8 % 64)
            .collect();
        for threads in [1, 2, 3] {
            let opts = GzipOptions {
                threads,
                ..GzipOptions::default()
            };
            let (sum, _) = compress(std::io::sink(), opts, |w| w.write_all(&data)).unwrap();
            assert_eq!(
                sum.compressed_sha256,
                "009eca29e7835b3f1b3d0a5601247c1e19caf26d2b3821bd5edc734deceab0e4",
                "{threads} threads"
            );
        }
    }
}
