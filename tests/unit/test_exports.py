"""Each package states its public surface in ``__init__.__all__``, completely (STYLE.md #23)."""

from __future__ import annotations

import importlib
import pkgutil
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = sorted(
    path.parent.name
    for path in REPO.glob("*/__init__.py")
    if path.parent.name not in {"tests", "docs", "examples", "bench", "config"}
)
#: Packages whose ``__init__`` re-exports every public submodule's ``__all__``.
FLAT_PACKAGES = ("messages", "ironclad")


def _defined_here(package: types.ModuleType, value: object) -> bool:
    module = getattr(value, "__module__", None)
    return isinstance(module, str) and (
        module == package.__name__ or module.startswith(package.__name__ + ".")
    )


def test_the_core_packages_are_checked() -> None:
    assert {"messages", "ironclad", "supervisors"} <= set(PACKAGES)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_exists_and_names_are_real(name: str) -> None:
    package = importlib.import_module(name)
    exported = getattr(package, "__all__", None)
    assert isinstance(exported, list | tuple), f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ has duplicates"
    missing = [n for n in exported if not hasattr(package, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_complete(name: str) -> None:
    """Every public name the package itself defines or imports from its modules is exported."""
    package = importlib.import_module(name)
    public = {
        attr
        for attr, value in vars(package).items()
        if not attr.startswith("_")
        and not isinstance(value, types.ModuleType)
        and _defined_here(package, value)
    }
    assert public <= set(package.__all__), f"not in {name}.__all__: {public - set(package.__all__)}"


@pytest.mark.parametrize("name", FLAT_PACKAGES)
def test_flat_packages_reexport_every_public_module(name: str) -> None:
    package = importlib.import_module(name)
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_") or info.name == "__main__":
            continue
        module = importlib.import_module(f"{name}.{info.name}")
        names = getattr(module, "__all__", None)
        assert names is not None or info.name == "supervision", f"{module.__name__}: no __all__"
        if names is None:  # messages.supervision (owned elsewhere) has no __all__ yet
            names = [
                n
                for n, v in vars(module).items()
                if not n.startswith("_") and _defined_here(module, v)
            ]
        assert set(names) <= set(package.__all__), (
            f"{module.__name__} exports not re-exported by {name}: "
            f"{set(names) - set(package.__all__)}"
        )
