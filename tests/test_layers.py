"""The layering of DESIGN §8 as a test: every module of arctic_kd imports only the layers below its own.

Read from the source with `ast` (lazy imports inside functions count too), so a wrong-way import fails here
before it tangles the tree.
"""

from __future__ import annotations

import ast
from pathlib import Path

import arctic_kd

PACKAGE = Path(arctic_kd.__file__).parent

# Layer of each top-level name under arctic_kd, highest first; a module may import its own top-level name
# (the same package) and any layer of a lower rank.
RANKS: dict[str, int] = {
    "__main__": 10,
    "cli": 9,
    "experiments": 8,
    "use": 7,
    "engine": 6,
    "distill": 5,
    "data": 4,
    "models": 4,
    "config": 3,
    "presets": 3,
    "errors": 0,
    "progress": 0,
}

# Narrower rules on top of the ranks: what each of these may reach among the other top-level names.
ONLY: dict[str, set[str]] = {"models": {"errors"}}
NEVER: dict[str, set[str]] = {"distill": {"data"}}


def _top(module: str) -> str | None:
    """The top-level name under arctic_kd that `module` belongs to, or None when it is not ours."""
    parts = module.split(".")
    if parts[0] != "arctic_kd":
        return None
    return parts[1] if len(parts) > 1 else ""


def _imports(source: str, module: str, is_package: bool) -> list[str]:
    """Every arctic_kd module `source` imports, at any depth (lazy imports inside functions included)."""
    package = module.split(".") + ([""] if is_package else [])
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level])
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            found.append(name)
    return [name for name in found if _top(name) is not None]


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """The wrong-way imports in `source`, the text of module `module` (dotted, under arctic_kd)."""
    own = _top(module)
    assert own in RANKS, f"{module}: its top-level name {own!r} has no layer in RANKS"
    bad = []
    for name in _imports(source, module, is_package):
        target = _top(name)
        if target in (own, ""):  # its own package, or the root's __version__
            ok = True
        else:
            assert target in RANKS, f"{module} imports {name}, whose top-level name has no layer in RANKS"
            ok = RANKS[target] < RANKS[own]
            ok = ok and (own not in ONLY or target in ONLY[own]) and target not in NEVER.get(own, set())
        if not ok:
            bad.append(f"{module} imports {name}")
    return bad


def _modules() -> list[tuple[str, Path, bool]]:
    """Every module of the installed package below its root, as (dotted name, path, whether a package)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ["arctic_kd", *path.relative_to(PACKAGE).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        if len(parts) > 1:
            found.append((".".join(parts), path, is_package))
    return found


def test_every_module_imports_only_downwards() -> None:
    modules = _modules()
    assert len(modules) > 50
    bad = [
        line
        for module, path, is_package in modules
        for line in violations(path.read_text(encoding="utf-8"), module, is_package)
    ]
    assert not bad, "wrong-way imports:\n" + "\n".join(bad)


def test_a_wrong_way_import_is_caught() -> None:
    lazy_upward = "import torch\n\ndef f():\n    from arctic_kd.engine.train import fit\n    return fit\n"
    assert violations(lazy_upward, "arctic_kd.data.loaders") == [
        "arctic_kd.data.loaders imports arctic_kd.engine.train"
    ]
    assert violations("from ..data import loaders\n", "arctic_kd.distill.arctic") == [
        "arctic_kd.distill.arctic imports arctic_kd.data"
    ]
    assert violations("from arctic_kd.config import Config\n", "arctic_kd.models.factory") == [
        "arctic_kd.models.factory imports arctic_kd.config"
    ]
    assert violations("import arctic_kd.models.resnet3d\n", "arctic_kd.data.store") == [
        "arctic_kd.data.store imports arctic_kd.models.resnet3d"
    ]
    downward = "from arctic_kd.engine.checkpoint import load_checkpoint\n"
    assert violations(downward, "arctic_kd.use.predict") == []
