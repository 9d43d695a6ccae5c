"""Least-recently-used set of loaded models within a memory budget (pure Python, no torch)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class ModelLRU(Generic[T]):
    """Holds loaded models; loading one that does not fit evicts the least recently used first.

    Args:
        budget_gb: GiB the models may take together.
        on_evict: called with (name, model) after a model leaves the cache (to free device memory).
    """

    def __init__(self, budget_gb: float, on_evict: Callable[[str, T], None] | None = None) -> None:
        self.budget_gb = budget_gb
        self._models: OrderedDict[str, tuple[T, float]] = OrderedDict()
        self._on_evict = on_evict

    def __contains__(self, name: str) -> bool:
        return name in self._models

    @property
    def names(self) -> tuple[str, ...]:
        """Loaded models, least recently used first."""
        return tuple(self._models)

    @property
    def used_gb(self) -> float:
        """GiB the loaded models take (by their registry estimate)."""
        return sum(size for _, size in self._models.values())

    def get(self, name: str) -> T | None:
        """The loaded model, marked as just used, or None.

        Args:
            name: registry name.
        """
        entry = self._models.get(name)
        if entry is None:
            return None
        self._models.move_to_end(name)
        return entry[0]

    def make_room(self, size_gb: float, keep: str | None = None) -> list[str]:
        """Evict least recently used models until ``size_gb`` more fits (or nothing else is left).

        Args:
            size_gb: GiB about to be loaded.
            keep: a model that must stay.

        Returns:
            the names evicted.
        """
        evicted = []
        for name in list(self._models):
            if self.used_gb + size_gb <= self.budget_gb:
                break
            if name == keep:
                continue
            evicted.append(name)
            self.evict(name)
        return evicted

    def put(self, name: str, model: T, size_gb: float) -> None:
        """Add a loaded model (call :meth:`make_room` first).

        Args:
            name: registry name.
            size_gb: its memory estimate.
        """
        self._models[name] = (model, size_gb)
        self._models.move_to_end(name)

    def evict(self, name: str) -> None:
        """Drop one model.

        Args:
            name: registry name.
        """
        entry = self._models.pop(name, None)
        if entry is not None and self._on_evict is not None:
            self._on_evict(name, entry[0])

    def evict_all_but(self, keep: str) -> list[str]:
        """Drop every model except ``keep`` (to free memory after running out of it).

        Args:
            keep: the model in use.
        """
        names = [n for n in self._models if n != keep]
        for name in names:
            self.evict(name)
        return names
