"""The steps of the shared-record protocol one at a time, for any `StateStore`: each is one `update` with
one pure decision of `router.shared`. The engine folds several into one update per event
(`router.shared_step`); these serve the operator paths, the tests and anyone reading the protocol."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from adapters.ports import Change, T
from policies.breaker import Breaker
from policies.model import Mode
from router import shared as records
from router.keys import Key
from router.records import MESSAGE_JSON
from router.shared import Claim, SharedKey


class RecordOperations(ABC):
    """Mixed into both stores, so the same decisions run on both."""

    @abstractmethod
    async def update(
        self,
        key: Key,
        change: Change[T],
        now: datetime | None,
        bodies: Mapping[str, str] | None = None,
        fresh: bool = False,
    ) -> T:
        """See `StateStore.update`."""

    async def pin_mode(self, key: Key, mode: Mode, explicit: bool, now: datetime) -> Mode:
        return await self.update(key, lambda shared: records.pin(shared, mode, explicit), now)

    async def record_completion(
        self, key: Key, completion_id: str, document: Mapping[str, Any], now: datetime
    ) -> bool:
        """Create-if-absent. True when this call recorded it; False for a redelivery."""
        brief = {name: value for name, value in document.items() if name != MESSAGE_JSON}
        bodies = {completion_id: document[MESSAGE_JSON]} if MESSAGE_JSON in document else None
        return await self.update(
            key, lambda shared: records.record(shared, completion_id, brief), now, bodies
        )

    async def claim_trigger(
        self, key: Key, trigger_id: str, instance_id: str, now: datetime, lease_s: float
    ) -> Claim:
        def claim(shared: SharedKey) -> tuple[SharedKey, Claim]:
            return records.claim(shared, trigger_id, instance_id, now, lease_s)

        return await self.update(key, claim, now, fresh=True)

    async def mark_published(self, key: Key, trigger_id: str, instance_id: str, now: datetime) -> None:
        await self.update(key, lambda shared: (records.mark(shared, trigger_id, instance_id, now), None), now)

    async def release_claim(self, key: Key, trigger_id: str, instance_id: str) -> None:
        await self.update(key, lambda shared: (records.release(shared, instance_id), None), None)

    async def share_breaker(self, key: Key, breaker: Breaker, now: datetime) -> None:
        await self.update(key, lambda shared: (records.share(shared, breaker), None), now)

    async def shared_breaker(self, key: Key) -> Breaker | None:
        return await self.update(key, lambda shared: (shared, shared.breaker), None, fresh=True)
