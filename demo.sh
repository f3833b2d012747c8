#!/usr/bin/env bash
# The embedded default, end to end on one machine: install what is missing, build, start a
# private D-Bus and certseald with its state under .demo/, show what it serves, fill in and
# confirm a person's new-certificate application, then stop everything it started.
#
# CERTSEAL_SKIP_INSTALL=1 skips the package check; CERTSEAL_BUILD_DIR=DIR uses an
# existing build instead of building into build/; CERTSEAL_DEMO_DIR=DIR keeps the demo's
# state and log there instead of .demo/.
set -euo pipefail
cd "$(dirname "$0")"
top=$PWD

if [ -z "${CERTSEAL_SKIP_INSTALL:-}" ]; then
  tests/install-deps.sh
fi
build=${CERTSEAL_BUILD_DIR:-$top/build}
if [ -z "${CERTSEAL_BUILD_DIR:-}" ]; then
  [ -f build/build.ninja ] || meson setup build >/dev/null
  ninja -C build >/dev/null
fi

if [ -z "${CERTSEAL_DEMO_INNER:-}" ]; then
  # A private session bus that dbus-run-session tears down when we are done.
  export CERTSEAL_DEMO_INNER=1 CERTSEAL_BUILD_DIR=$build CERTSEAL_SKIP_INSTALL=1
  exec dbus-run-session -- "$0" "$@"
fi

demo_dir=${CERTSEAL_DEMO_DIR:-$top/.demo}
state=$demo_dir/state
rm -rf "$state"
mkdir -p "$state"
log=$demo_dir/certseald.log

# Two virtual UKeys of the two demo vendors (SoftHSM2 tokens behind drivers/vkey), as if a
# user had one key of each vendor at hand.
"$build/cli/certseal-vkey" --state-dir "$state" create --vendor demo-a --serial DEMOA0001 >/dev/null
"$build/cli/certseal-vkey" --state-dir "$state" create --vendor demo-b --serial DEMOB0001 >/dev/null

"$build/daemon/certseald" --session --state-dir "$state" --config "$build/certseal-dev.conf" \
  >"$log" 2>&1 &
daemon=$!
cleanup() {
  kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
}
trap cleanup EXIT

for _ in $(seq 100); do
  busctl --user status org.certseal.CertSeal1 >/dev/null 2>&1 && break
  kill -0 "$daemon" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done

certseal() { "$build/cli/certseal" --session "$@"; }
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

step "certseal status"
certseal status

step "certseal keys (the USB keys inserted: vendor, serial, certificate, PIN tries)"
for _ in $(seq 50); do
  [ "$(certseal --json keys | grep -o '"Serial"' | wc -l)" -ge 2 ] && break
  sleep 0.1
done
certseal keys

step "A person applies for a new certificate (新办) with the demo vendor B"
path=$(busctl --user call org.certseal.CertSeal1 /org/certseal/CertSeal1 \
  org.certseal.CertSeal1.Manager CreateOrder 'ssa{sv}' new person 8 \
  vendor s demo-b auth_method s phone name s 张三 id_number s 110105200002290021 \
  phone s 13800138000 email s zhangsan@example.com address s "福州市鼓楼区五四路 1 号" \
  postcode s 350001 | awk '{print $2}' | tr -d '"')
id=${path##*/}
certseal order show "$id"

step "A mistyped resident ID is refused, naming the field"
busctl --user call org.certseal.CertSeal1 "$path" org.certseal.CertSeal1.Order Update \
  'a{sv}' 1 id_number s 110105194912310021 2>&1 || true

step "certseal order confirm $id"
certseal order confirm "$id"

step "certseal orders"
certseal orders

step "Stopping"
cleanup
trap - EXIT
echo "certseald stopped; its log is in $log"
