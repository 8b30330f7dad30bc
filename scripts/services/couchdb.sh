#!/usr/bin/env bash
# A CouchDB-API server for the tests and for `faas-platform standalone --store couchdb://…`:
# pouchdb-server from npm (Apache CouchDB itself is not packaged here), listening on loopback,
# keeping its databases on disk so data survives restarts of the platform and of the server.
#
# Usage: scripts/services/couchdb.sh start|stop|restart|status|url
#   start    install pouchdb-server if missing, start it unless it already answers, wait until
#            it answers (bounded), print its store URL (couchdb://127.0.0.1:5984/) last
#   stop     stop the server this script started
#   status   exit 0 if the server answers
#   url      print the store URL
#
# Idempotent: `start` twice is one server. Settings (environment):
#   FAAS_COUCHDB_PORT      port (default 5984)
#   FAAS_COUCHDB_HOST      address to bind (default 127.0.0.1; keep it on loopback)
#   FAAS_SERVICES_CACHE    where npm packages go (default /var/cache/faas, or ~/.cache/faas)
#   FAAS_SERVICES_DATA     where data, pid and log files go (default /var/lib/faas, or
#                          ~/.local/share/faas)
# The server runs in "admin party" mode (no credentials needed); the adapter also accepts
# couchdb://user:pass@host:port/ URLs for servers that require them.
set -euo pipefail

POUCHDB_SERVER_VERSION=4.2.0
PORT=${FAAS_COUCHDB_PORT:-5984}
HOST=${FAAS_COUCHDB_HOST:-127.0.0.1}

writable_or() { # $1 preferred dir, $2 fallback
  if mkdir -p "$1" 2>/dev/null && [ -w "$1" ]; then echo "$1"; else mkdir -p "$2"; echo "$2"; fi
}
CACHE=$(writable_or "${FAAS_SERVICES_CACHE:-/var/cache/faas}" "$HOME/.cache/faas")
DATA_ROOT=$(writable_or "${FAAS_SERVICES_DATA:-/var/lib/faas}" "$HOME/.local/share/faas")
PREFIX_DIR="$CACHE/pouchdb-server-$POUCHDB_SERVER_VERSION"
BIN="$PREFIX_DIR/node_modules/.bin/pouchdb-server"
DATA="$DATA_ROOT/pouchdb-$PORT"
PIDFILE="$DATA_ROOT/pouchdb-$PORT.pid"
LOGFILE="$DATA_ROOT/pouchdb-$PORT.log"
HTTP_URL="http://$HOST:$PORT/"
STORE_URL="couchdb://$HOST:$PORT/"

log() { echo "couchdb.sh: $*" >&2; }

# Whether a CouchDB-API server answers on HOST:PORT (uses node, which pouchdb-server needs anyway).
answers() {
  node -e '
    const ctl = new AbortController(); setTimeout(() => ctl.abort(), 2000);
    fetch(process.argv[1], { signal: ctl.signal })
      .then(r => r.json())
      .then(j => process.exit(j && (j.couchdb || j["express-pouchdb"]) ? 0 : 1))
      .catch(() => process.exit(1));' "$HTTP_URL" 2>/dev/null
}

port_taken() {
  node -e '
    const s = require("net").connect(+process.argv[2], process.argv[1]);
    s.on("connect", () => { s.destroy(); process.exit(0) });
    s.on("error", () => process.exit(1));
    setTimeout(() => process.exit(1), 2000);' "$HOST" "$PORT" 2>/dev/null
}

running_pid() {
  [ -f "$PIDFILE" ] || return 1
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null || true)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

install() {
  if [ -x "$BIN" ]; then return 0; fi
  command -v node >/dev/null && command -v npm >/dev/null || {
    log "node and npm are required (scripts/setup.sh installs them)"; exit 1; }
  log "installing pouchdb-server $POUCHDB_SERVER_VERSION into $PREFIX_DIR (one time)"
  mkdir -p "$PREFIX_DIR"
  [ -f "$PREFIX_DIR/package.json" ] || echo '{"name":"faas-pouchdb-server","private":true}' >"$PREFIX_DIR/package.json"
  # --ignore-scripts: leveldown ships prebuilt binaries and loads them at run time; install
  # scripts would only try to download or compile optional native modules (sqlite3).
  (cd "$PREFIX_DIR" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error \
    "pouchdb-server@$POUCHDB_SERVER_VERSION" >&2)
  [ -x "$BIN" ] || { log "npm did not install $BIN"; exit 1; }
}

start() {
  if answers; then
    log "already running at $HTTP_URL"
    echo "$STORE_URL"
    return 0
  fi
  if port_taken; then
    log "port $PORT on $HOST is taken by something that is not a CouchDB-API server"
    exit 1
  fi
  install
  mkdir -p "$DATA"
  # Log warnings only: the default logs every request into the data directory.
  node -e '
    const fs = require("fs"), f = process.argv[1], log = process.argv[2];
    let c = {}; try { c = JSON.parse(fs.readFileSync(f, "utf8")) } catch (e) {}
    c.log = Object.assign({}, c.log, { level: "warning", file: log });
    fs.writeFileSync(f, JSON.stringify(c, null, 2));' "$DATA/config.json" "$DATA/log.txt"
  if pid=$(running_pid); then
    log "pid $pid from $PIDFILE is alive but does not answer; stopping it"
    kill "$pid" 2>/dev/null || true
    sleep 1
  fi
  log "starting pouchdb-server on $HTTP_URL (data in $DATA, log in $LOGFILE)"
  (
    cd "$DATA"
    nohup setsid "$BIN" --host "$HOST" --port "$PORT" --dir "$DATA" \
      --config "$DATA/config.json" --no-color >>"$LOGFILE" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
  )
  for _ in $(seq 1 150); do # up to 30 s
    if answers; then
      log "ready"
      echo "$STORE_URL"
      return 0
    fi
    if ! running_pid >/dev/null; then
      log "pouchdb-server exited; last lines of $LOGFILE:"; tail -n 20 "$LOGFILE" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
  log "pouchdb-server did not answer on $HTTP_URL within 30 s; see $LOGFILE"
  exit 1
}

stop() {
  if pid=$(running_pid); then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    log "stopped pid $pid"
  else
    log "not running (no live pid in $PIDFILE)"
  fi
  rm -f "$PIDFILE"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) if answers; then echo "$STORE_URL"; else exit 1; fi ;;
  url) echo "$STORE_URL" ;;
  *) echo "usage: $0 start|stop|restart|status|url" >&2; exit 2 ;;
esac
