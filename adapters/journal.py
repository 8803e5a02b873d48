"""The outage journal on local disk: what this instance decided on its own while Firestore was down.

One JSON line per change of a key (its whole record as the store would hold it, plus the bodies of the
completions it added), appended and fsync'd before `append` returns: the engine acks a completion only
after that. `load` keeps the last record of each key (each line holds every earlier change of the key) and
every body. A line torn by a crash mid-write is the last one and is skipped: its completion was not acked,
so Pub/Sub delivers it again.

Durable across a crash or `kill -9` of the process on the same disk (a VM, a Kubernetes volume, the Docker
compose volume). On Cloud Run the disk is the instance's memory: the journal survives a restart of the
process inside the instance, not the loss of the instance — see README, "When Firestore is down".
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from adapters.durable_file import append_durably, end_with_newline
from adapters.errors import TransientError
from adapters.ports import Journaled
from policies.breaker import Breaker, BreakerState
from policies.model import Mode
from router.keys import Key
from router.shared import ClaimState, SharedKey

log = logging.getLogger("cascade.journal")

_INSTANT = "$at"  # how an instant is written in a line (JSON has no datetime)


class FileJournal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._whole = False  # the file ends with a whole line (made sure of at the first append)

    def append(self, key: Key, record: SharedKey, bodies: Mapping[str, str]) -> None:
        line: dict[str, Any] = {"game_date": key.game_date.isoformat(), "transition": key.transition}
        line |= {"record": _fields(record), "bodies": dict(bodies)}
        data = (json.dumps(line, default=_instant, separators=(",", ":")) + "\n").encode()
        try:
            if not self._whole:  # after a line torn by a crash: our lines start on a line of their own
                end_with_newline(self.path)
                self._whole = True
            append_durably(self.path, data)
        except OSError as exc:  # a full or read-only disk: the completion is nacked, never acked unjournaled
            raise TransientError(f"outage journal {self.path} not writable: {exc}") from exc

    def load(self) -> dict[Key, Journaled]:
        kept: dict[Key, Journaled] = {}
        try:
            text = self.path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return kept
        for number, raw in enumerate(text.splitlines(), start=1):
            try:
                line = json.loads(raw, object_hook=_decode)
                key = Key(date.fromisoformat(line["game_date"]), line["transition"])
                record = _record(line["record"])
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("%s:%d: skipped a journal line that is not whole (%s)", self.path, number, exc)
                continue
            earlier = kept.get(key)
            bodies = {**(earlier.bodies if earlier else {}), **line.get("bodies", {})}
            kept[key] = Journaled(record, bodies)
        return kept

    def clear(self) -> None:
        with self.path.open("wb") as journal:
            os.fsync(journal.fileno())


def _fields(record: SharedKey) -> dict[str, Any]:
    breaker = record.breaker
    return {
        "mode": record.mode.value if record.mode else None,
        "mode_explicit": record.mode_explicit,
        "claim_state": record.claim_state.value if record.claim_state else None,
        "holder": record.holder,
        "trigger_id": record.trigger_id,
        "lease_until": record.lease_until,
        "published_at": record.published_at,
        "breaker": None
        if breaker is None
        else {
            "state": breaker.state.value,
            "failures": breaker.failures,
            "opened_at": breaker.opened_at,
            "changed_at": breaker.changed_at,
        },
        "inputs": dict(record.inputs),
    }


def _record(fields: Mapping[str, Any]) -> SharedKey:
    breaker = fields["breaker"]
    return SharedKey(
        mode=Mode(fields["mode"]) if fields["mode"] else None,
        mode_explicit=bool(fields["mode_explicit"]),
        claim_state=ClaimState(fields["claim_state"]) if fields["claim_state"] else None,
        holder=fields["holder"],
        trigger_id=fields["trigger_id"],
        lease_until=fields["lease_until"],
        published_at=fields["published_at"],
        breaker=None
        if breaker is None
        else Breaker(
            BreakerState(breaker["state"]),
            int(breaker["failures"]),
            breaker["opened_at"],
            breaker["changed_at"],
        ),
        inputs=dict(fields["inputs"]),
    )


def _instant(value: object) -> dict[str, str]:
    if isinstance(value, datetime):
        return {_INSTANT: value.isoformat()}
    raise TypeError(f"{type(value).__name__} cannot be journaled")


def _decode(value: dict[str, Any]) -> Any:
    if len(value) == 1 and _INSTANT in value:
        return datetime.fromisoformat(value[_INSTANT])
    return value
