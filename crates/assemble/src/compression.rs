//! [`Compression`]: which compressor writes the layers, and at what level
//! (`--compression gzip:5`, `--compression zstd:3`, `compression = "zstd"`).

use std::fmt;
use std::str::FromStr;

use distroless_pack_image::{MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_LAYER_ZSTD};

use crate::{gzip, zstd};

/// The layer compression: kind and level. The worker count is not part of
/// it: it never changes the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    /// `application/vnd.oci.image.layer.v1.tar+gzip`, deflate level 1-9.
    Gzip { level: u32 },
    /// `application/vnd.oci.image.layer.v1.tar+zstd`, zstd level
    /// 1-[`zstd::MAX_LEVEL`].
    Zstd { level: i32 },
}

impl Default for Compression {
    /// gzip at [`gzip::DEFAULT_LEVEL`]: every engine reads it.
    fn default() -> Self {
        Compression::Gzip {
            level: gzip::DEFAULT_LEVEL,
        }
    }
}

/// What a layer compressor ([`gzip::compress`], [`zstd::compress`])
/// measured in its one pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// sha256 of the uncompressed stream (hex).
    pub uncompressed_sha256: String,
    /// Uncompressed size.
    pub uncompressed_size: u64,
    /// sha256 of the compressed stream written to `out` (hex).
    pub compressed_sha256: String,
    /// Size of the compressed stream.
    pub compressed_size: u64,
}

/// Why a `--compression` value was refused (one line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid compression {value:?}: {reason}")]
pub struct CompressionParseError {
    pub value: String,
    pub reason: String,
}

impl Compression {
    /// `gzip` or `zstd`.
    pub fn kind(&self) -> &'static str {
        match self {
            Compression::Gzip { .. } => "gzip",
            Compression::Zstd { .. } => "zstd",
        }
    }

    /// The media type of the layers it writes.
    pub fn media_type(&self) -> &'static str {
        match self {
            Compression::Gzip { .. } => MEDIA_TYPE_LAYER_GZIP,
            Compression::Zstd { .. } => MEDIA_TYPE_LAYER_ZSTD,
        }
    }

    /// A stable string naming everything that changes the compressed layer
    /// bytes for the same tar: kind, level, library and version, and the
    /// chunking (plus this crate's version, which pins the rest). Two runs
    /// with the same id and the same tar give the same layer digest, so it
    /// is a cache key; the thread count is not in it, since it changes
    /// nothing. `gzip` gives the chunk size gzip layers are cut at.
    pub fn layer_format_id(&self, gzip: &gzip::GzipOptions) -> String {
        let assemble = env!("CARGO_PKG_VERSION");
        match self {
            // The gzip writer's own parameters: keep in step with gzip.rs.
            Compression::Gzip { level } => format!(
                "gzip:{level};deflate={};chunk={};members=independent;assemble={assemble}",
                gzip::LIBRARY,
                gzip::clamp_chunk_size(gzip.chunk_size),
            ),
            Compression::Zstd { level } => format!(
                "zstd:{level};libzstd={};mt;job={};overlap={};checksum={};assemble={assemble}",
                zstd::library_version(),
                zstd::JOB_SIZE,
                zstd::OVERLAP_LOG,
                u8::from(zstd::CHECKSUM),
            ),
        }
    }
}

impl fmt::Display for Compression {
    /// `gzip:5`, `zstd:3`: always with the level, and parsed back by
    /// [`FromStr`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Compression::Gzip { level } => write!(f, "gzip:{level}"),
            Compression::Zstd { level } => write!(f, "zstd:{level}"),
        }
    }
}

impl FromStr for Compression {
    type Err = CompressionParseError;

    /// `gzip`, `gzip:LEVEL` (1-9), `zstd`, `zstd:LEVEL` (1-19).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| CompressionParseError {
            value: s.to_string(),
            reason,
        };
        let (kind, level) = match s.split_once(':') {
            Some((k, l)) => (k, Some(l)),
            None => (s, None),
        };
        let parse = |max: i64| -> Result<Option<i64>, CompressionParseError> {
            let Some(l) = level else { return Ok(None) };
            match l.parse::<i64>() {
                Ok(n) if (1..=max).contains(&n) => Ok(Some(n)),
                _ => Err(err(format!(
                    "the {kind} level must be 1 to {max}, not {l:?}"
                ))),
            }
        };
        match kind {
            "gzip" => Ok(Compression::Gzip {
                level: parse(9)?.map_or(gzip::DEFAULT_LEVEL, |n| n as u32),
            }),
            "zstd" => Ok(Compression::Zstd {
                level: parse(i64::from(zstd::MAX_LEVEL))?.map_or(zstd::DEFAULT_LEVEL, |n| n as i32),
            }),
            _ => Err(err(
                "expected gzip[:LEVEL] (1-9) or zstd[:LEVEL] (1-19)".into()
            )),
        }
    }
}

/// Test data for the compressors (gzip.rs, zstd.rs): compressible but not
/// trivial, a text-ish pseudo-random stream.
#[cfg(test)]
pub(crate) fn sample(n: usize) -> Vec<u8> {
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

/// A writer whose disk is full (gzip.rs, zstd.rs): every write fails
/// with `StorageFull`.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct FullDisk;

#[cfg(test)]
impl std::io::Write for FullDisk {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "no space left on device",
        ))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kinds_and_levels_and_prints_them_back() {
        let cases = [
            (
                "gzip",
                Compression::Gzip {
                    level: gzip::DEFAULT_LEVEL,
                },
            ),
            ("gzip:9", Compression::Gzip { level: 9 }),
            ("zstd", Compression::Zstd { level: 3 }),
            ("zstd:19", Compression::Zstd { level: 19 }),
            ("zstd:1", Compression::Zstd { level: 1 }),
        ];
        for (s, want) in cases {
            let got: Compression = s.parse().unwrap();
            assert_eq!(got, want, "{s}");
            assert_eq!(got.to_string().parse::<Compression>().unwrap(), got);
        }
        assert_eq!(Compression::Zstd { level: 3 }.to_string(), "zstd:3");
        assert_eq!(Compression::Gzip { level: 5 }.to_string(), "gzip:5");
        assert_eq!(Compression::default().kind(), "gzip");
    }

    #[test]
    fn bad_compression_values_are_one_line_errors() {
        for bad in [
            "", "xz", "zstd:", "zstd:0", "zstd:20", "zstd:-1", "gzip:10", "gzip:x", "ZSTD",
        ] {
            let e = bad.parse::<Compression>().unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn layer_format_id_names_kind_level_library_and_chunking() {
        let o = gzip::GzipOptions::default();
        let z = Compression::Zstd { level: 3 }.layer_format_id(&o);
        assert!(z.starts_with("zstd:3;libzstd=1."), "{z}");
        assert!(z.contains(&format!("job={}", zstd::JOB_SIZE)), "{z}");
        let g = Compression::Gzip { level: 5 }.layer_format_id(&o);
        assert!(g.starts_with("gzip:5;"), "{g}");
        assert!(g.contains(&format!("chunk={}", gzip::CHUNK_SIZE)), "{g}");
        assert!(g.contains(gzip::LIBRARY), "{g}");
        // Every setting that changes the bytes changes the id.
        assert_ne!(z, Compression::Zstd { level: 4 }.layer_format_id(&o));
        assert_ne!(g, Compression::Gzip { level: 6 }.layer_format_id(&o));
        assert_eq!(z, Compression::Zstd { level: 3 }.layer_format_id(&o));
    }
}
