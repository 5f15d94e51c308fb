"""`gateway` states its public surface in `__all__`, and every name there exists."""

from __future__ import annotations

import inspect

import gateway


def test_all_names_exist_and_public_classes_are_exported() -> None:
    for name in gateway.__all__:
        assert hasattr(gateway, name), name
    assert len(set(gateway.__all__)) == len(gateway.__all__)
    modules = [gateway.breaker, gateway.breaker_registry, gateway.cache, gateway.classify,
               gateway.errors, gateway.guard, gateway.ratelimit]
    for module in modules:
        for name, obj in inspect.getmembers(module, inspect.isclass):
            if obj.__module__ == module.__name__ and not name.startswith("_"):
                assert name in gateway.__all__, f"{module.__name__}.{name} not exported"
