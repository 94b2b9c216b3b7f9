"""The package's layers point one way, and the running portal never loads the development tools."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "portal"
WEB = ("portal.auth", "portal.admin", "portal.main", "portal.cli")
# What each lower layer must never import (any import: module level, in a function, typing).
FORBIDDEN = {
    "portal.services": (*WEB, "portal.diagnostics", "portal.dev"),
    "portal.models": (*WEB, "portal.services", "portal.diagnostics", "portal.dev", "flask"),
    "portal.http": ("portal",),
    "portal.log": ("portal.__init__", *WEB, "portal.services"),
    "portal.config": ("portal.__init__", *WEB, "portal.services"),
}
# Only these product modules may reach into portal.dev, and only for the `flask dev` commands.
DEV_IMPORTERS = {"portal.cli": ("portal.dev.seed",)}


def module_name(path: Path) -> str:
    """Return the dotted module name of a file in the package."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Return every module a file imports, wherever in the file the import stands."""
    found: set[str] = set()
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], base]
                )
            found.add(base.rstrip("."))
            found.update(f"{base}.{alias.name}".lstrip(".") for alias in node.names)
    return found


def edges() -> list[tuple[str, str]]:
    """Return (importer, imported) for every import in the package."""
    return [
        (module_name(path), target)
        for path in sorted(PACKAGE.rglob("*.py"))
        for target in sorted(imports(path))
    ]


def within(name: str, prefix: str) -> bool:
    """Tell whether a dotted name is the module `prefix` or inside it."""
    return name == prefix or name.startswith(prefix + ".")


def upward(edge: tuple[str, str]) -> bool:
    """Tell whether an import runs against the layering."""
    importer, target = edge
    for layer, banned in FORBIDDEN.items():
        if within(importer, layer) and any(within(target, b) for b in banned):
            return not (layer == "portal.http" and within(target, "portal.http"))
    if within(target, "portal.dev") and not within(importer, "portal.dev"):
        allowed = next((a for p, a in DEV_IMPORTERS.items() if within(importer, p)), ())
        return not any(within(target, a) for a in allowed)
    return False


def test_no_import_runs_up_the_layers() -> None:
    assert [edge for edge in edges() if upward(edge)] == []


@pytest.mark.parametrize(
    "edge",
    [
        ("portal.services.graph", "portal.auth.entra"),
        ("portal.models.user", "portal.admin.routes"),
        ("portal.models.user", "flask"),
        ("portal.log", "portal.__init__"),
        ("portal.auth.entra", "portal.dev.emulator"),
    ],
)
def test_the_layering_check_catches_an_upward_import(edge: tuple[str, str]) -> None:
    assert upward(edge)


def test_importing_the_app_does_not_load_the_emulator_or_the_demo(tmp_path: Path) -> None:
    dev = ("portal.dev.emulator", "portal.dev.demo")
    code = f"import sys, app; print(sorted(m for m in sys.modules if m.startswith({dev!r})))"
    env = {
        **os.environ,
        "PORTAL_ENV": "development",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.db'}",
        "SECRET_KEY": "x",
    }
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
