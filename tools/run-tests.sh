#!/usr/bin/env bash
# Install nova-migrate-flows with its test requirements, build the
# documentation and the release notes (warnings are errors), and run the
# whole test suite: unit tests, and functional tests against the sandbox
# cloud (a real Nova on 127.0.0.1), a real Redis, a real ZooKeeper, a real
# PostgreSQL, a real RabbitMQ (Nova's notifications) and a real Mistral.
#
# Redis, ZooKeeper, PostgreSQL, RabbitMQ and Mistral are started here, on
# loopback and free
# (non-default) ports, in a temporary directory, and stopped when the script
# ends. Run as root on a fresh Debian machine, it installs their Debian
# packages first. The tests find them through NMF_TEST_*_URL (and
# NMF_TEST_ZOOKEEPER_HOSTS); NMF_TEST_RABBIT_CTL is the rabbitmqctl command
# (HOME with the node's Erlang cookie, -n NODE) with which a test stops and
# starts the RabbitMQ application mid-run.
#
# The tests of an older Nova (Zed: Nova 26, compute API 2.93) run a second
# sandbox with Python 3.10, in a virtualenv of its own ($OLD_NOVA_VENV, built
# from tools/constraints/ and reused while those files and that Python stay
# the same). Python 3.10 is looked for as $PYTHON310, python3.10 on the PATH,
# then pyenv's and the usual places; NMF_TEST_OLD_NOVA_PYTHON set already
# names an interpreter to use instead (nothing is built then).
#
# The tests of the Mistral actions run a real Mistral (23.0.0): API, engine,
# executor, notifier and periodic tasks in one process
# (tools/mistral_server.py, in-memory RPC, authentication disabled), its
# database on the PostgreSQL started here, on loopback and a free port. It
# runs in a virtualenv of its own ($MISTRAL_VENV, built from
# tools/constraints/mistral-requirements.txt, with this tool installed
# editable, and reused while those requirements, setup.cfg and the Python
# stay the same).
# Arguments are passed to pytest (e.g. tools/run-tests.sh tests/unit -x).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
OLD_NOVA_VENV=${OLD_NOVA_VENV:-.venv-nova-zed}
OLD_NOVA_CONSTRAINTS=tools/constraints/upper-constraints-zed.txt
OLD_NOVA_REQUIREMENTS=tools/constraints/nova-zed-requirements.txt
MISTRAL_VENV=${MISTRAL_VENV:-.venv-mistral}
MISTRAL_REQUIREMENTS=tools/constraints/mistral-requirements.txt
PG_PASSWORD=nmf-test-password

# A Python 3.10 that can make virtualenvs; its path on stdout.
find_python310() {
    local candidate
    for candidate in "${PYTHON310:-}" python3.10 \
        "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.10*/bin/python3.10 \
        /usr/local/bin/python3.10 /usr/bin/python3.10; do
        [ -n "$candidate" ] || continue
        if "$candidate" -c 'import ensurepip, sys, venv
sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

if [ -z "${NMF_TEST_OLD_NOVA_PYTHON:-}" ]; then
    if ! PYTHON310=$(find_python310); then
        echo "run-tests: no Python 3.10 found (python3.10, pyenv); it runs the Zed sandbox: install it or set PYTHON310=/path/to/python3.10" >&2
        exit 2
    fi
fi

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
REDIS_PORT=${NMF_TEST_REDIS_PORT:-$(free_port)}
PG_PORT=${NMF_TEST_PG_PORT:-$(free_port)}
ZK_PORT=${NMF_TEST_ZK_PORT:-$(free_port)}
MISTRAL_PORT=${NMF_TEST_MISTRAL_PORT:-$(free_port)}
RABBIT_PORT=${NMF_TEST_RABBIT_PORT:-$(free_port)}
RABBIT_DIST_PORT=$(free_port)
ZK_JAR=/usr/share/java/zookeeper.jar

need_packages=()
command -v redis-server >/dev/null || need_packages+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_packages+=(postgresql)
[ -f "$ZK_JAR" ] || need_packages+=(libzookeeper-java)
command -v java >/dev/null || need_packages+=(default-jre-headless)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need_packages+=(rabbitmq-server)
if [ ${#need_packages[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "run-tests: install ${need_packages[*]} first (Debian packages)" >&2
        exit 2
    fi
    echo "run-tests: installing ${need_packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${need_packages[@]}" >/dev/null
fi

echo "run-tests: installing the tool and its test requirements into $VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q -e '.[sandbox,postgresql,zookeeper]' \
    -r test-requirements.txt \
    -r doc/requirements.txt

# The older Nova's virtualenv: reused while the interpreter, the constraints
# and the requirements are the same ones.
old_nova_stamp() {
    { "$PYTHON310" -c 'import sys; print(sys.version)'
      cat "$OLD_NOVA_CONSTRAINTS" "$OLD_NOVA_REQUIREMENTS"; } | sha256sum
}
# (Called in an "if": set -e does not apply inside, hence the "|| return".)
build_old_nova_venv() {
    local stamp
    stamp=$(old_nova_stamp) || return 1
    if [ -x "$OLD_NOVA_VENV/bin/python" ] &&
        [ "$(cat "$OLD_NOVA_VENV/.nmf-stamp" 2>/dev/null)" = "$stamp" ]; then
        return 0
    fi
    rm -rf "$OLD_NOVA_VENV" || return 1
    "$PYTHON310" -m venv "$OLD_NOVA_VENV" || return 1
    "$OLD_NOVA_VENV/bin/pip" install -q --upgrade pip || return 1
    "$OLD_NOVA_VENV/bin/pip" install -q -c "$OLD_NOVA_CONSTRAINTS" \
        -r "$OLD_NOVA_REQUIREMENTS" || return 1
    echo "$stamp" >"$OLD_NOVA_VENV/.nmf-stamp"
}
if [ -z "${NMF_TEST_OLD_NOVA_PYTHON:-}" ]; then
    echo "run-tests: preparing $OLD_NOVA_VENV (Nova 26, Zed) with $PYTHON310"
    OLD_NOVA_LOG=$(mktemp /tmp/nmf-old-nova-venv.XXXXXX)
    if ! build_old_nova_venv >"$OLD_NOVA_LOG" 2>&1; then
        echo "run-tests: building $OLD_NOVA_VENV failed:" >&2
        tail -n 20 "$OLD_NOVA_LOG" >&2
        rm -f "$OLD_NOVA_LOG"
        exit 1
    fi
    rm -f "$OLD_NOVA_LOG"
    NMF_TEST_OLD_NOVA_PYTHON="$PWD/$OLD_NOVA_VENV/bin/python"
fi
export NMF_TEST_OLD_NOVA_PYTHON

# Mistral's virtualenv, with this tool installed into it (editable): reused
# while the interpreter, Mistral's requirements, and this tool's
# requirements and entry points are the same ones.
mistral_stamp() {
    { "$PYTHON" -c 'import sys; print(sys.version)'
      cat "$MISTRAL_REQUIREMENTS" requirements.txt setup.cfg; } | sha256sum
}
# (Called in an "if": set -e does not apply inside, hence the "|| return".)
build_mistral_venv() {
    local stamp
    stamp=$(mistral_stamp) || return 1
    if [ -x "$MISTRAL_VENV/bin/python" ] &&
        [ "$(cat "$MISTRAL_VENV/.nmf-stamp" 2>/dev/null)" = "$stamp" ]; then
        return 0
    fi
    rm -rf "$MISTRAL_VENV" || return 1
    "$PYTHON" -m venv "$MISTRAL_VENV" || return 1
    "$MISTRAL_VENV/bin/pip" install -q --upgrade pip || return 1
    "$MISTRAL_VENV/bin/pip" install -q -r "$MISTRAL_REQUIREMENTS" -e . ||
        return 1
    echo "$stamp" >"$MISTRAL_VENV/.nmf-stamp"
}
echo "run-tests: preparing $MISTRAL_VENV (Mistral 23.0.0)"
MISTRAL_VENV_LOG=$(mktemp /tmp/nmf-mistral-venv.XXXXXX)
if ! build_mistral_venv >"$MISTRAL_VENV_LOG" 2>&1; then
    echo "run-tests: building $MISTRAL_VENV failed:" >&2
    tail -n 20 "$MISTRAL_VENV_LOG" >&2
    rm -f "$MISTRAL_VENV_LOG"
    exit 1
fi
rm -f "$MISTRAL_VENV_LOG"

echo "run-tests: building the documentation and the release notes"
rm -rf doc/build releasenotes/build
"$VENV/bin/sphinx-build" -q -W -b html doc/source doc/build/html
if [ "$(git rev-parse --is-shallow-repository 2>/dev/null)" = true ]; then
    echo "run-tests: shallow clone: reno needs the history; release notes not built"
else
    "$VENV/bin/sphinx-build" -q -W -b html releasenotes/source \
        releasenotes/build/html
fi

WORK=$(mktemp -d /tmp/nmf-tests.XXXXXX)
chmod 755 "$WORK"
stop_services() {
    if [ -f "$WORK/redis.pid" ]; then
        kill "$(cat "$WORK/redis.pid")" 2>/dev/null || true
    fi
    if [ -n "${MISTRAL_PID:-}" ]; then
        kill "$MISTRAL_PID" 2>/dev/null || true
        wait "$MISTRAL_PID" 2>/dev/null || true
    fi
    # The node's Erlang VM, found by its home (its command line has no
    # node name), then the Erlang port mapper it started.
    if pkill -f -- "-home $WORK/rabbitmq" 2>/dev/null; then
        for _ in $(seq 50); do
            pgrep -f -- "-home $WORK/rabbitmq" >/dev/null || break
            sleep 0.2
        done
        epmd -kill >/dev/null 2>&1 || true
    fi
    if [ -n "${ZK_PID:-}" ]; then
        kill "$ZK_PID" 2>/dev/null || true
        wait "$ZK_PID" 2>/dev/null || true
    fi
    if [ -f "$WORK/pg/postmaster.pid" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$WORK"
}
trap stop_services EXIT

as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

echo "run-tests: starting Redis on 127.0.0.1:$REDIS_PORT"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes \
    --dir "$WORK" --save "" --appendonly no \
    --pidfile "$WORK/redis.pid" --logfile "$WORK/redis.log"

# Standalone, with a 1 s tick so sessions (the claims of dead conductors)
# may expire within seconds; TaskFlow checks the server's version with the
# "envi" four-letter command, which ZooKeeper refuses unless allowed.
echo "run-tests: starting ZooKeeper on 127.0.0.1:$ZK_PORT"
mkdir -p "$WORK/zookeeper"
cat >"$WORK/zoo.cfg" <<EOF
tickTime=1000
dataDir=$WORK/zookeeper
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
4lw.commands.whitelist=envi
admin.enableServer=false
EOF
java -cp "$ZK_JAR" org.apache.zookeeper.server.ZooKeeperServerMain \
    "$WORK/zoo.cfg" >"$WORK/zookeeper.log" 2>&1 &
ZK_PID=$!

PG_BIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
echo "run-tests: starting PostgreSQL on 127.0.0.1:$PG_PORT"
mkdir -p "$WORK/pg"
[ "$(id -u)" = 0 ] && chown postgres "$WORK/pg"
as_pg "$PG_BIN/initdb" -D "$WORK/pg" -U postgres --auth-local=trust \
    --auth-host=scram-sha-256 >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg" -w -l "$WORK/pg/server.log" \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $WORK/pg" start >/dev/null
as_pg "$PG_BIN/psql" -q -h "$WORK/pg" -p "$PG_PORT" -U postgres \
    -c "CREATE USER nmf PASSWORD '$PG_PASSWORD'" -c "CREATE DATABASE nmf OWNER nmf" \
    -c "CREATE DATABASE mistral OWNER nmf"

# RabbitMQ for Nova's notifications: a node of its own in $WORK, on loopback
# (guest may log in from there), no plugins.
echo "run-tests: starting RabbitMQ on 127.0.0.1:$RABBIT_PORT"
mkdir -p "$WORK/rabbitmq"
echo "[]." >"$WORK/rabbitmq/enabled_plugins"
(
    export HOME="$WORK/rabbitmq" RABBITMQ_NODENAME="nmf-test-$RABBIT_PORT@localhost" \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$RABBIT_PORT" \
        RABBITMQ_DIST_PORT="$RABBIT_DIST_PORT" \
        RABBITMQ_MNESIA_BASE="$WORK/rabbitmq/mnesia" \
        RABBITMQ_LOG_BASE="$WORK/rabbitmq/log" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$WORK/rabbitmq/enabled_plugins" \
        RABBITMQ_CONFIG_FILE="$WORK/rabbitmq/rabbitmq"
    /usr/lib/rabbitmq/bin/rabbitmq-server -detached >"$WORK/rabbitmq.out" 2>&1
)

echo "run-tests: starting Mistral on 127.0.0.1:$MISTRAL_PORT"
cat >"$WORK/mistral.conf" <<EOF
[DEFAULT]
transport_url = fake:/
graceful_shutdown_timeout = 2
[pecan]
auth_enable = False
[api]
host = 127.0.0.1
port = $MISTRAL_PORT
[database]
connection = postgresql+psycopg2://nmf:$PG_PASSWORD@127.0.0.1:$PG_PORT/mistral
[legacy_action_provider]
load_action_plugins = True
EOF
if ! "$MISTRAL_VENV/bin/mistral-db-manage" --config-file "$WORK/mistral.conf" \
    upgrade head >"$WORK/mistral-db.log" 2>&1; then
    echo "run-tests: creating Mistral's database failed:" >&2
    tail -n 20 "$WORK/mistral-db.log" >&2
    exit 1
fi
"$MISTRAL_VENV/bin/python" tools/mistral_server.py \
    --config-file "$WORK/mistral.conf" >"$WORK/mistral.log" 2>&1 &
MISTRAL_PID=$!

for _ in $(seq 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
done

for _ in $(seq 100); do
    "$PYTHON" -c "import socket; socket.create_connection(('127.0.0.1', $ZK_PORT), 1)" \
        2>/dev/null && break
    sleep 0.2
done

for _ in $(seq 150); do
    "$PYTHON" -c "import socket; socket.create_connection(('127.0.0.1', $RABBIT_PORT), 1)" \
        2>/dev/null && break
    sleep 0.2
done

# Mistral answers once its API, engine and executor are up.
mistral_up() {
    "$PYTHON" -c "import urllib.request
urllib.request.urlopen('http://127.0.0.1:$MISTRAL_PORT/v2/actions?limit=1', timeout=1)" \
        2>/dev/null
}
for _ in $(seq 120); do
    mistral_up && break
    kill -0 "$MISTRAL_PID" 2>/dev/null || break
    sleep 0.5
done
if ! mistral_up; then
    echo "run-tests: Mistral did not start; its log ends with:" >&2
    tail -n 20 "$WORK/mistral.log" >&2
    exit 1
fi

export NMF_TEST_MISTRAL_URL="http://127.0.0.1:$MISTRAL_PORT/v2"
export NMF_TEST_RABBIT_URL="rabbit://guest:guest@127.0.0.1:$RABBIT_PORT/"
export NMF_TEST_RABBIT_CTL="env HOME=$WORK/rabbitmq /usr/lib/rabbitmq/bin/rabbitmqctl -n nmf-test-$RABBIT_PORT@localhost"
export NMF_TEST_ZOOKEEPER_HOSTS="127.0.0.1:$ZK_PORT"
export NMF_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export NMF_TEST_POSTGRESQL_URL="postgresql+psycopg2://nmf:$PG_PASSWORD@127.0.0.1:$PG_PORT/nmf"

echo "run-tests: running the test suite"
"$VENV/bin/python" -m pytest --durations=15 tests "$@"
