"""Lists the packages under each top-level folder; everything else is in pyproject.toml.

pyproject.toml maps sdk/ to `cadenza` and processors/, topics/, schemas/ to
`cadenza.<folder>`. setuptools cannot discover packages through such a mapping,
so this walks the folders, and a new subpackage ships without editing a list.
It also declares the one C extension, the native Avro codec.
"""

from pathlib import Path

from setuptools import Extension, setup

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


# The C codec (schemas/_native.c). Optional: without a C compiler the install
# still succeeds, and the codec runs the generated Python (about 4x slower).
NATIVE_CODEC = Extension(
    "cadenza.schemas._native",
    ["schemas/_native.c"],
    extra_compile_args=["-O2"],
    optional=True,
)

setup(packages=_packages(), ext_modules=[NATIVE_CODEC])
