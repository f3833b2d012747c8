#!/usr/bin/env bash
# Install what certseal needs to build, test and run its demo on Debian 12.
# Idempotent: does nothing when every package is already there.
set -euo pipefail

packages=(
  meson ninja-build pkg-config gcc clang-format git
  libglib2.0-dev libsystemd-dev libsqlite3-dev libssl-dev
  libpango1.0-dev libcairo2-dev fonts-wqy-microhei poppler-utils
  libqrencode-dev zbar-tools
  dbus systemd sqlite3 valgrind polkitd util-linux libxml2-utils
  python3 python3-dbus python3-gi python3-pytest python3-jsonschema
  softhsm2 libp11-dev libp11-kit-dev openssl binutils opensc
  libzmq3-dev libjson-glib-dev python3-zmq python3-cryptography clang libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
