#!/usr/bin/env bash
# The main job, from a fresh clone: install nova-migrate-flows with its
# sandbox cloud (a real Nova on 127.0.0.1, no OpenStack needed), start the
# sandbox, boot servers on host1, and empty host1 with a live evacuation
# that checks, throttles, watches and verifies every migration.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
SERVERS=${NMF_DEMO_SERVERS:-6}

echo "demo: installing nova-migrate-flows with its sandbox into $VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q -e '.[sandbox]'

nmf="$VENV/bin/nova-migrate-flow"
STATE=$(mktemp -d /tmp/nmf-demo.XXXXXX)
trap '"$nmf" sandbox stop --state-dir "$STATE" >/dev/null; rm -rf "$STATE"' EXIT

echo "demo: starting the sandbox cloud (4 compute hosts)"
"$nmf" sandbox start --state-dir "$STATE" --computes 4 \
    --live-migration-duration 2
conf=(--config-file "$STATE/nova-migrate-flows.conf")

echo "demo: booting $SERVERS servers on host1"
"$nmf" sandbox boot --state-dir "$STATE" --host host1 --count "$SERVERS"

echo "demo: what would happen (--dry-run)"
"$nmf" "${conf[@]}" host-evacuate-live host1 --dry-run

echo "demo: evacuating host1 live"
"$nmf" "${conf[@]}" host-evacuate-live host1

echo "demo: Nova's migration records"
"$nmf" "${conf[@]}" migration-list --host host1
