"""
The information change flow (信息变更, docs/architecture.md §1.5, the manual's section 5)
against the real daemon, virtual UKeys and the embedded CA. Keys are made through the new
flow first (the platform's own certificate, registry and certificate password).
"""

import datetime
import json
import os

import dbus
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from conftest import (DEV_CONF, KEY_IFACE, ORDERS_PATH, Bus, ClockDaemon, Client, dbus_error, key_path, run_cli,
                      run_until, short_tmpdir, vkey, write_config)
from flow_helpers import attach_bytes, blank_key, key_certificate, make_png, secret_of
from office_helpers import office_info
from flow_helpers import Office
from test_reissue import Reissue, query
from test_renew import (DAY, ERR_ACCESS_DENIED, ERR_INVALID_INPUT, ERR_NOT_ELIGIBLE,
                        World, cert_rows, check_ledger, create_renewal, download, epoch,
                        foreign_key, hexserial, login, made_key, seal_file, valid_certs_of,
                        wait_key, wait_state)

ORDER_IFACE = "org.certseal.CertSeal1.Order"


class ChangeWorld(World):
    """The renewal tests' world with the SMS resend cooldown off: the change order's code
    goes to the phone the new order's code went to a moment before."""

    def __init__(self):
        config = write_config(os.path.join(short_tmpdir("cschange-"), "change.conf"), DEV_CONF,
                              sms={"resend_cooldown_s": "0", "daily_cap": "1000"})
        self.bus = Bus()
        self.daemon = ClockDaemon(self.bus, config=config)
        self.daemon.start()
        office_info(self.daemon.state_dir)
        self.office = Office(self.daemon.state_dir)
        self.client = Client(self.bus)
        self.n = 800


@pytest.fixture
def world():
    w = ChangeWorld()
    try:
        yield w
    finally:
        w.close()


def number_field(a):
    return "uscc" if a.subject == "org" else "id_number"


def name_field(a):
    return "org_name" if a.subject == "org" else "name"


def contact_field(a):
    return "handler_phone" if a.subject == "org" else "phone"


def create_change(w, a, serial, **extra):
    return w.client.create_order("change", a.subject,
                                 dict(extra, key=dbus.ObjectPath(key_path(serial))))


def verify_phone(w, order, phone):
    """SendSmsCode reaches @phone; VerifySmsCode with its code."""
    mark = w.office.mark("sms")
    masked = w.client.call(order.path, ORDER_IFACE, "SendSmsCode", "", ())
    assert masked.startswith(phone[:3]) and masked.endswith(phone[-4:]), masked
    msg = w.office.wait_message("sms", to=phone, template="sms_code", after=mark)
    w.client.call(order.path, ORDER_IFACE, "VerifySmsCode", "s", (secret_of(msg),))
    assert order.state == "draft"


def call(w, order, method):
    w.client.call(order.path, ORDER_IFACE, method, "", ())


def review(w, order, decision, note=None):
    args = ["review", decision, order.id] + (["--note", note] if note else [])
    out = w.office.ok(*args)
    assert out.get("committed") is True, out


def crl_reason(w, serial_number):
    pem = w.office.ok("ca", "crl", "--vendor", "demo-a")
    text = pem[0]["pem"] if isinstance(pem, list) else pem
    crl = x509.load_pem_x509_crl(text.encode())
    entry = crl.get_revoked_certificate_by_serial_number(serial_number)
    assert entry is not None, "not in the CRL"
    return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason


def check_changed(w, a, serial, old, new_name, tmp_dir):
    """The key holds a new certificate with @new_name, ending when the old one did, and a new
    seal with that name; the old certificate is revoked affiliationChanged and in the CRL."""
    path = key_path(serial)
    assert run_until(lambda: w.client.get(path, KEY_IFACE, "CertificateSerial").upper()
                     .lstrip("0") != f"{old.serial_number:X}", 5.0)
    new = x509.load_der_x509_certificate(key_certificate(w.client, path))
    assert new.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == new_name
    assert new_name not in old.subject.rfc4514_string()
    assert epoch(new.not_valid_after) == epoch(old.not_valid_after)
    assert new.not_valid_before >= old.not_valid_before
    rows = cert_rows(w.daemon.state_dir, {hexserial(old), hexserial(new)})
    assert rows[hexserial(old)] == ("revoked", "affiliationChanged"), rows
    assert rows[hexserial(new)][0] == "valid", rows
    assert valid_certs_of(w.daemon.state_dir, a.fields[number_field(a)]) == [hexserial(new)]
    assert crl_reason(w, old.serial_number) == x509.ReasonFlags.affiliation_changed
    seal = seal_file(w, serial, tmp_dir, "changed")
    cp = run_cli(w.bus, "--json", "seal", "verify", seal, "--state-dir", w.daemon.state_dir)
    assert cp.returncode == 0 and json.loads(cp.stdout)["valid"] is True, cp.stdout + cp.stderr
    shown = run_cli(w.bus, "--json", "seal", "show", seal).stdout
    assert new_name in shown, shown
    # The PIN did not change.
    w.client.call(path, KEY_IFACE, "Logout", "", ())
    w.client.call(path, KEY_IFACE, "Login", "s", (a.pin,))
    return new


@pytest.mark.parametrize("subject", ["org", "person"])
def test_a_name_change_gives_a_new_certificate_and_seal(world, subject, tmp_dir):
    w = world
    serial = f"CH{subject[0].upper()}001"
    a, old = made_key(w, subject, serial)
    login(w, serial, a.pin)
    order = create_change(w, a, serial)
    assert order.state == "draft"
    fields = order.get("Fields")
    # Pre-filled from the certificate and the registry.
    assert fields["certificate_serial"] == hexserial(old)
    assert fields[number_field(a)] == a.fields[number_field(a)]
    assert fields[name_field(a)] == a.fields[name_field(a)]
    assert fields[contact_field(a)] == a.fields[contact_field(a)]
    assert order.get("AmountFen") == 0
    # The number never changes; what was on file neither.
    other = "91350200776049653A" if subject == "org" else "11010519491231002X"
    with dbus_error(ERR_INVALID_INPUT, number_field(a), "apply anew"):
        order.update({number_field(a): other})
    with dbus_error(ERR_INVALID_INPUT, f"previous_{name_field(a)}"):
        order.update({f"previous_{name_field(a)}": "别的名字"})
    new_name = "厦门新名科技有限公司" if subject == "org" else "王新名"
    new_phone = "13512345678"
    order.update({name_field(a): new_name, contact_field(a): new_phone})
    # Confirm needs the phone on file proved first; the code goes to the old phone.
    with dbus_error(ERR_ACCESS_DENIED, "SMS code"):
        order.confirm()
    verify_phone(w, order, a.fields[contact_field(a)])
    order.confirm()
    assert order.state == "confirmed"
    # Submit names the evidence missing.
    evidence = ["business_license"] if subject == "org" else ["id_front", "id_back"]
    assert sorted(order.get("Missing")) == sorted(evidence)
    with dbus_error(ERR_INVALID_INPUT, *evidence):
        call(w, order, "Submit")
    for i, kind in enumerate(evidence):
        attach_bytes(order, kind, f"{kind}.png", make_png(3 + i, 2))
    assert order.get("Missing") == []
    call(w, order, "Submit")
    assert order.state == "in_review"  # free
    # Rejected: fixed and submitted again.
    review(w, order, "reject", "名称与营业执照不符")
    assert order.state == "rejected"
    assert order.get("ReviewNote") == "名称与营业执照不符"
    new_name += "一"
    order.update({name_field(a): new_name})
    call(w, order, "Submit")
    assert order.state == "in_review"
    review(w, order, "approve")
    assert order.state == "downloadable"
    download(w, order, serial)
    assert wait_state(order, {"completed", "downloadable"}) == "completed", \
        order.get("ReviewNote")
    assert order.get("Progress") == 100
    check_changed(w, a, serial, old, new_name, tmp_dir)
    # The registry holds the new identity: a later new order of this subject is pre-filled
    # with the new name and the new phone.
    later = w.client.create_order("new", subject, {number_field(a): a.fields[number_field(a)]})
    assert later.get("Fields")[name_field(a)] == new_name
    later.cancel()
    check_ledger(w)


def test_contacts_only_complete_at_confirm_without_a_new_certificate(world):
    w = world
    a, old = made_key(w, "org", "CHC001")
    path = login(w, "CHC001", a.pin)
    order = create_change(w, a, "CHC001")
    old_phone = a.fields["handler_phone"]
    order.update({"handler_name": "赵六", "handler_phone": "13587654321",
                  "address": "福建省厦门市湖里区新路 2 号"})
    verify_phone(w, order, old_phone)  # the old phone proves it
    assert order.get("Missing") == []
    order.confirm()
    assert order.state == "completed"
    # No new certificate: the key holds the old one, still valid.
    assert w.client.get(path, KEY_IFACE, "CertificateSerial").upper().lstrip("0") == \
        f"{old.serial_number:X}"
    assert cert_rows(w.daemon.state_dir, {hexserial(old)})[hexserial(old)] == ("valid", None)
    # The registry took the new contact phone: the next order is pre-filled with it.
    again = create_change(w, a, "CHC001")
    assert again.get("Fields")["handler_phone"] == "13587654321"
    again.cancel()
    check_ledger(w)


def test_a_legal_representative_change_needs_the_licence(world):
    w = world
    a, old = made_key(w, "org", "CHL001")
    login(w, "CHL001", a.pin)
    order = create_change(w, a, "CHL001")
    order.update({"legal_rep_name": "钱七"})
    verify_phone(w, order, a.fields["handler_phone"])
    order.confirm()
    assert order.state == "confirmed"
    with dbus_error(ERR_INVALID_INPUT, "business_license"):
        call(w, order, "Submit")
    order.cancel()
    assert order.state == "cancelled"
    check_ledger(w)


def test_refusals(world):
    w = world
    a, old = made_key(w, "org", "CHR001")
    wait_key(w, "CHR001")
    with dbus_error(ERR_ACCESS_DENIED, "Login"):
        create_change(w, a, "CHR001")
    login(w, "CHR001", a.pin)
    with dbus_error(ERR_INVALID_INPUT, "uscc", "apply anew"):
        create_change(w, a, "CHR001", uscc="91350200776049653A")
    # A key without a certificate, and one whose certificate another platform issued.
    vkey(w.daemon.state_dir, "unplug", "CHR001")
    assert run_until(lambda: key_path("CHR001") not in w.client.managed_objects(), 5.0)
    vkey(w.daemon.state_dir, "create", "--vendor", "demo-a", "--serial", "CHR002")
    login(w, "CHR002", "123456")
    with dbus_error(ERR_NOT_ELIGIBLE, "no certificate"):
        create_change(w, a, "CHR002")
    vkey(w.daemon.state_dir, "unplug", "CHR002")
    foreign_key(w, "CHR003")
    login(w, "CHR003", "123456")
    with dbus_error(ERR_NOT_ELIGIBLE, "not issued by this platform"):
        create_change(w, a, "CHR003")
    vkey(w.daemon.state_dir, "unplug", "CHR003")
    assert run_until(lambda: key_path("CHR003") not in w.client.managed_objects(), 5.0)
    vkey(w.daemon.state_dir, "plug", "CHR001")
    # Expired: refused.
    now_real = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    w.move_clock(f"+{(epoch(old.not_valid_after) - now_real) // DAY + 2}d")
    login(w, "CHR001", a.pin)
    with dbus_error(ERR_NOT_ELIGIBLE, "expired"):
        create_change(w, a, "CHR001")
    check_ledger(w)


def test_a_key_pulled_mid_download_resumes(world, tmp_dir):
    w = world
    a, old = made_key(w, "org", "CHF001")
    login(w, "CHF001", a.pin)
    order = create_change(w, a, "CHF001")
    new_name = "厦门拔插科技有限公司"
    order.update({"org_name": new_name})
    verify_phone(w, order, a.fields["handler_phone"])
    order.confirm()
    attach_bytes(order, "business_license", "licence.png", make_png(4, 2))
    call(w, order, "Submit")
    review(w, order, "approve")
    vkey(w.daemon.state_dir, "fault", "CHF001", "C_CreateObject", "--after", "1", "--mode",
         "unplug")
    download(w, order, "CHF001")
    assert wait_state(order, {"downloadable", "completed"}) == "downloadable"
    assert "failed" in order.get("ReviewNote"), order.get("ReviewNote")
    assert cert_rows(w.daemon.state_dir, {hexserial(old)})[hexserial(old)][0] == "valid"
    vkey(w.daemon.state_dir, "plug", "CHF001")
    login(w, "CHF001", a.pin)
    download(w, order, "CHF001")
    assert wait_state(order, {"completed", "downloadable"}) == "completed", \
        order.get("ReviewNote")
    check_changed(w, a, "CHF001", old, new_name, tmp_dir)
    check_ledger(w)


def test_the_cli_changes_the_name_and_downloads(world, tmp_dir):
    """certseal change (fields from a file, the evidence with --material, the SMS code on
    stdin) up to the review; certseal order download after the approval."""
    import subprocess
    from conftest import CLI
    w = world
    a, old = made_key(w, "org", "CHI001")
    login(w, "CHI001", a.pin)
    fields = os.path.join(tmp_dir, "change.fields")
    with open(fields, "w") as f:
        f.write("org_name = 厦门命令行科技有限公司\n")
    licence = os.path.join(tmp_dir, "licence.png")
    with open(licence, "wb") as f:
        f.write(make_png(5, 3))
    mark = w.office.mark("sms")
    proc = subprocess.Popen(
        [CLI, "--session", "change", "--key", "CHI001", "--fields", fields, "--material",
         f"business_license={licence}", "--yes"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=w.bus.env(LC_ALL="C.UTF-8", NO_COLOR="1"))
    try:
        seen = []
        while True:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith("send-code"):
                break
        msg = w.office.wait_message("sms", to=a.fields["handler_phone"], template="sms_code",
                                    after=mark)
        out, err = proc.communicate(secret_of(msg) + "\n", timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(seen) + out
    assert proc.returncode == 0, (out, err)
    assert "submit → in_review" in out, out
    order_id = out.split("create → ", 1)[1].split()[0]
    order = w.client.order(order_id)
    review(w, order, "approve")
    cp = run_cli(w.bus, "--json", "order", "download", order_id, "--key", "CHI001", timeout=60)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert json.loads(cp.stdout)["State"] == "completed", cp.stdout
    check_changed(w, a, "CHI001", old, "厦门命令行科技有限公司", tmp_dir)
    check_ledger(w)


def changed_order(w, a, serial, new_name, upto):
    """A change order of @a's key with @new_name, taken up to state @upto."""
    order = create_change(w, a, serial)
    order.update({name_field(a): new_name})
    if upto == "draft":
        return order
    verify_phone(w, order, a.fields[contact_field(a)])
    order.confirm()
    if upto == "confirmed":
        return order
    evidence = ["business_license"] if a.subject == "org" else ["id_front", "id_back"]
    for i, kind in enumerate(evidence):
        attach_bytes(order, kind, f"{kind}.png", make_png(3 + i, 2))
    call(w, order, "Submit")
    if upto == "in_review":
        return order
    review(w, order, "reject", "请补充")
    if upto == "rejected":
        return order
    call(w, order, "Submit")
    review(w, order, "approve")
    assert order.state == "downloadable"
    return order


def test_sigkill_in_every_state_leaves_the_orders_intact(world, tmp_dir):
    """Orders in each stable state survive a SIGKILL as they were; one killed while
    downloading is back in downloadable, says so, and finishes."""
    w = world
    a, old = made_key(w, "person", "CHK001")
    login(w, "CHK001", a.pin)
    orders = {state: changed_order(w, a, "CHK001", f"王{state}", state)
              for state in ("draft", "confirmed", "in_review", "rejected")}
    order = changed_order(w, a, "CHK001", "王断电", "downloadable")
    vkey(w.daemon.state_dir, "fault", "CHK001", "C_GenerateKeyPair", "--after", "1", "--mode",
         "hang", "--timeout", "20000")
    download(w, order, "CHK001")
    assert order.state == "downloading"
    w.client.close()
    w.daemon.kill()
    for root, _, files in os.walk(os.path.join(w.daemon.state_dir, "drivers")):
        if "fault" in files:
            os.unlink(os.path.join(root, "fault"))
    w.daemon.start()
    office_info(w.daemon.state_dir)
    w.client = Client(w.bus)
    for state, o in orders.items():
        o = w.client.order(o.id)
        assert o.state == state
        assert o.get("Fields")["name"] == f"王{state}"
    order = w.client.order(order.id)
    assert order.state == "downloadable"
    assert "interrupted" in order.get("ReviewNote"), order.get("ReviewNote")
    login(w, "CHK001", a.pin)
    download(w, order, "CHK001")
    assert wait_state(order, {"completed", "downloadable"}) == "completed", \
        order.get("ReviewNote")
    check_changed(w, a, "CHK001", old, "王断电", tmp_dir)
    # Another order changes a certificate that is gone now: its download is refused.
    other = w.client.order(orders["in_review"].id)
    review(w, other, "approve")
    with dbus_error(ERR_INVALID_INPUT, "holds certificate"):
        download(w, other, "CHK001")
    assert other.state == "downloadable"
    check_ledger(w)


def test_a_key_whose_certificate_was_revoked_is_neither_changed_nor_renewed(world):
    """A key reported lost and found again: its certificate was revoked (keyCompromise) by
    the reissue; logged in, it is refused for a change and for a renewal, naming the
    revocation, and no order is left behind."""
    w = world
    a, old = made_key(w, "org", "CHV001")
    old_serial = hexserial(old)
    assert query(w, w.client, a)[old_serial] == "valid"
    lost = Reissue(a, w.client, old_serial, "lost")
    lost.confirm()
    lost.attach_all()
    lost.submit()
    lost.verify()
    assert crl_reason(w, old.serial_number) == x509.ReasonFlags.key_compromise
    def orders():
        return sorted(p for p in w.client.managed_objects() if p.startswith(ORDERS_PATH))
    before = orders()
    login(w, "CHV001", a.pin)
    with dbus_error(ERR_NOT_ELIGIBLE, "is revoked (keyCompromise)", "apply for a new"):
        create_change(w, a, "CHV001", **{name_field(a): "厦门找回科技有限公司"})
    with dbus_error(ERR_NOT_ELIGIBLE, "is revoked (keyCompromise)", "apply for a new"):
        create_renewal(w, a, "CHV001")
    assert orders() == before
    check_ledger(w)


def test_a_changed_certificate_is_reissued_with_every_detail_on_file(world, tmp_dir):
    """The change's order carries only what changed; a reissue of the certificate it gave
    is pre-filled with the new name and, from the application before it, everything else
    on file, and the new key's certificate carries the new name and the same end."""
    w = world
    a, old = made_key(w, "org", "CHI001")
    login(w, "CHI001", a.pin)
    new_name = "厦门补办新名科技有限公司"
    order = changed_order(w, a, "CHI001", new_name, "downloadable")
    download(w, order, "CHI001")
    assert wait_state(order, {"completed", "downloadable"}) == "completed"
    changed = check_changed(w, a, "CHI001", old, new_name, tmp_dir)
    query(w, w.client, a)
    r = Reissue(a, w.client, hexserial(changed), "damaged")
    fields = r.prop("Fields")
    assert fields["org_name"] == new_name, fields
    for name in ("auth_method", "legal_rep_phone", "handler_name", "handler_id",
                 "handler_auth_method", "email", "address", "postcode"):
        assert fields.get(name) == a.fields[name], (name, fields)
    r.to_review()
    r.approve()
    blank_key(w.daemon.state_dir, w.client, "CHI002")
    r.make("CHI002")
    cert = x509.load_der_x509_certificate(key_certificate(w.client, key_path("CHI002")))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == new_name
    assert epoch(cert.not_valid_after) == epoch(changed.not_valid_after)
    check_ledger(w)
