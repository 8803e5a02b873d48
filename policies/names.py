"""Processor name normalisation.

Processors publish their class name (`PlayerGameSummaryProcessor`), the policy speaks canonical snake_case
(`player_game_summary`). The old orchestrator compared them literally and never matched. Every spelling is
reduced to a small set of lookup keys; the policy indexes its canonical names and aliases by the same keys,
and validation rejects a key that would point at two processors.
"""

from __future__ import annotations

import re

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def snake_case(name: str) -> str:
    """`MLFeatureStoreV2Processor` -> `ml_feature_store_v2_processor`; snake_case input is unchanged."""
    spaced = _CAMEL_BOUNDARY.sub("_", name.strip())
    return _NON_ALNUM.sub("_", spaced.lower()).strip("_")


def _strip_affixes(snake: str) -> str:
    if snake.endswith("_processor") and snake != "_processor":
        snake = snake[: -len("_processor")]
    if snake.startswith("async_"):
        snake = snake[len("async_") :]
    return snake


def lookup_keys(name: str) -> tuple[str, ...]:
    """All keys under which `name` is known, most specific first, without duplicates."""
    snake = snake_case(name)
    stripped = _strip_affixes(snake)
    candidates = (snake, stripped, stripped.replace("_", ""))
    return tuple(dict.fromkeys(key for key in candidates if key))


def table_name(output_table: str) -> str:
    """`nba_raw.odds_game_lines` -> `odds_game_lines` (also strips a `project.` prefix)."""
    return output_table.rsplit(".", 1)[-1].strip()


class NameIndex:
    """Resolves any published spelling to a canonical processor name."""

    # Processors publish the same few names all day; remembering answers skips the regexes. Bounded, so a
    # flood of made-up names cannot grow it without limit.
    CACHE_LIMIT = 4096

    def __init__(self, canonical_to_aliases: dict[str, tuple[str, ...]]) -> None:
        self._resolved: dict[tuple[str, str | None], str | None] = {}
        self._by_key: dict[str, str] = {}
        for canonical, aliases in canonical_to_aliases.items():
            for raw in (canonical, *aliases):
                for key in lookup_keys(raw):
                    self._by_key.setdefault(key, canonical)

    def resolve(self, processor_name: str, output_table: str | None = None) -> str | None:
        asked = (processor_name, output_table)
        if asked in self._resolved:
            return self._resolved[asked]
        answer = self._resolve(processor_name, output_table)
        if len(self._resolved) < self.CACHE_LIMIT:
            self._resolved[asked] = answer
        return answer

    def _resolve(self, processor_name: str, output_table: str | None) -> str | None:
        for key in lookup_keys(processor_name):
            if key in self._by_key:
                return self._by_key[key]
        if output_table:
            for key in lookup_keys(table_name(output_table)):
                if key in self._by_key:
                    return self._by_key[key]
        return None
