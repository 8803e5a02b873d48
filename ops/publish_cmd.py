"""`cascade publish`: play a recorded day onto Pub/Sub in real time (or as fast as possible).

Where `cascade replay` runs the engine on a virtual clock, this feeds a *running* router: every recorded
delivery's body and attributes are published to its topic (on the emulator when PUBSUB_EMULATOR_HOST is set),
keeping the gaps between the recorded `at` instants divided by `--speed`. The plan is a pure function
(`schedule`); the only impure parts are the wait and the publish.

Pub/Sub assigns its own message ids: the recorded `message_id` cannot be imposed, so a router sees new ids
(and redeliveries recorded as "the same message twice" arrive as two distinct messages).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import anyio

from ops.audit_rows import iso_z
from ops.exit_codes import EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE
from ops.help_text import epilog, paragraph
from ops.progress import Progress
from ops.replay import RecordedDelivery, RecordingError, read_recording
from ops.text_input import InputError, open_lines

Plan = list[tuple[float, RecordedDelivery]]
EXIT_CODES = {
    EXIT_OK: "every message published (or nothing to publish)",
    EXIT_USAGE: "unusable events file (names the line), no project, or no Google credentials",
    EXIT_UNAVAILABLE: "Pub/Sub did not answer or refused a publish (stops there, saying after how many)",
}
_ET = ZoneInfo("America/New_York")  # the pipeline's calendar (the default policy's timezone)


def schedule(deliveries: Sequence[RecordedDelivery], speed: float) -> Plan:
    """When to publish each delivery: seconds after the start, in recorded order.

    The first delivery is at 0; a later one at its distance from the first divided by `speed` (60 = a
    recorded minute per second). `speed` 0 publishes everything at once, in order. Deliveries recorded at
    the same instant keep their order (a stable sort, as `read_recording` does)."""
    if speed < 0:
        raise ValueError("speed must be 0 (no waiting) or positive")
    ordered = sorted(deliveries, key=lambda d: d.at)
    if not ordered:
        return []
    start = ordered[0].at
    if speed == 0:
        return [(0.0, d) for d in ordered]
    return [((d.at - start).total_seconds() / speed, d) for d in ordered]


def relive(deliveries: Sequence[RecordedDelivery], now: datetime, speed: float) -> list[RecordedDelivery]:
    """The recorded day moved to now: each `game_date` shifted by the days between the recording's first
    delivery and today (in ET, so yesterday's games stay yesterday's), each `timestamp` to when it will
    now be published. Without this a router sees a recorded date as long past: backfill, never cascaded.
    Deadlines still follow the wall clock: an overnight day relived in the afternoon is past its deadlines."""
    ordered = sorted(deliveries, key=lambda d: d.at)
    if not ordered:
        return []
    first = ordered[0].at
    shift = now.astimezone(_ET).date() - first.astimezone(_ET).date()
    return [_moved(d, first, now, shift, speed) for d in ordered]


def _moved(
    delivery: RecordedDelivery, first: datetime, now: datetime, shift: timedelta, speed: float
) -> RecordedDelivery:
    if not isinstance(delivery.data, dict):
        return delivery  # a raw (maybe garbled) body is published as recorded
    data = dict(delivery.data)
    offset = (delivery.at - first) / speed if speed > 0 else timedelta(0)
    if isinstance(data.get("game_date"), str) and len(data["game_date"]) == 10:
        with contextlib.suppress(ValueError):
            data["game_date"] = (date.fromisoformat(data["game_date"]) + shift).isoformat()
    if "timestamp" in data:
        data["timestamp"] = iso_z(now + offset)
    return RecordedDelivery.model_validate({**delivery.model_dump(), "data": data})


@dataclass(frozen=True, slots=True)
class PublishReport:
    published: int
    topics: int
    elapsed_s: float
    max_late_s: float  # how far behind the plan the worst publish went out


def add_publish_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `cascade publish` on the CLI's sub-command parsers."""
    pub = subparsers.add_parser(
        "publish",
        help="publish a recorded day to Pub/Sub in (scaled) real time, to feed a running router",
        description=paragraph(
            "Publish each recorded delivery's data and attributes to its topic, keeping the recorded "
            "timing divided by --speed. Pub/Sub assigns its own message ids: the recorded message_id is "
            "printed next to the new id but cannot be imposed. Topics must exist (`cascade provision`). "
            "Checks for Google credentials first unless PUBSUB_EMULATOR_HOST is set."
        ),
        epilog=epilog(["project", "pubsub_emulator_host"], EXIT_CODES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pub.add_argument(
        "events",
        type=Path,
        help="recorded deliveries, one JSON object per line (gzipped works too; - reads standard input)",
    )
    pub.add_argument(
        "--relive",
        action="store_true",
        help="move the recorded day to now (game dates shifted to today's calendar, timestamps to publish "
        "time); without it a router treats an old recorded date as backfill and never cascades it",
    )
    pub.add_argument(
        "--project", help="Google Cloud project (default: CASCADE_PROJECT, then GOOGLE_CLOUD_PROJECT)"
    )
    pub.add_argument(
        "--speed",
        type=_speed,
        default=60.0,
        help="recorded seconds per real second (default 60: a recorded minute per second; 0: no waiting)",
    )
    pub.add_argument(
        "--no-wait", action="store_true", help="publish everything at once, in order (same as --speed 0)"
    )
    pub.set_defaults(handler=publish_command)


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError("must be 0 (no waiting) or a positive number")
    return value


def publish_command(args: argparse.Namespace) -> int:
    """The `cascade publish` handler: an exit code, never a traceback for bad input or an absent backend."""
    try:
        with open_lines(args.events) as events:
            deliveries = read_recording(events, str(args.events))
    except (RecordingError, InputError) as exc:
        print(f"cascade publish: {exc}", file=sys.stderr)
        return EXIT_USAGE
    speed = 0.0 if args.no_wait else args.speed
    if args.relive:
        deliveries = relive(deliveries, datetime.now(UTC), speed)
    plan = schedule(deliveries, speed)
    if not plan:
        print(f"{args.events}: nothing to publish")
        return EXIT_OK
    # Google clients only for this command, not every CLI start.
    from adapters.credentials import credentials_problem
    from adapters.errors import PublishError
    from ops.settings import NO_PROJECT, project_from

    # Only the project and PUBSUB_EMULATOR_HOST are read here: other CASCADE_ variables are run's business.
    project = project_from(os.environ, args.project)
    if project is None:
        print(f"cascade publish: {NO_PROJECT}", file=sys.stderr)
        return EXIT_USAGE
    if problem := credentials_problem(["Pub/Sub"]):
        print(f"cascade publish: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = anyio.run(publish_plan, plan, project)
    except PublishError as exc:
        print(f"cascade publish: {exc}{_hint(exc, project)}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    span_s = (plan[-1][1].at - plan[0][1].at).total_seconds()
    lag = "" if args.no_wait or args.speed == 0 else f"; at most {report.max_late_s:.2f} s behind schedule"
    print(
        f"published {report.published} messages to {report.topics} topics in {report.elapsed_s:.1f} s "
        f"(recorded span {span_s:.0f} s{lag})"
    )
    return EXIT_OK


def _hint(exc: BaseException, project: str) -> str:
    from adapters.pubsub import status_of

    cause = exc.__cause__
    if cause is not None and status_of(cause) == 404:
        return f" (does the topic exist? run `cascade provision --project {project}` first)"
    return ""


async def publish_plan(plan: Plan, project: str) -> PublishReport:
    """Publish each delivery at its offset from now (late ones at once); stop at the first failure."""
    from adapters.pubsub import PubSubPublisher
    from ops.provision import Endpoints

    api_root = Endpoints.from_environment().pubsub
    started = anyio.current_time()
    max_late_s = 0.0
    progress = Progress("published", total=len(plan), min_items=1)  # real time: worth watching at any size
    async with PubSubPublisher(project, api_root=api_root) as publisher:
        for published, (offset_s, delivery) in enumerate(plan, start=1):
            # Absolute deadlines: a slow publish delays the next one at most, it never shifts the rest.
            wait_s = started + offset_s - anyio.current_time()
            if wait_s > 0:
                await anyio.sleep(wait_s)
            else:
                max_late_s = max(max_late_s, -wait_s)
            try:
                new_id = await publisher.publish(delivery.topic, delivery.body, delivery.attributes)
            except Exception:
                print(f"stopped after {published - 1} of {len(plan)} messages", file=sys.stderr)
                raise
            print(
                f"{f'+{offset_s:.2f}s':>10} {iso_z(delivery.at)} {delivery.topic} "
                f"{delivery.message_id} -> {new_id}",
                flush=True,
            )
            progress.update(published)
    progress.close()
    topics = len({d.topic for _, d in plan})
    return PublishReport(len(plan), topics, anyio.current_time() - started, max_late_s)
