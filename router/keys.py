"""Identity of one routing decision: a (game_date, transition), and its deterministic trigger id."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True, order=True)
class Key:
    game_date: date
    transition: str

    def __str__(self) -> str:
        return f"{self.transition}/{self.game_date.isoformat()}"

    @property
    def trigger_id(self) -> str:
        """Same on every instance and every retry, so consumers can deduplicate a re-published trigger."""
        digest = hashlib.sha256(
            f"cascade|{self.transition}|{self.game_date.isoformat()}".encode()
        ).hexdigest()
        return f"trg-{self.game_date.isoformat()}-{self.transition}-{digest[:12]}"
