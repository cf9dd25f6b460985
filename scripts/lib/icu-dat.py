"""Cuts the ICU data package (.dat) out of the system's libicudata.so.

    python3 scripts/lib/icu-dat.py OUTDIR [LIBICUDATA.so]

Debian and Ubuntu ship ICU's data only inside libicudata.so (and .a), as
the bytes of one symbol, `icudtNN_dat`. Those bytes are a valid .dat
package (`icupkg -l` lists it), which `distroless-pack build
--globalization icu-file` ships in the image. Writes OUTDIR/icudtNNl.dat
(little-endian x86_64/arm64) and prints its path. Reads the ELF64 dynamic
symbol table itself: no tool beyond python3.
"""

import glob
import struct
import sys

SHT_DYNSYM = 11


def sections(data):
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    # name, type, flags, addr, offset, size, link, info, addralign, entsize
    return [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]


def icu_symbol(data):
    """(name, bytes) of the icudtNN_dat symbol."""
    secs = sections(data)
    for sec in secs:
        if sec[1] != SHT_DYNSYM:
            continue
        strtab = secs[sec[6]]
        for off in range(sec[4], sec[4] + sec[5], 24):
            name, _info, _other, shndx, value, size = struct.unpack_from("<IBBHQQ", data, off)
            at = strtab[4] + name
            n = data[at:data.index(b"\0", at)].decode()
            if n.startswith("icudt") and n.endswith("_dat") and 0 < shndx < len(secs):
                target = secs[shndx]
                start = value - target[3] + target[4]
                return n, data[start:start + size]
    return None


def main(out_dir, lib=None):
    if lib is None:
        found = sorted(glob.glob("/usr/lib/*/libicudata.so.*[0-9]") + glob.glob("/usr/lib/libicudata.so.*[0-9]"))
        if not found:
            print("icu-dat: no libicudata.so (apt-get install libicu-dev)", file=sys.stderr)
            return 1
        lib = found[-1]
    with open(lib, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        print(f"icu-dat: {lib}: not a little-endian ELF64 file", file=sys.stderr)
        return 1
    sym = icu_symbol(data)
    if sym is None:
        print(f"icu-dat: {lib}: no icudt*_dat symbol", file=sys.stderr)
        return 1
    name, payload = sym
    out = f"{out_dir}/{name[:-len('_dat')]}l.dat"
    with open(out, "wb") as f:
        f.write(payload)
    print(out)
    return 0


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
