#!/usr/bin/env bash
# Build the image and the Home Assistant add-on image on a real Docker engine and run them:
# image size, health at the first probe, the port moved by LIGHTNING_URI, a key file at mode
# 0600, `docker stop` during long requests, no installer left in the image, and the add-on
# started the way the Supervisor starts it (options file, token, discovery).
#
#   sudo scripts/docker_smoke.sh            # needs root: debootstrap, chroot, dockerd
#
# Nothing is pulled from a registry of images. Two Debian trees are made with debootstrap
# (cached in $SMOKE_WORK, about 800 MB, about 100 MB downloaded the first time):
# - the engine: Debian trixie's docker.io (Docker 26), run with its own socket and data root,
#   no bridge and no iptables rules, so it touches nothing of the host's Docker. Debian
#   bookworm's docker.io (20.10) cannot build the image: it rejects the health check's
#   --start-interval, which needs Docker 25.
# - the stand-in for python:3.11-slim-bookworm: bookworm minbase with Debian's python3 (3.11)
#   and python3-venv, imported with `docker import` and passed as --build-arg BASE_IMAGE.
# Builds use the host's network (pip reaches the package index); containers run with no
# network of their own: each joins the network namespace of a helper container that runs the
# project's emulator, so every connection stays on a loopback that only they share.
#
# Every check prints "ok:" or "FAIL:" and a figure; the script exits 1 if any check failed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${SMOKE_WORK:-/var/cache/wyoming-lightning-smoke}
MIRROR=${SMOKE_MIRROR:-http://deb.debian.org/debian}
# pip inside the build must trust whatever CA the host trusts (a TLS-inspecting proxy, say):
# the stand-in base gets the host's bundle. Only the stand-in: the real base is untouched.
CA_BUNDLE=${SMOKE_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
ENGINE=$WORK/engine-rootfs
BASE_TREE=$WORK/base-rootfs
BASE_TAG=wyoming-lightning-smoke/python:3.11-slim-bookworm
IMAGE=wyoming-lightning:smoke
ADDON_IMAGE=wyoming-lightning-addon:smoke
KEY=smoke-key-$RANDOM$RANDOM
LIGHTNING_PATH=/api/v1/lightning/get_text
PHRASE="one two three"
FAILED=0

log() { printf '\n== %s\n' "$*"; }
ok() { printf 'ok: %s\n' "$*"; }
fail() {
    printf 'FAIL: %s\n' "$*"
    FAILED=1
}
die() {
    printf 'docker_smoke: %s\n' "$*" >&2
    exit 2
}

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot and dockerd)"
command -v debootstrap > /dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap > /dev/null
}
mkdir -p "$WORK"

# ------------------------------------------------------------------------------ the trees

BUILDX=$ENGINE/usr/libexec/docker/cli-plugins/docker-buildx
if [ ! -e "$ENGINE/.complete" ] || [ ! -e "$BUILDX" ]; then
    log "debootstrap: the engine (trixie: docker.io, docker-cli, docker-buildx)"
    rm -rf "$ENGINE"
    debootstrap --variant=minbase --include=docker.io,docker-cli,docker-buildx,ca-certificates \
        trixie "$ENGINE" "$MIRROR" \
        > "$WORK/engine-debootstrap.log" 2>&1 || die "debootstrap failed: $WORK/engine-debootstrap.log"
    touch "$ENGINE/.complete"
fi
if [ ! -e "$BASE_TREE/.complete" ]; then
    log "debootstrap: the stand-in base (bookworm, python3, python3-venv)"
    rm -rf "$BASE_TREE"
    debootstrap --variant=minbase --include=python3,python3-venv bookworm "$BASE_TREE" "$MIRROR" \
        > "$WORK/base-debootstrap.log" 2>&1 || die "debootstrap failed: $WORK/base-debootstrap.log"
    # Like the official image: `python` on PATH, no package caches, documentation or locales.
    ln -sf /usr/bin/python3 "$BASE_TREE/usr/local/bin/python"
    rm -rf "$BASE_TREE"/var/cache/apt/archives/*.deb "$BASE_TREE"/var/cache/apt/*.bin \
        "$BASE_TREE"/var/lib/apt/lists/* "$BASE_TREE"/usr/share/doc/* "$BASE_TREE"/usr/share/man/* \
        "$BASE_TREE"/usr/share/locale/*
    touch "$BASE_TREE/.complete"
fi
if [ -f "$CA_BUNDLE" ]; then
    cp "$CA_BUNDLE" "$BASE_TREE/etc/ssl/certs/ca-certificates.crt"
fi

# ------------------------------------------------------------------------------ the engine

# trixie's dockerd, containerd and shim run on the host (they need no newer C library than
# bookworm's), with the host's runc (trixie's needs glibc 2.38). Not from a chroot: there,
# `docker exec`, and so every health probe, ran in the host's namespaces instead of the
# container's. Its own socket, data root and exec root: the host's Docker, if any, is untouched.
BIN=$WORK/bin
mkdir -p "$BIN"
# Each is looked up in both bin directories: Debian moves them between releases (trixie's
# docker.io put docker-proxy in /usr/sbin, and dockerd refuses to start without it).
for tool in dockerd containerd containerd-shim-runc-v2 docker-init docker-proxy docker; do
    found=
    for dir in usr/sbin usr/bin; do
        if [ -e "$ENGINE/$dir/$tool" ]; then
            found=$ENGINE/$dir/$tool
            break
        fi
    done
    [ -n "$found" ] || die "the engine tree has no $tool (usr/bin or usr/sbin)"
    ln -sf "$found" "$BIN/"
done
command -v runc > /dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends runc > /dev/null
}
ln -sf "$(command -v runc)" "$BIN/runc"
export PATH=$BIN:$PATH
# buildx, for building the add-on as the Supervisor does (`docker buildx build`, BuildKit).
export DOCKER_CONFIG=$WORK/docker-config
mkdir -p "$DOCKER_CONFIG/cli-plugins"
ln -sf "$BUILDX" "$DOCKER_CONFIG/cli-plugins/docker-buildx"
EXEC_ROOT=/run/wyoming-lightning-smoke
SOCK=unix://$WORK/docker.sock
DOCKERD_PID=

cleanup() {
    set +e
    if [ -n "$DOCKERD_PID" ]; then
        dk ps -aq | xargs -r docker -H "$SOCK" rm -f > /dev/null 2>&1
        dk image prune -f > /dev/null 2>&1 # the builds' leftovers; the cache stays
        kill "$DOCKERD_PID" 2> /dev/null
        for _ in $(seq 50); do kill -0 "$DOCKERD_PID" 2> /dev/null || break; sleep 0.2; done
        umount "$EXEC_ROOT"/netns/* 2> /dev/null
    fi
}
trap cleanup EXIT

dk() { DOCKER_BUILDKIT=0 docker -H "$SOCK" "$@"; }

log "starting dockerd (log: $WORK/dockerd.log)"
dockerd --host "$SOCK" --data-root "$WORK/data" --exec-root "$EXEC_ROOT" \
    --pidfile /run/wyoming-lightning-smoke.pid --bridge none --iptables=false --ip6tables=false \
    > "$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 150); do dk info > /dev/null 2>&1 && break; sleep 0.2; done
dk info > /dev/null 2>&1 || die "dockerd did not start: $WORK/dockerd.log"
ok "engine $(dk version --format '{{.Server.Version}}')"

# ------------------------------------------------------------------------------ the builds

log "importing the stand-in base as $BASE_TAG"
tar -C "$BASE_TREE" --exclude=./.complete -c . | dk import \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$BASE_TAG" > /dev/null
base_size=$(dk image inspect -f '{{.Size}}' "$BASE_TAG")

build() { # build TAG [build args...]: `docker build`, the classic builder
    local tag=$1 started
    shift
    started=$(date +%s)
    ${BUILDER:-dk build} --network host --build-arg "BASE_IMAGE=$BASE_TAG" "$@" -t "$tag" "$ROOT" \
        > "$WORK/build-${tag%%:*}.log" 2>&1 || {
        tail -n 30 "$WORK/build-${tag%%:*}.log"
        die "docker build $tag failed: $WORK/build-${tag%%:*}.log"
    }
    echo $(($(date +%s) - started))
}
# The end of a command by what was said (--endpointing's turn rule) needs the `intents` extra in
# the image: without it the server quietly keeps the silence timer, so ask the judge itself.
turn_rule() { # turn_rule IMAGE: the judge loads and tells a whole command from a lead-in
    dk run --rm --network none --user 10300 --entrypoint python "$1" -c "
from wyoming_lightning.core.turn import TurnVerdict, load_judge
judge = load_judge('en')
assert judge is not None, 'no judge: hassil or home-assistant-intents is missing'
assert judge('turn on the kitchen lights') is TurnVerdict.COMPLETE
assert judge('set a timer for') is TurnVerdict.UNFINISHED
import hassil, importlib.metadata as m
print('hassil', m.version('hassil'), 'home-assistant-intents', m.version('home-assistant-intents'))
"
}
log "docker build $IMAGE"
seconds=$(build "$IMAGE")
size=$(dk image inspect -f '{{.Size}}' "$IMAGE")
ok "built in ${seconds} s: $((size / 1000000)) MB ($(((size - base_size) / 1000000)) MB over the $((base_size / 1000000)) MB base)"
if found=$(turn_rule "$IMAGE" 2>&1); then
    ok "the end-of-turn rule is active in the image ($found)"
else
    fail "the end-of-turn rule is not active in the image: $found"
fi

# ------------------------------------------------------------------------------ helpers

# The helper owns the network namespace the others join: the emulator (accepting only $KEY),
# three times, with finals at once, after 3 s and after 20 s.
dk run -d --name wl-helper --network none --user 10300 --entrypoint wyoming-lightning-emulator \
    "$IMAGE" --host 127.0.0.1 --port 9001 --api-key "$KEY" > /dev/null
dk exec -d wl-helper wyoming-lightning-emulator --host 127.0.0.1 --port 9002 --api-key "$KEY" \
    --finalize-delay-ms 3000
dk exec -d wl-helper wyoming-lightning-emulator --host 127.0.0.1 --port 9003 --api-key "$KEY" \
    --finalize-delay-ms 20000
dk exec wl-helper wyoming-lightning-tones encode -o /tmp/phrase.wav "$PHRASE"
for port in 9001 9002 9003; do
    dk exec wl-helper python -c "
import socket, time
for _ in range(100):
    try:
        socket.create_connection(('127.0.0.1', $port), 1).close(); break
    except OSError:
        time.sleep(0.1)
else:
    raise SystemExit('emulator on $port did not start')"
done

# A server container in the helper's namespace, on the emulator at port $1.
serve() { # serve NAME EMULATOR_PORT [docker run options...]
    local name=$1 port=$2
    shift 2
    dk run -d --name "$name" --network container:wl-helper -e LIGHTNING_VAD=off \
        -e "LIGHTNING_URL=ws://127.0.0.1:$port$LIGHTNING_PATH" "$@" "$IMAGE" > /dev/null
}
client() { # client URI [client options]: the project's client, from the helper
    local uri=$1
    shift
    dk exec wl-helper wyoming-lightning-client --quiet --uri "$uri" "$@" /tmp/phrase.wav
}
state() { dk inspect -f "$2" "$1"; }

# Seconds from the container's start until it is healthy, or "never" within 60 s.
wait_healthy() {
    local name=$1 status
    for _ in $(seq 300); do
        status=$(state "$name" '{{.State.Health.Status}}')
        [ "$status" = healthy ] && break
        [ "$status" = unhealthy ] && break
        [ "$(state "$name" '{{.State.Running}}')" = true ] || break
        sleep 0.2
    done
    dk inspect "$name" | python3 -c '
import json, sys
from datetime import datetime
c = json.load(sys.stdin)[0]
h = c["State"].get("Health") or {}
def t(s):
    return datetime.fromisoformat(s[:26].rstrip("Z"))
if h.get("Status") != "healthy":
    print("never", h.get("Status"), len(h.get("Log", [])), "probes")
else:
    first = h["Log"][0]
    print("%.1f" % (t(first["End"]) - t(c["State"]["StartedAt"])).total_seconds(),
          "first-probe-exit=%d" % first["ExitCode"], "probes=%d" % len(h["Log"]))'
}

# ------------------------------------------------------------------------------ the checks

log "no installer in the image"
found=$(dk run --rm --network none --entrypoint python "$IMAGE" -c '
import importlib.util, shutil
print(" ".join(n for n in ("pip", "setuptools", "wheel") if importlib.util.find_spec(n))
      + " ".join(c for c in ("pip", "pip3", "gcc", "cc") if shutil.which(c)))')
if [ -z "$found" ]; then ok "no pip, setuptools, wheel or compiler"; else fail "found: $found"; fi

log "health and a transcript with the image's defaults (LIGHTNING_URI tcp://0.0.0.0:10300)"
serve wl-default 9001 -e "SMALLEST_API_KEY=$KEY"
health=$(wait_healthy wl-default)
case $health in
    never*) fail "not healthy: $health" ;;
    *first-probe-exit=0*) ok "healthy ${health%% *} s after start, at the first probe ($health)" ;;
    *) fail "healthy, but not at the first probe: $health" ;;
esac
text=$(client tcp://127.0.0.1:10300 || true)
if [ "$text" = "$PHRASE" ]; then ok "transcript: $text"; else fail "transcript: '$text'"; fi
# Once healthy, the 1 s start interval gives way to the 30 s interval (Docker keeps 5 probes).
before=$(state wl-default '{{len .State.Health.Log}}')
sleep 6
after=$(state wl-default '{{len .State.Health.Log}}')
if [ "$after" -le $((before + 1)) ]; then
    ok "after healthy: $((after - before)) probe(s) in 6 s (the 30 s interval)"
else
    fail "after healthy: $((after - before)) probes in 6 s: still probing every second"
fi
started=$(date +%s.%N)
dk stop wl-default > /dev/null
took=$(python3 -c "print('%.1f' % ($(date +%s.%N) - $started))")
code=$(state wl-default '{{.State.ExitCode}}')
if [ "$code" = 0 ]; then ok "idle stop: exit 0 in $took s"; else fail "idle stop: exit $code"; fi

log "the port moved by -e LIGHTNING_URI=tcp://0.0.0.0:10400"
serve wl-moved 9001 -e "SMALLEST_API_KEY=$KEY" -e LIGHTNING_URI=tcp://0.0.0.0:10400
health=$(wait_healthy wl-moved)
case $health in
    never*) fail "not healthy on 10400: $health" ;;
    *) ok "healthy ${health%% *} s after start ($health)" ;;
esac
if described=$(dk exec wl-helper wyoming-lightning-healthcheck --uri tcp://127.0.0.1:10400); then
    ok "describe on 10400: $described"
else
    fail "no describe on 10400"
fi
if dk exec wl-helper wyoming-lightning-healthcheck --quiet --timeout 1 --uri tcp://127.0.0.1:10300 \
    2> /dev/null; then fail "something still answers on 10300"; else ok "nothing on 10300"; fi
dk rm -f wl-moved > /dev/null

log "the key as a secret file at mode 0600, owned by another user (uid 4242)"
mkdir -p "$WORK/secret"
printf '%s\n' "$KEY" > "$WORK/secret/smallest_api_key"
chown 4242:4242 "$WORK/secret/smallest_api_key"
chmod 0600 "$WORK/secret/smallest_api_key"
serve wl-secret 9001 --restart unless-stopped \
    -v "$WORK/secret/smallest_api_key:/run/secrets/smallest_api_key:ro" \
    -e SMALLEST_API_KEY_FILE=/run/secrets/smallest_api_key
health=$(wait_healthy wl-secret)
text=$(client tcp://127.0.0.1:10300 || true)
restarts=$(state wl-secret '{{.RestartCount}}')
uid=$(dk exec wl-secret awk '/^Uid:/ {print $2}' /proc/1/status)
if [ "$text" = "$PHRASE" ] && [ "$restarts" = 0 ]; then
    ok "the emulator accepted the key: '$text'; restarts 0; healthy after ${health%% *} s"
else
    fail "transcript '$text', restarts $restarts, health $health; log: $(dk logs wl-secret 2>&1 | tail -n 3)"
fi
if [ "$uid" = 10300 ]; then ok "the server runs as uid $uid"; else fail "the server runs as uid $uid"; fi
if dk inspect wl-secret | grep -q "$KEY"; then fail "the key shows in docker inspect"; else
    ok "the key is not in docker inspect"; fi
dk rm -f wl-secret > /dev/null
serve wl-nokey 9001 -e SMALLEST_API_KEY_FILE=/run/secrets/missing
dk wait wl-nokey > /dev/null
code=$(state wl-nokey '{{.State.ExitCode}}')
said=$(dk logs wl-nokey 2>&1)
if [ "$code" = 2 ] && [ "$(printf '%s\n' "$said" | wc -l)" = 1 ]; then
    ok "a missing key file: exit 2, one line: $said"
else
    fail "a missing key file: exit $code: $said"
fi
dk rm -f wl-nokey > /dev/null

# docker stop while a request waits on the service: the final comes after $2 ms.
stop_during() { # stop_during NAME EMULATOR_PORT EXPECTED_CLIENT_STATUS
    local name=$1 port=$2 expect=$3 out status took code
    serve "$name" "$port" -e "SMALLEST_API_KEY=$KEY" -e LIGHTNING_FINAL_TIMEOUT=30 \
        -e LIGHTNING_RESPONSE_TIMEOUT=40 -e LIGHTNING_DEBUG=1
    wait_healthy "$name" > /dev/null
    out=$WORK/client-$name.out
    (
        set +e
        client tcp://127.0.0.1:10300 --timeout 60 > "$out" 2>&1
        echo "status=$?" >> "$out"
    ) &
    local client_pid=$!
    for _ in $(seq 300); do
        dk logs "$name" 2>&1 | grep -q "request: 16000 Hz" && break
        sleep 0.1
    done
    started=$(date +%s.%N)
    dk stop "$name" > /dev/null
    took=$(python3 -c "print('%.1f' % ($(date +%s.%N) - $started))")
    wait "$client_pid" || true
    code=$(state "$name" '{{.State.ExitCode}}')
    status=$(sed -n 's/^status=//p' "$out")
    if [ "$code" = 0 ] && [ "$status" = "$expect" ]; then
        ok "docker stop took $took s, exit 0; the client got: $(grep -v '^status=' "$out")"
    else
        fail "docker stop took $took s, exit $code; client status $status: $(cat "$out")"
        dk logs "$name" 2>&1 | tail -n 5
    fi
    dk rm -f "$name" > /dev/null
}
log "docker stop during a request that ends within the drain (final after 3 s)"
stop_during wl-stop-short 9002 0
log "docker stop during a request longer than the drain (final after 20 s)"
stop_during wl-stop-long 9003 1

# ------------------------------------------------------------------------------ the add-on

log "the add-on image, built as the Supervisor builds it: docker buildx build (BuildKit) . --file Dockerfile"
# Its arguments (supervisor/apps/build.py), but --pull: the stand-in base exists only here.
version=$(sed -n 's/^version: *//p' "$ROOT/config.yaml")
seconds=$(BUILDER="dk buildx build --file $ROOT/Dockerfile --platform linux/amd64" build \
    "$ADDON_IMAGE" --build-arg "BUILD_VERSION=$version" --build-arg BUILD_ARCH=amd64 \
    --label "io.hass.version=$version" --label io.hass.arch=amd64 --label io.hass.type=addon)
size=$(dk image inspect -f '{{.Size}}' "$ADDON_IMAGE")
ok "built in ${seconds} s: $((size / 1000000)) MB (with the offline recognizer)"
if found=$(turn_rule "$ADDON_IMAGE" 2>&1); then
    ok "the end-of-turn rule is active in the add-on image ($found)"
else
    fail "the end-of-turn rule is not active in the add-on image: $found"
fi

# A stand-in Supervisor in the helper's namespace: it records the discovery message.
dk exec -d wl-helper python -c '
import http.server, json
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open("/tmp/discovery.json", "w") as f:
            json.dump({"path": self.path, "auth": self.headers["Authorization"],
                       "body": json.loads(body)}, f)
        data = json.dumps({"result": "ok", "data": {"uuid": "smoke"}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
http.server.HTTPServer(("127.0.0.1", 8080), H).serve_forever()'
mkdir -p "$WORK/addon-data"
cat > "$WORK/addon-data/options.json" << EOF
{"api_key": "$KEY", "language": "en", "vad": "off", "endpointing": false,
 "service_url": "ws://127.0.0.1:9001$LIGHTNING_PATH", "fallback": "local", "debug": false}
EOF
chmod 0600 "$WORK/addon-data/options.json"
hostname=$(state wl-helper '{{.Config.Hostname}}') # the namespace's, so the add-on's too
dk run -d --name wl-addon --network container:wl-helper \
    --init -e SUPERVISOR_TOKEN=smoke-token -e SUPERVISOR_API=http://127.0.0.1:8080 \
    -v "$WORK/addon-data:/data" "$ADDON_IMAGE" > /dev/null
health=$(wait_healthy wl-addon)
case $health in
    never*) fail "add-on not healthy: $health; $(dk logs wl-addon 2>&1 | tail -n 3)" ;;
    *) ok "add-on healthy ${health%% *} s after start ($health)" ;;
esac
text=$(client tcp://127.0.0.1:10300 || true)
if [ "$text" = "$PHRASE" ]; then ok "add-on transcript: $text"; else fail "add-on transcript: '$text'"; fi
for _ in $(seq 100); do dk exec wl-helper test -s /tmp/discovery.json && break; sleep 0.2; done
discovery=$(dk exec wl-helper cat /tmp/discovery.json 2> /dev/null || true)
case $discovery in
    *'"service": "wyoming"'*'"uri": "tcp://'"$hostname"':10300"'*)
        ok "discovery sent: $discovery" ;;
    *) fail "discovery: '$discovery'; $(dk logs wl-addon 2>&1 | tail -n 3)" ;;
esac
if dk logs wl-addon 2>&1 | grep -q "$KEY"; then fail "the key is in the add-on log"; else
    ok "the key is not in the add-on log"; fi
started=$(date +%s.%N)
dk stop wl-addon > /dev/null
took=$(python3 -c "print('%.1f' % ($(date +%s.%N) - $started))")
code=$(state wl-addon '{{.State.ExitCode}}')
if [ "$code" = 0 ]; then ok "add-on stop: exit 0 in $took s"; else fail "add-on stop: exit $code"; fi

log "summary"
if [ "$FAILED" = 0 ]; then echo "docker smoke: all checks passed"; else echo "docker smoke: FAILED"; fi
exit "$FAILED"
