#!/usr/bin/env bash
# engine.sh DIR [start|stop|status]: a private Docker engine for the workspace tests
#
# Idempotently install (docker.io + busybox-static from Debian apt) and start a
# private dockerd whose whole state lives under DIR:
#   DIR/root (data-root)  DIR/exec (exec-root)  DIR/docker.sock  DIR/docker.pid  DIR/dockerd.log
# Prints  DOCKER_HOST=unix://DIR/docker.sock  on success.
# Env: START_TIMEOUT (default 60 s), STOP_TIMEOUT (default 30 s),
#      STORAGE_DRIVER (default vfs), DOCKERD_EXTRA_ARGS (word-split, appended).
set -euo pipefail

DIR="${1:?usage: $0 DIR [start|stop|status]}"
ACTION="${2:-start}"
START_TIMEOUT="${START_TIMEOUT:-60}"
STOP_TIMEOUT="${STOP_TIMEOUT:-30}"
STORAGE_DRIVER="${STORAGE_DRIVER:-vfs}"

mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
SOCK="$DIR/docker.sock"
PIDF="$DIR/docker.pid"
LOG="$DIR/dockerd.log"
HOST="unix://$SOCK"

log() { echo "engine: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# containerd puts DIR/exec/containerd/containerd.sock.ttrpc; unix socket paths max 107 bytes
[ $(( ${#DIR} + 38 )) -lt 108 ] || die "DIR path too long for unix sockets: $DIR"

docker_cli() {
  if [ -x /usr/bin/docker ]; then /usr/bin/docker -H "$HOST" "$@"; else docker -H "$HOST" "$@"; fi
}
ping_engine() { docker_cli version --format '{{.Server.Version}}' >/dev/null 2>&1; }
pid_alive() {  # pidfile exists and points to a live dockerd
  [ -s "$PIDF" ] || return 1
  local p; p="$(cat "$PIDF")"
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null && grep -q dockerd "/proc/$p/cmdline" 2>/dev/null
}

install_if_missing() {
  local need=0
  for b in /usr/sbin/dockerd /usr/bin/containerd /usr/sbin/runc /usr/bin/docker /usr/sbin/docker-proxy; do
    [ -x "$b" ] || need=1
  done
  [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || need=1   # static busybox
  [ "$need" = 0 ] && return 0
  command -v apt-get >/dev/null || die "docker.io not installed and apt-get unavailable"
  log "installing docker.io busybox-static via apt ..."
  local t0=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  local apt=(apt-get -o DPkg::Lock::Timeout=120 -y -q)
  if ! "${apt[@]}" install docker.io busybox-static >>"$DIR/apt.log" 2>&1; then
    "${apt[@]}" update >>"$DIR/apt.log" 2>&1 || die "apt-get update failed (see $DIR/apt.log)"
    "${apt[@]}" install docker.io busybox-static >>"$DIR/apt.log" 2>&1 \
      || die "apt-get install docker.io busybox-static failed (see $DIR/apt.log)"
  fi
  log "installed in $((SECONDS - t0)) s"
}

do_start() {
  install_if_missing
  exec 9>"$DIR/.start.lock"
  flock -w "$((START_TIMEOUT + 10))" 9 || die "could not take $DIR/.start.lock"

  if ping_engine; then
    log "already running (pid $(cat "$PIDF" 2>/dev/null || echo '?'))"
    echo "DOCKER_HOST=$HOST"; return 0
  fi

  local pid
  if pid_alive; then
    pid="$(cat "$PIDF")"
    log "dockerd pid $pid exists but is not answering yet; waiting"
  else
    rm -f "$PIDF"   # stale pidfile would make dockerd refuse to start
    [ -S "$SOCK" ] && rm -f "$SOCK"
    mkdir -p "$DIR/root" "$DIR/exec"
    # shellcheck disable=SC2086
    setsid /usr/sbin/dockerd \
      --data-root "$DIR/root" \
      --exec-root "$DIR/exec" \
      --host "$HOST" \
      --pidfile "$PIDF" \
      --storage-driver "$STORAGE_DRIVER" \
      --iptables=false --ip6tables=false --bridge=none \
      ${DOCKERD_EXTRA_ARGS:-} \
      >>"$LOG" 2>&1 </dev/null 9>&- &   # 9>&-: daemon must not inherit the lock fd
    pid=$!
    log "launched dockerd pid $pid (log $LOG)"
  fi

  local t0 deadline
  t0=$(date +%s.%N); deadline=$(( SECONDS + START_TIMEOUT ))
  while (( SECONDS < deadline )); do
    if ping_engine; then
      log "ready in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}') s: $(docker_cli info --format 'server {{.ServerVersion}}, cgroup {{.CgroupDriver}} v{{.CgroupVersion}}, storage {{.Driver}}')"
      echo "DOCKER_HOST=$HOST"; return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      log "dockerd exited during startup; last log lines:"; tail -n 25 "$LOG" >&2
      die "dockerd failed to start"
    fi
    sleep 0.2
  done
  log "not ready after ${START_TIMEOUT}s; last log lines:"; tail -n 25 "$LOG" >&2
  kill -TERM "$pid" 2>/dev/null || true
  die "dockerd did not become ready within ${START_TIMEOUT}s (sent SIGTERM to $pid)"
}

do_stop() {
  if ! pid_alive; then
    ping_engine && die "engine answers on $SOCK but $PIDF is missing/stale; stop it by hand"
    log "not running"; rm -f "$PIDF"; unmount_leftovers; return 0
  fi
  local pid; pid="$(cat "$PIDF")"
  log "sending SIGTERM to dockerd $pid (running containers get 10 s to stop)"
  kill -TERM "$pid"
  local deadline=$(( SECONDS + STOP_TIMEOUT ))
  while kill -0 "$pid" 2>/dev/null; do
    (( SECONDS < deadline )) || die "dockerd $pid still alive after ${STOP_TIMEOUT}s"
    sleep 0.2
  done
  log "dockerd $pid exited"
  unmount_leftovers
}

# dockerd leaves DIR/exec/netns/default (nsfs) and sometimes a bind mount of
# DIR/root behind; unmount them so `rm -rf DIR` works.
unmount_leftovers() {
  local m
  awk -v d="$DIR/" '{ if (index($5, d) == 1) print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "WARN: could not unmount $m"
  done
}

case "$ACTION" in
  start)  do_start ;;
  stop)   do_stop ;;
  status) if ping_engine; then echo "running DOCKER_HOST=$HOST"; else echo "not running"; exit 3; fi ;;
  *) die "unknown action $ACTION (start|stop|status)" ;;
esac
