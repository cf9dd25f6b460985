//! Reading a layer's tar back from its compressed bytes, for every stage
//! that looks inside layers (`run`'s unpack, `inspect`'s listing, the SBOM).

use std::io::{self, BufRead, Read};

use crate::ZSTD_MAGIC;

/// The tar inside a layer: gzip (one member or several: RFC 1952 allows a
/// series, and our layers are one member per chunk), zstd, or a plain tar,
/// told by the first bytes (as containerd does), whatever the media type
/// says.
pub fn uncompressed<'a, R: BufRead + 'a>(mut r: R) -> io::Result<Box<dyn Read + 'a>> {
    let head = r.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(r)))
    } else if head.starts_with(&ZSTD_MAGIC) {
        Ok(Box::new(zstd::stream::read::Decoder::with_buffer(r)?))
    } else {
        Ok(Box::new(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        uncompressed(bytes).unwrap().read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn every_gzip_member_is_read_not_only_the_first() {
        let mut two = Vec::new();
        for part in [&b"first "[..], b"second"] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part).unwrap();
            two.extend(e.finish().unwrap());
        }
        assert_eq!(read(&two), b"first second");
    }

    #[test]
    fn zstd_and_plain_bytes_are_told_by_their_first_bytes() {
        let z = zstd::stream::encode_all(&b"zstd tar"[..], 3).unwrap();
        assert_eq!(read(&z), b"zstd tar");
        assert_eq!(read(b"plain tar"), b"plain tar");
        assert_eq!(read(b""), b"");
    }
}
