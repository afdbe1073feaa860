#!/usr/bin/env bash
# Installs what Slipway's tests need beyond Go: Debian packages, Debian's
# static arm64 busybox (the offline base image for multi-platform builds) and
# qemu's binfmt registration so BuildKit can run arm64 steps.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "deps: need root to $*" >&2
    exit 1
  fi
}

# "build" installs only what building runc with seccomp and running builds on
# their bridge network (iptables) need (make build, make run); no argument
# installs everything the tests need as well.
mode=${1:-test}
need=()
command -v gcc >/dev/null || need+=(gcc)
command -v pkg-config >/dev/null || need+=(pkg-config)
dpkg -s libseccomp-dev >/dev/null 2>&1 || need+=(libseccomp-dev)
dpkg -s iptables >/dev/null 2>&1 || need+=(iptables)
if [ "$mode" != build ]; then
  command -v git >/dev/null || need+=(git)
  command -v ip >/dev/null || need+=(iproute2) # test bridges
  # ca-certificates: the CA bundle the self-build test puts in its golang image.
  for pkg in busybox-static qemu-user-static ca-certificates; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  # The dashboard's browser test drives Debian's headless Chromium.
  [ -x /usr/bin/chromium ] || need+=(chromium)
fi
if [ ${#need[@]} -gt 0 ]; then
  as_root "install ${need[*]}"
  echo "deps: installing ${need[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi

[ "$mode" = build ] && exit 0

# arm64 busybox, unpacked from Debian's package into bin/.
if [ ! -x bin/busybox-arm64 ]; then
  as_root "fetch busybox-static:arm64"
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
    apt-get update -q
  fi
  tmp=$(mktemp -d)
  chmod 755 "$tmp" # apt's download user must be able to write here
  (cd "$tmp" && apt-get download -q busybox-static:arm64 || { apt-get update -q && apt-get download -q busybox-static:arm64; })
  dpkg-deb -x "$tmp"/busybox-static_*_arm64.deb "$tmp/x"
  mkdir -p bin
  cp "$tmp/x/bin/busybox" bin/busybox-arm64
  rm -rf "$tmp"
fi

# qemu-aarch64 in binfmt_misc (no systemd here to do it at boot).
binfmt=/proc/sys/fs/binfmt_misc
if [ ! -e "$binfmt/qemu-aarch64" ]; then
  as_root "register qemu-aarch64 with binfmt_misc"
  [ -e "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt"
  cat /usr/lib/binfmt.d/qemu-aarch64.conf > "$binfmt/register"
fi
echo "deps: ready (git, busybox amd64+arm64, qemu-aarch64 binfmt, libseccomp, iptables, chromium)"
