#!/usr/bin/env bash
# make-image.sh SOCKET [IMAGE]
# Build a tiny busybox-static rootfs (non-root user "coder" uid/gid 1000,
# /workspace owned by 1000) and `docker import` it -- no registry pull needed.
# Idempotent: skips the import if IMAGE already carries the same build hash
# (label apranova.build-hash). FORCE=1 forces a rebuild.
set -euo pipefail

SOCK="${1:?usage: $0 SOCKET (a path, or unix:///...) [IMAGE]}"
IMAGE="${2:-apranova/test-workspace:latest}"
case "$SOCK" in unix://*) HOST="$SOCK" ;; *) HOST="unix://$SOCK" ;; esac
# Use the Debian client matching the daemon (a newer client in /usr/local/bin also works).
DOCKER=(/usr/bin/docker -H "$HOST")
[ -x /usr/bin/docker ] || DOCKER=(docker -H "$HOST")

die() { echo "make-image: ERROR: $*" >&2; exit 1; }

"${DOCKER[@]}" version >/dev/null 2>&1 || die "docker engine not reachable at $HOST"

if [ ! -x /bin/busybox ] || ! /bin/busybox --list | grep -qx httpd; then
  command -v apt-get >/dev/null || die "busybox-static missing and no apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get install -y busybox-static >/dev/null \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y busybox-static >/dev/null; } \
    || die "cannot install busybox-static"
fi
# must be statically linked (no libc in the rootfs)
if command -v ldd >/dev/null && ldd /bin/busybox >/dev/null 2>&1; then
  die "/bin/busybox is dynamically linked; install busybox-static"
fi

SCRIPT_VERSION=3
HASH=$( { echo "v$SCRIPT_VERSION"; sha256sum /bin/busybox; sha256sum "$0"; } | sha256sum | cut -c1-16)

if [ "${FORCE:-0}" != 1 ] && cur=$("${DOCKER[@]}" image inspect -f '{{index .Config.Labels "apranova.build-hash"}}' "$IMAGE" 2>/dev/null) \
   && [ "$cur" = "$HASH" ]; then
  echo "make-image: $IMAGE already up to date (hash $HASH)"
  exit 0
fi

WORK=$(mktemp -d /tmp/make-image.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
R="$WORK/rootfs"
mkdir -p "$R"/{bin,etc,home/coder,workspace,www,tmp,root,proc,sys,dev,run,var/tmp}

cp /bin/busybox "$R/bin/busybox"
# relative symlinks for every applet (equivalent to `busybox --install -s` but
# independent of the host path of the binary)
for a in $(/bin/busybox --list); do
  [ "$a" = busybox ] || ln -sf busybox "$R/bin/$a"
done

cat > "$R/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
coder:x:1000:1000:coder:/home/coder:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat > "$R/etc/group" <<'EOF'
root:x:0:
coder:x:1000:
nogroup:x:65534:
EOF
echo "ok" > "$R/www/index.html"

chmod 1777 "$R/tmp" "$R/var/tmp"
chmod 700 "$R/root"
chown -R 1000:1000 "$R/home/coder" "$R/workspace"   # volume copy-up inherits this
chmod 755 "$R/workspace"

# Default command: httpd in foreground serving /workspace; address overridable
# via HTTPD_ADDR (e.g. 127.0.0.1:18080).
tar --numeric-owner -C "$R" -cf "$WORK/rootfs.tar" .
"${DOCKER[@]}" import \
  --change 'ENV PATH=/bin' \
  --change 'ENV HOME=/home/coder' \
  --change 'USER 1000:1000' \
  --change 'WORKDIR /workspace' \
  --change "LABEL apranova.build-hash=$HASH" \
  --change 'EXPOSE 8080' \
  --change 'CMD ["/bin/sh","-c","exec httpd -f -v -p \"${HTTPD_ADDR:-0.0.0.0:8080}\" -h /workspace"]' \
  "$WORK/rootfs.tar" "$IMAGE" >/dev/null

"${DOCKER[@]}" image inspect -f '{{.Id}} {{.Size}}' "$IMAGE" | sed "s|^|make-image: built $IMAGE |"
