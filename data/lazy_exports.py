"""PEP 562 lazy exports: a package's public names imported from their submodules on first use.

The packages whose import must stay torch-free (data, models, sweep.trial, sweep.study) list their exports as
{name: submodule} and set `__getattr__ = lazy_getattr(__name__, EXPORTS)`, so `import data` costs nothing until a name
that needs torch is read.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package` that imports each exported name from its submodule on first use."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    return __getattr__
