"""The examples in the docstrings of the SDK and the processors run and say what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import cadenza

PACKAGES = ("common", "exceptions", "converter", "activity", "workflow", "processors")


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        full = f"cadenza.{package}"
        names.append(full)
        module = importlib.import_module(full)
        names += [m.name for m in pkgutil.walk_packages(module.__path__, f"{full}.")]
    return sorted(names)


def test_every_package_is_covered() -> None:
    assert {m.split(".")[1] for m in _modules()} == set(PACKAGES)
    assert cadenza.__name__ == "cadenza"


@pytest.mark.parametrize("module_name", _modules())
def test_docstring_examples(module_name: str) -> None:
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} doctest failure(s) in {module_name}"
