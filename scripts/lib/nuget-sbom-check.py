"""Checks that an SPDX SBOM lists every NuGet package of a restore.

    python3 scripts/lib/nuget-sbom-check.py OBJ/project.assets.json SBOM.spdx.json

The packages are the assets file's `libraries` of type `package` and the
runtime packs of `project.frameworks.*.downloadDependencies` (an exact
version, `[10.0.12]`). Each must be in the SPDX document as the purl
`pkg:nuget/ID@VERSION`. Prints how many there were; exit 1 naming the ones
missing. Used by scripts/e2e-dotnet.sh (a real restore) and tests/build.rs
(the hand-written one in tests/fixtures/dotnet/restore).
"""

import json
import sys


def restored(assets):
    want = {k for k, v in assets.get("libraries", {}).items() if v.get("type") == "package"}
    for fw in assets.get("project", {}).get("frameworks", {}).values():
        for d in fw.get("downloadDependencies", []):
            version = d["version"].strip("[]").split(",")[0].strip()
            want.add(f"{d['name']}/{version}")
    return sorted(want)


def main(assets_path, spdx_path):
    with open(assets_path) as f:
        want = restored(json.load(f))
    with open(spdx_path) as f:
        spdx = json.load(f)
    have = {
        r.get("referenceLocator")
        for p in spdx.get("packages", [])
        for r in p.get("externalRefs", [])
    }
    if not want:
        print(f"{assets_path}: no packages", file=sys.stderr)
        return 1
    missing = [w for w in want if "pkg:nuget/" + w.replace("/", "@", 1) not in have]
    if missing:
        print(f"{spdx_path}: missing {', '.join(missing)}", file=sys.stderr)
        return 1
    print(f"{len(want)} NuGet packages, all in the SBOM")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
