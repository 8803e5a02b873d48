# syntax=docker/dockerfile:1
# The BigQuery emulator for docker-compose: the same bqemulator 1.4.0 (DuckDB-backed REST + gRPC) the test
# suite uses, started through the repository's launcher tests/support/bigquery_emulator.py, which makes the
# DuckDB `spatial`/`avro` extension downloads optional (they fail offline; cascade needs neither) and works
# around duckdb 2 refusing a write while an earlier result is unread. Same pins as the tests
# (constraints.txt: bqemulator, duckdb, numpy, ...), because the launcher patches bqemulator internals.
#
# Build context: the repository root (docker-compose.yml sets it). Health: GET /readyz on the REST port.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 BQEMU_ENABLE_FORMAT_EXTENSIONS=false
WORKDIR /opt/bqemu
COPY constraints.txt ./
# numpy: bqemulator needs it but does not declare it. DL3013 (pin versions in pip): constraints.txt pins
# numpy and every transitive dependency.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir -c constraints.txt bqemulator==1.4.0 numpy
# The launcher imports tests.support.emulators (host/port helpers, standard library only), so it runs as
# `python -m tests.support.bigquery_emulator`, with the two modules in their package layout.
COPY tests/__init__.py tests/
COPY tests/support/__init__.py tests/support/emulators.py tests/support/bigquery_emulator.py tests/support/
# A home directory: DuckDB looks for cached extensions there. USER gives it by number (hadolint DL3066).
RUN useradd --system --create-home --uid 10002 bqemu
USER 10002
EXPOSE 9050 9060
ENTRYPOINT ["python", "-m", "tests.support.bigquery_emulator", "start"]
# In memory: a restart of the container starts empty (run `provision` again). For a persistent one, mount a
# volume and pass --persistent --data-dir=/data.
CMD ["--rest-host=0.0.0.0", "--rest-port=9050", "--grpc-host=0.0.0.0", "--grpc-port=9060", \
     "--project=cascade-local", "--ephemeral", "--log-level=warning", "--log-format=json"]
