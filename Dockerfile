# wyoming-lightning: Wyoming speech-to-text server for Smallest.ai Lightning / Pulse.
#
#   docker build -t wyoming-lightning .
#   docker run -d -p 10300:10300 -e SMALLEST_API_KEY=... wyoming-lightning
#
# The same file builds the Home Assistant add-on: the repository root is the add-on's directory
# (config.yaml beside this file), so the Supervisor builds it from this source, not from a
# published package.
#
# Multi-arch (every dependency has amd64 and arm64 wheels, so nothing is compiled):
#   docker buildx build --platform linux/amd64,linux/arm64 -t wyoming-lightning .
# With the offline recognizer (--fallback local, or no API key):
#   docker build --build-arg EXTRAS=intents,local -t wyoming-lightning:local .
# Needs Docker 25 or newer (the health check's --start-interval).
#
# Every option is an environment variable (--foo-bar is LIGHTNING_FOO_BAR); the key comes from
# SMALLEST_API_KEY or, better, a secret file: SMALLEST_API_KEY_FILE=/run/secrets/smallest_api_key
# (any owner and mode, 0600 included: see config/docker/entrypoint.sh).

ARG BASE_IMAGE=python:3.11.13-slim-bookworm

# ---------------------------------------------------------------------------- build
FROM ${BASE_IMAGE} AS build

# The end of a command judged by what was said (--endpointing's turn rule) needs Home
# Assistant's templates: the `intents` extra (hassil, home-assistant-intents; pure Python) is in
# every image. The Supervisor passes BUILD_ARCH when it builds the add-on, which also needs the
# offline recognizer (no key, or fallback local); a plain `docker build` leaves that out unless
# EXTRAS says so.
ARG BUILD_ARCH=""
ARG EXTRAS="intents${BUILD_ARCH:+,local}"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY wyoming_lightning ./wyoming_lightning

# A venv, so the runtime stage copies exactly one directory; pip and setuptools leave it here.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir ".${EXTRAS:+[${EXTRAS}]}" \
    && /opt/venv/bin/python -m pip uninstall --yes pip setuptools wheel \
    && /opt/venv/bin/wyoming-lightning --version \
    && /opt/venv/bin/wyoming-lightning-healthcheck --help > /dev/null

# ---------------------------------------------------------------------------- runtime
FROM ${BASE_IMAGE}

LABEL org.opencontainers.image.title="wyoming-lightning" \
      org.opencontainers.image.description="Wyoming speech-to-text server for Smallest.ai Lightning / Pulse" \
      org.opencontainers.image.licenses="MIT"

# No installer left in the image (the base's own pip, setuptools and wheel go too), and a fixed
# numeric uid for the server, so that secrets can be chowned to it and Kubernetes can name it.
RUN if python -m pip --version > /dev/null 2>&1; then \
        python -m pip uninstall --yes --no-cache-dir pip setuptools wheel; \
    fi \
    && groupadd --system --gid 10300 wyoming \
    && useradd --system --uid 10300 --gid wyoming --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin wyoming \
    && install -d -o 10300 -g 10300 /data

COPY --from=build /opt/venv /opt/venv
COPY config/docker/entrypoint.sh /usr/local/bin/wyoming-lightning-entrypoint
COPY config/addon/run.py /usr/local/lib/wyoming-lightning/addon.py

# LIGHTNING_URI is the one place the address is set: the server and the health check both read
# it, so `-e LIGHTNING_URI=tcp://0.0.0.0:10400` moves both.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LIGHTNING_URI=tcp://0.0.0.0:10300 \
    HF_HUB_OFFLINE=1

# The usage table (requests, audio, estimated cost per day) survives restarts in this volume.
ENV LIGHTNING_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 10300

# Speaks Wyoming (describe -> info), never calls the cloud: no curl needed, no cost per probe.
# Every second while starting (Docker 25+), so "healthy" shows within a few seconds; then every
# 30 s.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --start-interval=1s --retries=3 \
    CMD ["wyoming-lightning-healthcheck", "--quiet"]

# SIGTERM (Docker's default, said here so it is not lost): the server drains for
# LIGHTNING_DRAIN_TIMEOUT (7 s), answers what is still running with an error and exits 0,
# inside the 10 s that Docker and the Supervisor wait before SIGKILL.
STOPSIGNAL SIGTERM

# Starts as root only to read a secret file, then runs the server as uid 10300 (the entry point
# says why). Arguments after the image name are the server's: `docker run IMAGE --debug`.
ENTRYPOINT ["wyoming-lightning-entrypoint", "wyoming-lightning"]
