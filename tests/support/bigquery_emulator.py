"""Starting `bqemulator` (pinned 1.4.0) offline, on free ports, for the BigQuery adapter tests.

bqemulator installs and loads DuckDB's `spatial` extension at start and refuses to start when it cannot (it
downloads it from extensions.duckdb.org, so it fails offline). It has no option for that, so this module is
also a tiny launcher: `python -m tests.support.bigquery_emulator start ...` makes the spatial load best-effort
(only GEOGRAPHY needs it; cascade has none), works around a DuckDB 2.x incompatibility that fails
inserts with HTTP 500 (`_patch_finish_pending_results`), and then runs bqemulator's own CLI. That patches a private
method, which is why pyproject pins `bqemulator==1.4.0`; `_patch_spatial_optional` fails loudly if it moves.

With a `data_dir` the emulator keeps its DuckDB file there, so stopping and starting the same `Emulator`
(same ports, same directory) keeps datasets, tables and rows: that is what the restart test relies on.
DuckDB locks that file, so a restart must wait for the old process to exit (`Emulator.stop` does).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from tests.support.emulators import HOST, PROJECT, Emulator, free_port

PINNED_VERSION = "1.4.0"
ROOT = Path(__file__).resolve().parents[2]


def bigquery_emulator(data_dir: Path | None = None) -> Emulator:
    """An `Emulator` for bqemulator: REST (`.port`, health `GET /readyz`) and gRPC each on a free port.

    Ephemeral (in-memory DuckDB) without `data_dir`; persistent across restarts with one.
    """
    port, grpc_port = free_port(), free_port()
    while grpc_port == port:
        grpc_port = free_port()
    command = [
        sys.executable,
        "-m",
        "tests.support.bigquery_emulator",
        "start",
        f"--rest-host={HOST}",
        f"--rest-port={port}",
        f"--grpc-host={HOST}",
        f"--grpc-port={grpc_port}",
        f"--project={PROJECT}",
        "--log-level=warning",
        "--log-format=json",
    ]
    command += [f"--data-dir={data_dir}", "--persistent"] if data_dir is not None else ["--ephemeral"]
    return Emulator(
        name="bigquery",
        command=command,
        port=port,
        health_url=f"http://{HOST}:{port}/readyz",
        # Run from the repository root so `-m tests.support...` resolves, and keep avro (which it also
        # tries to download) off: cascade never loads Avro files.
        env={"PYTHONPATH": str(ROOT), "BQEMU_ENABLE_FORMAT_EXTENSIONS": "false"},
    )


def api_root(emulator: Emulator) -> str:
    """The REST root gcloud-aio-bigquery takes as `api_root` (what BIGQUERY_EMULATOR_HOST would give)."""
    return f"http://{emulator.host_port}/bigquery/v2"


def _patch_spatial_optional() -> None:
    import bqemulator
    from bqemulator.storage import engine

    if bqemulator.__version__ != PINNED_VERSION or not hasattr(engine.DuckDBEngine, "_load_spatial"):
        raise SystemExit(
            f"bigquery_emulator launcher expects bqemulator {PINNED_VERSION} with "
            f"DuckDBEngine._load_spatial; found {bqemulator.__version__}"
        )

    def load_spatial_if_present(self: engine.DuckDBEngine) -> None:
        # LOAD only (no INSTALL, which downloads): works when the extension is cached, else GEOGRAPHY
        # queries fail at query time, which cascade never issues.
        try:
            self.connection.execute("LOAD spatial")
        except Exception as exc:
            print(f"bqemulator: spatial extension not available, GEOGRAPHY disabled ({exc})", file=sys.stderr)

    engine.DuckDBEngine._load_spatial = load_spatial_if_present  # type: ignore[method-assign]


def _patch_finish_pending_results() -> None:
    """DuckDB 2.x refuses `register()` while an earlier result is unfinished; bqemulator 1.4.0 leaves one
    after `fetchone()` (`/readyz`, tabledata.list's COUNT(*)), so the next insertAll failed with HTTP 500
    until some other statement ran. Every write takes the engine's write lock: finish any pending result
    there (a new statement replaces it) before the write touches the connection."""
    from bqemulator.storage import engine

    take_lock = engine.DuckDBEngine.write_lock

    @contextlib.asynccontextmanager
    async def write_lock(self: engine.DuckDBEngine) -> AsyncIterator[None]:
        async with take_lock(self):
            self.connection.execute("SELECT 1").fetchall()
            yield

    engine.DuckDBEngine.write_lock = write_lock  # type: ignore[method-assign,assignment]


def main() -> None:
    _patch_spatial_optional()
    _patch_finish_pending_results()
    from bqemulator.cli import main as bqemulator_main

    bqemulator_main()


if __name__ == "__main__":
    main()
