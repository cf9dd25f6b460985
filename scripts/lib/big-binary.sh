# Sourced by the benchmarks: real shared-library bytes from the host, as a
# payload file and as a big static binary.

# library_payload OUT BYTES [reverse]: writes OUT, BYTES bytes of the host's
# shared libraries, each once in name order (`reverse`: the opposite order),
# repeated only if the host has fewer bytes than asked.
library_payload() {
    local libdir
    libdir=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
    python3 - "$libdir" "$1" "$2" "${3:-}" <<'EOF'
import os, sys
libdir, out, want, order = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
files = sorted((os.path.join(libdir, f) for f in os.listdir(libdir) if ".so" in f), reverse=(order == "reverse"))
files = [f for f in files if os.path.isfile(f) and not os.path.islink(f)]
written = 0
with open(out, "wb") as o:
    while written < want:
        for f in files:
            with open(f, "rb") as i:
                data = i.read(want - written)
            o.write(data)
            written += len(data)
            if written >= want:
                break
EOF
}

# make_big_binary OUT MB builds OUT, a static (musl-gcc) executable
# embedding MB megabytes (10^6) of library_payload, so its compression ratio
# is realistic.
make_big_binary() {
    local out=$1 mb=$2
    local blob="$out.blob"
    library_payload "$blob" $((mb * 1000 * 1000))
    cat >"$out.c" <<EOF
#include <stdio.h>
__asm__(".section .rodata\n.global payload\npayload:\n.incbin \"$blob\"\n.global payload_end\npayload_end:\n.previous\n");
extern const unsigned char payload[], payload_end[];
int main(void) { printf("payload of %ld bytes\n", (long)(payload_end - payload)); return 0; }
EOF
    musl-gcc -static -O2 -o "$out" "$out.c"
    rm -f "$blob" "$out.c"
    "$out" >/dev/null
}
