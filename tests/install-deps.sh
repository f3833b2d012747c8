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
  # The desktop assistant and its tests: a real window under Xvfb, driven through AT-SPI.
  libgtk-4-dev libadwaita-1-dev gettext xvfb xauth x11-utils xdotool at-spi2-core
  python3-pyatspi python3-dogtail imagemagick desktop-file-utils appstream-util locales
)

# The assistant speaks Chinese by default and English with LANG=en_US.UTF-8: both locales.
need_locales() {
  ! { locale -a 2>/dev/null | grep -qix 'zh_CN.utf8' && locale -a 2>/dev/null | grep -qix 'en_US.utf8'; }
}
make_locales() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo sed -i -E 's/^# *(zh_CN\.UTF-8 UTF-8|en_US\.UTF-8 UTF-8)/\1/' /etc/locale.gen
  grep -qx 'zh_CN.UTF-8 UTF-8' /etc/locale.gen || echo 'zh_CN.UTF-8 UTF-8' | $sudo tee -a /etc/locale.gen >/dev/null
  grep -qx 'en_US.UTF-8 UTF-8' /etc/locale.gen || echo 'en_US.UTF-8 UTF-8' | $sudo tee -a /etc/locale.gen >/dev/null
  $sudo locale-gen >/dev/null
}

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  if need_locales; then make_locales; fi
  exit 0
fi

echo "Installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if need_locales; then make_locales; fi
