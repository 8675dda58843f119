"""Build the Lambda layer zip from ``chalicelayer/requirements.txt``.

    python -m chalicelayer.build --architecture arm64 --out build/layer/layer.zip

pip downloads the pinned manylinux2014 wheels for Lambda's Linux, CPython
``PYTHON_VERSION`` and the given architecture (this needs PyPI, nothing else),
installs them under ``python/`` (on ``sys.path`` in every Python runtime) and the
result is zipped reproducibly: same wheels, same bytes, so re-packaging does not
publish a new layer version. A manifest at the root of the zip records what the
layer was built for; ``deploy.package`` refuses a layer that does not match the
stage it packages.
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import json
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"

# The one place that names the Lambda Python version. Chalice derives the runtime
# from the interpreter it runs in; deploy.package sets RUNTIME on every function
# so that functions and layer always agree.
PYTHON_VERSION = "3.12"
RUNTIME = f"python{PYTHON_VERSION}"

# Lambda architecture (chalice's ``lambda_architecture``) -> pip platform tag.
# manylinux2014 (glibc 2.17) runs on both Amazon Linux 2 and 2023.
PLATFORMS = {
    "arm64": "manylinux2014_aarch64",
    "x86_64": "manylinux2014_x86_64",
}

MANIFEST = "tessera-layer.json"
_EPOCH = (1980, 1, 1, 0, 0, 0)


def requirements_digest(requirements: Path = REQUIREMENTS) -> str:
    return hashlib.sha256(requirements.read_bytes()).hexdigest()


def manifest_for(architecture: str, requirements: Path = REQUIREMENTS, *,
                 stub: bool = False) -> dict[str, Any]:
    return {"runtime": RUNTIME, "architecture": architecture,
            "requirements_sha256": requirements_digest(requirements), "stub": stub}


def read_manifest(layer_zip: Path) -> dict[str, Any]:
    with zipfile.ZipFile(layer_zip) as zf:
        try:
            data: dict[str, Any] = json.loads(zf.read(MANIFEST))
        except KeyError as exc:
            raise ValueError(f"{layer_zip} has no {MANIFEST}: not built by chalicelayer.build") from exc
    return data


def _write_zip(root: Path, out: Path, manifest: dict[str, Any]) -> None:
    """Zip ``root`` with fixed timestamps and sorted entries (reproducible bytes)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo(MANIFEST, date_time=_EPOCH)
        info.external_attr = 0o644 << 16
        zf.writestr(info, json.dumps(manifest, sort_keys=True) + "\n", zipfile.ZIP_DEFLATED)
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=_EPOCH)
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.external_attr = mode << 16
            zf.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)


def build_layer(out: Path, architecture: str, requirements: Path = REQUIREMENTS) -> Path:
    """Install the pinned wheels for Lambda's Linux and zip them under ``python/``."""
    try:
        platform = PLATFORMS[architecture]
    except KeyError as exc:
        raise ValueError(f"unknown architecture {architecture!r}; one of {sorted(PLATFORMS)}") from exc
    with tempfile.TemporaryDirectory(prefix="tessera-layer-") as tmp:
        root = Path(tmp)
        target = root / "python"
        subprocess.run(  # noqa: S603 - fixed argument list, no shell
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--no-deps", "--only-binary=:all:", "--implementation", "cp",
             "--platform", platform, "--python-version", PYTHON_VERSION,
             "--no-compile", "--target", str(target), "-r", str(requirements)],
            check=True,
        )
        # Console scripts carry a shebang of the build machine; nothing runs them on Lambda.
        shutil.rmtree(target / "bin", ignore_errors=True)
        if sys.version_info[:2] == tuple(int(p) for p in PYTHON_VERSION.split(".")):
            # /opt is read-only on Lambda, so byte code not shipped is compiled on
            # every cold start. Hash-based .pyc files keep the zip reproducible.
            # ``ddir`` records the path the files have on Lambda instead of this temp dir.
            compileall.compile_dir(str(target), ddir="/opt/python", quiet=1,
                                   invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        else:
            print(f"note: running Python {sys.version_info[0]}.{sys.version_info[1]}, not "
                  f"{PYTHON_VERSION}: the layer ships without byte code", file=sys.stderr)
        _write_zip(root, out, manifest_for(architecture, requirements))
    return out


def build_stub_layer(out: Path, architecture: str, requirements: Path = REQUIREMENTS) -> Path:
    """A layer zip holding only a manifest marked ``stub``: for offline template builds
    and tests. It carries no dependencies and must never be deployed."""
    with tempfile.TemporaryDirectory(prefix="tessera-layer-stub-") as tmp:
        _write_zip(Path(tmp), out, manifest_for(architecture, requirements, stub=True))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelayer.build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architecture", choices=sorted(PLATFORMS), default="arm64")
    parser.add_argument("--out", type=Path, default=Path("build/layer/layer.zip"))
    args = parser.parse_args(argv)
    out = build_layer(args.out, args.architecture)
    print(f"layer for {RUNTIME}/{args.architecture}: {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
