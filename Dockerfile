# syntax=docker/dockerfile:1
# Build stage: resolve and build wheels with the pinned constraints; nothing of it reaches the final image.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY router/ router/
COPY policies/ policies/
COPY adapters/ adapters/
COPY views/ views/
COPY ops/ ops/
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c constraints.txt .

# Runtime stage: no compilers, no pip cache, non-root.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN useradd --system --uid 10001 --no-create-home cascade
# The wheels are bind-mounted from the build stage for this one RUN (BuildKit), so none of them stays
# in a layer (a COPY then `rm -rf` keeps them in the COPY's layer). The distribution is cascade-router
# (the PyPI name "cascade" is another project's); its console script is `cascade`.
# DL3013 (pin versions in pip): --no-index installs only from /wheels, which holds exactly the versions
# resolved against constraints.txt in the build stage.
# hadolint ignore=DL3013
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels cascade-router
# The recorded days: `cascade publish` (the compose replayer) and `cascade replay` read them from here.
COPY examples/ /app/examples/
WORKDIR /app
# Numeric, so that a runtime can check "not root" without reading the image's /etc/passwd (hadolint DL3066).
USER 10001
# Cloud Run sets PORT itself (8080 unless told otherwise); the default is for docker run / compose.
ENV PORT=8080
EXPOSE 8080
# Exec form, so SIGTERM reaches Python directly: `cascade run` drains and exits 0 within
# CASCADE_SHUTDOWN_GRACE_S (Cloud Run kills 10 s after SIGTERM). Other commands replace CMD:
# `docker run IMAGE provision --project P`, `docker run IMAGE publish /app/examples/... --project P`.
ENTRYPOINT ["cascade"]
CMD ["run"]
