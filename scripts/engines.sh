#!/usr/bin/env bash
# Installs and starts the real engines speck's tests load and run images in:
# dockerd (with its containerd, reached by ctr), podman, skopeo, umoci + runc, and a
# CNCF distribution registry on 127.0.0.1:5000; arm64 emulation in binfmt_misc; an arm64
# and an amd64 Linux to boot under qemu-system (Debian's kernels and busybox); Docker's
# default seccomp profile; and the binfmt_misc entries Debian's qemu registers for x86
# programs on arm64 hosts. Idempotent: what already runs is kept.
#
#   scripts/engines.sh up      install what is missing, start what is not running
#   scripts/engines.sh down    stop only what this script started (by pid file)
#   scripts/engines.sh status  say what answers
#
# Needs root (apt-get, dockerd). Logs and pid files live in $SPECK_ENGINES_STATE.
set -euo pipefail

STATE=${SPECK_ENGINES_STATE:-/tmp/speck-engines}
REGISTRY_ADDR=127.0.0.1:5000
PACKAGES=(docker.io skopeo podman umoci runc docker-registry apache2-utils qemu-user qemu-system-arm qemu-system-x86 cpio curl util-linux gcc-multilib uidmap socat)
COMMANDS=(dockerd skopeo podman umoci runc docker-registry htpasswd qemu-aarch64 qemu-system-aarch64 qemu-system-x86_64 cpio ctr curl unshare nsenter setpriv newuidmap socat)
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

# Debian's packages that are not installed but unpacked into $STATE: apt fetches them
# (signed indexes, checked digests) through a configuration of its own under $STATE/apt,
# so the machine's sources and architectures stay as they are. Debian 12 (bookworm) is
# preferred; the others give what it lacks. Sets APT, once.
APT=()
private_apt() {
  [ ${#APT[@]} -gt 0 ] && return
  local apt_dir="$STATE/apt" suite
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  : >"$apt_dir/sources.list"
  for suite in bookworm bullseye trixie; do
    echo "deb [arch=amd64,arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" >>"$apt_dir/sources.list"
  done
  echo "deb [arch=amd64,arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main" >>"$apt_dir/sources.list"
  APT=(-o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/nonexistent
    -o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir/cache" -o Debug::NoLocking=1
    -o APT::Architectures::=amd64 -o APT::Architectures::=arm64 -o APT::Default-Release=bookworm)
  apt-get "${APT[@]}" update -qq >"$STATE/private-apt.log" 2>&1 || { tail -20 "$STATE/private-apt.log" >&2; exit 1; }
}

# Copies $1 to $2 by way of a temporary name, so that $2 is never half-written.
place() { cp "$1" "$STATE/part" && mv "$STATE/part" "$2"; }

# Downloads the packages named and unpacks them all into the directory $1.
unpack_debs() {
  local into=$1 work deb; shift
  work=$(mktemp -d)
  (cd "$work" && apt-get "${APT[@]}" download -qq "$@" >>"$STATE/private-apt.log" 2>&1) \
    || { tail -20 "$STATE/private-apt.log" >&2; exit 1; }
  for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$into"; done
  rm -rf "$work"
}

# Places file $2 of package $1 as $3 (and file $4 as $5, and so on).
fetch_file() {
  local root
  root=$(mktemp -d)
  unpack_debs "$root" "$1"
  shift
  while [ $# -gt 0 ]; do place "$root/$1" "$2"; shift 2; done
  rm -rf "$root"
}

# The Linux kernels that tests/forge_kernel.rs boots, for each Debian architecture in
# LINUXES: Debian 12's (6.1) and Debian 11's (5.10), as $STATE/<arch>/vmlinuz-<series>,
# with Debian 12's busybox-static as $STATE/<arch>/busybox; and Debian 13's arm64 kernel
# for 16 KiB pages (as Apple silicon runs Linux), as $STATE/arm64/vmlinuz-6.12-16k.
KERNELS=(6.1.0 5.10.0) # Debian 12's series, Debian 11's
ARM64_16K=6.12
fetch_linux() {
  local arch version wanted=()
  for arch in "${LINUXES[@]}"; do
    [ -s "$STATE/$arch/busybox" ] || wanted+=("$arch")
    for version in "${KERNELS[@]}"; do [ -s "$STATE/$arch/vmlinuz-${version%.0}" ] || wanted+=("$arch"); done
  done
  [ -s "$STATE/arm64/vmlinuz-$ARM64_16K-16k" ] || wanted+=(arm64)
  [ ${#wanted[@]} -eq 0 ] && return
  say "fetching Debian's kernels and busybox for ${LINUXES[*]} into $STATE"
  private_apt
  for arch in "${LINUXES[@]}"; do
    local root packages=("busybox-static:$arch")
    root=$(mktemp -d)
    for version in "${KERNELS[@]}"; do
      packages+=("$(apt-cache "${APT[@]}" pkgnames "linux-image-$version-" \
        | grep -E "^linux-image-${version//./\\.}-[0-9]+-$arch\$" | sort -V | tail -1):$arch")
    done
    if [ "$arch" = arm64 ]; then
      packages+=("$(apt-cache "${APT[@]}" pkgnames "linux-image-$ARM64_16K." \
        | grep -E "^linux-image-${ARM64_16K//./\\.}\.[0-9]+\+deb13-arm64-16k-unsigned\$" | sort -V | tail -1):arm64")
    fi
    unpack_debs "$root" "${packages[@]}"
    mkdir -p "$STATE/$arch"
    for version in "${KERNELS[@]}"; do
      local kernel
      kernel=$(ls "$root"/boot/vmlinuz-"$version"-*)
      place "$kernel" "$STATE/$arch/vmlinuz-${version%.0}"
    done
    if [ "$arch" = arm64 ]; then
      place "$(ls "$root"/boot/vmlinuz-"$ARM64_16K".*-arm64-16k)" "$STATE/$arch/vmlinuz-$ARM64_16K-16k"
    fi
    place "$root/bin/busybox" "$STATE/$arch/busybox"
    rm -rf "$root"
  done
}

# arm64 emulation for engines, as docker/setup-qemu-action gives CI runners: Debian 12's
# static qemu-aarch64 registered in binfmt_misc with qemu's own magic and mask for arm64
# and the F flag (the kernel opens the emulator now, so it runs inside containers, whose
# root has no qemu). Only on an x86 host, and only where no arm64 entry with F is there.
QEMU_AARCH64_MAGIC='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
QEMU_AARCH64_MASK='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
register_arm64_emulation() {
  local binfmt=/proc/sys/fs/binfmt_misc entry=/proc/sys/fs/binfmt_misc/qemu-aarch64
  [ "$(uname -m)" = x86_64 ] || return 0
  [ -e "$binfmt/register" ] || as_root mount -t binfmt_misc binfmt_misc "$binfmt"
  if [ -e "$entry" ] && grep -q '^flags: .*F' "$entry"; then return; fi
  if [ ! -s "$STATE/qemu-aarch64-static" ]; then
    say "fetching Debian's qemu-user-static for arm64 emulation into $STATE"
    private_apt
    fetch_file qemu-user-static:amd64 usr/bin/qemu-aarch64-static "$STATE/qemu-aarch64-static"
  fi
  say "registering $STATE/qemu-aarch64-static for arm64 programs in binfmt_misc"
  # An entry without F cannot run in containers: replaced.
  if [ -e "$entry" ]; then echo -1 | as_root tee "$entry" >/dev/null; fi
  echo ":qemu-aarch64:M::$QEMU_AARCH64_MAGIC:$QEMU_AARCH64_MASK:$STATE/qemu-aarch64-static:F" \
    | as_root tee "$binfmt/register" >/dev/null
}

# The binfmt_misc entries through which an arm64 host runs x86 programs, as Debian's
# qemu-user-binfmt for arm64 registers them, in $STATE/binfmt/: speck check's table of
# emulator entries (src/collect/executable.rs) is tested against them (tests/run.rs).
fetch_emulator_entries() {
  [ -s "$STATE/binfmt/qemu-x86_64.conf" ] && [ -s "$STATE/binfmt/qemu-i386.conf" ] && return
  say "fetching the binfmt_misc entries of Debian's qemu-user-binfmt for arm64 into $STATE/binfmt"
  private_apt
  mkdir -p "$STATE/binfmt"
  fetch_file qemu-user-binfmt:arm64 \
    usr/lib/binfmt.d/qemu-i386.conf "$STATE/binfmt/qemu-i386.conf" \
    usr/lib/binfmt.d/qemu-x86_64.conf "$STATE/binfmt/qemu-x86_64.conf"
}

# Docker's default seccomp profile, from the source of the docker.io installed here (Debian
# ships it in golang-github-docker-docker-dev), as $STATE/docker-seccomp.json:
# tests/forge.rs checks the arm64 programs' system calls against it, which docker runs
# here only under emulation, where its filter sees qemu's calls.
fetch_docker_seccomp() {
  [ -s "$STATE/docker-seccomp.json" ] && return
  local version
  version=$(dpkg-query -W -f='${source:Version}' docker.io)
  say "fetching docker.io $version's default seccomp profile into $STATE"
  private_apt
  fetch_file "golang-github-docker-docker-dev=$version" \
    usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json "$STATE/docker-seccomp.json"
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
  grep -qs '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
    && say "arm64 emulation: $(sed -n 's/^interpreter //p' /proc/sys/fs/binfmt_misc/qemu-aarch64)" \
    || { say "arm64 emulation: not registered"; ok=1; }
  [ -s "$STATE/docker-seccomp.json" ] && say "docker's seccomp profile: $STATE/docker-seccomp.json" \
    || { say "docker's seccomp profile: missing"; ok=1; }
  [ -s "$STATE/binfmt/qemu-x86_64.conf" ] && say "x86 emulator entries: $STATE/binfmt" \
    || { say "x86 emulator entries: missing"; ok=1; }
  for arch in "${LINUXES[@]}"; do
    ls "$STATE/$arch"/vmlinuz-* >/dev/null 2>&1 && say "$arch linux: $(cd "$STATE/$arch" && echo vmlinuz-*)" \
      || { say "$arch linux: missing"; ok=1; }
  done
  return $ok
}

mkdir -p "$STATE"
case "${1:-}" in
  up)
    install_missing
    fetch_linux
    register_arm64_emulation
    fetch_emulator_entries
    fetch_docker_seccomp
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
