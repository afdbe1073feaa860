#!/usr/bin/env bash
# Installs the Debian packages Slipway's tests need, when they are missing.
set -euo pipefail
need=()
command -v git >/dev/null || need+=(git)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
dpkg -s qemu-user-static >/dev/null 2>&1 || need+=(qemu-user-static)
dpkg -s libseccomp-dev >/dev/null 2>&1 || need+=(libseccomp-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v gcc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: need root to install: ${need[*]}" >&2
    exit 1
  fi
  echo "deps: installing ${need[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi
