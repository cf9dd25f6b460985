#!/usr/bin/env bash
# Benchmark of registry push (issue 11, target 4), run as `just bench-push`.
#
# Pushes the SAME OCI layout to the same local registry (Debian's
# docker-registry, CNCF distribution 2.8, on 127.0.0.1 over plain HTTP,
# started as tests/support/registry.rs starts it) with
#   - distroless-pack push oci:DIR:1 127.0.0.1:PORT/dp-REPO:1 (release build)
#   - skopeo copy [--all] --dest-tls-verify=false oci:DIR:1 docker://127.0.0.1:PORT/sk-REPO:1
# for three layouts:
#   (a) a two-platform index: linux/amd64 is a ~100 MB static musl-gcc
#       binary (scripts/lib/big-binary.sh: the host's shared-library bytes
#       embedded with .incbin), linux/arm64 a ~100 MB static Go binary
#       (GOARCH=arm64, CGO_ENABLED=0) embedding the same libraries in the
#       opposite order: two real binaries, so two different ~32 MB layers;
#   (b) a single image: the amd64 binary alone;
#   (c) a single image whose one layer is BIG_MB (500) MB of random bytes
#       in gzip's stored blocks (written directly, not packed), for memory;
#   (d) the index of (a) as `pack` makes it by default, with each image's
#       SBOM and provenance attached as OCI 1.1 referrers. (a) and (b) are
#       packed with --sbom=false --provenance=false, so that both tools
#       send the same objects (skopeo copies only what index.json lists);
#       (d) shows what pushing the documents too costs (6 more manifests
#       and 6 small blobs), and is reported, not a target.
# Each round starts one fresh registry per layout, so every push goes to an
# empty repository and nothing is skipped or mounted (skopeo remembers
# where it has seen a blob, across runs, and would mount it from an earlier
# round's repository of the same registry); in each round the tools
# alternate which goes first. After every push the script checks that both
# repositories hold the same manifest digest and that each tool sent at
# least the layout's blob bytes. Rounds are interleaved (a b c, a b c, ...).
#
# Per row, the median over $RUNS rounds of: wall time, CPU (user + system),
# peak RSS (/usr/bin/time -f '%e %U %S %M'), and bytes sent to the
# registry's port (an iptables counting rule on its port; needs root, else
# "n/a"). A Markdown table goes to stdout, progress to stderr. Exits 1 with
# one line per missed target:
#   (a) distroless-pack's wall <= 0.7x skopeo's;
#   (b) distroless-pack's wall <= 1.0x skopeo's;
#   (c) distroless-pack's peak RSS (the highest of the rounds) < 64 MiB and
#       at most 16 MiB above its peak RSS in (b): memory flat in layer size.
#
# Environment: BENCH_DIR (work dir, default a new temp dir, removed at the
# end unless KEEP=1), BENCH_MB (default 100), BIG_MB (default 500), RUNS
# (default 3, at least 3), DP (a distroless-pack binary to use instead of
# building the release one), DP_ARGS (extra push arguments, e.g. "--jobs 1"),
# REGISTRY_DIR (where the registries keep their data, default BENCH_DIR;
# e.g. a directory on /dev/shm to take the disk, which the registry fsyncs
# every blob to, out of the measurement).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH_MB=${BENCH_MB:-100}
BIG_MB=${BIG_MB:-500}
RUNS=${RUNS:-3}
DP_ARGS=${DP_ARGS:-}
RSS_LIMIT_KB=$((64 * 1024))
RSS_FLAT_KB=$((16 * 1024))
[ "$RUNS" -ge 3 ] || { echo "bench-push: RUNS must be at least 3 (a median of 3 rounds)" >&2; exit 2; }

need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "bench-push: $1 is not installed: run \`apt-get install -y $2\` (scripts/install-deps.sh installs everything)" >&2
        exit 1
    fi
}
need musl-gcc musl-tools
need go golang-go
need skopeo skopeo
need docker-registry docker-registry
need python3 python3
[ -x /usr/bin/time ] || { echo "bench-push: /usr/bin/time is not installed: run \`apt-get install -y time\`" >&2; exit 1; }

WORK=${BENCH_DIR:-$(mktemp -d /var/tmp/bench-push.XXXXXX)}
mkdir -p "$WORK"
REG_ROOT=${REGISTRY_DIR:-$WORK}
mkdir -p "$REG_ROOT"
REG_PID=
COUNT_RULE=()
stop_registry() {
    if [ ${#COUNT_RULE[@]} -gt 0 ]; then
        iptables -w -D OUTPUT "${COUNT_RULE[@]}" 2>/dev/null || true
        COUNT_RULE=()
    fi
    if [ -n "$REG_PID" ]; then
        kill "$REG_PID" 2>/dev/null || true
        wait "$REG_PID" 2>/dev/null || true
        REG_PID=
    fi
}
cleanup() {
    stop_registry
    [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

# bytes sent are counted by an iptables rule on the registry's port
COUNT_BYTES=0
if [ "$(id -u)" = 0 ] && command -v iptables >/dev/null 2>&1 && iptables -w -nL OUTPUT >/dev/null 2>&1; then
    COUNT_BYTES=1
else
    echo "bench-push: not root or no iptables: the bytes-sent column shows n/a" >&2
fi

if [ -z "${DP:-}" ]; then
    echo "== building distroless-pack (release)" >&2
    (cd "$ROOT" && cargo build --release --quiet --bin distroless-pack)
    DP="$ROOT/target/release/distroless-pack"
fi

# shellcheck source=lib/big-binary.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/big-binary.sh"
echo "== building a ${BENCH_MB} MB static amd64 binary (musl-gcc, host libraries)" >&2
make_big_binary "$WORK/app-amd64" "$BENCH_MB"

echo "== building a ${BENCH_MB} MB static arm64 binary (Go, host libraries in reverse order)" >&2
mkdir -p "$WORK/arm64"
library_payload "$WORK/arm64/payload" $((BENCH_MB * 1000 * 1000)) reverse
cat >"$WORK/arm64/main.go" <<'EOF'
package main

import (
	_ "embed"
	"fmt"
)

//go:embed payload
var payload []byte

func main() { fmt.Printf("payload of %d bytes\n", len(payload)) }
EOF
(cd "$WORK/arm64" && GO111MODULE=off CGO_ENABLED=0 GOOS=linux GOARCH=arm64 \
    go build -trimpath -ldflags=-s -o "$WORK/app-arm64" main.go)
rm -rf "$WORK/arm64"

echo "== packing (a) the index and (b) the single image" >&2
pack() { # OUT ARGS...
    local out=$1
    shift
    "$DP" pack "$@" --output "oci:$WORK/$out:1" >/dev/null 2>"$WORK/pack.err" || { cat "$WORK/pack.err" >&2; exit 1; }
}
NODOCS=(--sbom=false --provenance=false)
pack index "$WORK/app-amd64" --tag bench:1 --platform linux/amd64,linux/arm64 --binary "linux/arm64=$WORK/app-arm64" "${NODOCS[@]}"
pack single "$WORK/app-amd64" --tag bench:1 "${NODOCS[@]}"
pack index-docs "$WORK/app-amd64" --tag bench:1 --platform linux/amd64,linux/arm64 --binary "linux/arm64=$WORK/app-arm64"

if [ "$BIG_MB" -gt 0 ]; then
    echo "== writing (c) a layout with a ${BIG_MB} MB random layer" >&2
    python3 - "$WORK/big" $((BIG_MB * 1000 * 1000)) <<'EOF'
import hashlib, json, os, sys, zlib
root, size = sys.argv[1], int(sys.argv[2])
blobs = os.path.join(root, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, d), "wb").write(data)
    return d
# random bytes in gzip's stored (level 0) blocks: a real gzip stream, as the
# media type says (skopeo sniffs the compression and would otherwise call
# it an uncompressed layer, changing the manifest), of about the same size
h, diff = hashlib.sha256(), hashlib.sha256()
z = zlib.compressobj(0, zlib.DEFLATED, 31)
tmp = os.path.join(blobs, "tmp")
with open(tmp, "wb") as f:
    def out(b):
        h.update(b)
        f.write(b)
    left = size
    while left:
        chunk = os.urandom(min(left, 1 << 20))
        diff.update(chunk)
        out(z.compress(chunk))
        left -= len(chunk)
    out(z.flush())
layer = h.hexdigest()
os.rename(tmp, os.path.join(blobs, layer))
config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff.hexdigest()]}}, sort_keys=True, separators=(",", ":")).encode()
c = put(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + c, "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + layer, "size": os.path.getsize(os.path.join(blobs, layer))}]},
    sort_keys=True, separators=(",", ":")).encode()
m = put(manifest)
open(os.path.join(root, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
open(os.path.join(root, "index.json"), "w").write(json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:" + m, "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "1"}}]}))
EOF
    CASES=(a b c d)
else
    CASES=(a b d)
fi

layout_of() { case $1 in a) echo index ;; b) echo single ;; c) echo big ;; d) echo index-docs ;; esac; }
# the bytes of every blob of a layout except its index.json's entry (all
# that must go over the wire)
blob_bytes() { find "$WORK/$1/blobs/sha256" -type f -printf '%s\n' | awk '{s += $1} END {print s}'; }
for c in "${CASES[@]}"; do
    l=$(layout_of "$c")
    declare "BLOBS_$c=$(blob_bytes "$l")"
    echo "   ($c) $l: $(find "$WORK/$l/blobs/sha256" -type f | wc -l) blobs, $(blob_bytes "$l") bytes" >&2
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_registry NAME: an empty registry (the test suite's config); sets
# PORT, and a counting rule for the bytes sent to it.
start_registry() {
    local dir="$REG_ROOT/reg-$1"
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
    REG_PID=$!
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
            if [ "$COUNT_BYTES" = 1 ]; then
                COUNT_RULE=(-o lo -p tcp --dport "$PORT" -m comment --comment "bench-push-$$-$PORT")
                iptables -w -I OUTPUT 1 "${COUNT_RULE[@]}"
            fi
            return 0
        fi
        sleep 0.05
    done
    echo "bench-push: registry did not start:" >&2
    cat "$dir/log" >&2
    exit 1
}

sent_so_far() {
    if [ "$COUNT_BYTES" = 1 ]; then
        iptables -w -nvxL OUTPUT | awk -v c="bench-push-$$-$PORT" '$0 ~ c {print $2; exit}'
    else
        echo 0
    fi
}

# timed KEY CMD...: runs CMD under /usr/bin/time; appends
# "wall cpu rss_kb bytes_sent" to $WORK/KEY.times.
timed() {
    local key=$1 before after
    shift
    sync
    before=$(sent_so_far)
    /usr/bin/time -f "%e %U %S %M" -o "$WORK/time.out" "$@" >/dev/null 2>"$WORK/err.out" || {
        echo "bench-push: $key failed: $*" >&2
        cat "$WORK/err.out" >&2
        exit 1
    }
    after=$(sent_so_far)
    read -r wall user sys rss <"$WORK/time.out"
    echo "$wall $(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}') $rss $((after - before))" >>"$WORK/$key.times"
}

digest_of() { skopeo inspect --tls-verify=false --raw "docker://127.0.0.1:$PORT/$1:1" | sha256sum | cut -d' ' -f1; }

# shellcheck disable=SC2086 # DP_ARGS is a list of words
for ((i = 1; i <= RUNS; i++)); do
    for c in "${CASES[@]}"; do
        echo "== round $i of $RUNS: ($c)" >&2
        l=$(layout_of "$c")
        src="oci:$WORK/$l:1"
        all=()
        case $c in a | d) all=(--all) ;; esac
        start_registry "$c"
        dp_push() { timed "dp-$c" "$DP" push $DP_ARGS "$src" "127.0.0.1:$PORT/dp-$c-$i:1"; }
        sk_push() { timed "sk-$c" skopeo copy --quiet "${all[@]}" --dest-tls-verify=false "$src" "docker://127.0.0.1:$PORT/sk-$c-$i:1"; }
        # alternate which tool goes first, so neither always gets the warmer cache
        if ((i % 2)); then dp_push; sk_push; else sk_push; dp_push; fi
        a=$(digest_of "dp-$c-$i")
        b=$(digest_of "sk-$c-$i")
        [ "$a" = "$b" ] || { echo "bench-push: ($c) the two repositories hold different manifests: $a vs $b" >&2; exit 1; }
        if [ "$COUNT_BYTES" = 1 ]; then
            for k in dp sk; do
                # skopeo does not copy the documents of (d): its share is (a)'s
                [ "$k$c" = skd ] && want=BLOBS_a || want=BLOBS_$c
                got=$(tail -1 "$WORK/$k-$c.times" | cut -d' ' -f4)
                [ "$got" -ge "${!want}" ] || { echo "bench-push: ($c) $k sent $got bytes, less than the ${!want} of the blobs: something was skipped or mounted" >&2; exit 1; }
            done
        fi
        stop_registry
        rm -rf "$REG_ROOT/reg-$c"
    done
done

# median KEY FIELD: the median of a column of $WORK/KEY.times
median() { cut -d' ' -f"$2" "$WORK/$1.times" | sort -g | sed -n "$(((RUNS + 1) / 2))p"; }
# highest KEY FIELD
highest() { cut -d' ' -f"$2" "$WORK/$1.times" | sort -g | tail -1; }
mb() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1e6}'; }

row() { # KEY LABEL
    local sent="n/a"
    [ "$COUNT_BYTES" = 1 ] && sent="$(mb "$(median "$1" 4)") MB"
    printf '| %s | %s s | %s s | %s MiB | %s | %s |\n' "$2" "$(median "$1" 1)" "$(median "$1" 2)" \
        "$(($(median "$1" 3) / 1024))" "$sent" "$(cut -d' ' -f1 "$WORK/$1.times" | tr '\n' ' ' | sed 's/ $//')"
}

echo
echo "Push of the same OCI layout to docker-registry on 127.0.0.1 (a fresh registry and empty repositories each round), median of $RUNS interleaved rounds:"
echo
echo "| push | wall | CPU (u+s) | peak RSS | bytes sent | all walls (s) |"
echo "|---|---|---|---|---|---|"
row dp-a "(a) distroless-pack push, 2-platform index"
row sk-a "(a) skopeo copy --all, 2-platform index"
row dp-b "(b) distroless-pack push, single image"
row sk-b "(b) skopeo copy, single image"
if [ "$BIG_MB" -gt 0 ]; then
    row dp-c "(c) distroless-pack push, ${BIG_MB} MB layer"
    row sk-c "(c) skopeo copy, ${BIG_MB} MB layer"
fi
row dp-d "(d) distroless-pack push, 2-platform index + SBOM and provenance"
row sk-d "(d) skopeo copy --all, the same layout (the index only)"
echo

missed=()
ratio() { awk -v d="$(median "dp-$1" 1)" -v s="$(median "sk-$1" 1)" 'BEGIN {printf "%.2f", d / s}'; }
check_ratio() { # CASE LIMIT WHAT
    local r
    r=$(ratio "$1")
    if awk -v r="$r" -v l="$2" 'BEGIN {exit !(r <= l)}'; then
        echo "($1) $3: distroless-pack at ${r}x skopeo's wall time (target <= $2x): met"
    else
        missed+=("($1) $3: distroless-pack at ${r}x skopeo's wall time, target <= $2x")
    fi
}
echo "(d) two-platform index with its documents: distroless-pack at $(ratio d)x skopeo's wall time (reported, not a target: it also pushes the documents)"
check_ratio a 0.7 "two-platform index"
check_ratio b 1.0 "single image"
if [ "$BIG_MB" -gt 0 ]; then
    big=$(highest dp-c 3)
    small=$(highest dp-b 3)
    if [ "$big" -lt "$RSS_LIMIT_KB" ] && [ "$big" -le $((small + RSS_FLAT_KB)) ]; then
        echo "(c) ${BIG_MB} MB layer: peak RSS $((big / 1024)) MiB (< 64 MiB, and (b) peaked at $((small / 1024)) MiB): met"
    else
        missed+=("(c) ${BIG_MB} MB layer: peak RSS $((big / 1024)) MiB, target < 64 MiB and at most 16 MiB above (b)'s $((small / 1024)) MiB")
    fi
fi
if [ ${#missed[@]} -gt 0 ]; then
    for m in "${missed[@]}"; do echo "bench-push: missed: $m" >&2; done
    exit 1
fi
