#!/usr/bin/env bash
# Benchmark of registry push (issue 3), run as `just bench-push`.
#
# Builds a ~100 MB static binary with realistic contents (the bytes of the
# host's shared libraries embedded with .incbin, linked with musl-gcc
# -static), packs it once with distroless-pack into an OCI layout, then, in
# the same run, pushes that layout to a local CNCF distribution registry
# (docker-registry on 127.0.0.1, plain HTTP) with:
#   - distroless-pack push oci:DIR:TAG 127.0.0.1:PORT/bench:1
#   - skopeo copy oci:DIR:TAG docker://127.0.0.1:PORT/bench:1
# each into its own empty registry ("first push") and then again into the
# same registry ("re-push", nothing to upload). Prints the median wall time
# of $RUNS runs and the peak RSS (/usr/bin/time %M) of each as a Markdown
# table on stdout; progress goes to stderr.
#
# Then pushes a layout whose one layer is BIG_MB of random bytes (written
# directly, not packed) once with each tool, to show that memory does not
# grow with layer size.
#
# Environment: BENCH_DIR (work dir, default a new temp dir, removed at the
# end unless KEEP=1), BENCH_MB (default 100), BIG_MB (default 500, 0 to
# skip), RUNS (default 3), DP (a distroless-pack binary to use instead of
# building the release one).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH_MB=${BENCH_MB:-100}
BIG_MB=${BIG_MB:-500}
RUNS=${RUNS:-3}

need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "bench-push: $1 is not installed: run \`apt-get install -y $2\` (scripts/install-deps.sh installs everything)" >&2
        exit 1
    fi
}
need musl-gcc musl-tools
need skopeo skopeo
need docker-registry docker-registry
need python3 python3
[ -x /usr/bin/time ] || { echo "bench-push: /usr/bin/time is not installed: run \`apt-get install -y time\`" >&2; exit 1; }

WORK=${BENCH_DIR:-$(mktemp -d /var/tmp/bench-push.XXXXXX)}
mkdir -p "$WORK"
REG_PIDS=()
cleanup() {
    for p in "${REG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

if [ -z "${DP:-}" ]; then
    echo "== building distroless-pack (release)" >&2
    (cd "$ROOT" && cargo build --release --quiet --bin distroless-pack)
    DP="$ROOT/target/release/distroless-pack"
fi

# shellcheck source=lib/big-binary.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/big-binary.sh"
echo "== building a ${BENCH_MB} MB static binary from the host's libraries" >&2
make_big_binary "$WORK/app" "$BENCH_MB"

echo "== packing it" >&2
"$DP" pack "$WORK/app" --tag bench:1 --output "oci:$WORK/layout:1" >/dev/null 2>"$WORK/pack.err" || { cat "$WORK/pack.err" >&2; exit 1; }
LAYER=$(find "$WORK/layout/blobs/sha256" -type f -printf '%s\n' | sort -n | tail -1)
echo "   binary $(stat -c %s "$WORK/app") bytes, layer $LAYER bytes" >&2

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_registry NAME: an empty registry; sets PORT.
start_registry() {
    local dir="$WORK/reg-$1"
    rm -rf "$dir"
    mkdir -p "$dir"
    PORT=$(free_port)
    cat >"$dir/config.yml" <<EOF
version: 0.1
log: {level: warn, formatter: text, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $dir/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$PORT, secret: bench}
EOF
    docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
    REG_PIDS+=($!)
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "bench-push: registry did not start:" >&2
    cat "$dir/log" >&2
    exit 1
}

stop_registries() {
    for p in "${REG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    REG_PIDS=()
}

# timed KEY CMD...: runs CMD under /usr/bin/time, appends "wall rss" to $WORK/KEY.
timed() {
    local key=$1
    shift
    sync
    /usr/bin/time -f "%e %M" -o "$WORK/time.out" "$@" >/dev/null 2>"$WORK/err.out" || {
        echo "bench-push: $key failed:" >&2
        cat "$WORK/err.out" >&2
        exit 1
    }
    cat "$WORK/time.out" >>"$WORK/$key.times"
}

SRC="oci:$WORK/layout:1"
for ((i = 1; i <= RUNS; i++)); do
    echo "== run $i of $RUNS" >&2
    start_registry dp
    DP_PORT=$PORT
    start_registry skopeo
    SK_PORT=$PORT
    dp_first() { timed dp-first "$DP" push "$SRC" "127.0.0.1:$DP_PORT/bench:1"; }
    sk_first() { timed skopeo-first skopeo copy --quiet --dest-tls-verify=false "$SRC" "docker://127.0.0.1:$SK_PORT/bench:1"; }
    dp_again() { timed dp-repush "$DP" push "$SRC" "127.0.0.1:$DP_PORT/bench:1"; }
    sk_again() { timed skopeo-repush skopeo copy --quiet --dest-tls-verify=false "$SRC" "docker://127.0.0.1:$SK_PORT/bench:1"; }
    # alternate which tool goes first, so neither always gets the warmer cache
    if ((i % 2)); then dp_first; sk_first; dp_again; sk_again; else sk_first; dp_first; sk_again; dp_again; fi
    # same bytes in both registries
    a=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://127.0.0.1:$DP_PORT/bench:1")
    b=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://127.0.0.1:$SK_PORT/bench:1")
    [ "$a" = "$b" ] || { echo "bench-push: digests differ: $a vs $b" >&2; exit 1; }
    stop_registries
done

row() { # KEY LABEL
    local walls median rss
    walls=$(cut -d' ' -f1 "$WORK/$1.times" | sort -n)
    median=$(echo "$walls" | sed -n "$(((RUNS + 1) / 2))p")
    rss=$(cut -d' ' -f2 "$WORK/$1.times" | sort -n | tail -1)
    printf '| %-40s | %8s s | %6s MB | %s |\n' "$2" "$median" "$((rss / 1024))" "$(echo $walls | tr '\n' ' ')"
}

echo
echo "Push of a $(stat -c %s "$WORK/app")-byte static binary packed into a $LAYER-byte layer, to docker-registry on 127.0.0.1 (median of $RUNS runs)."
echo
echo "| push | wall (median) | peak RSS | all runs (s) |"
echo "|---|---|---|---|"
row dp-first "distroless-pack push, empty registry"
row skopeo-first "skopeo copy, empty registry"
row dp-repush "distroless-pack push, re-push"
row skopeo-repush "skopeo copy, re-push"

if [ "$BIG_MB" -gt 0 ]; then
    echo "== a ${BIG_MB} MB random layer" >&2
    python3 - "$WORK/big" $((BIG_MB * 1000 * 1000)) <<'EOF'
import hashlib, json, os, sys
root, size = sys.argv[1], int(sys.argv[2])
blobs = os.path.join(root, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, d), "wb").write(data)
    return d
h = hashlib.sha256()
tmp = os.path.join(blobs, "tmp")
with open(tmp, "wb") as f:
    left = size
    while left:
        chunk = os.urandom(min(left, 1 << 20))
        h.update(chunk)
        f.write(chunk)
        left -= len(chunk)
layer = h.hexdigest()
os.rename(tmp, os.path.join(blobs, layer))
config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer]}}, sort_keys=True, separators=(",", ":")).encode()
c = put(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + c, "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + layer, "size": size}]},
    sort_keys=True, separators=(",", ":")).encode()
m = put(manifest)
open(os.path.join(root, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
open(os.path.join(root, "index.json"), "w").write(json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:" + m, "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "1"}}]}))
EOF
    start_registry big-dp
    timed big-dp "$DP" push "oci:$WORK/big:1" "127.0.0.1:$PORT/big:1"
    start_registry big-skopeo
    timed big-skopeo skopeo copy --quiet --dest-tls-verify=false "oci:$WORK/big:1" "docker://127.0.0.1:$PORT/big:1"
    stop_registries
    RUNS=1
    echo
    echo "One push of a layout with a ${BIG_MB} MB random layer into an empty registry:"
    echo
    echo "| push | wall | peak RSS | |"
    echo "|---|---|---|---|"
    row big-dp "distroless-pack push, ${BIG_MB} MB layer"
    row big-skopeo "skopeo copy, ${BIG_MB} MB layer"
fi
