"""Warehouse adapters: `open_adapter(target, root)` picks the class for `target.adapter`.

Adding an engine is a rules class registered in engines.ENGINES (it names the adapter
class), a subclass of adapters.base.Adapter and of those rules, and a run of the contract
suite (tests/test_contract.py) against it. The adapter's module, and with it the engine's
driver, is imported only when a target of that engine connects.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ..config import Target
from ..engines import ENGINES
from .base import Adapter
from .errors import AdapterError, Interrupted


def adapter_class(target: Target) -> type[Adapter]:
    module, cls = ENGINES[target.adapter].adapter_class.split(":")
    return getattr(importlib.import_module(module), cls)


def open_adapter(target: Target, root: Path) -> Adapter:
    return adapter_class(target)(target, root)


def open_reader(target: Target, root: Path) -> Adapter | None:
    """A connection that only reads (`pipe status`), or None when the warehouse does not
    exist at all; raises UserError when it cannot be opened now (a run holds it)."""
    return adapter_class(target).reader(target, root)


__all__ = ["Adapter", "AdapterError", "Interrupted", "adapter_class", "open_adapter", "open_reader"]
