# syntax=docker/dockerfile:1
# Build stage: resolve and build wheels with the pinned constraints; nothing of it reaches the final image.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY router/ router/
COPY policies/ policies/
COPY adapters/ adapters/
COPY ops/ ops/
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c constraints.txt .

# Runtime stage: no compilers, no pip cache, non-root.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN useradd --system --uid 10001 --no-create-home cascade
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels cascade && rm -rf /wheels
COPY examples/ /app/examples/
WORKDIR /app
USER cascade
# Exec form so signals reach Python directly. `cascade run` (the daemon) arrives with issue 4; until then
# the image replays the bundled example day.
ENTRYPOINT ["cascade"]
CMD ["replay", "/app/examples/overnight_full_cascade.jsonl", "--quiet"]
