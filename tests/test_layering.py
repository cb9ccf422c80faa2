"""The layering rule, checked on every import in src/maxwell (lazy ones included).

DESIGN.md's package table read as layers: a module may import its own package
and packages in lower layers, never one in its own layer or above. So nothing
imports the `maxwell` command (cli) or the run shell (run/) from below, the pure
core (economy, market, ledger, control) never reaches the machine-facing
packages above it, and the simulator and experiments sit on top of the shell
they reuse. A new package must be placed in LAYERS before it can import anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "maxwell"

LAYERS: list[set[str]] = [
    # Shared answers, process plumbing and the one set of defaults: stdlib only.
    {"maxwell", "common", "_deathsig", "defaults"},
    # The microVM guest image (built from files; the microVM tier boots it).
    {"image"},
    # The machine-facing backends, the pure market and ledger, the record, the agents.
    {"physics", "ledger", "market", "membrane", "memtrace", "record", "agents"},
    # Control (calibration drives the physics), what reads records, the public SDK.
    {"control", "report", "dashboard", "agent"},
    # The pure core joining control, market and ledger.
    {"economy"},
    # The experiment file (its defaults come from the core's).
    {"config"},
    # The imperative shell.
    {"run"},
    # The same loop with simulated parts.
    {"sim"},
    # Scenarios and baselines over the simulator and the shell.
    {"experiments"},
    # The command, and `python -m maxwell`.
    {"cli"},
    {"__main__"},
]
RANK = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def _package(module: str) -> str:
    """'maxwell.run.loop' -> 'run'; 'maxwell' -> 'maxwell'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out.append((".".join(parts), path))
    return out


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:])
    return (SRC / rel).is_dir() or (SRC / rel).with_suffix(".py").is_file()


def _imports(module: str, path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import of a maxwell module in the file."""
    found = []
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # `from maxwell import economy`, `from . import sibling`: submodules by name.
            found += [(node.lineno, f"{target}.{a.name}") for a in node.names
                      if _is_module(f"{target}.{a.name}")]
    return [(line, name) for line, name in found
            if name == "maxwell" or name.startswith("maxwell.")]


def test_every_package_has_a_layer() -> None:
    packages = {_package(m) for m, _ in _modules()}
    missing = sorted(packages - RANK.keys())
    assert not missing, (f"new package(s) {missing}: place each in LAYERS in "
                         f"tests/test_layering.py (DESIGN.md's package table)")


def test_no_module_imports_a_package_at_or_above_its_layer() -> None:
    bad = []
    for module, path in _modules():
        src = _package(module)
        if src not in RANK:
            continue  # reported by the test above
        for line, name in _imports(module, path):
            dst = _package(name)
            if dst == src or (name == "maxwell" and dst == "maxwell"):
                continue
            if dst not in RANK:
                bad.append(f"{path.relative_to(SRC.parent)}:{line} imports {name} "
                           f"(package {dst!r} has no layer)")
            elif RANK[dst] >= RANK[src]:
                bad.append(f"{path.relative_to(SRC.parent)}:{line}: {src} (layer {RANK[src]}) "
                           f"imports {name} (layer {RANK[dst]})")
    assert not bad, "layering broken:\n" + "\n".join(bad)


@pytest.mark.parametrize("module", ["maxwell.config", "maxwell.report._cli"])
def test_the_cli_is_imported_by_nobody_below_it(module: str) -> None:
    path = dict(_modules())[module]
    assert all(_package(name) not in ("cli", "run") for _, name in _imports(module, path))


def test_the_walker_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    f = tmp_path / "x.py"
    f.write_text("def f():\n    from maxwell.cli import main\n"
                 "from . import loop\nfrom maxwell import economy, __version__\n")
    found = {name for _, name in _imports("maxwell.run.x", f)}
    assert {"maxwell.cli", "maxwell.run.loop", "maxwell.economy"} <= found
    assert "maxwell.__version__" not in found
