"""Load dataset pickles without executing code: only numpy arrays/dtypes and plain containers may be rebuilt."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from data.errors import DataError

try:
    import numpy._core.multiarray  # noqa: F401  (numpy >= 2)

    _HAS_NUMPY_CORE_RENAMED = True
except ImportError:
    _HAS_NUMPY_CORE_RENAMED = False

# (module, name) pairs a dataset pickle may name. Each rebuilds data only; nothing here can run code or touch files.
ALLOWED_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),  # arrays pickled with protocol 5
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("collections", "OrderedDict"),
        # Protocol-2 pickles written by Python 3 store bytes as _codecs.encode(str, "latin1").
        ("_codecs", "encode"),
        *(
            ("builtins", name)
            for name in (
                "dict",
                "list",
                "tuple",
                "set",
                "frozenset",
                "str",
                "bytes",
                "bytearray",
                "int",
                "float",
                "bool",
                "complex",
            )
        ),
        *(
            ("__builtin__", name)
            for name in ("dict", "list", "tuple", "set", "frozenset", "str", "int", "float", "bool")
        ),
    }
)


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose find_class refuses every global outside ALLOWED_GLOBALS (raises DataError naming it)."""

    def __init__(self, file: Any, source: str) -> None:
        super().__init__(file, encoding="latin1")  # latin1: Python 2 pickles of numpy arrays load correctly
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        """Resolve an allowed global; anything else raises DataError before it is imported."""
        if (module, name) not in ALLOWED_GLOBALS:
            raise DataError(
                f"{self.source}: refused to unpickle global {module}.{name} "
                "(only numpy arrays, dicts, lists and strings are allowed)"
            )
        if module.startswith("numpy.core.") and _HAS_NUMPY_CORE_RENAMED:
            module = "numpy._core." + module[len("numpy.core.") :]  # numpy 1.x pickles; skips numpy 2's shim
        return super().find_class(module, name)


def load_pickle(path: Path) -> Any:
    """Read a pickle through RestrictedUnpickler; a missing, corrupt or code-carrying file raises DataError."""
    try:
        with open(path, "rb") as handle:
            return RestrictedUnpickler(handle, str(path)).load()
    except FileNotFoundError:
        raise DataError(f"pickle file not found: {path}") from None
    except DataError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise DataError(f"{path}: not a readable dataset pickle ({type(error).__name__}: {error})") from None
