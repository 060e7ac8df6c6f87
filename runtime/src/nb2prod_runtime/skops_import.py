"""Importing skops.io without importing PyTorch.

When imported, skops lists scikit-learn's estimators (the types it trusts) by walking every
scikit-learn package with pkgutil, which imports each package to look inside it. One of them,
scikit-learn's vendored array-API support for PyTorch, imports PyTorch whenever it is
installed: about 3 s of CPU at every training and every service start, for nothing a
scikit-learn model needs. While skops is imported, and only when PyTorch is not in use already,
that one package fails to import; pkgutil skips packages that fail, and the failure is not kept
(a later import of it works as ever).
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
from collections.abc import Sequence
from types import ModuleType

SKIPPED = "sklearn.externals.array_api_compat.torch"


class _SkipTorchSupport(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> None:
        if fullname == SKIPPED:
            raise ImportError(f"{fullname} is skipped while skops lists its trusted types")
        return None


def import_skops_io() -> ModuleType:
    """skops.io, imported without PyTorch unless PyTorch is imported already."""
    if "skops.io" in sys.modules or "torch" in sys.modules:
        return importlib.import_module("skops.io")
    finder = _SkipTorchSupport()
    sys.meta_path.insert(0, finder)
    try:
        return importlib.import_module("skops.io")
    finally:
        sys.meta_path.remove(finder)
