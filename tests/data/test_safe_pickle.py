"""The restricted unpickler rebuilds numpy arrays and containers and refuses everything else without running it."""

from __future__ import annotations

import builtins
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from data import DataError
from data.safe_pickle import load_pickle


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_loads_arrays_dicts_lists_strings(tmp_path: Path, protocol: int) -> None:
    content = {
        "image_data": np.arange(24, dtype=np.uint8).reshape(2, 2, 2, 3),
        "class_dict": {"n01": [0], "n02": [1]},
        "meta": ("a", 1.5, {3}, b"x", np.int64(7)),
    }
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(content, protocol=protocol))
    loaded = load_pickle(path)
    assert np.array_equal(loaded["image_data"], content["image_data"])
    assert loaded["image_data"].dtype == np.uint8
    assert loaded["class_dict"] == content["class_dict"] and loaded["meta"] == content["meta"]


class _RunsShell:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.marker}",)


class _CallsEval:
    def __reduce__(self) -> tuple:
        return builtins.eval, ("__import__('os').getcwd()",)


def test_refuses_os_system_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "mini-imagenet-cache-train.pkl"
    path.write_bytes(pickle.dumps({"image_data": _RunsShell(marker)}))
    with pytest.raises(DataError, match=rf"{path}: refused to unpickle global (posix|os|nt)\.system"):
        load_pickle(path)
    assert not marker.exists()


def test_refuses_builtins_eval(tmp_path: Path) -> None:
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps([_CallsEval()]))
    with pytest.raises(DataError, match="refused to unpickle global builtins.eval"):
        load_pickle(path)


def test_refuses_arbitrary_classes(tmp_path: Path) -> None:
    path = tmp_path / "object.pkl"
    path.write_bytes(pickle.dumps(Path("/etc")))
    with pytest.raises(DataError, match=r"refused to unpickle global pathlib\."):
        load_pickle(path)


def test_truncated_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps({"a": list(range(100))})[:20])
    with pytest.raises(DataError, match="cut.pkl: not a readable dataset pickle"):
        load_pickle(path)
    with pytest.raises(DataError, match="pickle file not found"):
        load_pickle(tmp_path / "absent.pkl")


def test_loads_numpy1_pickles(tmp_path: Path) -> None:
    array = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    payload = pickle.dumps({"image_data": array}, protocol=2).replace(
        b"numpy._core.multiarray", b"numpy.core.multiarray"
    )
    assert b"numpy.core.multiarray" in payload
    path = tmp_path / "old.pkl"
    path.write_bytes(payload)
    assert np.array_equal(load_pickle(path)["image_data"], array)
