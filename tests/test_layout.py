"""The package's dependencies point one way: cli -> systems -> dvae -> nn / data / metrics / infer.

A layer may import from its own layer and the layers below it, never from above; ``data`` (generic I/O and
synthetic generators) never imports the experiment sets of ``datasets``; and the parts of one layer import each
other without cycles. The graph is read from the source (every ``import`` statement, including those inside
functions, and ``from ppl_models import NAME`` resolved to the module that defines NAME), so a lazy import cannot
hide an upward edge or a cycle.
"""

import ast
from pathlib import Path

import ppl_models

PACKAGE = Path(__file__).resolve().parents[1] / "ppl_models"

LAYER = {  # top-level module or sub-package of ppl_models -> its layer
    "nn": 0, "data": 0, "metrics": 1, "infer": 0,
    "dvae": 2, "datasets": 2,
    "mixdvae": 3, "enhancement": 3, "multimodal": 3, "toy": 3, "nmf": 3, "plots": 3,
    "catalog": 4, "demo": 4, "cli": 5, "__main__": 6, "__init__": 6,
}


def imported_parts(path: Path) -> set[str]:
    """The ppl_models sub-packages / modules that ``path`` imports."""
    parts = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: relative import; write ppl_models.... in full")
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ppl_models"):
            names = ([ppl_models._API.get(a.name, f"ppl_models.{a.name}") for a in node.names]
                     if node.module == "ppl_models" else [node.module])
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("ppl_models")]
        else:
            continue
        parts.update(name.split(".")[1] for name in names if "." in name)
    return parts


def owner(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def test_every_module_has_a_layer():
    owners = {owner(p) for p in PACKAGE.rglob("*.py")}
    assert owners <= set(LAYER), f"give these a layer in LAYER: {sorted(owners - set(LAYER))}"


def test_imports_point_down_never_up():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        mine = owner(path)
        for part in imported_parts(path) - {mine}:
            if part in LAYER and LAYER[part] > LAYER[mine]:
                upward.append(f"{path.relative_to(PACKAGE)} ({mine}, layer {LAYER[mine]}) imports {part} "
                              f"(layer {LAYER[part]})")
    assert not upward, "\n".join(upward)


def test_no_import_cycle_between_parts():
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        graph.setdefault(owner(path), set()).update(imported_parts(path) - {owner(path)})
    seen, on_path = set(), []

    def visit(part):
        if part in on_path:
            raise AssertionError("import cycle: " + " -> ".join(on_path[on_path.index(part):] + [part]))
        if part in seen:
            return
        seen.add(part)
        on_path.append(part)
        for nxt in sorted(graph.get(part, ())):
            visit(nxt)
        on_path.pop()

    for part in sorted(graph):
        visit(part)
