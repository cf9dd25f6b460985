#!/usr/bin/env bash
# Time to first answer of the real static NativeAOT web app
# (tests/fixtures/dotnet/webapiaot-static/webapi-static, `dotnet new webapiaot`)
# packed by distroless-pack, with the working-directory default (/app, the
# binary's directory) and without it (--workdir /, the old default). Run as
# `just bench-dotnet-startup`; the numbers go into docs/benchmarks.md.
#
# For each image and each way of running it, $RUNS times (rounds interleaved):
#   - bwrap: the image's layers unpacked once (untimed) into a root, then
#     `bwrap --bind ROOT / --proc /proc --dev /dev --chdir WORKDIR /app/...`
#     with the config's working directory: the program's own start;
#   - bwrap-hostpid: the same without --unshare-pid, so /proc lists every
#     process of the host (as on the machine that first measured it);
#   - `distroless-pack run --network host` (bubblewrap): from the command's
#     start, so the unpacking of the 16 MB layer is included (the same for
#     both images);
#   - docker: `docker create` (untimed), then from `docker start` on;
# the time until `GET /todos` first answers 200 (polled every 2 ms). Prints
# the median and all runs in milliseconds.
#
# Environment: RUNS (default 5), DP (the distroless-pack binary, default a
# release build made here), KEEP=1 keeps the work dir. Uses the test suite's
# private dockerd (scripts/services.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-5}
BIN="$ROOT/tests/fixtures/dotnet/webapiaot-static/webapi-static"

need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "bench-dotnet-startup: $1 is not installed: run \`apt-get install -y $2\` (scripts/install-deps.sh installs everything)" >&2
        exit 1
    fi
}
need python3 python3
need bwrap bubblewrap
need docker docker.io

if [ -z "${DP:-}" ]; then
    echo "== building distroless-pack (release)" >&2
    (cd "$ROOT" && cargo build --release --quiet --bin distroless-pack)
    DP="$ROOT/target/release/distroless-pack"
fi
bash "$ROOT/scripts/services.sh" start docker >/dev/null
eval "$(bash "$ROOT/scripts/services.sh" env)"

WORK=$(mktemp -d /var/tmp/bench-dotnet.XXXXXX)
NAME="dp-bench-webapi-$$"
cleanup() {
    docker rm -f "$NAME" >/dev/null 2>&1 || true
    docker rmi -f "$NAME:app" "$NAME:root" >/dev/null 2>&1 || true
    [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

# first_answer PORT CMD...: runs CMD, prints the ms until GET /todos on
# 127.0.0.1:PORT answers 200, then stops CMD.
first_answer() {
    python3 - "$@" <<'EOF'
import socket, subprocess, sys, time
port = int(sys.argv[1]); cmd = sys.argv[2:]
t0 = time.monotonic()
p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while True:
    if time.monotonic() - t0 > 30:
        p.kill(); sys.exit("no answer within 30 s")
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        s.sendall(b"GET /todos HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        if data.startswith(b"HTTP/1.1 200"):
            break
    except OSError:
        pass
    time.sleep(0.002)
print(round((time.monotonic() - t0) * 1000))
p.terminate()
try:
    p.wait(10)
except subprocess.TimeoutExpired:
    p.kill()
EOF
}

# unpack LAYOUT ROOT: extracts the image's layers into ROOT and prints its
# working directory.
unpack() {
    python3 - "$1" "$2" <<'EOF'
import json, os, sys, tarfile
layout, root = sys.argv[1], sys.argv[2]
blob = lambda d: os.path.join(layout, "blobs", *d.split(":"))
index = json.load(open(os.path.join(layout, "index.json")))
manifest = json.load(open(blob(index["manifests"][0]["digest"])))
config = json.load(open(blob(manifest["config"]["digest"])))
os.makedirs(root)
for layer in manifest["layers"]:
    with tarfile.open(blob(layer["digest"]), "r:gz") as t:
        t.extractall(root)
print(config["config"].get("WorkingDir") or "/")
EOF
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== packing $BIN" >&2
"$DP" pack "$BIN" --tag "$NAME:app" --port 8080 --output "oci:$WORK/app" --load=docker >/dev/null 2>"$WORK/pack.err" || { cat "$WORK/pack.err" >&2; exit 1; }
"$DP" pack "$BIN" --tag "$NAME:root" --port 8080 --workdir / --output "oci:$WORK/root" --load=docker >/dev/null 2>"$WORK/pack.err" || { cat "$WORK/pack.err" >&2; exit 1; }

declare -A times workdir
for v in app root; do
    workdir[$v]=$(unpack "$WORK/$v" "$WORK/root-$v")
done
for ((i = 1; i <= RUNS; i++)); do
    for v in app root; do
        port=$(free_port)
        t=$(first_answer "$port" env -i PATH=/usr/bin:/bin "ASPNETCORE_URLS=http://127.0.0.1:$port" \
            bwrap --unshare-pid --unshare-ipc --unshare-uts --die-with-parent \
            --bind "$WORK/root-$v" / --proc /proc --dev /dev --chdir "${workdir[$v]}" /app/webapi-static)
        times[bwrap-$v]="${times[bwrap-$v]:-} $t"
        echo "   round $i: bwrap, workdir $v: $t ms" >&2
        port=$(free_port)
        t=$(first_answer "$port" env -i PATH=/usr/bin:/bin "ASPNETCORE_URLS=http://127.0.0.1:$port" \
            bwrap --die-with-parent \
            --bind "$WORK/root-$v" / --proc /proc --dev /dev --chdir "${workdir[$v]}" /app/webapi-static)
        times[bwrap-hostpid-$v]="${times[bwrap-hostpid-$v]:-} $t"
        echo "   round $i: bwrap (host pid namespace), workdir $v: $t ms" >&2
        port=$(free_port)
        t=$(first_answer "$port" "$DP" run --network host -e "ASPNETCORE_URLS=http://127.0.0.1:$port" "oci:$WORK/$v")
        times[run-$v]="${times[run-$v]:-} $t"
        echo "   round $i: run, workdir $v: $t ms" >&2
        port=$(free_port)
        docker create --name "$NAME" -p "127.0.0.1:$port:8080" -e ASPNETCORE_URLS=http://+:8080 "$NAME:$v" >/dev/null
        t=$(first_answer "$port" docker start -a "$NAME")
        docker rm -f "$NAME" >/dev/null
        times[docker-$v]="${times[docker-$v]:-} $t"
        echo "   round $i: docker, workdir $v: $t ms" >&2
    done
done

median() { printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p"; }
echo "| how | WorkingDir | time to first answer (median of $RUNS) | all runs (ms) |"
echo "|---|---|---:|---|"
for how in bwrap bwrap-hostpid run docker; do
    for v in app root; do
        # shellcheck disable=SC2086
        m=$(median ${times[$how-$v]})
        wd=/app; [ "$v" = root ] && wd=/
        echo "| $how | \`$wd\` | $m ms |${times[$how-$v]} |"
    done
done
