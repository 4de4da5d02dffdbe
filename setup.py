"""Lists the packages under each top-level folder; everything else is in pyproject.toml.

pyproject.toml maps sdk/ to `cadenza` and processors/, topics/, schemas/ to
`cadenza.<folder>`. setuptools cannot discover packages through such a mapping,
so this walks the folders, and a new subpackage ships without editing a list.
"""

from pathlib import Path

from setuptools import setup

ROOTS = {
    "cadenza": "sdk",
    "cadenza.processors": "processors",
    "cadenza.topics": "topics",
    "cadenza.schemas": "schemas",
}


def _packages() -> list[str]:
    found = []
    for package, folder in ROOTS.items():
        root = Path(__file__).parent / folder
        for init in sorted(root.rglob("__init__.py")):
            rel = init.parent.relative_to(root).parts
            found.append(".".join((package, *rel)))
    return found


setup(packages=_packages())
