#!/usr/bin/env bash
# The embedded default, end to end on one machine: install what is missing, build, start a
# private D-Bus and certseald with its state under .demo/, then walk one organisation's and
# one person's new-certificate application (新办) through every step with the sandbox
# gateways and virtual UKeys — apply, materials, submit, the SMS code, the payment QR
# code, the invoice, review, making the key, shipping, delivery — and end with the key
# made: its certificate, its e-seal, and a login with the certificate password that was
# delivered by SMS. Then the clock moves (a restart with CERTSEAL_TEST_NOW, test mode): the
# expiry reminder SMS, the organisation's key renewed (更新) from the desktop — the new
# validity, the new seal, and a login with the unchanged PIN; then the person's key, locked
# by wrong PINs, is unlocked (解锁) with the authorization code sent to the verified phone.
# Then the organisation changes its name (信息变更): a new certificate and e-seal with the
# new name on the same key (the seal's picture saved), the old certificate in the CRL.
# Last, the person follows their orders by a code sent to their phone (订单查询) and saves
# an invoice again; the organisation's key is lost, and a reissue (丢失补办) revokes its
# certificate and makes a new key. Then stop everything it started.
#
# CERTSEAL_SKIP_INSTALL=1 skips the package check; CERTSEAL_BUILD_DIR=DIR uses an
# existing build instead of building into build/; CERTSEAL_DEMO_DIR=DIR keeps the demo's
# state, files and log there instead of .demo/.
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
  exec dbus-run-session -- bash "$top/$(basename "$0")" "$@"
fi

demo_dir=${CERTSEAL_DEMO_DIR:-$top/.demo}
state=$demo_dir/state
files=$demo_dir/files
rm -rf "$state" "$files"
mkdir -p "$state" "$files"
log=$demo_dir/certseald.log
# The development configuration, without the minute a phone must wait between two SMS:
# one person receives several codes in a row here, which in real life are minutes apart.
conf=$demo_dir/certseald.conf
{ cat "$build/certseal-dev.conf"; printf '\n[sms]\nresend_cooldown_s = 0\n'; } >"$conf"
py=/usr/bin/python3

# Two blank virtual UKeys of demo vendor A (SoftHSM2 tokens behind drivers/vkey), as the
# maker has them on the shelf: one for each application.
org_key=DEMOORG01
person_key=DEMOPER01
for serial in "$org_key" "$person_key"; do
  "$build/cli/certseal-vkey" --state-dir "$state" create --vendor demo-a --serial "$serial" \
    --blank >/dev/null
done

daemon=
cleanup() {
  if [ -n "$daemon" ]; then
    kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
  fi
  daemon=
}
trap cleanup EXIT
start_daemon() {
  "$build/daemon/certseald" --session --state-dir "$state" --config "$conf" \
    >>"$log" 2>&1 &
  daemon=$!
  for _ in $(seq 100); do
    busctl --user status org.certseal.CertSeal1 >/dev/null 2>&1 && [ -f "$state/office/info.json" ] && break
    kill -0 "$daemon" 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.1
  done
}
: >"$log"
start_daemon

certseal() { "$build/cli/certseal" --session "$@"; }
office() { "$build/cli/certseal-office" --state-dir "$state" "$@"; }
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

# The order's state now, and the rows of `certseal order show` named (Invoice, Password…).
show_state() { # ORDER_ID [ROW…]
  local id=$1 rows
  shift
  rows=$(IFS='|'; echo "State${*:+|$*}")
  certseal order show "$id" | sed -n -E "s/^  ($rows): +/  \1: /p"
}

# The secret a sandbox SMS carries (its text ends with " code: SECRET"): the newest one sent
# to PHONE with one of the TEMPLATES — where the handler or the legal representative would
# read it on their phone.
outbox_secret() { # PHONE TEMPLATE…
  office --json sms outbox | "$py" -c '
import json, re, sys
phone, templates = sys.argv[1], sys.argv[2:]
for m in reversed(json.load(sys.stdin)):
    t = re.match(r"\[(\w+)\]", m["text"])
    c = re.search(r"code: (\S+)$", m["text"])
    if m["to"].endswith(phone) and t and t.group(1) in templates and c:
        print(c.group(1))
        break
else:
    sys.exit("no such message in the sandbox SMS outbox")' "$@"
}

# Run COMMAND… with its stdin fed the code of TEMPLATE that reaches PHONE while it runs
# (the person reading the SMS and typing it); its output is shown, its exit status kept.
with_code() { # PHONE TEMPLATE COMMAND…
  local phone=$1 template=$2 before code pid rc=0
  shift 2
  before=$(outbox_secret "$phone" "$template" 2>/dev/null || true)
  rm -f "$files/code.in"
  mkfifo "$files/code.in"
  "$@" <"$files/code.in" >"$files/code.out" 2>&1 &
  pid=$!
  exec 3>"$files/code.in"
  for _ in $(seq 300); do
    code=$(outbox_secret "$phone" "$template" 2>/dev/null) && [ "$code" != "$before" ] && break
    code=""
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$code" ] && printf '%s\n' "$code" >&3
  exec 3>&-
  wait "$pid" || rc=$?
  cat "$files/code.out"
  return "$rc"
}

step "certseal status"
certseal status

step "certseal keys (two blank USB keys of vendor demo-a, waiting to be made)"
for _ in $(seq 50); do
  [ "$(certseal --json keys | grep -o '"Serial"' | wc -l)" -ge 2 ] && break
  sleep 0.1
done
certseal keys

# The materials: a small PNG standing for each scan, and the daemon's own blank seal
# sample forms (certseal form), as they would come back scanned.
"$py" - "$files/scan.png" <<'EOF'
import struct, sys, zlib
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
rows = b"".join(b"\x00" + bytes([200, 30, 30]) * 8 for _ in range(8))
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)) +
       chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
open(sys.argv[1], "wb").write(png)
EOF
step "certseal form seal_form_org|seal_form_person (the blank seal sample forms)"
certseal form seal_form_org --output "$files/seal_form_org.pdf"
certseal form seal_form_person --output "$files/seal_form_person.pdf"

# An organisation whose legal representative receives the certificate password by SMS,
# and a person who receives it on their own phone.
org_handler_phone=13800138000
org_legal_rep_phone=13900139000
person_phone=13700137000
cat >"$files/org.json" <<EOF
{"vendor": "demo-a", "auth_method": "legal_rep_phone", "email": "ops@example.cn",
 "address": "福建省厦门市思明区软件园二期望海路 1 号", "postcode": "361000",
 "org_name": "厦门示例科技有限公司", "uscc": "91350200776049653A",
 "legal_rep_name": "张三", "legal_rep_id": "11010519491231002X",
 "legal_rep_phone": "$org_legal_rep_phone", "handler_name": "李四",
 "handler_id": "110105200002290021", "handler_phone": "$org_handler_phone",
 "handler_auth_method": "handler_phone"}
EOF
cat >"$files/person.txt" <<EOF
# key=value lines work as well as JSON
vendor = demo-a
auth_method = phone
name = 王五
id_number = 440524188001010014
phone = $person_phone
email = wangwu@example.cn
address = 北京市西城区示例胡同 2 号
postcode = 100032
EOF

step "A mistyped resident ID is refused, naming the field"
sed 's/440524188001010014/110105194912310021/' "$files/person.txt" >"$files/typo.txt"
certseal apply --subject person --fields "$files/typo.txt" --yes 2>&1 || true

# One application through every step, printing each state the order reaches.
walk() { # SUBJECT FIELDS KEY SMS_PHONE PIN_PHONE MATERIAL…
  local subject=$1 fields=$2 key=$3 sms_phone=$4 id
  shift 4
  local materials=()
  for m in "$@"; do materials+=(--material "$m"); done

  step "certseal apply --subject $subject --fields ${fields##*/} --material … --yes"
  certseal apply --subject "$subject" --fields "$fields" "${materials[@]}" --yes |
    tee "$files/apply-$subject.out"
  id=$(sed -n -E 's/.*\(order (CS[0-9A-Za-z]+)\).*/\1/p' "$files/apply-$subject.out")

  step "The handler types the SMS code (from the sandbox outbox): certseal order verify $id"
  outbox_secret "$sms_phone" sms_code | certseal order verify "$id" >/dev/null
  show_state "$id"

  step "certseal order pay $id --channel sandbox"
  certseal order pay "$id" --channel sandbox

  step "The cashier confirms the sandbox payment: certseal-office pay-notify $id"
  office pay-notify "$id" --channel sandbox >/dev/null
  show_state "$id" Invoice "Due by"

  step "certseal order invoice $id --output invoice-$subject.pdf"
  certseal order invoice "$id" --output "$files/invoice-$subject.pdf"

  step "The reviewer approves: certseal-office review approve $id"
  office review approve "$id" --note "材料齐全 materials complete" >/dev/null
  show_state "$id" Review Password

  step "The maker makes the key: certseal-office make $id --key $key"
  office make "$id" --key "$key"

  step "The shipper ships and the key is delivered: certseal-office ship|deliver $id"
  office ship "$id" --tracking "SF$(date +%s)${subject:0:1}" >/dev/null
  show_state "$id" Tracking
  office deliver "$id" >/dev/null
  show_state "$id"
}

walk org "$files/org.json" "$org_key" "$org_handler_phone" \
  "business_license=$files/scan.png" "handler_id_front=$files/scan.png" \
  "handler_id_back=$files/scan.png" "seal_form=$files/seal_form_org.pdf"
walk person "$files/person.txt" "$person_key" "$person_phone" \
  "id_front=$files/scan.png" "id_back=$files/scan.png" "seal_form=$files/seal_form_person.pdf"

step "certseal keys (the two keys, made)"
certseal keys

step "The certificate on $org_key (its Certificate property)"
key_path=$(certseal --json keys | "$py" -c '
import json, sys
print(next(k["Path"] for k in json.load(sys.stdin) if k["Serial"] == sys.argv[1]))' "$org_key")
busctl --user --json=short get-property org.certseal.CertSeal1 "$key_path" \
  org.certseal.CertSeal1.Key Certificate |
  "$py" -c 'import json, sys; sys.stdout.buffer.write(bytes(json.load(sys.stdin)["data"]))' \
    >"$files/$org_key.der"
openssl x509 -inform DER -in "$files/$org_key.der" -noout -subject -issuer -serial -dates \
  -nameopt utf8,sep_comma_plus_space

step "certseal seal show: the e-seal on $org_key (certseal seal read --key $org_key)"
certseal seal read --key "$org_key" --output "$files/$org_key.seal" >/dev/null
certseal seal show "$files/$org_key.seal"
certseal seal verify "$files/$org_key.seal" --state-dir "$state"

step "certseal login $org_key, with the certificate password the legal representative received"
outbox_secret "$org_legal_rep_phone" password review_approved | certseal login "$org_key"

step "certseal logout: the key is put away; a year goes by"
busctl --user call org.certseal.CertSeal1 "$key_path" org.certseal.CertSeal1.Key Logout

# 60 days before the end: the business clock moves (test mode only), time runs on from there.
not_after=$(openssl x509 -inform DER -in "$files/$org_key.der" -noout -enddate | cut -d= -f2)
days=$(( ($(date -d "$not_after" +%s) - $(date +%s)) / 86400 - 60 ))
step "The clock moves: certseald restarted with CERTSEAL_TEST_NOW=+${days}d (60 days left)"
cleanup
# The office front's endpoint file is written again by the new daemon.
rm -f "$state/office/info.json"
CERTSEAL_TEST_NOW=+${days}d start_daemon
grep -o 'test mode: CERTSEAL_TEST_NOW=[^;]*' "$log" | tail -1

step "The expiry reminder the handler received (sandbox SMS outbox)"
for _ in $(seq 50); do
  office --json sms outbox | grep -q expiry_reminder && break
  sleep 0.1
done
office --json sms outbox | "$py" -c '
import json, sys
for m in json.load(sys.stdin):
    if m["text"].startswith("[expiry_reminder]") and m["to"].endswith(sys.argv[1]):
        print(m["to"], m["text"])' "$org_handler_phone"

step "Only the key to renew is inserted (只插一枚): the person's key is pulled"
"$build/cli/certseal-vkey" --state-dir "$state" unplug "$person_key"
for _ in $(seq 50); do
  [ "$(certseal --json keys | grep -o '"Serial"' | wc -l)" -eq 1 ] && break
  sleep 0.1
done
certseal keys

printf '%s\n' "email = ops@example.cn" "address = 福建省厦门市思明区软件园二期望海路 1 号" \
  "postcode = 361000" "handler_name = 李四" "handler_phone = $org_handler_phone" \
  >"$files/renew.txt"
step "certseal renew --key $org_key (login with the certificate password, confirm)"
renew_out=$(outbox_secret "$org_legal_rep_phone" password review_approved |
  certseal --json renew --key "$org_key" --fields "$files/renew.txt" --yes)
echo "$renew_out"
renew_id=$("$py" -c 'import json, sys; print(json.loads(sys.argv[1])["order"])' "$renew_out")
show_state "$renew_id" Amount
step "The cashier confirms the sandbox payment: certseal-office pay-notify $renew_id"
certseal order pay "$renew_id" --channel sandbox >/dev/null
office pay-notify "$renew_id" --channel sandbox >/dev/null
show_state "$renew_id"

step "certseal order download $renew_id --key $org_key (下载证书及印章)"
certseal order download "$renew_id" --key "$org_key" | sed -n -E 's/^  (State|Progress): +/  \1: /p'

step "The renewed certificate on $org_key: valid from now, its end carried on (顺延)"
busctl --user --json=short get-property org.certseal.CertSeal1 "$key_path" \
  org.certseal.CertSeal1.Key Certificate |
  "$py" -c 'import json, sys; sys.stdout.buffer.write(bytes(json.load(sys.stdin)["data"]))' \
    >"$files/$org_key-renewed.der"
openssl x509 -inform DER -in "$files/$org_key-renewed.der" -noout -serial -dates

step "The new e-seal (the old picture, the new certificate), checked at the moved date"
certseal seal read --key "$org_key" --output "$files/$org_key-renewed.seal" >/dev/null
certseal seal show "$files/$org_key-renewed.seal"
certseal seal verify "$files/$org_key-renewed.seal" --state-dir "$state" --at "+${days}d"

step "certseal login $org_key again: the PIN did not change (证书密码不变)"
busctl --user call org.certseal.CertSeal1 "$key_path" org.certseal.CertSeal1.Key Logout
outbox_secret "$org_legal_rep_phone" password review_approved | certseal login "$org_key"

step "The person's key is inserted again"
"$build/cli/certseal-vkey" --state-dir "$state" plug "$person_key"
for _ in $(seq 50); do
  [ "$(certseal --json keys | grep -o '"Serial"' | wc -l)" -eq 2 ] && break
  sleep 0.1
done

# Unlock (解锁, the manual's section 3): the person forgets the PIN and locks the key with
# wrong ones; the identity check (sandbox) verifies their phone, the authorization code
# arrives there by SMS, and the PIN is reset with the key's SO PIN from the vault.
step "The person's key $person_key locked by wrong PINs"
for _ in $(seq 6); do
  echo 000000 | certseal login "$person_key" >/dev/null 2>&1 || true
done
certseal keys | sed -n -E "1p;/$person_key/p"

step "Only the key to unlock stays inserted (the manual: 只插一枚 UK): $org_key pulled out"
"$build/cli/certseal-vkey" --state-dir "$state" unplug "$org_key"
for _ in $(seq 50); do
  [ "$(certseal --json keys | grep -o '"Serial"' | wc -l)" -eq 1 ] && break
  sleep 0.1
done

printf 'name = 王五\nid_number = 440524188001010014\nphone = %s\n' "$person_phone" \
  >"$files/unlock.txt"
step "certseal unlock --key $person_key --subject person --method phone --fields unlock.txt"
rm -f "$files/unlock.in"
mkfifo "$files/unlock.in"
certseal unlock --key "$person_key" --subject person --method phone --fields "$files/unlock.txt" \
  <"$files/unlock.in" >"$files/unlock.out" 2>&1 &
unlock_pid=$!
exec 3>"$files/unlock.in"
code=""
for _ in $(seq 100); do
  code=$(outbox_secret "$person_phone" auth_code 2>/dev/null) && break
  sleep 0.1
done
[ -n "$code" ] || { exec 3>&-; wait "$unlock_pid" || true; cat "$files/unlock.out"; exit 1; }
echo "(the authorization code $code arrived by SMS at $person_phone; the new PIN is 246810)"
printf '%s\n246810\n246810\n' "$code" >&3
exec 3>&-
wait "$unlock_pid"
cat "$files/unlock.out"
certseal keys | sed -n -E "1p;/$person_key/p"

step "certseal login $person_key, with the new PIN"
echo 246810 | certseal login "$person_key"

# Information change (信息变更, the manual's section 5): the organisation changes its name;
# a new certificate and a new e-seal with the new name go on the same key, the old
# certificate is revoked (affiliationChanged) and the registry holds the new name.
step "Only the organisation's key is inserted for the change: $person_key pulled, $org_key back"
"$build/cli/certseal-vkey" --state-dir "$state" unplug "$person_key"
"$build/cli/certseal-vkey" --state-dir "$state" plug "$org_key"
for _ in $(seq 50); do
  [ "$(certseal --json keys | grep -o '"Serial"' | wc -l)" -eq 1 ] &&
    certseal --json keys | grep -q "$org_key" && break
  sleep 0.1
done
outbox_secret "$org_legal_rep_phone" password review_approved | certseal login "$org_key"
old_serial=$(busctl --user get-property org.certseal.CertSeal1 "$key_path" \
  org.certseal.CertSeal1.Key CertificateSerial | sed -E 's/^s "(.*)"$/\1/')

printf 'org_name = 厦门示例新名科技有限公司\n' >"$files/change.txt"
step "certseal change --key $org_key --fields change.txt --material business_license=scan.png"
with_code "$org_handler_phone" sms_code \
  certseal change --key "$org_key" --fields "$files/change.txt" \
  --material "business_license=$files/scan.png" --yes | tee "$files/change.out"
change_id=$(sed -n -E 's/^create → (CS[0-9]+)$/\1/p' "$files/change.out")

step "The reviewer approves the new business licence: certseal-office review approve $change_id"
office review approve "$change_id" >/dev/null
show_state "$change_id"

step "certseal order download $change_id --key $org_key (the new certificate and e-seal)"
certseal order download "$change_id" --key "$org_key" | sed -n -E 's/^  (State|Progress): +/  \1: /p'

step "The new certificate on $org_key: the new name, the old end (not extended)"
busctl --user --json=short get-property org.certseal.CertSeal1 "$key_path" \
  org.certseal.CertSeal1.Key Certificate |
  "$py" -c 'import json, sys; sys.stdout.buffer.write(bytes(json.load(sys.stdin)["data"]))' \
    >"$files/$org_key-changed.der"
openssl x509 -inform DER -in "$files/$org_key-changed.der" -noout -nameopt utf8 -subject -dates

step "The new e-seal: the new name, its picture drawn with it"
certseal seal read --key "$org_key" --output "$files/$org_key-changed.seal" >/dev/null
certseal seal show "$files/$org_key-changed.seal" --picture "$files/$org_key-changed-seal.png"
echo "the new seal's picture is saved in $files/$org_key-changed-seal.png"

step "The old certificate $old_serial in the CRL (affiliationChanged)"
office ca crl --vendor demo-a | openssl crl -noout -text |
  grep -i -A4 "Serial Number: *0*$old_serial" || true

# Order query (订单查询, the manual's section 4): the person follows their orders with a
# code sent to the phone on file, and saves an invoice again.
person_id=440524188001010014
step "certseal query --subject person --id $person_id (订单查询, the code to the phone on file)"
with_code "$person_phone" query_code \
  certseal query --subject person --id "$person_id" | tee "$files/query.out"
person_order=$(sed -n -E 's/^(CS[0-9A-Za-z]+) +new .*/\1/p' "$files/query.out" | head -1)
step "certseal order invoice $person_order --output invoice-again.pdf"
certseal order invoice "$person_order" --output "$files/invoice-again.pdf"

# Replacement after loss (丢失补办, the manual's section 6): the organisation's key is lost.
# A code to the handler's phone shows the subject's certificates; the reissue is created
# from the same command, since what the code opens belongs to that connection. The lost
# key's certificate is revoked (keyCompromise) as soon as the order's SMS code is verified;
# a new key is made, shipped, and opens with the password sent to the legal representative.
org_id=91350200776049653A
step "The organisation's key $org_key is lost: certseal query --subject org --id $org_id --certificates"
"$build/cli/certseal-vkey" --state-dir "$state" unplug "$org_key"
with_code "$org_handler_phone" query_code \
  certseal query --subject org --id "$org_id" --certificates | tee "$files/query-org.out"
lost_serial=$(sed -n -E 's/^([0-9A-F]{32}) +demo-a +valid .*/\1/p' "$files/query-org.out" | head -1)
[ -n "$lost_serial" ] || { echo "no valid certificate found"; exit 1; }

step "certseal reissue --subject org --id $org_id --serial $lost_serial --reason lost"
with_code "$org_handler_phone" query_code \
  certseal reissue --subject org --id "$org_id" --serial "$lost_serial" --reason lost |
  tee "$files/reissue.out"
reissue_id=$(sed -n -E 's/^Order (CS[0-9A-Za-z]+) created.*/\1/p' "$files/reissue.out")

step "certseal order continue $reissue_id: confirm the details on file"
certseal order continue "$reissue_id" >/dev/null
show_state "$reissue_id"
step "certseal order attach $reissue_id …: the licence, the handler's ID card, the seal form"
for m in business_license handler_id_front handler_id_back; do
  certseal order attach "$reissue_id" "$m" "$files/scan.png" >/dev/null
done
certseal order attach "$reissue_id" seal_form "$files/seal_form_org.pdf" >/dev/null
certseal order submit "$reissue_id" >/dev/null
show_state "$reissue_id"
step "The handler types the SMS code: certseal order continue $reissue_id (the lost key stops working)"
outbox_secret "$org_handler_phone" sms_code | certseal order continue "$reissue_id" >/dev/null
show_state "$reissue_id"
office ca crl --vendor demo-a | openssl crl -noout -text |
  grep -i -A4 "Serial Number: *0*$lost_serial" || true

step "certseal order pay $reissue_id, confirmed by the cashier; the reviewer approves"
certseal order pay "$reissue_id" --channel sandbox >/dev/null
office pay-notify "$reissue_id" --channel sandbox >/dev/null
office review approve "$reissue_id" >/dev/null
show_state "$reissue_id" Password

new_key=DEMOORG02
step "The maker makes the new key $new_key, it is shipped and delivered"
"$build/cli/certseal-vkey" --state-dir "$state" create --vendor demo-a --serial "$new_key" \
  --blank >/dev/null
for _ in $(seq 50); do
  certseal --json keys | grep -q "$new_key" && break
  sleep 0.1
done
office make "$reissue_id" --key "$new_key"
office ship "$reissue_id" --tracking "SF$(date +%s)r" >/dev/null
office deliver "$reissue_id" >/dev/null
show_state "$reissue_id"
certseal keys

step "certseal login $new_key, with the password sent to the legal representative"
outbox_secret "$org_legal_rep_phone" password review_approved | certseal login "$new_key"

step "Stopping"
cleanup
trap - EXIT
echo "certseald stopped; its log is in $log"
