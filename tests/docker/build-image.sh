#!/usr/bin/env bash
# build-image.sh [DIR]: build the Dockerfile for real where no base image can be pulled,
# then run the image: `apranova --help`, and `serve` against this machine's PostgreSQL and
# Redis until /readyz answers. Not part of the test command (it takes minutes); run it by
# hand after changing the Dockerfile, docker-compose.yml or the package's contents.
#
# The stand-in for python:3.11-slim is Debian bookworm (Python 3.11) made by debootstrap
# from Debian's packages and `docker import`ed under that name. The engine is the private
# one the workspace tests use (tests/docker/engine.sh), stopped again at the end.
set -euo pipefail

DIR="${1:-/tmp/apranova-image}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
ENGINE="$DIR/engine"
mkdir -p "$DIR"

export "$("$ROOT/tests/docker/engine.sh" "$ENGINE" start | grep '^DOCKER_HOST=')"
trap '"$ROOT/tests/docker/engine.sh" "$ENGINE" stop >/dev/null || true' EXIT
DOCKER=(docker -H "$DOCKER_HOST")
[ -x /usr/bin/docker ] && DOCKER=(/usr/bin/docker -H "$DOCKER_HOST")

if [ ! -x "$DIR/rootfs/usr/bin/python3" ]; then
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap
  rm -rf "$DIR/rootfs"
  debootstrap --variant=minbase \
    --include=python3,python3-pip,python3-venv,python-is-python3,ca-certificates,passwd \
    bookworm "$DIR/rootfs" http://deb.debian.org/debian
fi
# This machine's trust store, so that pip in the build reaches PyPI the way this machine
# does (through its network's own certificate authority, where it has one).
cp /etc/ssl/certs/ca-certificates.crt "$DIR/rootfs/etc/ssl/certs/ca-certificates.crt"
# Debian marks its Python as externally managed; the real base image does not.
tar -C "$DIR/rootfs" -c . | "${DOCKER[@]}" import \
  --change 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' --change 'CMD ["python3"]' - python:3.11-slim

"${DOCKER[@]}" build --network host -t apranova:stand-in "$ROOT"
help="$("${DOCKER[@]}" run --rm apranova:stand-in --help)"
grep -q "serve" <<<"$help" || { echo "$help"; echo "build-image: ERROR: no help" >&2; exit 1; }
echo "build-image: apranova --help answers"

PORT="${PORT:-18765}"
DB="apranova_image_$$"
psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE $DB" >/dev/null
keys=(-e APRANOVA_JWT_SECRET="$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
      -e APRANOVA_PSEUDONYM_KEY="$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
      -e APRANOVA_CREDENTIALS_KEY="$(python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')")
NAME="apranova-image-$$"
"${DOCKER[@]}" run -d --name "$NAME" --network host "${keys[@]}" \
  -e APRANOVA_DATABASE_URL="postgresql://postgres@127.0.0.1:5432/$DB" \
  -e APRANOVA_REDIS_URL=redis://127.0.0.1:6379/0 -e APRANOVA_REDIS_NAMESPACE="image-$$" \
  apranova:stand-in serve --host 127.0.0.1 --port "$PORT" >/dev/null
cleanup() {
  "${DOCKER[@]}" rm -f "$NAME" >/dev/null 2>&1 || true
  psql -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null || true
  "$ROOT/tests/docker/engine.sh" "$ENGINE" stop >/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 60); do
  if curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then
    echo "build-image: serve answers /readyz from the image"
    exit 0
  fi
  sleep 1
done
"${DOCKER[@]}" logs "$NAME" | tail -40
echo "build-image: ERROR: serve did not become ready" >&2
exit 1
