#!/usr/bin/env bash
# Benchmark of `distroless-pack pack` (issue 2, section 7), run as `just bench-pack`.
#
# Builds a ~100 MB static binary with realistic contents (the bytes of the
# host's shared libraries embedded with .incbin, linked with musl-gcc
# -static), then packs that same file, in the same run, with:
#   - distroless-pack pack (release build), with and without the verify step
#   - umoci init/new/insert/config/gc (Go, parallel gzip)
#   - tar --sort=name --mtime=@0 | gzip -6 -n | sha256sum (the single-thread baseline)
# printing the median wall time of $RUNS runs, the peak RSS (/usr/bin/time %M)
# and the compressed layer size of each. Then packs a 500 MB binary and
# checks that peak RSS stays under 64 MiB.
#
# Environment: BENCH_DIR (work dir, default a new temp dir, removed at the
# end unless KEEP=1), BENCH_MB (default 100), BIG_MB (default 500),
# RUNS (default 3).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH_MB=${BENCH_MB:-100}
BIG_MB=${BIG_MB:-500}
RUNS=${RUNS:-3}
RSS_LIMIT_KB=$((64 * 1024))

need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "bench-pack: $1 is not installed: run \`apt-get install -y $2\` (scripts/install-deps.sh installs everything)" >&2
        exit 1
    fi
}
need musl-gcc musl-tools
need umoci umoci
need gzip gzip
need python3 python3
[ -x /usr/bin/time ] || { echo "bench-pack: /usr/bin/time is not installed: run \`apt-get install -y time\`" >&2; exit 1; }

WORK=${BENCH_DIR:-$(mktemp -d /var/tmp/bench-pack.XXXXXX)}
mkdir -p "$WORK"
cleanup() { [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"; }
trap cleanup EXIT

echo "== building distroless-pack (release)" >&2
(cd "$ROOT" && cargo build --release --quiet --bin distroless-pack)
DP="$ROOT/target/release/distroless-pack"

# shellcheck source=lib/big-binary.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/big-binary.sh"

# make_binary NAME MB: $WORK/NAME embedding MB megabytes of library bytes.
make_binary() { make_big_binary "$WORK/$1" "$2"; }

# job LABEL SIZE_CMD PREP_CMD CMD: registers a job; run_jobs runs PREP_CMD
# (untimed) then CMD (timed) for every job in turn, $RUNS rounds
# (interleaved, so a busy machine slows every tool alike), and prints the
# median wall time, the peak RSS and SIZE_CMD's output for each.
LABELS=() SIZES=() PREPS=() CMDS=() RESULTS=()
job() { LABELS+=("$1"); SIZES+=("$2"); PREPS+=("$3"); CMDS+=("$4"); }
run_jobs() {
    local n=${#LABELS[@]} i j
    declare -A walls rss cpus
    for ((j = 0; j < n; j++)); do walls[$j]=""; cpus[$j]=""; rss[$j]=0; done
    for ((i = 1; i <= RUNS; i++)); do
        for ((j = 0; j < n; j++)); do
            bash -c "${PREPS[$j]}"
            sync
            /usr/bin/time -f "%e %M %U %S" -o "$WORK/time.out" bash -c "${CMDS[$j]}" >/dev/null 2>"$WORK/err.out" || {
                echo "bench-pack: ${LABELS[$j]} failed:" >&2
                cat "$WORK/err.out" >&2
                exit 1
            }
            read -r wall kb user sys <"$WORK/time.out"
            cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
            walls[$j]="${walls[$j]} $wall"
            cpus[$j]="${cpus[$j]} $cpu"
            ((kb > rss[$j])) && rss[$j]=$kb
            echo "   round $i: ${LABELS[$j]}: ${wall}s wall, ${cpu}s CPU, $((kb / 1024)) MB" >&2
        done
    done
    for ((j = 0; j < n; j++)); do
        local median cpu size
        # shellcheck disable=SC2086
        median=$(printf '%s\n' ${walls[$j]} | sort -n | sed -n "$(((RUNS + 1) / 2))p")
        # shellcheck disable=SC2086
        cpu=$(printf '%s\n' ${cpus[$j]} | sort -n | sed -n "$(((RUNS + 1) / 2))p")
        size=$(bash -c "${SIZES[$j]}")
        RESULTS+=("$(printf '| %-52s | %8s s | %8s s | %8s MB | %12s |' "${LABELS[$j]}" "$median" "$cpu" "$((rss[$j] / 1024))" "$size")")
        echo "   ${LABELS[$j]}: median ${median}s wall (runs:${walls[$j]}), ${cpu}s CPU, peak RSS $((rss[$j] / 1024)) MB, layer $size bytes" >&2
    done
}

layer_size_of_layout() { # DIR: size of the largest blob (the layer)
    echo "find '$1/blobs/sha256' -type f -printf '%s\n' | sort -n | tail -1"
}

echo "== building a ${BENCH_MB} MB static binary from the host's libraries" >&2
make_binary app "$BENCH_MB"
BIN="$WORK/app"
BIN_BYTES=$(stat -c %s "$BIN")
echo "   $BIN_BYTES bytes: $("$BIN")" >&2

echo "== packing it ($RUNS runs each)" >&2
job "distroless-pack pack (verify + pack)" "$(layer_size_of_layout "$WORK/dp")" \
    "rm -rf '$WORK/dp'" \
    "'$DP' pack '$BIN' --tag app:1 --output 'oci:$WORK/dp:1'"
job "distroless-pack pack --no-verify" "$(layer_size_of_layout "$WORK/dp")" \
    "rm -rf '$WORK/dp'" \
    "'$DP' pack '$BIN' --no-verify --tag app:1 --output 'oci:$WORK/dp:1'"
job "umoci init/new/insert/config/gc" "$(layer_size_of_layout "$WORK/umoci")" \
    "rm -rf '$WORK/umoci'" \
    "umoci init --layout '$WORK/umoci' && umoci new --image '$WORK/umoci:1' && umoci insert --image '$WORK/umoci:1' '$BIN' /app/app && umoci config --image '$WORK/umoci:1' --config.entrypoint /app/app --config.user 65532:65532 && umoci gc --layout '$WORK/umoci'"
mkdir -p "$WORK/root/app" && cp "$BIN" "$WORK/root/app/app"
job "tar --sort=name --mtime=@0 | gzip -6 -n | sha256sum" "stat -c %s '$WORK/layer.tar.gz'" \
    "rm -f '$WORK/layer.tar.gz'" \
    "tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C '$WORK/root' -cf - app | gzip -6 -n | tee '$WORK/layer.tar.gz' | sha256sum"
run_jobs
rm -rf "$WORK/root"

DIGEST1=$("$DP" pack "$BIN" --tag app:1 2>/dev/null)
DIGEST2=$("$DP" pack "$BIN" --tag app:1 2>/dev/null)
[ "$DIGEST1" = "$DIGEST2" ] || { echo "bench-pack: digests differ between runs: $DIGEST1 $DIGEST2" >&2; exit 1; }

echo "== ${BIG_MB} MB binary: peak RSS" >&2
rm -f "$BIN"
make_binary big "$BIG_MB"
BIG="$WORK/big"
RSS_LINES=()
rss_check() {
    local label=$1; shift
    rm -rf "$WORK/bigout"
    /usr/bin/time -f "%e %M" -o "$WORK/time.out" "$@" >/dev/null 2>"$WORK/err.out" || { cat "$WORK/err.out" >&2; exit 1; }
    read -r wall kb <"$WORK/time.out"
    local verdict=PASS
    ((kb < RSS_LIMIT_KB)) || verdict=FAIL
    RSS_LINES+=("$(printf '| %-52s | %8s s | %8s MB | %s (limit 64 MB) |' "$label" "$wall" "$((kb / 1024))" "$verdict")")
    echo "   $label: ${wall}s, peak RSS $((kb / 1024)) MB: $verdict" >&2
    [ "$verdict" = PASS ]
}
rss_ok=0
rss_check "distroless-pack pack (verify + pack)" "$DP" pack "$BIG" --tag big:1 --output "oci:$WORK/bigout:1" || rss_ok=1
rss_check "distroless-pack pack --no-verify" "$DP" pack "$BIG" --no-verify --tag big:1 --output "oci:$WORK/bigout:1" || rss_ok=1

echo
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); input: $BIN_BYTES byte static binary; $RUNS runs, median"
echo
printf '| %-52s | %10s | %10s | %11s | %12s |\n' "job (${BENCH_MB} MB binary)" "wall" "CPU (u+s)" "peak RSS" "layer bytes"
printf '|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..54})" "------------" "------------" "-------------" "--------------"
printf '%s\n' "${RESULTS[@]}"
echo
printf '| %-52s | %10s | %11s | %s |\n' "job (${BIG_MB} MB binary)" "wall" "peak RSS" "check"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..54})" "------------" "-------------" "------------------------"
printf '%s\n' "${RSS_LINES[@]}"
exit $rss_ok
