"""Cluster scheduler plugins by name: how a profile turns names into plugin objects.

A :class:`Registry` maps a plugin name to a factory taking the plugin's
arguments (from the profile).  The in-tree plugins form
:func:`pincompute.federation.clusterscheduler.plugins.in_tree`; out-of-tree ones
are merged in by name.  Registering a name twice is an error, never a silent
override.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

PluginFactory = Callable[[Mapping[str, Any]], Any]


class Registry:
    """Plugin factories by name."""

    def __init__(self, factories: Mapping[str, PluginFactory] | None = None) -> None:
        self._factories: dict[str, PluginFactory] = {}
        for name, factory in (factories or {}).items():
            self.register(name, factory)

    def register(self, name: str, factory: PluginFactory) -> None:
        if name in self._factories:
            raise ValueError(f"a cluster scheduler plugin named {name!r} is already registered")
        self._factories[name] = factory

    def merge(self, other: Registry) -> Registry:
        merged = Registry(self._factories)
        for name in other:
            merged.register(name, other._factories[name])
        return merged

    def create(self, name: str, args: Mapping[str, Any]) -> Any:
        try:
            factory = self._factories[name]
        except KeyError:
            raise ValueError(f"unknown cluster scheduler plugin {name!r}; registered: "
                             f"{', '.join(sorted(self._factories))}") from None
        plugin = factory(args)
        if getattr(plugin, "name", None) != name:
            raise ValueError(f"plugin factory for {name!r} returned a plugin named "
                             f"{getattr(plugin, 'name', None)!r}")
        return plugin

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)
