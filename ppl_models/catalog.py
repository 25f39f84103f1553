"""What the zoo holds: one entry per model, shown by ``ppl-models list``.

Each system adds its entries here when it lands, so the command line, the docs and the tests see one list.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    name: str
    family: str
    guides: tuple[str, ...]
    summary: str
    module: str  # where the model/guide pair lives


CATALOG: tuple[Entry, ...] = (
    Entry("gmm", "teaching", ("map", "meanfield"),
          "Gaussian mixture with enumerated assignments: the smallest assignment model",
          "ppl_models.toy.gmm"),
)


def find(name: str) -> Entry:
    for entry in CATALOG:
        if entry.name == name:
            return entry
    raise ValueError(f"unknown model {name!r}; known models: {', '.join(e.name for e in CATALOG)}")
