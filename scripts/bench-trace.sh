#!/usr/bin/env bash
# Benchmark of `distroless-pack run --trace` against a plain `run` (issue 12,
# item 5), run as `bash scripts/bench-trace.sh`.
#
# Builds a static C program (musl-gcc) that makes N failed stat(2) lookups
# (default 100,000) and prints one line, packs it, then runs it $RUNS times
# each way, interleaved, with each isolation (bubblewrap, chroot):
#   distroless-pack run [--trace] oci:DIR:1 -- N
# printing the median wall time of each, the traced overhead per lookup, and
# checking that tracing changed neither the output nor the exit code (exit 1
# when it did). A second program doing N write(2) calls to /dev/null shows
# what untraced system calls cost under the tracer (nothing: the seccomp
# filter lets them through without a stop).
#
# Environment: BENCH_DIR (work dir, default a new temp dir, removed at the
# end unless KEEP=1), LOOKUPS (default 100000), RUNS (default 5), DP (a
# distroless-pack binary to use instead of building the release one).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOOKUPS=${LOOKUPS:-100000}
RUNS=${RUNS:-5}

need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "bench-trace: $1 is not installed: run \`apt-get install -y $2\` (scripts/install-deps.sh installs everything)" >&2
        exit 1
    fi
}
need musl-gcc musl-tools
need bwrap bubblewrap

WORK=${BENCH_DIR:-$(mktemp -d -t dp-bench-trace-XXXXXX)}
mkdir -p "$WORK"
cleanup() { if [ "${KEEP:-0}" != 1 ] && [ -z "${BENCH_DIR:-}" ]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT

if [ -z "${DP:-}" ]; then
    echo "bench-trace: building distroless-pack (release)" >&2
    cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --bin distroless-pack
    DP="$ROOT/target/release/distroless-pack"
fi

cat >"$WORK/lookups.c" <<'C'
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000;
    int writes = argc > 2 && !strcmp(argv[2], "writes");
    struct stat sb;
    char path[64];
    long missing = 0;
    int devnull = writes ? open("/dev/null", O_WRONLY) : -1;
    for (long i = 0; i < n; i++) {
        if (writes) {
            if (write(devnull, "x", 1) != 1) missing++;
            continue;
        }
        snprintf(path, sizeof path, "/data/missing-%ld", i % 16);
        if (stat(path, &sb) != 0) missing++;
    }
    printf("%ld calls, %ld failed\n", n, missing);
    return 3;
}
C
musl-gcc -static -O2 -o "$WORK/lookups" "$WORK/lookups.c"
rm -rf "$WORK/layout"
"$DP" pack "$WORK/lookups" --tag lookups:1 --output "oci:$WORK/layout:1" >/dev/null 2>&1

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }

# One timed run: prints the wall seconds; output and exit code to files.
timed() {
    local tag=$1; shift
    local t0 t1 rc=0
    t0=$(now)
    "$DP" run "$@" >"$WORK/$tag.out" 2>"$WORK/$tag.err" || rc=$?
    t1=$(now)
    echo "$rc" >"$WORK/$tag.rc"
    echo "$t1 - $t0" | bc -l
}

fail=0
printf '%-10s %-8s %12s %12s %12s %16s\n' isolation calls plain traced overhead per-traced-call
for iso in bwrap chroot; do
    for kind in lookups writes; do
        extra=()
        [ "$kind" = writes ] && extra=(writes)
        : >"$WORK/plain.times"; : >"$WORK/traced.times"
        for _ in $(seq "$RUNS"); do
            timed plain --isolation "$iso" "oci:$WORK/layout:1" -- "$LOOKUPS" "${extra[@]}" >>"$WORK/plain.times"
            timed traced --isolation "$iso" --trace "oci:$WORK/layout:1" -- "$LOOKUPS" "${extra[@]}" >>"$WORK/traced.times"
            if ! cmp -s "$WORK/plain.out" "$WORK/traced.out" || ! cmp -s "$WORK/plain.rc" "$WORK/traced.rc"; then
                echo "bench-trace: tracing changed the output or exit code ($iso, $kind)" >&2
                fail=1
            fi
        done
        p=$(median <"$WORK/plain.times"); t=$(median <"$WORK/traced.times")
        per="-"
        [ "$kind" = lookups ] && per=$(printf '%.1f us' "$(echo "($t - $p) * 1000000 / $LOOKUPS" | bc -l)")
        printf '%-10s %-8s %10.3f s %10.3f s %10.2fx %16s\n' "$iso" "$kind" "$p" "$t" "$(echo "$t / $p" | bc -l)" "$per"
    done
done
echo "exit code of the program: $(cat "$WORK/plain.rc") (plain) $(cat "$WORK/traced.rc") (traced); output: $(cat "$WORK/plain.out")"
exit $fail
