#!/usr/bin/env bash
# Installs and starts the real engines speck's tests load and run images in:
# dockerd (with its containerd, reached by ctr), podman, skopeo, umoci + runc, and a
# CNCF distribution registry on 127.0.0.1:5000; and an arm64 and an amd64 Linux to boot
# under qemu-system (Debian's kernels and busybox). Idempotent: what already runs is kept.
#
#   scripts/engines.sh up      install what is missing, start what is not running
#   scripts/engines.sh down    stop only what this script started (by pid file)
#   scripts/engines.sh status  say what answers
#
# Needs root (apt-get, dockerd). Logs and pid files live in $SPECK_ENGINES_STATE.
set -euo pipefail

STATE=${SPECK_ENGINES_STATE:-/tmp/speck-engines}
REGISTRY_ADDR=127.0.0.1:5000
PACKAGES=(docker.io skopeo podman umoci runc docker-registry apache2-utils qemu-user qemu-system-arm qemu-system-x86 cpio curl util-linux gcc-multilib uidmap)
COMMANDS=(dockerd skopeo podman umoci runc docker-registry htpasswd qemu-aarch64 qemu-system-aarch64 qemu-system-x86_64 cpio ctr curl unshare nsenter setpriv newuidmap)
LINUXES=(arm64 amd64)

say() { echo "engines: $*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_missing() {
  local missing=()
  for cmd in "${COMMANDS[@]}"; do command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd"); done
  # gcc -m32 (speck pack's 32-bit test program) has no command of its own to look for
  [ -e /usr/lib32/crt1.o ] || missing+=("gcc-multilib")
  [ ${#missing[@]} -eq 0 ] && return
  say "installing (missing: ${missing[*]})"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${PACKAGES[@]}" >"$STATE/apt.log" 2>&1 \
    || { tail -20 "$STATE/apt.log" >&2; exit 1; }
}

# A Linux that tests/forge_kernel.rs boots, for Debian architecture $1: the kernel and
# busybox-static of Debian's packages (apt checks them against the archive's signed
# index), in $STATE/$1.
fetch_linux() {
  local arch=$1 dir="$STATE/$1" kernel work
  [ -s "$dir/vmlinuz" ] && [ -s "$dir/busybox" ] && return
  say "fetching Debian's $arch kernel and busybox into $dir"
  if [ "$arch" != "$(dpkg --print-architecture)" ] && ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
    as_root dpkg --add-architecture "$arch"
    as_root apt-get update -qq
  fi
  kernel=$(apt-cache depends "linux-image-$arch:$arch" | awk '/Depends: linux-image-/ { print $2; exit }')
  work=$(mktemp -d)
  (cd "$work" && apt-get download -qq "$kernel" "busybox-static:$arch" >"$STATE/$arch-apt.log" 2>&1) \
    || { tail -20 "$STATE/$arch-apt.log" >&2; exit 1; }
  for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
  mkdir -p "$dir"
  cp "$work"/root/boot/vmlinuz-* "$dir/vmlinuz.part" && mv "$dir/vmlinuz.part" "$dir/vmlinuz"
  cp "$work/root/bin/busybox" "$dir/busybox.part" && mv "$dir/busybox.part" "$dir/busybox"
  rm -rf "$work"
}

# podman: crun fails here (cgroups in hybrid mode) and default rlimits are refused,
# so runc, cgroupfs, no default ulimits, and vfs storage like dockerd.
configure_podman() {
  as_root mkdir -p /etc/containers
  as_root tee /etc/containers/containers.conf >/dev/null <<'EOF'
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
EOF
  as_root tee /etc/containers/storage.conf >/dev/null <<'EOF'
[storage]
driver = "vfs"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
EOF
}

running() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

wait_for() {
  local what=$1; shift
  for _ in $(seq 1 60); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  say "$what did not come up; its log:"; tail -30 "$STATE/$what.log" >&2 || true
  exit 1
}

start_docker() {
  if docker info >/dev/null 2>&1; then return; fi
  # A dockerd killed with the last session leaves its pid file, and a new one refuses to start.
  local pidfile=/var/run/docker.pid
  if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    say "removing stale $pidfile"
    as_root rm -f "$pidfile"
  fi
  say "starting dockerd (no bridge or iptables in this sandbox; vfs storage)"
  as_root bash -c "nohup dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
    >'$STATE/dockerd.log' 2>&1 & echo \$! >'$STATE/dockerd.pid'"
  wait_for dockerd docker info
}

start_registry() {
  if curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; then return; fi
  say "starting the distribution registry on $REGISTRY_ADDR"
  cat >"$STATE/registry.yml" <<EOF
version: 0.1
log: { level: warn }
storage: { filesystem: { rootdirectory: $STATE/registry-data }, delete: { enabled: true } }
http: { addr: $REGISTRY_ADDR }
EOF
  nohup docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 &
  echo $! >"$STATE/registry.pid"
  wait_for registry curl -fsS "http://$REGISTRY_ADDR/v2/"
}

stop() {
  local name=$1
  if running "$name"; then
    say "stopping $name"
    as_root kill "$(cat "$STATE/$name.pid")" || true
    for _ in $(seq 1 40); do running "$name" || break; sleep 0.25; done
  fi
  rm -f "$STATE/$name.pid"
}

status() {
  local ok=0
  docker info >/dev/null 2>&1 && say "docker: up" || { say "docker: down"; ok=1; }
  curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1 && say "registry: up at $REGISTRY_ADDR" || { say "registry: down"; ok=1; }
  for cmd in podman skopeo umoci runc ctr qemu-aarch64 qemu-system-aarch64 qemu-system-x86_64; do
    command -v "$cmd" >/dev/null && say "$cmd: $(command -v "$cmd")" || { say "$cmd: missing"; ok=1; }
  done
  for arch in "${LINUXES[@]}"; do
    [ -s "$STATE/$arch/vmlinuz" ] && say "$arch linux: $STATE/$arch" || { say "$arch linux: missing"; ok=1; }
  done
  return $ok
}

mkdir -p "$STATE"
case "${1:-}" in
  up)
    install_missing
    for arch in "${LINUXES[@]}"; do fetch_linux "$arch"; done
    configure_podman
    start_docker
    start_registry
    status
    ;;
  down)
    stop registry
    stop dockerd
    ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
