#!/usr/bin/env python3
"""The file work behind scripts/mirror.sh and scripts/lib/mirror-env.sh.

  mirror.py crates OUT CARGO_HOME LOCK...    copy every crates.io package of
      the lock files from CARGO_HOME's download cache (after `cargo fetch`)
      into OUT (a cargo local registry: OUT/*.crate + OUT/index/), checking
      each file against the lock file's checksum; the index lines come from
      the crates.io sparse index, kept to the mirrored versions only
  mirror.py manifest OUT                     write OUT/MANIFEST
  mirror.py check-crates MIRROR LOCK...      every crates.io package of the
      lock files is in MIRROR/crates, else name the first missing ones
  mirror.py check-wheels MIRROR REQUIREMENTS every pin has a wheel in
      MIRROR/wheels
  mirror.py pins REQUIREMENTS                print `name version` per pin
  mirror.py unmet REQUIREMENTS               print `name==version` of each pin
      this python does not have at exactly that version

Only the standard library (Python 3.11: tomllib). Exit 1 with one line per
problem on stderr.
"""

import concurrent.futures
import glob
import hashlib
import json
import os
import re
import shutil
import sys
import tomllib
import urllib.request

CRATES_IO_SOURCES = (
    "registry+https://github.com/rust-lang/crates.io-index",
    "sparse+https://index.crates.io/",
)
SPARSE_INDEX = os.environ.get("DP_MIRROR_SPARSE_INDEX", "https://index.crates.io")
RERUN = "re-run scripts/mirror.sh to refresh the mirror"


def die(lines):
    for line in lines:
        print(f"{os.environ.get('DP_MIRROR_WHO', 'mirror.py')}: {line}", file=sys.stderr)
    sys.exit(1)


def index_path(name):
    """The path of a crate's file in a crates.io-layout index."""
    n = name.lower()
    if len(n) <= 2:
        return f"{len(n)}/{n}"
    if len(n) == 3:
        return f"3/{n[0]}/{n}"
    return f"{n[0:2]}/{n[2:4]}/{n}"


def lock_packages(lock):
    """(name, version, checksum) of each crates.io package of a lock file.

    Any other source (git, another registry) breaks the project's rule that
    every dependency comes from crates.io by exact version."""
    with open(lock, "rb") as f:
        doc = tomllib.load(f)
    out, bad = [], []
    for p in doc.get("package", []):
        src = p.get("source")
        if src is None:
            continue  # a path package of the workspace itself
        if src not in CRATES_IO_SOURCES:
            bad.append(f"{lock}: {p['name']} {p['version']} comes from {src}, not crates.io")
            continue
        if "checksum" not in p:
            bad.append(f"{lock}: {p['name']} {p['version']} has no checksum")
            continue
        out.append((p["name"], p["version"], p["checksum"]))
    if bad:
        die(bad)
    return out


def all_packages(locks):
    seen = {}
    for lock in locks:
        for name, vers, cksum in lock_packages(lock):
            seen.setdefault((name, vers), (cksum, lock))
    return seen


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_index(name):
    url = f"{SPARSE_INDEX}/{index_path(name)}"
    req = urllib.request.Request(url, headers={"User-Agent": "distroless-pack-mirror"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read().decode()


def cmd_crates(out, cargo_home, locks):
    pkgs = all_packages(locks)
    caches = glob.glob(os.path.join(cargo_home, "registry", "cache", "index.crates.io-*"))
    os.makedirs(os.path.join(out, "index"), exist_ok=True)
    problems = []
    for (name, vers), (cksum, lock) in sorted(pkgs.items()):
        dest = os.path.join(out, f"{name}-{vers}.crate")
        if os.path.exists(dest) and sha256(dest) == cksum:
            continue
        found = [c for c in (os.path.join(d, f"{name}-{vers}.crate") for d in caches) if os.path.exists(c)]
        if not found:
            problems.append(f"{name} {vers} ({lock}) is not in {cargo_home}/registry/cache after cargo fetch")
            continue
        got = sha256(found[0])
        if got != cksum:
            problems.append(f"{name} {vers}: {found[0]} has sha256 {got}, {lock} says {cksum}")
            continue
        shutil.copyfile(found[0], dest + ".tmp")
        os.replace(dest + ".tmp", dest)
    if problems:
        die(problems)

    versions = {}
    for name, vers in pkgs:
        versions.setdefault(name, set()).add(vers)

    def one(name):
        lines = []
        for line in fetch_index(name).splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            if entry["vers"] in versions[name]:
                lines.append((entry["vers"], entry, line))
        return name, lines

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(one, sorted(versions)))
    for name, lines in results:
        have = {v for v, _, _ in lines}
        missing = versions[name] - have
        if missing:
            problems.append(f"{name} {', '.join(sorted(missing))}: not in the crates.io index")
        for vers, entry, _ in lines:
            cksum = pkgs[(name, vers)][0]
            if entry.get("cksum") != cksum:
                problems.append(f"{name} {vers}: the index says cksum {entry.get('cksum')}, the lock file {cksum}")
        path = os.path.join(out, "index", index_path(name))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as f:
            f.writelines(raw + "\n" for _, _, raw in lines)
        os.replace(path + ".tmp", path)
    if problems:
        die(problems)

    # Drop what an earlier run left that no lock file needs any more.
    wanted = {f"{n}-{v}.crate" for n, v in pkgs}
    for f in os.listdir(out):
        if f.endswith(".crate") and f not in wanted:
            os.remove(os.path.join(out, f))
    for root, _, files in os.walk(os.path.join(out, "index")):
        for f in files:
            if f not in versions:
                os.remove(os.path.join(root, f))
    print(f"{len(pkgs)} crates ({len(versions)} names) from {len(locks)} lock files")


WHEEL_RE = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")


def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def cmd_manifest(out):
    rows, total = [], 0
    crates_dir = os.path.join(out, "crates")
    wheels_dir = os.path.join(out, "wheels")
    for f in sorted(os.listdir(crates_dir)) if os.path.isdir(crates_dir) else []:
        if not f.endswith(".crate"):
            continue
        m = re.match(r"^(.*)-(\d+\.\d+\.\d+.*)\.crate$", f)
        p = os.path.join(crates_dir, f)
        rows.append(("crate", m.group(1), m.group(2), sha256(p), os.path.getsize(p), f"crates/{f}"))
    for f in sorted(os.listdir(wheels_dir)) if os.path.isdir(wheels_dir) else []:
        m = WHEEL_RE.match(f)
        if not m:
            continue
        p = os.path.join(wheels_dir, f)
        rows.append(("wheel", norm(m["name"]), m["version"], sha256(p), os.path.getsize(p), f"wheels/{f}"))
    index_bytes = 0
    for root, _, files in os.walk(os.path.join(crates_dir, "index")):
        index_bytes += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    total = sum(r[4] for r in rows) + index_bytes
    by_kind = {}
    for r in rows:
        by_kind.setdefault(r[0], [0, 0])
        by_kind[r[0]][0] += 1
        by_kind[r[0]][1] += r[4]
    biggest = sorted(rows, key=lambda r: -r[4])[:5]
    with open(os.path.join(out, "MANIFEST.tmp"), "w") as f:
        f.write("# distroless-pack offline mirror (scripts/mirror.sh); use it with DP_MIRROR=DIR\n")
        f.write("# kind name version sha256 bytes path\n")
        for kind, (n, b) in sorted(by_kind.items()):
            f.write(f"# {kind}s: {n} files, {b} bytes\n")
        f.write(f"# crate index: {index_bytes} bytes\n")
        f.write("# largest: " + ", ".join(f"{r[1]} {r[2]} ({r[4]} bytes)" for r in biggest) + "\n")
        f.write(f"# total: {total} bytes ({total / 1e6:.1f} MB)\n")
        for r in rows:
            f.write(" ".join(str(x) for x in r) + "\n")
    os.replace(os.path.join(out, "MANIFEST.tmp"), os.path.join(out, "MANIFEST"))
    print(f"MANIFEST: {len(rows)} files, {total / 1e6:.1f} MB")


def cmd_check_crates(mirror, locks):
    missing = []
    for (name, vers), (cksum, lock) in sorted(all_packages(locks).items()):
        if not os.path.exists(os.path.join(mirror, "crates", f"{name}-{vers}.crate")):
            missing.append(f"crate {name} {vers} (needed by {lock}) is missing from the mirror {mirror}")
    if missing:
        extra = len(missing) - 10
        die(missing[:10] + ([f"... and {extra} more"] if extra > 0 else []) + [RERUN])


def pins(req):
    out = []
    with open(req) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)", line)
            if not m:
                die([f"{req}:{n}: `{line}` is not an exact pin NAME==VERSION"])
            out.append((m[1], m[2]))
    return out


def cmd_check_wheels(mirror, req):
    have = set()
    wheels = os.path.join(mirror, "wheels")
    for f in os.listdir(wheels) if os.path.isdir(wheels) else []:
        m = WHEEL_RE.match(f)
        if m:
            have.add((norm(m["name"]), m["version"]))
    missing = [
        f"wheel {name}=={vers} ({req}) is missing from the mirror {mirror}"
        for name, vers in pins(req)
        if (norm(name), vers) not in have
    ]
    if missing:
        die(missing + [RERUN])


def main(argv):
    if len(argv) >= 3 and argv[1] == "crates" and len(argv) >= 4:
        cmd_crates(argv[2], argv[3], argv[4:])
    elif len(argv) == 3 and argv[1] == "manifest":
        cmd_manifest(argv[2])
    elif len(argv) >= 3 and argv[1] == "check-crates":
        cmd_check_crates(argv[2], argv[3:])
    elif len(argv) == 4 and argv[1] == "check-wheels":
        cmd_check_wheels(argv[2], argv[3])
    elif len(argv) == 3 and argv[1] == "pins":
        for name, vers in pins(argv[2]):
            print(name, vers)
    elif len(argv) == 3 and argv[1] == "unmet":
        import importlib.metadata

        for name, vers in pins(argv[2]):
            try:
                have = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                have = None
            if have != vers:
                print(f"{name}=={vers}")
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv)
