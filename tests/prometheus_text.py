"""A strict parser of the Prometheus text format (version 0.0.4), for the metrics tests.

``parse(text)`` fails on anything the format does not allow: a sample outside its
``# TYPE`` family, malformed labels, a duplicate series, histogram buckets that do
not add up.
"""

from __future__ import annotations

import re

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')

Labels = frozenset[tuple[str, str]]


class Exposition:
    """A parsed ``/metrics`` page: types, help texts and samples."""

    def __init__(self) -> None:
        self.types: dict[str, str] = {}
        self.help: dict[str, str] = {}
        self.samples: dict[tuple[str, Labels], float] = {}

    def value(self, name: str, **labels: str) -> float:
        """The one sample of ``name`` whose labels include ``labels``."""
        found = [
            v for (n, ls), v in self.samples.items() if n == name and set(labels.items()) <= set(ls)
        ]
        assert len(found) == 1, f"{len(found)} samples of {name} with {labels}: {self.samples}"
        return found[0]

    def labels(self, name: str) -> list[dict[str, str]]:
        """The label sets of ``name``'s samples."""
        return [dict(ls) for (n, ls) in self.samples if n == name]

    def buckets(self, name: str, **labels: str) -> dict[str, float]:
        """``le`` -> cumulative count of the histogram ``name``'s series with ``labels``."""
        return {
            dict(ls)["le"]: v
            for (n, ls), v in self.samples.items()
            if n == name + "_bucket" and set(labels.items()) <= set(ls)
        }


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value)


def parse(text: str) -> Exposition:
    """Parse ``text``, failing on anything the format does not allow."""
    out = Exposition()
    assert text == "" or text.endswith("\n")
    family = None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, doc = line[len("# HELP ") :].partition(" ")
            out.help[name] = doc
            continue
        if line.startswith("# TYPE "):
            name, kind = line[len("# TYPE ") :].split(" ")
            assert kind in ("counter", "gauge", "histogram"), line
            assert name not in out.types, f"{name} typed twice"
            out.types[name] = kind
            family = name
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample: {line!r}"
        name, raw_labels, raw_value = match.groups()
        assert family is not None and name.startswith(family), f"{name} outside its family"
        labels: dict[str, str] = {}
        if raw_labels:
            consumed = 0
            for label in _LABEL.finditer(raw_labels):
                assert label.start() == consumed, f"bad labels: {raw_labels!r}"
                labels[label.group(1)] = _unescape(label.group(2))
                consumed = label.end()
            assert consumed == len(raw_labels), f"bad labels: {raw_labels!r}"
        key = (name, frozenset(labels.items()))
        assert key not in out.samples, f"duplicate sample {line!r}"
        out.samples[key] = float(raw_value)
    for name, kind in out.types.items():
        if kind == "histogram":
            _check_histogram(out, name)
    return out


def _check_histogram(out: Exposition, name: str) -> None:
    """Buckets cumulative, ``+Inf`` equal to ``_count``, for every series."""
    series = {ls - {("le", dict(ls)["le"])} for (n, ls) in out.samples if n == name + "_bucket"}
    for labels in series:
        buckets = sorted(
            (float(dict(ls)["le"]), v)
            for (n, ls), v in out.samples.items()
            if n == name + "_bucket" and ls - {("le", dict(ls)["le"])} == labels
        )
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), f"{name} buckets not cumulative"
        assert buckets[-1][0] == float("inf")
        assert counts[-1] == out.samples[(name + "_count", labels)]
        assert (name + "_sum", labels) in out.samples
