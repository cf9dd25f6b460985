#!/usr/bin/env bash
# End-to-end check of the .NET NativeAOT path (`just e2e-dotnet`), for a
# machine with Docker (or podman) that can reach mcr.microsoft.com, Alpine's
# package mirror, static.rust-lang.org (to build the builder image once) and
# NuGet (the restore). The project's own test machines have no .NET SDK and
# no NuGet, so this is the part of `build` they cannot check: see docs/dotnet.md.
#
#   scripts/e2e-dotnet.sh                  # in the Alpine builder (musl)
#   RUNNER=host scripts/e2e-dotnet.sh      # with this machine's SDK (glibc on Debian)
#
# First: bash scripts/install-deps.sh (validators, icu-devtools, the arm64
# cross gcc, qemu-user-static), and an engine that answers, e.g. the test
# suite's own: bash scripts/services.sh start docker && bash scripts/services.sh binfmt
# && eval "$(bash scripts/services.sh env)". Step 7 also needs clang
# (apt-get install clang: Debian's clang-NN is found too).
#
# Environment:
#   RUNNER=container|host  where the publish runs (default container). host
#                          uses this machine's dotnet and C library: on a
#                          Debian machine that is the glibc recipe (linux-x64),
#                          the one NuGet has packages for (docs/dotnet.md)
#   ENGINE=docker|podman   the engine (default docker), to load and run the images
#   DP=PATH                a distroless-pack binary (default: cargo build --release)
#   DP_MIRROR=DIR          build it from the crate mirror (scripts/mirror.sh), for
#                          a machine without crates.io (docs/hermetic.md)
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
#   5. images/dotnet-webapiaot: the server answers GET /todos and /healthz, and
#      GET /openapi/v1.json in Development (the Microsoft.AspNetCore.OpenApi package).
#   6. its SBOM: every NuGet package and runtime pack of the real
#      obj/project.assets.json is there with its pkg:nuget purl, and the SPDX
#      and CycloneDX files pass pyspdxtools, ntia-checker and
#      cyclonedx-python-lib (python3 -m pip install -r scripts/python-requirements.txt).
#   7. RUNNER=host only: images/dotnet-console cross-built for linux/arm64
#      (the glibc cross recipe: aarch64-linux-gnu-gcc and -objcopy, clang as
#      the linker; apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross
#      clang), an arm64 image that prints "add(2,3) = 5" under qemu-user
#      (apt-get install qemu-user-static). The container's musl recipe does
#      not cross-compile (docs/dotnet.md).
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
"$engine" info >/dev/null 2>&1 || {
  echo "e2e-dotnet: $engine does not answer: start it (bash scripts/services.sh start docker, then eval \"\$(bash scripts/services.sh env)\")" >&2
  exit 2
}

if [ -z "${DP:-}" ]; then
  # shellcheck source=scripts/lib/mirror-env.sh
  . "$root/scripts/lib/mirror-env.sh"
  dp_mirror_setup
  (cd "$root" && cargo build --release --quiet) || { echo "e2e-dotnet: cargo build failed" >&2; exit 2; }
  DP="$root/target/release/distroless-pack"
fi

runner="${RUNNER:-container}"
case "$runner" in
  container) where=(--runner container --engine "$engine") ;;
  host)
    command -v dotnet >/dev/null || { echo "e2e-dotnet: RUNNER=host needs dotnet on PATH (the .NET 10 SDK)" >&2; exit 2; }
    where=(--runner host) ;;
  *) echo "e2e-dotnet: RUNNER must be container or host, not $runner" >&2; exit 2 ;;
esac
[ -n "${BUILDER_IMAGE:-}" ] && where+=(--builder-image "$BUILDER_IMAGE")

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
  if "$DP" build "$root/images/$dir" "${where[@]}" \
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

# free_port : a TCP port nobody listens on (as bench-push.sh and bench-dotnet-startup.sh have it).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_img() { "$engine" run --rm --network=none "dp-e2e/$1:1" "${@:2}" 2>&1; }
run_arm64() { "$engine" run --rm --network=none --platform linux/arm64 "dp-e2e/$1:1" "${@:2}" 2>&1; }

# platform_of NAME : the image's os/architecture, from its config.
platform_of() {
  "$DP" inspect --json "docker-archive:$work/$1.tar" |
    python3 -c 'import json,sys; print(" ".join(i["platform"] for i in json.load(sys.stdin)["images"]))'
}

# get_when_up URL : the body of the first answer within 10 s.
get_when_up() {
  local body=""
  for _ in $(seq 1 50); do
    body=$(curl -fsS "$1" 2>/dev/null) && break
    sleep 0.2
  done
  printf '%s' "$body"
}

# icu_dat : an ICU .dat for icu-file on a glibc host, cut out of this
# machine's libicudata.so (Debian and Ubuntu ship no .dat; docs/dotnet.md,
# "glibc host builds").
icu_dat() {
  python3 "$root/scripts/lib/icu-dat.py" "$work"
}

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

# 3. icu-file (on a glibc host, with a .dat cut out of libicudata.so)
icu_args=()
if [ "$runner" = host ] && ! ls /usr/share/icu/*/icudt*l.dat >/dev/null 2>&1; then
  if dat=$(icu_dat); then
    icu_args=(--config "$work/icu.toml")
    { cat "$root/images/dotnet-console/distroless-pack.toml"; echo "icu_data = \"$dat\""; } > "$work/icu.toml"
  else
    fail "icu-file: no ICU data to ship"
  fi
fi
if build console-icu-file dotnet-console --globalization icu-file "${icu_args[@]}"; then
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

# 5. the minimal API, and 6. its SBOM
if build webapi dotnet-webapiaot --sbom-format both --sbom-output "$work/webapi-sbom.json"; then
  port=$(free_port)
  cid=$("$engine" run -d --rm --network=host -e "ASPNETCORE_URLS=http://127.0.0.1:$port" dp-e2e/webapi:1)
  body=$(get_when_up "http://127.0.0.1:$port/todos")
  case "$body" in
    *'"title":"Walk the dog"'*) pass "webapi: GET /todos answers" ;;
    *) fail "webapi: GET /todos: '$body'"; "$engine" logs "$cid" 2>&1 | tail -20 ;;
  esac
  expect "webapi: GET /healthz" "ok" "$(curl -fsS "http://127.0.0.1:$port/healthz" 2>/dev/null)"
  "$engine" rm -f "$cid" >/dev/null 2>&1
  port=$(free_port)
  cid=$("$engine" run -d --rm --network=host -e ASPNETCORE_ENVIRONMENT=Development \
    -e "ASPNETCORE_URLS=http://127.0.0.1:$port" dp-e2e/webapi:1)
  case "$(get_when_up "http://127.0.0.1:$port/openapi/v1.json")" in
    *'"openapi"'*'/todos'*) pass "webapi: GET /openapi/v1.json (Development)" ;;
    *) fail "webapi: no OpenAPI document"; "$engine" logs "$cid" 2>&1 | tail -20 ;;
  esac
  "$engine" rm -f "$cid" >/dev/null 2>&1

  assets="$root/images/dotnet-webapiaot/obj/project.assets.json"
  if python3 "$root/scripts/lib/nuget-sbom-check.py" "$assets" "$work/webapi-sbom.spdx.json"; then
    pass "sbom: every package of obj/project.assets.json has its pkg:nuget purl"
  else
    fail "sbom: NuGet packages missing"
  fi
  # (the checker's output in a variable: `| grep -q` under pipefail fails
  # whenever grep exits before the checker has written everything)
  ntia=$(ntia-checker -c ntia "$work/webapi-sbom.spdx.json" 2>/dev/null)
  if pyspdxtools -i "$work/webapi-sbom.spdx.json" >/dev/null 2>&1 &&
     [[ "$ntia" == *"Conformant: True"* ]]; then
    pass "sbom: SPDX passes pyspdxtools and the NTIA minimum elements"
  else
    fail "sbom: SPDX validation (pip install -r scripts/python-requirements.txt)"
  fi
  if python3 - "$work/webapi-sbom.cdx.json" <<'PY'; then
import sys
from cyclonedx.validation.json import JsonStrictValidator
from cyclonedx.schema import SchemaVersion
sys.exit(1 if JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read()) else 0)
PY
    pass "sbom: CycloneDX passes the 1.6 schema"
  else
    fail "sbom: CycloneDX validation"
  fi
fi

# 7. arm64 from x64, on the host (glibc cross recipe)
if [ "$runner" = host ]; then
  if build console-arm64 dotnet-console --platform linux/arm64; then
    expect "arm64: an arm64 image" "linux/arm64" "$(platform_of console-arm64)"
    expect "arm64: image holds only the binary" "/app/dotnet-console" "$(files console-arm64)"
    expect "arm64: Direct P/Invoke into libfoo.a, under qemu-user" "add(2,3) = 5" "$(run_arm64 console-arm64)"
  fi
else
  echo "---- step 7 (arm64 cross) runs with RUNNER=host only"
fi

echo
if [ "$failures" -eq 0 ]; then
  echo "e2e-dotnet: all checks passed"
else
  echo "e2e-dotnet: $failures check(s) failed"
  exit 1
fi
