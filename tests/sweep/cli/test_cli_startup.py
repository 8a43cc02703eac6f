"""The `negmargin` command starts light: its parser, `sweep list` and a spec mistake load neither torch nor Ray."""

import subprocess
import sys

import pytest

PROBE = """
import sys
from sweep.cli import build_parser, main
build_parser().format_help()
code = main(sys.argv[1:])
print("loaded:", ",".join(name for name in ("torch", "ray", "tensorboard", "tqdm") if name in sys.modules))
raise SystemExit(code)
"""


def _negmargin(*argv: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_listing_presets_loads_neither_torch_nor_ray(tmp_path):
    result = _negmargin("sweep", "list", "--storage", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0 and "default" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "loaded:"


def test_a_spec_mistake_is_reported_before_torch_or_ray_load(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncolour: red\n")
    result = _negmargin("sweep", "run", str(bad), cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("negmargin: error: ")
    assert result.stdout.strip().splitlines()[-1] == "loaded:"
    uri = _negmargin("sweep", "run", "--storage", "s3://bucket/experiments", cwd=tmp_path)
    assert uri.returncode == 2 and "--storage" in uri.stderr
    assert uri.stdout.strip().splitlines()[-1] == "loaded:"


def test_a_valid_spec_validates_without_torch(tmp_path):
    """Validation of a whole preset (backbone and loss names included) reads only torch-free tables."""
    probe = (
        "import sys\nfrom sweep.schema import spec\n"
        "for name in spec.list_presets(): spec.load(spec.preset_path(name))\n"
        "print(','.join(m for m in ('torch', 'ray') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stderr


def test_report_of_an_experiment_loads_no_torch_tensorboard_or_tqdm(tmp_path):
    from sweep.schema import spec
    from sweep.storage import experiment

    created = experiment.create(spec.load(spec.preset_path("default")), storage=tmp_path)
    result = _negmargin("sweep", "report", str(created.root), cwd=tmp_path)
    assert result.returncode == 2 and "no trial results yet" in result.stderr
    assert result.stdout.strip().splitlines()[-1] == "loaded:"


@pytest.mark.parametrize("package_name", ["sweep", "sweep.study", "sweep.trial", "data", "models"])
def test_lazy_exports_all_resolve_and_no_submodule_shadows_one(package_name):
    import importlib
    import pkgutil

    package = importlib.import_module(package_name)
    assert {info.name for info in pkgutil.iter_modules(package.__path__)}.isdisjoint(package.__all__)
    for name in package.__all__:  # the object its submodule defines under that name, as the table says
        assert getattr(package, name) is getattr(importlib.import_module(package._EXPORTS[name]), name)


def test_a_study_margin_mistake_is_reported_before_torch_or_ray_load(tmp_path):
    result = _negmargin("sweep", "study", str(tmp_path), "--margins=-0.2;0", cwd=tmp_path)
    assert result.returncode == 2 and "--margins: expected comma-separated numbers" in result.stderr
    assert result.stdout.strip().splitlines()[-1] == "loaded:"


def test_the_python_api_of_sweep_loads_neither_torch_nor_ray(tmp_path):
    """`import sweep` and reading a spec through it stay light, as the command's start-up does."""
    probe = (
        "import sys\nimport sweep\nsweep.read_spec('default', {'epochs': 40})\n"
        "print(','.join(m for m in ('torch', 'ray') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stderr


def test_evaluation_exports_functions_and_classes_only():
    """evaluation imports its API eagerly (it needs torch anyway): each name is the object, never a submodule."""
    import types

    import evaluation

    assert all(not isinstance(getattr(evaluation, name), types.ModuleType) for name in evaluation.__all__)
