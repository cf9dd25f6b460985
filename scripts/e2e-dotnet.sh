#!/usr/bin/env bash
# End-to-end check of the .NET NativeAOT path (`just e2e-dotnet`), for a
# machine with Docker (or podman) that can reach mcr.microsoft.com, Alpine's
# package mirror, static.rust-lang.org (to build the builder image once) and
# NuGet (the restore). The project's own test machines have no .NET SDK and
# no NuGet, so this is the part of `build` they cannot check: see docs/dotnet.md.
#
#   scripts/e2e-dotnet.sh
#
# Environment:
#   ENGINE=docker|podman   the engine (default docker)
#   DP=PATH                a distroless-pack binary (default: cargo build --release)
#   BUILDER_IMAGE=IMAGE    use this builder instead of building Dockerfile.alpine-builder
#   KEEP=1                 keep the work directory (archives, JSON, .dbg files)
#
# What it checks, each printed as PASS or FAIL (exit 1 if any failed):
#   1. images/dotnet-console, invariant: builds in the container, verify passes,
#      the image holds only /app/dotnet-console (no .dbg), it prints
#      "add(2,3) = 5" (libfoo.a linked through Direct P/Invoke), SHA-256 works
#      (OpenSSL linked statically), and a culture lookup fails as documented.
#   2. static-icu: the culture check prints "1.234,50" (ICU and its data embedded).
#   3. icu-file: the same, with the .dat shipped in the image and ICU_DATA set.
#   4. --no-pie: PositionIndependentExecutable=false still runs.
#   5. images/dotnet-webapiaot: the server answers GET /todos and /healthz.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
engine="${ENGINE:-docker}"
work="$(mktemp -d "${TMPDIR:-/tmp}/dp-e2e-dotnet.XXXXXX")"
if [ "${KEEP:-0}" = 1 ]; then
  echo "work directory: $work"
else
  trap 'rm -rf "$work"' EXIT
fi

command -v "$engine" >/dev/null || { echo "e2e-dotnet: $engine not found" >&2; exit 2; }
"$engine" info >/dev/null 2>&1 || { echo "e2e-dotnet: $engine does not answer (start the daemon)" >&2; exit 2; }

if [ -z "${DP:-}" ]; then
  (cd "$root" && cargo build --release --quiet) || { echo "e2e-dotnet: cargo build failed" >&2; exit 2; }
  DP="$root/target/release/distroless-pack"
fi

builder=()
[ -n "${BUILDER_IMAGE:-}" ] && builder=(--builder-image "$BUILDER_IMAGE")

failures=0
pass() { echo "PASS  $1"; }
fail() { echo "FAIL  $1"; failures=$((failures + 1)); }
# expect NAME EXPECTED ACTUAL
expect() {
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected '$2', got '$3'"; fi
}

# build NAME DIR ARGS... : container build, archive + load, JSON summary kept.
build() {
  local name="$1" dir="$2"
  shift 2
  echo "---- building $name"
  if "$DP" build "$root/images/$dir" --runner container --engine "$engine" "${builder[@]}" \
      --tag "dp-e2e/$name:1" --output "docker-archive:$work/$name.tar" --load=$engine \
      --save-debug "$work/dbg-$name" --json "$@" >"$work/$name.json" 2>"$work/$name.log"; then
    pass "$name: built, verified, packed, loaded"
    return 0
  fi
  fail "$name: build failed (log: last 40 lines below)"
  tail -n 40 "$work/$name.log"
  return 1
}

# files NAME : the regular files in the image, one per line.
files() {
  "$DP" inspect --json "docker-archive:$work/$1.tar" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print("\n".join(sorted(f["path"] for i in d["images"] for l in i["layers"] for f in l["files"] if f["type"]=="file")))'
}

run_img() { "$engine" run --rm --network=none "dp-e2e/$1:1" "${@:2}" 2>&1; }

# 1. invariant (the default of the example's distroless-pack.toml)
build console dotnet-console
if [ -f "$work/console.tar" ]; then
  expect "console: image holds only the binary" "/app/dotnet-console" "$(files console)"
  [ -f "$work/dbg-console/dotnet-console.dbg" ] && pass "console: .dbg kept outside the image" || fail "console: no .dbg from --save-debug"
  expect "console: Direct P/Invoke into libfoo.a" "add(2,3) = 5" "$(run_img console)"
  expect "console: SHA-256 through static OpenSSL" \
    "$(printf 'add(2,3) = 5\nba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')" "$(run_img console sha256)"
  if run_img console culture >/dev/null; then
    fail "console: invariant mode should refuse the de-DE culture"
  else
    pass "console: invariant mode has no ICU (culture lookup fails)"
  fi
fi

# 2. static-icu (.NET 10+: EmbedIcuDataPath)
if build console-static-icu dotnet-console --globalization static-icu; then
  expect "static-icu: image holds only the binary" "/app/dotnet-console" "$(files console-static-icu)"
  expect "static-icu: de-DE formatting from embedded ICU data" \
    "$(printf 'add(2,3) = 5\n1.234,50')" "$(run_img console-static-icu culture)"
fi

# 3. icu-file
if build console-icu-file dotnet-console --globalization icu-file; then
  case "$(files console-icu-file)" in
    *"/usr/share/icu/icudt"*"l.dat"*) pass "icu-file: the .dat is in the image" ;;
    *) fail "icu-file: no ICU .dat in the image: $(files console-icu-file | tr '\n' ' ')" ;;
  esac
  expect "icu-file: de-DE formatting from the shipped .dat" \
    "$(printf 'add(2,3) = 5\n1.234,50')" "$(run_img console-icu-file culture)"
fi

# 4. PositionIndependentExecutable=false
if build console-no-pie dotnet-console --no-pie; then
  expect "no-pie: runs" "add(2,3) = 5" "$(run_img console-no-pie)"
fi

# 5. the minimal API
if build webapi dotnet-webapiaot; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cid=$("$engine" run -d --rm --network=host -e "ASPNETCORE_URLS=http://127.0.0.1:$port" dp-e2e/webapi:1)
  body=""
  for _ in $(seq 1 50); do
    body=$(curl -fsS "http://127.0.0.1:$port/todos" 2>/dev/null) && break
    sleep 0.2
  done
  case "$body" in
    *'"title":"Walk the dog"'*) pass "webapi: GET /todos answers" ;;
    *) fail "webapi: GET /todos: '$body'"; "$engine" logs "$cid" 2>&1 | tail -20 ;;
  esac
  expect "webapi: GET /healthz" "ok" "$(curl -fsS "http://127.0.0.1:$port/healthz" 2>/dev/null)"
  "$engine" rm -f "$cid" >/dev/null 2>&1
fi

echo
if [ "$failures" -eq 0 ]; then
  echo "e2e-dotnet: all checks passed"
else
  echo "e2e-dotnet: $failures check(s) failed"
  exit 1
fi
