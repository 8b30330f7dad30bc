#!/usr/bin/env bash
# The Docker engine and the action runtime images, for the Docker executor (faas-exec, feature
# `docker`). Idempotent: every step is skipped when its result is already there, so running it
# twice (or on a machine that has everything) costs a few `docker` calls.
#
# Usage: scripts/services/docker.sh start    install Debian's docker.io when `docker`/`dockerd`
#                                            are missing, start dockerd in the background when
#                                            the engine does not answer, wait until it does
#        scripts/services/docker.sh images   build the base image (debootstrap + docker import,
#                                            tarball cached) and one runtime image per kind
#        scripts/services/docker.sh status   print what is there (exit 1 when the engine is down)
#        scripts/services/docker.sh stop     stop a dockerd this script started
#
# No container registry is needed: the base image `faas-base:bookworm` is made from Debian
# packages (debootstrap --variant=minbase --include=nodejs,python3 bookworm), then the recipes
# in faas-exec/runtimes/docker/<family>/Dockerfile add the runners. Users with a registry can
# build the same recipes on an upstream base instead:
#
#   FAAS_DOCKER_BASE_NODEJS=node:20-slim FAAS_DOCKER_BASE_PYTHON=python:3.12-slim \
#     scripts/services/docker.sh images
#
# Settings (environment):
#   FAAS_DOCKER_CACHE        where the base tarball is kept    [/var/cache/faas]
#   FAAS_DOCKER_STATE        dockerd log and pid file           [/var/run/faas-dockerd]
#   FAAS_DOCKER_MIRROR       Debian mirror for debootstrap      [the one apt uses]
#   FAAS_DOCKER_START_WAIT   seconds to wait for the engine     [60]
#   FAAS_DOCKER_BASE_NODEJS  base image of the Node.js runtime  [faas-base:bookworm]
#   FAAS_DOCKER_BASE_PYTHON  base image of the Python runtime   [faas-base:bookworm]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
runtimes="$root/faas-exec/runtimes"
cache=${FAAS_DOCKER_CACHE:-/var/cache/faas}
state=${FAAS_DOCKER_STATE:-/var/run/faas-dockerd}
start_wait=${FAAS_DOCKER_START_WAIT:-60}
base_image=faas-base:bookworm
suite=bookworm

log() { printf 'docker.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
need() { command -v "$1" >/dev/null 2>&1; }

sudo_if_needed() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif need sudo; then sudo "$@"; else die "need root for: $*"; fi
}

apt_updated=0
apt_install() {
  need apt-get || die "missing $* and no apt-get to install it"
  if [ "$apt_updated" = 0 ]; then
    sudo_if_needed apt-get update -qq
    apt_updated=1
  fi
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

engine_up() { timeout 10 docker info >/dev/null 2>&1; }

# Whether `pid` is a live (not zombie) process whose command line contains `name`. A killed
# daemon whose parent does not reap it stays a zombie, which `kill -0` takes for alive.
alive() {
  local pid=$1 name=$2 state
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  state=$(sed 's/^.*) //' "/proc/$pid/stat" | cut -d' ' -f1)
  [ "$state" != Z ] && [ "$state" != X ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$name"
}

# Starts dockerd in the background, detached from this script, recording its pid.
launch_dockerd() {
  local pidfile=$1 logfile=$2
  # A stale pid file left by a killed dockerd keeps the next one from starting.
  if [ -f /var/run/docker.pid ] && ! alive "$(cat /var/run/docker.pid)" dockerd; then
    sudo_if_needed rm -f /var/run/docker.pid
  fi
  log "starting dockerd (log: $logfile)"
  # setsid + nohup: the engine outlives this script and the shell that ran it; `exec` makes
  # the recorded pid dockerd's own.
  sudo_if_needed setsid nohup sh -c 'echo $$ > "$1"; exec dockerd --log-level=warn >>"$2" 2>&1' \
    sh "$pidfile" "$logfile" </dev/null >/dev/null 2>&1 &
}

cmd_start() {
  if ! need dockerd || ! need docker; then
    log "installing Debian's docker.io"
    apt_install docker.io
  fi
  need dockerd || die "dockerd is still missing after installing docker.io"
  if engine_up; then
    log "engine answers ($(docker version --format '{{.Server.Version}} API {{.Server.APIVersion}}' 2>/dev/null))"
    return 0
  fi
  sudo_if_needed mkdir -p "$state"
  local pidfile="$state/dockerd.pid" logfile="$state/dockerd.log" waited=0 launches=0
  until engine_up; do
    # (Re)start it when no dockerd of ours lives (none yet, or it died while starting).
    if ! { [ -f "$pidfile" ] && alive "$(cat "$pidfile")" dockerd; }; then
      [ "$launches" -lt 2 ] || { tail -n 30 "$logfile" >&2 || true; die "dockerd exits right after starting"; }
      launch_dockerd "$pidfile" "$logfile"
      launches=$((launches + 1))
    elif [ "$waited" = 0 ]; then
      log "dockerd (pid $(cat "$pidfile")) is running but not answering yet; waiting"
    fi
    if [ "$waited" -ge "$start_wait" ]; then
      tail -n 30 "$logfile" >&2 || true
      die "the Docker engine did not answer within ${start_wait}s"
    fi
    sleep 1
    waited=$((waited + 1))
  done
  log "engine answers after ${waited}s ($(docker version --format '{{.Server.Version}} API {{.Server.APIVersion}}' 2>/dev/null))"
}

cmd_stop() {
  local pidfile="$state/dockerd.pid"
  if [ -f "$pidfile" ] && alive "$(cat "$pidfile")" dockerd; then
    log "stopping dockerd (pid $(cat "$pidfile"))"
    local pid waited=0
    pid=$(cat "$pidfile")
    sudo_if_needed kill "$pid"
    while alive "$pid" dockerd && [ "$waited" -lt 30 ]; do sleep 1; waited=$((waited + 1)); done
    alive "$pid" dockerd && die "dockerd (pid $pid) did not stop within 30s"
    sudo_if_needed rm -f "$pidfile"
  else
    log "no dockerd started by this script is running"
  fi
}

# The mirror apt uses (deb822 sources first, then the one-line format).
debian_mirror() {
  if [ -n "${FAAS_DOCKER_MIRROR:-}" ]; then echo "$FAAS_DOCKER_MIRROR"; return; fi
  local m
  m=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' \
      | grep -v -e security -e updates | head -n1 || true)
  if [ -z "$m" ]; then
    m=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
        | awk '{for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' \
        | grep -v security | head -n1 || true)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
image_label() { docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true; }

build_base() {
  local tarball="$cache/faas-base-$suite.tar.gz"
  if image_exists "$base_image"; then
    log "$base_image: present"
    return 0
  fi
  if [ ! -s "$tarball" ]; then
    need debootstrap || apt_install debootstrap
    local mirror dir
    mirror=$(debian_mirror)
    dir=$(mktemp -d /var/tmp/faas-base.XXXXXX)
    # shellcheck disable=SC2064 # expand now: the directory name is fixed
    trap "rm -rf '$dir'" RETURN
    log "debootstrap $suite from $mirror (a few minutes, once; cached in $tarball)"
    sudo_if_needed debootstrap --variant=minbase --include=nodejs,python3 \
      "$suite" "$dir" "$mirror" >"$dir.log" 2>&1 || { tail -n 30 "$dir.log" >&2; die "debootstrap failed"; }
    rm -f "$dir.log"
    # Smaller image: package lists and caches are not needed at run time.
    sudo_if_needed rm -rf "$dir/var/cache/apt/archives/"*.deb "$dir/var/lib/apt/lists/"* \
      "$dir/usr/share/doc" "$dir/usr/share/man" "$dir/usr/share/locale"
    sudo_if_needed mkdir -p "$cache"
    sudo_if_needed sh -c "tar -C '$dir' -c . | gzip -1 > '$tarball.part' && mv '$tarball.part' '$tarball'"
  else
    log "using the cached base tarball $tarball"
  fi
  log "docker import -> $base_image"
  docker import --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$tarball" "$base_image" >/dev/null
}

# The runtime kind a base image really provides (`nodejs:18`, `python:3.11`).
detect_kind() {
  local family=$1 base=$2 v
  case "$family" in
    nodejs) v=$(docker run --rm --network none --entrypoint node "$base" -e 'console.log(process.versions.node.split(".")[0])') ;;
    python) v=$(docker run --rm --network none --entrypoint python3 "$base" -c 'import sys; print("%d.%d" % sys.version_info[:2])') ;;
  esac
  [ -n "$v" ] || die "cannot tell the $family version of $base"
  echo "$family:$v"
}

# Builds faas-exec/runtimes/docker/<family>/Dockerfile on `base` unless an image with the same
# recipe hash (recipe + runner + base image id) exists.
build_runtime() {
  local family=$1 base=$2 runner
  case "$family" in
    nodejs) runner="$runtimes/nodejs/runner.js" ;;
    python) runner="$runtimes/python/runner.py" ;;
  esac
  local recipe="$runtimes/docker/$family/Dockerfile"
  image_exists "$base" || die "base image $base is not available locally (no registry here: build it or pull it first)"
  local base_id hash kind image found log
  base_id=$(docker image inspect --format '{{.Id}}' "$base")
  hash=$(cat "$recipe" "$runner" | sha256sum | cut -c1-16)-$(echo "$base_id" | sed 's/^sha256://' | cut -c1-12)
  found=$(docker image ls --filter "label=faas.recipe=$hash" --format '{{.Repository}}:{{.Tag}}' | grep -v '<none>' | head -n1 || true)
  if [ -n "$found" ]; then
    log "$found: up to date (recipe $hash)"
    return 0
  fi
  kind=$(detect_kind "$family" "$base")
  image="faas-runtime-${kind%%:*}:${kind#*:}"
  log "building $image ($kind on $base, recipe $hash)"
  log=$(mktemp)
  # The engine's classic builder; its output is shown only when the build fails.
  if ! DOCKER_BUILDKIT=0 docker build -f "$recipe" \
      --build-arg "BASE=$base" --build-arg "KIND=$kind" --build-arg "RECIPE=$hash" \
      -t "$image" "$runtimes" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    die "building $image failed"
  fi
  rm -f "$log"
}

cmd_images() {
  engine_up || die "the Docker engine does not answer; run: $0 start"
  local node_base=${FAAS_DOCKER_BASE_NODEJS:-$base_image} py_base=${FAAS_DOCKER_BASE_PYTHON:-$base_image}
  if [ "$node_base" = "$base_image" ] || [ "$py_base" = "$base_image" ]; then
    build_base
  fi
  build_runtime nodejs "$node_base"
  build_runtime python "$py_base"
  cmd_list
}

cmd_list() {
  docker image ls --filter label=faas.kind \
    --format '{{.Repository}}:{{.Tag}}  {{.Size}}' >&2
}

cmd_status() {
  if ! need docker; then log "docker: not installed"; exit 1; fi
  if ! engine_up; then log "engine: not answering"; exit 1; fi
  log "engine: $(docker version --format '{{.Server.Version}} API {{.Server.APIVersion}}')"
  log "runtime images:"
  cmd_list
  local n
  n=$(docker ps -aq --filter label=faas.invoker | wc -l)
  log "containers labelled faas.invoker: $n"
}

case "${1:-}" in
  start) cmd_start ;;
  images) cmd_images ;;
  status) cmd_status ;;
  stop) cmd_stop ;;
  *) echo "usage: $0 start|images|status|stop" >&2; exit 2 ;;
esac
