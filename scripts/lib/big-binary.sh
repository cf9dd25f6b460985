# Sourced by the benchmarks: make_big_binary OUT MB builds OUT, a static
# (musl-gcc) executable embedding MB megabytes (10^6) of real shared-library
# bytes from the host (each library once, in name order, repeated only if the
# host has fewer bytes than asked), so its compression ratio is realistic.
make_big_binary() {
    local out=$1 mb=$2
    local libdir blob="$out.blob"
    libdir=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
    python3 - "$libdir" "$blob" $((mb * 1000 * 1000)) <<'EOF'
import os, sys
libdir, out, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = sorted(os.path.join(libdir, f) for f in os.listdir(libdir) if ".so" in f)
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
