"""A corpus of bad inputs, each run through the real CLI in its own process: one line, exit 2, nothing left behind.

Every case builds its input in a directory of its own (which is also the command's working directory and HOME), runs
`python -m sweep.cli …` there, and the test asserts: exit code 2; stderr is exactly one line, starting
"negmargin: error:" and naming the thing at fault; no traceback anywhere; and the case directory, the inputs and any
experiment already in it included, is byte for byte what it was before (nothing created, nothing already computed
changed or lost). The inputs are generated here: specs (binary, nested, wrong values, wrong for the dataset), trial
configs, datasets (missing, empty class, corrupt or truncated image, pickles that are not a mini-ImageNet cache or
try to build an object), checkpoints (corrupt, another backbone, a pickle that builds an object), experiment
directories (missing files, corrupt optuna.db, another version's spec) and cluster addresses.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import models
from sweep.schema import spec as spec_module
from sweep.storage import experiment as experiments

from helpers.specs import full_search_spec_data
from helpers.trials import tiny_config

PROJECT = Path(__file__).resolve().parents[3]
PARALLEL = 2  # commands run at once (each is a fresh interpreter)


@dataclass(frozen=True)
class Case:
    """One bad input: `build(case_dir, glyphs)` writes it and returns (argv after `negmargin`, extra environment);
    the error line must contain `names` (the thing at fault, with {dir} standing for the case directory)."""

    name: str
    build: Callable[[Path, Path], tuple[list[str], dict[str, str]]]
    names: str


# ---------------------------------------------------------------------------------------------- inputs


def _default_spec(glyphs: Path, case: Path, **changes) -> dict:
    """The shipped default spec on the suite's glyph set, experiments in the case directory, `changes` merged in
    (a "section.key" name sets one key of a section)."""
    spec = full_search_spec_data()  # on `glyphs`, the set the suite generated once
    spec["dataset"].update(root=str(glyphs), cache_dir=str(case / "cache"))
    spec["storage_path"] = str(case / "experiments")
    for key, value in changes.items():
        section, _, leaf = key.partition(".")
        if leaf:
            spec[section][leaf] = value
        else:
            spec[key] = value
    return spec


def _write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _spec_file(case: Path, spec: dict) -> str:
    return str(_write(case / "spec.yaml", yaml.safe_dump(spec)))


def _run_spec(**changes) -> Callable[[Path, Path], tuple[list[str], dict[str, str]]]:
    """`sweep run spec.yaml` of the default spec with `changes`."""

    def build(case: Path, glyphs: Path) -> tuple[list[str], dict[str, str]]:
        return ["sweep", "run", _spec_file(case, _default_spec(glyphs, case, **changes))], {}

    return build


def _run_text(content: str | bytes, name: str = "spec.yaml") -> Callable[[Path, Path], tuple[list[str], dict]]:
    """`sweep run FILE` of a spec file holding `content`."""

    def build(case: Path, glyphs: Path) -> tuple[list[str], dict[str, str]]:
        return ["sweep", "run", str(_write(case / name, content))], {}

    return build


def _run_with(*options: str, env: dict[str, str] | None = None, storage_file: bool = False) -> Callable:
    """`sweep run spec.yaml OPTIONS` of the default spec."""

    def build(case: Path, glyphs: Path) -> tuple[list[str], dict[str, str]]:
        spec = _spec_file(case, _default_spec(glyphs, case))
        extra = list(options)
        if storage_file:
            extra += ["--storage", str(_write(case / "not-a-directory", "x"))]
        return ["sweep", "run", spec, *extra], dict(env or {})

    return build


def _colour_images(folder: Path, classes: int, per_class: int, seed: int = 0) -> None:
    """folder/c<k>/<i>.png: 16x16 seeded noise, one base colour per class."""
    rng = np.random.default_rng(seed)
    for label in range(classes):
        for index in range(per_class):
            pixels = np.clip(rng.normal(40 * label, 30, (16, 16, 3)), 0, 255).astype(np.uint8)
            (folder / f"c{label}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(folder / f"c{label}" / f"{index}.png")


def _imagefolder(damage: Callable[[Path], None]) -> Callable:
    """`sweep run --no-promote` on a small image folder (base and val) with `damage` done to it."""

    def build(case: Path, glyphs: Path) -> tuple[list[str], dict[str, str]]:
        root = case / "folder"
        _colour_images(root / "base", 5, 6)
        _colour_images(root / "val", 5, 21, seed=1)  # 5 shots + 16 queries per class
        damage(root)
        dataset = {"name": "imagefolder", "root": str(root), "cache_dir": str(case / "cache"), "image_size": 16}
        spec = _default_spec(glyphs, case, dataset=dict(dataset, crop_scale=[0.8, 1.0], hflip=False))
        return ["sweep", "run", _spec_file(case, spec), "--no-promote"], {}

    return build


def _empty_class(root: Path) -> None:
    (root / "base" / "c9").mkdir()


def _corrupt_image(root: Path) -> None:
    (root / "val" / "c2" / "3.png").write_bytes(np.random.default_rng(5).bytes(400))


def _truncated_image(root: Path) -> None:
    image = root / "base" / "c1" / "2.png"
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(6).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
    image.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


def _missing_root(root: Path) -> None:
    import shutil

    shutil.rmtree(root)


class _RunsCode:
    """A pickle that, when loaded by a plain unpickler, would create the file `target`."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def _mini_pickles(content: Callable[[Path], object]) -> Callable:
    """`sweep run --no-promote` on a mini-ImageNet root whose three cache pickles hold `content(case)`."""

    def build(case: Path, glyphs: Path) -> tuple[list[str], dict[str, str]]:
        root = case / "mini"
        for part in ("train", "val", "test"):
            _write(root / f"mini-imagenet-cache-{part}.pkl", pickle.dumps(content(case), protocol=4))
        dataset = {"name": "mini-imagenet", "root": str(root), "cache_dir": str(case / "cache"), "image_size": 16}
        spec = _default_spec(glyphs, case, dataset=dict(dataset, crop_scale=[0.8, 1.0], hflip=False))
        return ["sweep", "run", _spec_file(case, spec), "--no-promote"], {}

    return build


def _experiment(command: str, damage: Callable[[Path], None] | None = None, *extra: str) -> Callable:
    """`sweep COMMAND EXP` on an experiment made by sweep.storage.experiment.create (spec and episodes), then
    `damage`d."""

    def build(case: Path, glyphs: Path) -> tuple[list[str], dict[str, str]]:
        spec = spec_module.parse(_default_spec(glyphs, case))
        experiment = experiments.create(spec, storage=case / "experiments")
        _write(experiment.episodes_dir / "val_1shot.pt", b"episodes computed earlier")
        if damage:
            damage(experiment.root)
        return ["sweep", command, str(experiment.root), *extra], {}

    return build


def _another_versions_spec(root: Path) -> None:
    spec = yaml.safe_load((root / "spec.yaml").read_text())
    spec["augmentation_policy"] = "randaugment"  # a key this version does not know
    (root / "spec.yaml").write_text(yaml.safe_dump(spec))


def _corrupt_optuna(root: Path) -> None:
    (root / "optuna.db").write_bytes(b"SQLite format 3\x00" + np.random.default_rng(3).bytes(3000))


def _checkpoint(content: Callable[[Path], None]) -> Callable:
    """`evaluate CKPT` on the glyph set, the checkpoint written by `content(path)`."""

    def build(case: Path, glyphs: Path) -> tuple[list[str], dict[str, str]]:
        path = case / "run" / "checkpoint.pt"
        path.parent.mkdir(parents=True)
        content(path)
        argv = ["evaluate", str(path), "--dataset", "glyphs", "--root", str(glyphs), "--shots", "1"]
        return [*argv, "--episodes", "2", "--device", "cpu", "--cache", str(case / "cache")], {}

    return build


def _checkpoint_of(backbone_in_spec: str, loss: str = "neg-cosine") -> Callable[[Path], None]:
    def write(path: Path) -> None:
        state = models.build_backbone("conv4").state_dict()
        spec = {"backbone": backbone_in_spec, "backbone_kwargs": {}, "loss": loss, "image_size": 24}
        torch.save({"model_spec": spec, "backbone_state": state}, path)

    return write


def _train(content: str | bytes) -> Callable:
    """`train CONFIG --out run` of a trial config holding `content`."""

    def build(case: Path, glyphs: Path) -> tuple[list[str], dict[str, str]]:
        return ["train", str(_write(case / "trial.yaml", content)), "--out", str(case / "run")], {}

    return build


def _nested(depth: int) -> str:
    return "name: deep\nsearch: " + "[" * depth + "]" * depth + "\n"


def _alias_bomb() -> str:
    lines = ["a0: &a0 [{margin: 0.0}, {margin: 0.0}, {margin: 0.0}, {margin: 0.0}, {margin: 0.0}, {margin: 0.0}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 6)}]" for i in range(1, 8)]
    return "\n".join(lines) + "\nname: bomb\npoints_to_evaluate: *a7\n"


# ---------------------------------------------------------------------------------------------- the corpus

CASES = [
    # the spec file itself
    Case("binary-file", _run_text(np.random.default_rng(0).bytes(4096)), "not a UTF-8 text file"),
    Case("nul-bytes", _run_text("name: x\x00\nepochs: 3\n"), "NUL bytes"),
    Case("latin-1-text", _run_text("name: caf\xe9\n".encode("latin-1")), "not a UTF-8 text file"),
    Case("deeply-nested-list", _run_text(_nested(20_000)), "nested too deeply"),
    Case("deeply-nested-map", _run_text("".join("  " * i + "k:\n" for i in range(3000))), "nested too deeply"),
    Case("alias-bomb", _run_text(_alias_bomb()), "too large"),
    Case("empty-file", _run_text(""), "a sweep spec is a YAML mapping"),
    Case("yaml-list", _run_text("- name: x\n"), "a sweep spec is a YAML mapping"),
    Case("invalid-yaml", _run_text("name: [unclosed\nepochs: 3\n"), "is not valid YAML"),
    Case("directory", lambda case, glyphs: (["sweep", "run", str(case)], {}), "is a directory"),
    Case("missing-file", lambda case, glyphs: (["sweep", "run", str(case / "gone.yaml")], {}), "no such spec file"),
    Case("unknown-preset", lambda case, glyphs: (["sweep", "run", "no-such-preset"], {}), "unknown preset"),
    # the spec's values
    Case("unknown-key", _run_spec(augmentation="heavy"), "augmentation"),
    Case("name-with-slash", _run_spec(name="../escape"), "name"),
    Case("negative-epochs", _run_spec(epochs=-1), "epochs"),
    Case("epochs-not-a-number", _run_spec(epochs="many"), "epochs"),
    Case("reversed-bounds", _run_spec(**{"search.margin": {"uniform": [0.3, -0.5]}}), "search.margin"),
    Case("loguniform-at-zero", _run_spec(**{"search.scale": {"loguniform": [0.0, 10.0]}}), "search.scale"),
    Case("infinite-bound", _run_spec(**{"search.margin": {"uniform": [-0.5, float("inf")]}}), "search.margin"),
    Case("unknown-objective", _run_spec(objective="val_acc_7shot"), "objective"),
    Case("objective-without-its-shot", _run_spec(**{"validation.shots": [1]}), "objective"),
    Case("fractional-gpus", _run_spec(resources={"cpu": 1, "gpu": 1.5}), "resources.gpu"),
    Case("cuda-without-gpu", _run_spec(device="cuda"), "device"),
    Case("uri-storage", _run_spec(storage_path="s3://bucket/experiments"), "storage_path"),
    Case("unknown-dataset", _run_spec(**{"dataset.name": "imagenet-22k"}), "unknown dataset 'imagenet-22k'"),
    # the spec against its dataset (glyphs: 40 images per class)
    Case("val-shots-exceed-class-size", _run_spec(**{"validation.shots": [1, 5, 50]}), "validation.shots"),
    Case("promotion-shots-exceed-class-size", _run_spec(**{"promotion.shots": [1, 60]}), "promotion.shots"),
    Case("val-way-exceeds-classes", _run_spec(**{"validation.way": 1000}), "validation.way"),
    Case("promotion-way-exceeds-classes", _run_spec(**{"promotion.way": 1000}), "promotion.way"),
    # the command line and the cluster
    Case("name-option-with-slash", _run_with("--name", "a/b"), "--name"),
    Case("storage-is-a-file", _run_with(storage_file=True), "not-a-directory"),
    Case("dashboard-address", _run_with("--address", "http://127.0.0.1:8265"), "--address"),
    Case("address-without-port", _run_with("--address", "headnode"), "--address"),
    Case("address-nobody-listens-on", _run_with("--address", "127.0.0.1:1"), "--address 127.0.0.1:1"),
    Case("token-auth-disabled", _run_with(env={"RAY_AUTH_MODE": "disabled"}), "RAY_AUTH_MODE"),
    Case(
        "status-of-no-cluster",
        lambda case, glyphs: (["sweep", "status", "raysubmit_1", "--address", "http://127.0.0.1:1"], {}),
        "http://127.0.0.1:1",
    ),
    # datasets
    Case("dataset-root-missing", _imagefolder(_missing_root), "{dir}/folder"),
    Case("empty-class-folder", _imagefolder(_empty_class), "{dir}/folder/base/c9"),
    Case("corrupt-image", _imagefolder(_corrupt_image), "{dir}/folder/val/c2/3.png"),
    Case("truncated-image", _imagefolder(_truncated_image), "{dir}/folder/base/c1/2.png"),
    Case("pickle-not-a-cache", _mini_pickles(lambda case: [1, 2, 3]), "mini-imagenet-cache"),
    Case("pickle-that-runs-code", _mini_pickles(lambda case: _RunsCode(case / "pwned")), "mini-imagenet-cache"),
    # experiment directories
    Case("resume-missing-directory", lambda case, glyphs: (["sweep", "resume", str(case / "gone")], {}), "{dir}/gone"),
    Case("resume-without-spec", _experiment("resume", lambda root: (root / "spec.yaml").unlink()), "no spec.yaml"),
    Case("resume-another-versions-spec", _experiment("resume", _another_versions_spec), "augmentation_policy"),
    Case(
        "resume-binary-spec",
        _experiment("resume", lambda root: (root / "spec.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")),
        "spec.yaml",
    ),
    Case("resume-corrupt-optuna-db", _experiment("resume", _corrupt_optuna), "optuna.db"),
    Case("resume-never-started", _experiment("resume"), "no Ray Tune state"),
    Case("promote-without-trials", _experiment("promote"), "{dir}/experiments"),
    Case("report-another-versions-spec", _experiment("report", _another_versions_spec), "augmentation_policy"),
    # checkpoints
    Case("checkpoint-corrupt", _checkpoint(lambda path: path.write_bytes(b"PK\x03\x04" + b"\x00" * 300)), "{dir}/run"),
    Case("checkpoint-of-another-backbone", _checkpoint(_checkpoint_of("resnet12")), "does not fit"),
    Case(
        "checkpoint-pickle-builds-an-object",
        _checkpoint(lambda path: path.write_bytes(pickle.dumps(_RunsCode(path.parent / "pwned"), protocol=2))),
        "asks to build a posix.system object",
    ),
    Case("checkpoint-unknown-loss", _checkpoint(_checkpoint_of("conv4", loss="arcface")), "model_spec['loss']"),
    Case("checkpoint-directory-empty", _checkpoint(lambda path: path.unlink(missing_ok=True)), "does not exist"),
    # trial configs
    Case("trial-config-binary", _train(np.random.default_rng(1).bytes(2048)), "trial.yaml"),
    Case("trial-config-deeply-nested", _train(_nested(20_000)), "nested too deeply"),
    Case("trial-config-unknown-key", _train(yaml.safe_dump(dict(tiny_config(Path("d"), Path("c")), turbo=1))), "turbo"),
]


# ---------------------------------------------------------------------------------------------- running them


def _snapshot(folder: Path) -> dict[str, str]:
    """Every path under `folder` with its content hash ('dir' for directories)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        relative = str(path.relative_to(folder))
        found[relative] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@dataclass
class Outcome:
    case_dir: Path
    returncode: int
    stdout: str
    stderr: str
    before: dict[str, str]
    after: dict[str, str]


def _run(case: Case, case_dir: Path, glyphs: Path) -> Outcome:
    (case_dir / "home").mkdir(parents=True)
    argv, extra_env = case.build(case_dir, glyphs)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("RAY_", "NEGMARGIN_"))}
    # matplotlib (imported by the glyph renderer) keeps its own font cache under HOME: not ours, kept outside.
    env["MPLCONFIGDIR"] = str(case_dir.parent / "matplotlib")
    env.update(
        HOME=str(case_dir / "home"), PYTHONPATH=str(PROJECT), NEGMARGIN_CACHE=str(case_dir / "cache"), **extra_env
    )
    before = _snapshot(case_dir)
    result = subprocess.run(
        [sys.executable, "-m", "sweep.cli", *argv],
        cwd=case_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Outcome(case_dir, result.returncode, result.stdout, result.stderr, before, _snapshot(case_dir))


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, glyph_cache) -> dict[str, Outcome]:
    """Every case run through the CLI ({case name: outcome}), PARALLEL at a time."""
    root = tmp_path_factory.mktemp("bad-inputs")
    with ThreadPoolExecutor(PARALLEL) as pool:
        futures = {case.name: pool.submit(_run, case, root / case.name, glyph_cache) for case in CASES}
        return {name: future.result() for name, future in futures.items()}


def test_the_corpus_is_large_and_every_case_is_its_own():
    assert len(CASES) >= 30
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_bad_input_is_one_line_exit_2_and_leaves_nothing_behind(case, outcomes):
    outcome = outcomes[case.name]
    lines = outcome.stderr.splitlines()
    assert outcome.returncode == 2, outcome.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("negmargin: error: "), outcome.stderr[-3000:]
    assert case.names.format(dir=outcome.case_dir) in lines[0]
    assert "Traceback" not in outcome.stdout + outcome.stderr
    assert outcome.after == outcome.before  # nothing created, nothing changed or lost (the inputs included)
