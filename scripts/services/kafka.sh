#!/usr/bin/env bash
# A Kafka-API broker on loopback for the Kafka MessageBus adapter (faas-bus, feature `kafka`):
# tansu (crates.io), built with the features `dynostore,libsql` and kept in a cache, storing
# its data in SQLite so that it survives a broker restart. Idempotent: `start` on a machine
# where the broker already answers does nothing.
#
# Usage: scripts/services/kafka.sh start    build tansu if the cached binary is missing
#                                           (cargo install, ~10 min on 2 cores, once), start
#                                           the broker in the background unless it answers,
#                                           wait until it accepts connections; prints the
#                                           broker address (127.0.0.1:PORT) last on stdout
#        scripts/services/kafka.sh stop     stop the broker this script started
#        scripts/services/kafka.sh status   print what is there (exit 1 when it is down)
#        scripts/services/kafka.sh install  only build/cache the binary
#
# Clients: FAAS_KAFKA_BROKERS=127.0.0.1:$FAAS_KAFKA_PORT (the tests read
# FAAS_TEST_KAFKA_BROKERS). tansu does not create topics on first use: clients create them
# through the admin API (the adapter's create_topic does).
#
# Settings (environment):
#   FAAS_KAFKA_PORT        loopback port of the broker                 [9092]
#   FAAS_KAFKA_DATA        data dir: SQLite file, log, pid file        [/var/lib/faas/tansu]
#                          (a second broker needs its own port and dir)
#   FAAS_KAFKA_STORAGE     sqlite (survives restarts) or memory        [sqlite]
#   FAAS_KAFKA_START_WAIT  seconds to wait for the broker              [60]
#   FAAS_KAFKA_STOP_WAIT   seconds `stop` waits after SIGTERM before   [10]
#                          SIGKILL (0: kill at once, like a crash)
#   FAAS_TANSU_ROOT        where tansu is installed (bin/tansu)        [/var/cache/faas/tansu]
#   FAAS_TANSU_VERSION     the tansu version to build                  [0.6.0]
set -euo pipefail

port=${FAAS_KAFKA_PORT:-9092}
data=${FAAS_KAFKA_DATA:-/var/lib/faas/tansu}
storage=${FAAS_KAFKA_STORAGE:-sqlite}
start_wait=${FAAS_KAFKA_START_WAIT:-60}
stop_wait=${FAAS_KAFKA_STOP_WAIT:-10}
tansu_root=${FAAS_TANSU_ROOT:-/var/cache/faas/tansu}
tansu_version=${FAAS_TANSU_VERSION:-0.6.0}
tansu="$tansu_root/bin/tansu"
pidfile="$data/tansu.pid"
logfile="$data/tansu.log"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
need() { command -v "$1" >/dev/null 2>&1; }

# Whether something accepts TCP connections on the broker's port.
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

# The pid of the broker this script started, if it is alive.
our_pid() {
  [ -f "$pidfile" ] || return 1
  local pid
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

cmd_install() {
  if [ -x "$tansu" ]; then
    return 0
  fi
  need cargo || die "cargo is needed to build tansu"
  need cc || die "a C compiler is needed to build tansu (its SQLite)"
  mkdir -p "$tansu_root"
  # One build at a time: a second caller waits for the first and then finds the binary.
  exec 9>"$tansu_root/.install.lock"
  if ! flock -w 3600 9; then
    die "another tansu build held $tansu_root/.install.lock for an hour"
  fi
  if [ ! -x "$tansu" ]; then
    log "building tansu $tansu_version with dynostore,libsql into $tansu_root (once; about 10 minutes on 2 cores; log: $tansu_root/build.log)"
    if ! cargo install tansu --version "$tansu_version" --features dynostore,libsql \
        --root "$tansu_root" --locked >>"$tansu_root/build.log" 2>&1; then
      tail -n 30 "$tansu_root/build.log" >&2 || true
      die "building tansu failed"
    fi
  fi
  exec 9>&-
  [ -x "$tansu" ] || die "tansu is still missing after cargo install"
}

cmd_start() {
  if answers; then
    local pid
    if pid=$(our_pid); then
      log "broker (pid $pid) answers on 127.0.0.1:$port"
    else
      log "something already answers on 127.0.0.1:$port; using it"
    fi
    echo "127.0.0.1:$port"
    return 0
  fi
  cmd_install
  mkdir -p "$data"
  local engine
  case "$storage" in
    sqlite) engine="sqlite://tansu.db" ;; # relative to the working directory: $data
    memory) engine="memory://tansu/" ;;
    *) die "FAAS_KAFKA_STORAGE must be sqlite or memory, not '$storage'" ;;
  esac
  local pid
  if pid=$(our_pid); then
    log "broker (pid $pid) is running but does not answer yet; waiting"
  else
    log "starting tansu on 127.0.0.1:$port (storage $engine in $data; log: $logfile)"
    # setsid: the broker outlives this script and the shell that ran it.
    (
      cd "$data"
      exec setsid "$tansu" broker \
        --cluster-id faas \
        --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine "$engine" \
        >>"$logfile" 2>&1 </dev/null
    ) &
    echo $! >"$pidfile"
  fi
  local waited=0
  until answers; do
    if ! our_pid >/dev/null; then
      tail -n 30 "$logfile" >&2 || true
      die "tansu exited during start-up"
    fi
    if [ "$waited" -ge "$((start_wait * 10))" ]; then
      tail -n 30 "$logfile" >&2 || true
      die "tansu did not accept connections on 127.0.0.1:$port within ${start_wait}s"
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  log "broker (pid $(cat "$pidfile")) answers on 127.0.0.1:$port after $((waited / 10)).$((waited % 10))s"
  echo "127.0.0.1:$port"
}

cmd_stop() {
  local pid
  if ! pid=$(our_pid); then
    rm -f "$pidfile"
    log "no broker started by this script is running (port $port)"
    return 0
  fi
  local waited=0
  if [ "$stop_wait" -gt 0 ]; then
    log "stopping tansu (pid $pid)"
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt "$((stop_wait * 10))" ]; do
      sleep 0.1
      waited=$((waited + 1))
    done
  fi
  if kill -0 "$pid" 2>/dev/null; then
    log "killing tansu (pid $pid)"
    kill -9 "$pid" 2>/dev/null || true
    waited=0
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 50 ]; do
      sleep 0.1
      waited=$((waited + 1))
    done
  fi
  rm -f "$pidfile"
}

cmd_status() {
  local pid state=down
  answers && state=up
  if pid=$(our_pid); then
    echo "tansu: pid $pid, 127.0.0.1:$port $state, data $data"
  else
    echo "tansu: not started by this script; 127.0.0.1:$port $state"
  fi
  if [ -x "$tansu" ]; then echo "binary: $tansu"; else echo "binary: missing ($tansu)"; fi
  [ "$state" = up ]
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  install) cmd_install ;;
  *) die "usage: $0 start|stop|status|install" ;;
esac
