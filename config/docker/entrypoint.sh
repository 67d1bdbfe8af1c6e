#!/bin/sh
# Entry point of the wyoming-lightning image, for `docker run` and for the Home Assistant add-on.
#
# The container starts as root for one reason: Docker and compose mount a secret with the host
# file's owner and mode, and a key file at mode 0600 (the usual mode for a secret) is readable
# by its owner and by root only. So root reads the key file named by LIGHTNING_API_KEY_FILE or
# SMALLEST_API_KEY_FILE into SMALLEST_API_KEY (the environment of this process alone: `docker
# inspect` never shows it), and the server then runs as the unprivileged user 10300, with no
# capabilities and no way to regain any. Started as another user (`docker run --user`,
# Kubernetes runAsUser), it runs the server as that user, which reads the key file itself.
#
# As a Home Assistant add-on (the Supervisor gives it a token and /data/options.json), the
# add-on script turns the user's options into flags and starts the server.
set -eu

SERVER_USER=10300:10300

fail() {
    echo "wyoming-lightning: $*" >&2
    exit 2
}

if [ "$#" -eq 1 ] && [ -n "${SUPERVISOR_TOKEN:-}" ] && [ -f /data/options.json ]; then
    exec python /usr/local/lib/wyoming-lightning/addon.py
fi

if [ "$(id -u)" != 0 ]; then
    exec "$@"
fi

if [ -n "${LIGHTNING_API_KEY_FILE:-}" ]; then
    name=LIGHTNING_API_KEY_FILE
    key_file=$LIGHTNING_API_KEY_FILE
elif [ -n "${SMALLEST_API_KEY_FILE:-}" ]; then
    name=SMALLEST_API_KEY_FILE
    key_file=$SMALLEST_API_KEY_FILE
else
    key_file=
fi
if [ -n "$key_file" ]; then
    [ -f "$key_file" ] || fail "$name: no such file: $key_file (is the secret mounted?)"
    key=$(cat -- "$key_file" 2>/dev/null) || fail "$name: cannot read $key_file"
    [ -n "$(printf '%s' "$key" | tr -d '[:space:]')" ] || fail "$name: $key_file is empty"
    export SMALLEST_API_KEY="$key"
    unset LIGHTNING_API_KEY_FILE SMALLEST_API_KEY_FILE key
fi

exec setpriv --reuid="${SERVER_USER%:*}" --regid="${SERVER_USER#*:}" --clear-groups \
    --inh-caps=-all --no-new-privs -- "$@"
