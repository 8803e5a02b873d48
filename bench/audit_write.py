"""What one `BigQueryAuditSink.write()` costs the router (it runs on the routing path, once per delivery).

    python -m bench.audit_write [--calls 20000] [--rows-per-call 3] [--repeat 3]

Real audit rows (two recorded example days replayed) are written `--rows-per-call` at a time, as the engine
writes a delivery's rows, with the sink's flusher running at the production settings (batches of 500 table
rows, 2 s interval) against a local stand-in BigQuery that accepts every insertAll. Only the `write()` calls
are timed (perf_counter around each); between calls the loop yields, so the flusher sends as it would in
the daemon. Prints the median, p99 and mean per call, best of `--repeat` runs by median.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web

from adapters.bigquery_audit import BigQueryAuditSink
from adapters.ports import AuditRow
from ops.policy_file import load_policy
from ops.replay import read_recording, replay

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rows-per-call", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)  # the replayed days' alerts are not the subject
    rows = asyncio.run(_engine_rows())
    logging.disable(logging.NOTSET)
    runs = [asyncio.run(_run(rows, args.calls, args.rows_per_call)) for _ in range(args.repeat)]
    best = min(runs, key=statistics.median)
    p99 = statistics.quantiles(best, n=100)[98]
    print(
        f"write() of {args.rows_per_call} audit rows, {args.calls} calls: "
        f"median {statistics.median(best) * 1e6:.1f} us, p99 {p99 * 1e6:.1f} us, "
        f"mean {statistics.fmean(best) * 1e6:.1f} us"
    )
    return 0


async def _run(rows: list[AuditRow], calls: int, rows_per_call: int) -> list[float]:
    with tempfile.TemporaryDirectory() as workdir:
        async with _accept_all_bigquery() as api_root:
            sink = BigQueryAuditSink("bench", "audit", Path(workdir) / "audit.spool", api_root=api_root)
            flusher = asyncio.create_task(sink.run())
            timings: list[float] = []
            try:
                for call in range(calls):
                    start = call * rows_per_call % (len(rows) - rows_per_call)
                    chunk = rows[start : start + rows_per_call]
                    began = time.perf_counter()
                    await sink.write(chunk)
                    timings.append(time.perf_counter() - began)
                    await asyncio.sleep(0)  # the flusher's turn, as between deliveries in the daemon
            finally:
                flusher.cancel()
                await asyncio.gather(flusher, return_exceptions=True)
                await sink.flush()
                await sink.close()
    return timings


async def _engine_rows() -> list[AuditRow]:
    rows: list[AuditRow] = []
    for name in ("critical_never_reports.jsonl", "duplicates_out_of_order_unknown.jsonl"):
        with (EXAMPLES / name).open() as lines:
            rows += (await replay(read_recording(lines, name), load_policy(None))).rows
    return rows


@asynccontextmanager
async def _accept_all_bigquery() -> AsyncIterator[str]:
    async def insert_all(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"kind": "bigquery#tableDataInsertAllResponse"})

    app = web.Application()
    app.router.add_post("/bigquery/v2/projects/{p}/datasets/{d}/tables/{table}/insertAll", insert_all)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/bigquery/v2"
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    raise SystemExit(main())
