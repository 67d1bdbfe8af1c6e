# wyoming-lightning: Wyoming speech-to-text server for Smallest.ai Lightning / Pulse.
#
#   docker build -t wyoming-lightning .
#   docker run -d -p 10300:10300 -e SMALLEST_API_KEY=... wyoming-lightning
#
# Multi-arch (every dependency has amd64 and arm64 wheels, so nothing is compiled):
#   docker buildx build --platform linux/amd64,linux/arm64 -t wyoming-lightning .
# With the offline recognizer (--fallback local, or no API key):
#   docker build --build-arg EXTRAS=local -t wyoming-lightning:local .
#
# Every option is an environment variable (--foo-bar is LIGHTNING_FOO_BAR); the key comes from
# SMALLEST_API_KEY or, better, a Docker secret: SMALLEST_API_KEY_FILE=/run/secrets/smallest_api_key.

ARG BASE_IMAGE=python:3.11.13-slim-bookworm

# ---------------------------------------------------------------------------- build
FROM ${BASE_IMAGE} AS build

ARG EXTRAS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY wyoming_lightning ./wyoming_lightning

# A venv, so the runtime stage copies exactly one directory and nothing of pip's.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir ".${EXTRAS:+[${EXTRAS}]}" \
    && /opt/venv/bin/wyoming-lightning --version \
    && /opt/venv/bin/wyoming-lightning-healthcheck --help > /dev/null

# ---------------------------------------------------------------------------- runtime
FROM ${BASE_IMAGE}

LABEL org.opencontainers.image.title="wyoming-lightning" \
      org.opencontainers.image.description="Wyoming speech-to-text server for Smallest.ai Lightning / Pulse" \
      org.opencontainers.image.licenses="MIT"

# A fixed numeric uid, so Kubernetes' runAsNonRoot can verify it and secrets can be chowned.
RUN groupadd --system --gid 10300 wyoming \
    && useradd --system --uid 10300 --gid wyoming --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin wyoming \
    && install -d -o 10300 -g 10300 /data

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LIGHTNING_URI=tcp://0.0.0.0:10300 \
    HF_HUB_OFFLINE=1

# The usage table (requests, audio, estimated cost per day) survives restarts in this volume.
ENV LIGHTNING_DATA_DIR=/data
VOLUME ["/data"]

USER 10300:10300
EXPOSE 10300

# Speaks Wyoming (describe -> info), never calls the cloud: no curl needed, no cost per probe.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
    CMD ["wyoming-lightning-healthcheck", "--quiet"]

# The flags as documented; LIGHTNING_URI keeps the same address when arguments replace CMD
# (docker run IMAGE --debug).
ENTRYPOINT ["wyoming-lightning"]
CMD ["--uri", "tcp://0.0.0.0:10300"]
