"""Plugins by name: how a profile turns names into plugin objects.

Theory of operation
-------------------
A :class:`Registry` maps a plugin name to a *factory*: a callable taking the
plugin's arguments (from the profile) and the framework's
:class:`~.handle.FrameworkHandle` (the node table, the waiting pods, the
side-effect sink, ...) and returning the plugin.  The in-tree plugins form
:func:`pincompute.scheduler.plugins.in_tree`; out-of-tree plugins are merged in
by name, as with kube-scheduler's ``app.WithPlugin``.  Names are unique:
registering a name twice is an error, never a silent override.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .handle import FrameworkHandle
from .interface import Plugin

PluginFactory = Callable[[Mapping[str, Any], FrameworkHandle], Plugin]


class Registry:
    """Plugin factories by name."""

    def __init__(self, factories: Mapping[str, PluginFactory] | None = None) -> None:
        self._factories: dict[str, PluginFactory] = {}
        for name, factory in (factories or {}).items():
            self.register(name, factory)

    def register(self, name: str, factory: PluginFactory) -> None:
        if name in self._factories:
            raise ValueError(f"a plugin named {name!r} is already registered")
        self._factories[name] = factory

    def merge(self, other: Registry) -> Registry:
        """A new registry with both sets of plugins (names must not collide)."""
        merged = Registry(self._factories)
        for name in other:
            merged.register(name, other._factories[name])
        return merged

    def create(self, name: str, args: Mapping[str, Any], handle: FrameworkHandle) -> Plugin:
        try:
            factory = self._factories[name]
        except KeyError:
            raise ValueError(f"unknown plugin {name!r}; registered: "
                             f"{', '.join(sorted(self._factories))}") from None
        plugin = factory(args, handle)
        if getattr(plugin, "name", None) != name:
            raise ValueError(f"plugin factory for {name!r} returned a plugin named "
                             f"{getattr(plugin, 'name', None)!r}")
        return plugin

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)

    def __len__(self) -> int:
        return len(self._factories)
