#!/usr/bin/env bash
# Label Studio 1.23.2 in its own venv under the project (make labelstudio-install / -start / -stop).
#   install: .labelstudio/venv (label-studio==1.23.2; it pins label-studio-sdk==2.1.2), ~2.5 min, 1 GB
#   start:   bound to 127.0.0.1 (--internal-host), data in .labelstudio/data, telemetry off, the
#            first user and its legacy API token made from the environment, never written here:
#              ALNSFW_LS_TOKEN     the API token (>= 6 characters; alnsfw campaign reads it too)
#              ALNSFW_LS_PASSWORD  the password of the first user (ALNSFW_LS_USER, default
#                                  admin@example.com), for logging in to the web UI
#            serves local files from LS_DOCUMENT_ROOT (default results/campaign); accepts an ML
#            backend and webhooks on 127.0.0.1 (ML_BLOCK_LOCAL_IP=false,
#            SSRF_PROTECTION_ENABLED=false: the campaign's model server runs on this machine).
#   adduser EMAIL: an annotator account (password from ALNSFW_LS_NEW_PASSWORD, admin token from
#            ALNSFW_LS_TOKEN), through the organisation's invite link (tools/labelstudio_adduser.py).
#   stop:    SIGTERM to the server started by `start`.
# LS_PORT (default 8080), LS_DIR (default .labelstudio) choose where; LS_URL (default
# http://127.0.0.1:$LS_PORT) which server adduser talks to.
set -euo pipefail
cd "$(dirname "$0")/.."
LS_DIR=${LS_DIR:-.labelstudio}
LS_PORT=${LS_PORT:-8080}
LS_DOCUMENT_ROOT=${LS_DOCUMENT_ROOT:-results/campaign}
PY=${PYTHON:-python3}
# What a person does next, once the server answers.
next_steps() {
    echo "  log in as ${ALNSFW_LS_USER:-admin@example.com} with the password in ALNSFW_LS_PASSWORD"
    echo "  add an annotator: ALNSFW_LS_NEW_PASSWORD=<theirs> bash tools/labelstudio.sh adduser EMAIL"
    echo "  start a campaign: alnsfw campaign start --config presets/campaign-demo.yaml (docs/campaign.md)"
    echo "  stop the server:  make labelstudio-stop"
}
case "${1:-}" in
install)
    if [ -x "$LS_DIR/venv/bin/label-studio" ] && [ -e "$LS_DIR/venv/.installed-1.23.2" ]; then
        echo "Label Studio 1.23.2 is installed in $LS_DIR/venv"; exit 0
    fi
    rm -rf "$LS_DIR/venv"
    mkdir -p "$LS_DIR"
    "$PY" -m venv "$LS_DIR/venv"
    "$LS_DIR/venv/bin/pip" install --quiet label-studio==1.23.2 label-studio-sdk==2.1.2
    touch "$LS_DIR/venv/.installed-1.23.2"
    echo "installed Label Studio 1.23.2 in $LS_DIR/venv"
    ;;
start)
    : "${ALNSFW_LS_TOKEN:?set ALNSFW_LS_TOKEN to the API token to create (>= 6 characters)}"
    : "${ALNSFW_LS_PASSWORD:?set ALNSFW_LS_PASSWORD to the password of the first user}"
    [ -x "$LS_DIR/venv/bin/label-studio" ] || { echo "run make labelstudio-install first" >&2; exit 1; }
    if [ -e "$LS_DIR/server.pid" ] && kill -0 "$(cat "$LS_DIR/server.pid")" 2>/dev/null; then
        echo "Label Studio already runs (pid $(cat "$LS_DIR/server.pid")) at http://127.0.0.1:$LS_PORT"
        next_steps; exit 0
    fi
    mkdir -p "$LS_DIR/data" "$LS_DOCUMENT_ROOT"
    data=$(cd "$LS_DIR/data" && pwd); root=$(cd "$LS_DOCUMENT_ROOT" && pwd)
    env LABEL_STUDIO_USERNAME="${ALNSFW_LS_USER:-admin@example.com}" \
        LABEL_STUDIO_PASSWORD="$ALNSFW_LS_PASSWORD" \
        LABEL_STUDIO_USER_TOKEN="$ALNSFW_LS_TOKEN" \
        LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true \
        LABEL_STUDIO_BASE_DATA_DIR="$data" \
        LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true \
        LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT="$root" \
        ML_BLOCK_LOCAL_IP=false SSRF_PROTECTION_ENABLED=false \
        SENTRY_DSN= FRONTEND_SENTRY_DSN= COLLECT_ANALYTICS=false LATEST_VERSION_CHECK=false \
        nohup "$LS_DIR/venv/bin/label-studio" start --no-browser --internal-host 127.0.0.1 \
        --port "$LS_PORT" --data-dir "$data" > "$LS_DIR/server.log" 2>&1 &
    echo $! > "$LS_DIR/server.pid"
    for _ in $(seq 1 240); do
        if curl -fs "http://127.0.0.1:$LS_PORT/health" >/dev/null 2>&1; then
            echo "Label Studio runs at http://127.0.0.1:$LS_PORT (pid $(cat "$LS_DIR/server.pid"), log $LS_DIR/server.log)"
            next_steps; exit 0
        fi
        kill -0 "$(cat "$LS_DIR/server.pid")" 2>/dev/null || { echo "Label Studio exited; see $LS_DIR/server.log" >&2; exit 1; }
        sleep 1
    done
    echo "Label Studio did not answer /health within 240 s; see $LS_DIR/server.log" >&2; exit 1
    ;;
adduser)
    [ -n "${2:-}" ] || { echo "usage: $0 adduser EMAIL (password in ALNSFW_LS_NEW_PASSWORD)" >&2; exit 2; }
    exec "$PY" tools/labelstudio_adduser.py "${LS_URL:-http://127.0.0.1:$LS_PORT}" "$2"
    ;;
stop)
    if [ -e "$LS_DIR/server.pid" ]; then
        kill -TERM "$(cat "$LS_DIR/server.pid")" 2>/dev/null || true
        rm -f "$LS_DIR/server.pid"; echo "stopped Label Studio"
    else
        echo "no Label Studio started from $LS_DIR"
    fi
    ;;
*)
    echo "usage: $0 install|start|adduser EMAIL|stop" >&2; exit 2
    ;;
esac
