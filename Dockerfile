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
# The recorded days: `cascade publish` (the compose replayer) and `cascade replay` read them from here.
COPY examples/ /app/examples/
WORKDIR /app
USER cascade
# Cloud Run sets PORT itself (8080 unless told otherwise); the default is for docker run / compose.
ENV PORT=8080
EXPOSE 8080
# Exec form, so SIGTERM reaches Python directly: `cascade run` drains and exits 0 within
# CASCADE_SHUTDOWN_GRACE_S (Cloud Run kills 10 s after SIGTERM). Other commands replace CMD:
# `docker run IMAGE provision --project P`, `docker run IMAGE publish /app/examples/... --project P`.
ENTRYPOINT ["cascade"]
CMD ["run"]
