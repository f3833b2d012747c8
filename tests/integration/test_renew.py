"""
The renewal flow (证书更新, docs/architecture.md §1.2, the manual's 2.1 and 2.2) against the real daemon,
virtual UKeys and the embedded CA. Keys are made through the new flow first (so the
certificate, the registry and the certificate password are the platform's own); the
business clock is then moved by restarting the daemon with CERTSEAL_TEST_NOW (test mode),
to reach the renewal window.
"""

import contextlib
import datetime
import json
import os
import sqlite3
import subprocess
import tempfile

import dbus
import pytest
from cryptography import x509

from conftest import (BUILD_DIR, DEV_CONF, KEY_IFACE, Bus, ClockDaemon, Client, dbus_error, key_path, run_cli,
                      run_until, vkey)
from flow_helpers import Application, Office, blank_key, key_certificate, key_seal
from office_helpers import office_info
from test_crash import recompute_chain

ERR_NO_KEY = "org.certseal.Error.NoKey"
ERR_MULTIPLE_KEYS = "org.certseal.Error.MultipleKeys"
ERR_NOT_ELIGIBLE = "org.certseal.Error.NotEligible"
ERR_ACCESS_DENIED = "org.certseal.Error.AccessDenied"
ERR_INVALID_INPUT = "org.certseal.Error.InvalidInput"
DAY = 86400
MAKE_SEALED_KEY = os.path.join(BUILD_DIR, "tests", "make-sealed-key")
RENEW_PRICE_FEN = {"org": 20000, "person": 8000}  # demo-a's [prices] renew.*


class World:
    def __init__(self):
        self.bus = Bus()
        self.daemon = ClockDaemon(self.bus)
        self.daemon.start()
        office_info(self.daemon.state_dir)
        self.office = Office(self.daemon.state_dir)
        self.client = Client(self.bus)
        self.n = 700

    def reconnect(self):
        self.client.close()
        self.client = Client(self.bus)

    def move_clock(self, value):
        self.client.close()
        self.daemon.move_clock(value)
        office_info(self.daemon.state_dir)
        self.client = Client(self.bus)

    def close(self):
        self.client.close()
        self.daemon.cleanup()
        self.bus.close()


@pytest.fixture
def world():
    w = World()
    try:
        yield w
    finally:
        w.close()


def made_key(w, subject, serial):
    """A key made through the new flow on the real clock: (application, certificate)."""
    w.n += 1
    extra = {"legal_rep_phone": "handler"} if subject == "org" else {}
    a = Application(w.client, w.office, subject, n=w.n, **extra)
    a.to_review()
    a.approve()
    blank_key(w.daemon.state_dir, w.client, serial)
    a.make(serial)
    path = key_path(serial)
    assert run_until(lambda: w.client.get(path, KEY_IFACE, "CertificateSerial") != "", 5.0)
    return a, x509.load_der_x509_certificate(key_certificate(w.client, path))


def epoch(dt):
    return int(dt.replace(tzinfo=datetime.timezone.utc).timestamp())


def wait_key(w, serial, timeout=5.0):
    path = key_path(serial)
    assert run_until(lambda: path in w.client.managed_objects(), timeout), f"no key {serial}"
    return path


def login(w, serial, pin):
    path = wait_key(w, serial)
    w.client.call(path, KEY_IFACE, "Login", "s", (pin,))
    assert w.client.get(path, KEY_IFACE, "LoggedIn") is True
    return path


def renew_fields(a):
    f = {"email": a.fields["email"], "address": "福建省厦门市思明区示例路 1 号", "postcode": "361000"}
    if a.subject == "org":
        f.update(handler_name="李四", handler_phone=a.fields["handler_phone"])
    else:
        f.update(phone=a.fields["phone"])
    return f


def create_renewal(w, a, serial, **extra):
    fields = dict(renew_fields(a), key=dbus.ObjectPath(key_path(serial)), **extra)
    return w.client.create_order("renew", a.subject, fields)


def pay(w, order):
    order.client.call(order.path, "org.certseal.CertSeal1.Order", "StartPayment", "s",
                      ("sandbox",))
    out = w.office.ok("pay-notify", order.id, "--channel", "sandbox")
    assert out["applied"] is True, out


def download(w, order, serial):
    w.client.call(order.path, "org.certseal.CertSeal1.Order", "Download", "o",
                  (dbus.ObjectPath(key_path(serial)),))


def wait_state(order, states, timeout=30.0):
    assert run_until(lambda: order.state in states, timeout), \
        f"order {order.id} is {order.state}: {order.get('History')[-3:]}"
    return order.state


@contextlib.contextmanager
def ledger(state_dir):
    db = sqlite3.connect(f"file:{os.path.join(state_dir, 'ledger.db')}?mode=ro", uri=True)
    try:
        yield db
    finally:
        db.close()


def cert_rows(state_dir, serial_hexes):
    with ledger(state_dir) as db:
        return {r[0]: (r[1], r[2]) for r in db.execute(
            "SELECT serial, status, reason FROM certificates WHERE role = 'subscriber'")
            if r[0] in serial_hexes}


def valid_certs_of(state_dir, id_number):
    with ledger(state_dir) as db:
        return [r[0] for r in db.execute(
            "SELECT serial FROM certificates WHERE id_number = ? AND status = 'valid'",
            (id_number,))]


def hexserial(cert):
    return f"{cert.serial_number:032X}"


def check_ledger(w):
    """The ledger's event chain verifies (recomputed from a copy)."""
    with tempfile.TemporaryDirectory() as tmp:
        assert recompute_chain(os.path.join(w.daemon.state_dir, "ledger.db"), tmp) > 0


def check_renewed(w, a, serial, old, tmp_dir, expect_not_after):
    """The key holds exactly the new certificate, its key pair and the new seal; the old
    certificate is superseded; the PIN still logs in."""
    path = key_path(serial)
    assert run_until(lambda: w.client.get(path, KEY_IFACE, "CertificateSerial").upper()
                     .lstrip("0") != f"{old.serial_number:X}", 5.0)
    new = x509.load_der_x509_certificate(key_certificate(w.client, path))
    assert new.serial_number != old.serial_number
    assert epoch(new.not_valid_after) == expect_not_after, \
        (new.not_valid_after, datetime.datetime.utcfromtimestamp(expect_not_after))
    # Valid from its issuance (the moved clock), not from the old end.
    assert new.not_valid_before < old.not_valid_after or epoch(old.not_valid_after) < epoch(
        new.not_valid_before)
    assert new.subject == old.subject
    rows = cert_rows(w.daemon.state_dir, {hexserial(old), hexserial(new)})
    assert rows[hexserial(old)] == ("revoked", "superseded"), rows
    assert rows[hexserial(new)][0] == "valid", rows
    id_number = a.fields["uscc"] if a.subject == "org" else a.fields["id_number"]
    assert valid_certs_of(w.daemon.state_dir, id_number) == [hexserial(new)]
    # The old certificate is in the CRL as superseded.
    pem = w.office.ok("ca", "crl", "--vendor", "demo-a")
    text = pem[0]["pem"] if isinstance(pem, list) else pem
    crl = x509.load_pem_x509_crl(text.encode())
    entry = crl.get_revoked_certificate_by_serial_number(old.serial_number)
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason == x509.ReasonFlags.superseded
    # The new seal verifies (at the moved date) and lists the new certificate.
    seal_path = os.path.join(tmp_dir, f"{serial}.seal")
    with open(seal_path, "wb") as f:
        f.write(key_seal(w.client, path))
    at = w.daemon.test_now or "+0d"
    cp = run_cli(w.bus, "--json", "seal", "verify", seal_path, "--state-dir",
                 w.daemon.state_dir, "--at", at)
    assert cp.returncode == 0 and json.loads(cp.stdout)["valid"] is True, cp.stdout + cp.stderr
    shown = json.loads(run_cli(w.bus, "--json", "seal", "show", seal_path).stdout)
    assert len(shown["holders"]) == 1
    # The PIN did not change: log out, log in again with the certificate password.
    w.client.call(path, KEY_IFACE, "Logout", "", ())
    w.client.call(path, KEY_IFACE, "Login", "s", (a.pin,))
    assert w.client.get(path, KEY_IFACE, "LoggedIn") is True
    return new


@pytest.mark.parametrize("subject", ["org", "person"])
def test_renewed_with_60_days_left_carries_the_end_on(world, subject, tmp_dir):
    w = world
    serial = f"RN{subject[0].upper()}001"
    a, old = made_key(w, subject, serial)
    old_end = epoch(old.not_valid_after)
    # 60 days left.
    now_real = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    w.move_clock(f"+{(old_end - now_real) // DAY - 60}d")
    path = login(w, serial, a.pin)
    # The key says so: renewable since 90 days before the end.
    assert w.client.get(path, KEY_IFACE, "Renewable") is True
    assert w.client.get(path, KEY_IFACE, "RenewableFrom") == old_end - 90 * DAY + 1
    # The contact phone left out: the registry's is pre-filled.
    contact = "handler_phone" if subject == "org" else "phone"
    given = {k: v for k, v in renew_fields(a).items() if k != contact}
    order = w.client.create_order("renew", subject,
                                  dict(given, key=dbus.ObjectPath(key_path(serial))))
    assert order.state == "draft"
    fields = order.get("Fields")
    assert fields["vendor"] == "demo-a"
    assert fields["certificate_serial"] == hexserial(old)
    number = "uscc" if subject == "org" else "id_number"
    assert fields[number] == a.fields[number]
    assert fields[contact] == a.fields[contact]
    assert order.get("AmountFen") == RENEW_PRICE_FEN[subject]
    order.confirm()
    assert order.state == "unpaid"
    pay(w, order)
    assert order.state == "downloadable"
    assert "Download" in order.get("NextActions")
    download(w, order, serial)
    assert wait_state(order, {"completed", "downloadable"}) == "completed", \
        order.get("ReviewNote")
    assert order.get("Progress") == 100
    check_renewed(w, a, serial, old, tmp_dir, old_end + 365 * DAY)
    assert w.client.get(path, KEY_IFACE, "Renewable") is False
    assert w.client.get(path, KEY_IFACE, "RenewableFrom") == old_end + 275 * DAY + 1
    check_ledger(w)


def test_an_expired_certificate_is_renewed_from_the_download_day(world, tmp_dir):
    w = world
    a, old = made_key(w, "org", "RNX001")
    old_end = epoch(old.not_valid_after)
    now_real = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    days = (old_end - now_real) // DAY + 30  # expired 30 days ago
    w.move_clock(f"+{days}d")
    login(w, "RNX001", a.pin)
    order = create_renewal(w, a, "RNX001")
    order.confirm()
    pay(w, order)
    t0 = int(datetime.datetime.now(datetime.timezone.utc).timestamp()) + days * DAY
    download(w, order, "RNX001")
    assert wait_state(order, {"completed", "downloadable"}) == "completed", \
        order.get("ReviewNote")
    path = key_path("RNX001")
    assert run_until(lambda: w.client.get(path, KEY_IFACE, "CertificateSerial").upper()
                     .lstrip("0") != f"{old.serial_number:X}", 5.0)
    new = x509.load_der_x509_certificate(key_certificate(w.client, path))
    t1 = int(datetime.datetime.now(datetime.timezone.utc).timestamp()) + days * DAY
    assert t0 - 1 <= epoch(new.not_valid_before) <= t1 + 1
    assert epoch(new.not_valid_after) == epoch(new.not_valid_before) + 365 * DAY
    check_ledger(w)


def test_outside_the_window_is_not_eligible_naming_the_dates(world):
    w = world
    a, old = made_key(w, "person", "RNW001")
    old_end = epoch(old.not_valid_after)
    end_day = datetime.datetime.utcfromtimestamp(old_end).strftime("%Y-%m-%d")
    path = login(w, "RNW001", a.pin)
    assert w.client.get(path, KEY_IFACE, "Renewable") is False
    # 365 days left (the real clock): too early, naming the end and the opening day.
    with dbus_error(ERR_NOT_ELIGIBLE, f"valid until {end_day}", "renewal opens on"):
        create_renewal(w, a, "RNW001")
    # 200 days left.
    now_real = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    w.move_clock(f"+{(old_end - now_real) // DAY - 200}d")
    login(w, "RNW001", a.pin)
    opens = datetime.datetime.utcfromtimestamp(old_end - 90 * DAY + 1).strftime("%Y-%m-%d")
    with dbus_error(ERR_NOT_ELIGIBLE, f"valid until {end_day}", f"renewal opens on {opens}"):
        create_renewal(w, a, "RNW001")
    # Expired 400 days ago.
    w.move_clock(f"+{(old_end - now_real) // DAY + 401}d")
    login(w, "RNW001", a.pin)
    with dbus_error(ERR_NOT_ELIGIBLE, f"expired on {end_day}", "apply for a new certificate"):
        create_renewal(w, a, "RNW001")
    check_ledger(w)


def test_preconditions_each_have_their_error(world):
    w = world
    a, old = made_key(w, "org", "RNP001")
    old_end = epoch(old.not_valid_after)
    now_real = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    w.move_clock(f"+{(old_end - now_real) // DAY - 30}d")
    wait_key(w, "RNP001")
    # Not logged in: AccessDenied naming Login.
    with dbus_error(ERR_ACCESS_DENIED, "Login"):
        create_renewal(w, a, "RNP001")
    login(w, "RNP001", a.pin)
    # Another vendor's key inserted too: MultipleKeys.
    vkey(w.daemon.state_dir, "create", "--vendor", "demo-b", "--serial", "RNP002")
    wait_key(w, "RNP002")
    with dbus_error(ERR_MULTIPLE_KEYS):
        create_renewal(w, a, "RNP001")
    # A different vendor or subject type than the key's: InvalidInput.
    vkey(w.daemon.state_dir, "unplug", "RNP002")
    assert run_until(lambda: key_path("RNP002") not in w.client.managed_objects(), 5.0)
    with dbus_error(ERR_INVALID_INPUT, "vendor"):
        create_renewal(w, a, "RNP001", vendor="demo-b")
    with dbus_error(ERR_INVALID_INPUT, "subject_type"):
        w.client.create_order("renew", "person", dict(renew_fields(a), phone=a.fields[
            "handler_phone"], key=dbus.ObjectPath(key_path("RNP001"))))
    # Cancel before payment: cancelled, from the draft and from unpaid.
    order = create_renewal(w, a, "RNP001")
    order.cancel()
    assert order.state == "cancelled"
    order = create_renewal(w, a, "RNP001")
    order.confirm()
    assert order.state == "unpaid"
    order.cancel()
    assert order.state == "cancelled"
    # No key at all: NoKey.
    vkey(w.daemon.state_dir, "unplug", "RNP001")
    assert run_until(lambda: key_path("RNP001") not in w.client.managed_objects(), 5.0)
    with dbus_error(ERR_NO_KEY):
        create_renewal(w, a, "RNP001")
    # A key without a certificate: NotEligible.
    vkey(w.daemon.state_dir, "create", "--vendor", "demo-a", "--serial", "RNP003")
    login(w, "RNP003", "123456")
    with dbus_error(ERR_NOT_ELIGIBLE, "no certificate"):
        create_renewal(w, a, "RNP003")
    vkey(w.daemon.state_dir, "unplug", "RNP003")
    # A key whose certificate another platform's CA issued (the same vendor profile, another
    # state directory's CA and ledger): NotEligible.
    foreign_key(w, "RNP004")
    login(w, "RNP004", "123456")
    with dbus_error(ERR_NOT_ELIGIBLE, "not issued by this platform"):
        create_renewal(w, a, "RNP004")
    check_ledger(w)


def foreign_key(w, serial):
    """A demo-a key of this daemon holding a certificate and seal of another platform's CA
    (made by tests/make-sealed-key against another state directory sharing the keys)."""
    other = tempfile.mkdtemp(prefix="cs-other-", dir="/tmp")
    os.makedirs(os.path.join(other, "drivers"))
    os.symlink(os.path.join(w.daemon.state_dir, "drivers", "vkey"),
               os.path.join(other, "drivers", "vkey"))
    w.client.close()
    assert w.daemon.stop() == 0
    vkey(w.daemon.state_dir, "create", "--vendor", "demo-a", "--serial", serial)
    cp = subprocess.run([MAKE_SEALED_KEY, "--config", DEV_CONF, "--state-dir", other,
                         "--vendor", "demo-a", "--serial", serial], input="123456\n",
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    w.daemon.start()
    w.client = Client(w.bus)
    wait_key(w, serial)


def test_a_key_pulled_mid_download_returns_to_downloadable_and_finishes(world, tmp_dir):
    w = world
    a, old = made_key(w, "org", "RNF001")
    old_end = epoch(old.not_valid_after)
    now_real = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    w.move_clock(f"+{(old_end - now_real) // DAY - 10}d")
    login(w, "RNF001", a.pin)
    order = create_renewal(w, a, "RNF001")
    order.confirm()
    pay(w, order)
    # Pulled while the new certificate is written.
    vkey(w.daemon.state_dir, "fault", "RNF001", "C_CreateObject", "--after", "1", "--mode",
         "unplug")
    download(w, order, "RNF001")
    assert wait_state(order, {"downloadable", "completed"}) == "downloadable"
    assert "failed" in order.get("ReviewNote"), order.get("ReviewNote")
    # The old certificate still works: still valid, still on the key.
    assert cert_rows(w.daemon.state_dir, {hexserial(old)})[hexserial(old)][0] == "valid"
    # Another key in its place: refused, naming the key expected.
    vkey(w.daemon.state_dir, "create", "--vendor", "demo-b", "--serial", "RNF002")
    login(w, "RNF002", "123456")
    with dbus_error(ERR_INVALID_INPUT, "insert key RNF001"):
        download(w, order, "RNF002")
    assert order.state == "downloadable"
    vkey(w.daemon.state_dir, "unplug", "RNF002")
    assert run_until(lambda: key_path("RNF002") not in w.client.managed_objects(), 5.0)
    vkey(w.daemon.state_dir, "plug", "RNF001")
    login(w, "RNF001", a.pin)
    download(w, order, "RNF001")
    assert wait_state(order, {"completed", "downloadable"}) == "completed", \
        order.get("ReviewNote")
    assert order.get("ReviewNote") == ""
    check_renewed(w, a, "RNF001", old, tmp_dir, old_end + 365 * DAY)
    check_ledger(w)


def test_sigkill_while_downloading_is_finished_after_the_restart(world, tmp_dir):
    w = world
    a, old = made_key(w, "person", "RNK001")
    old_end = epoch(old.not_valid_after)
    now_real = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    w.move_clock(f"+{(old_end - now_real) // DAY - 10}d")
    login(w, "RNK001", a.pin)
    order = create_renewal(w, a, "RNK001")
    order.confirm()
    pay(w, order)
    # The token hangs while the new key pair is generated; the daemon is killed there.
    vkey(w.daemon.state_dir, "fault", "RNK001", "C_GenerateKeyPair", "--after", "1", "--mode",
         "hang", "--timeout", "20000")
    download(w, order, "RNK001")
    assert order.state == "downloading"
    w.client.close()
    w.daemon.kill()
    # The hung call died with the daemon: no fault is left for the next one.
    for root, _, files in os.walk(os.path.join(w.daemon.state_dir, "drivers")):
        if "fault" in files:
            os.unlink(os.path.join(root, "fault"))
    w.daemon.start()
    office_info(w.daemon.state_dir)
    w.client = Client(w.bus)
    order = w.client.order(order.id)
    assert order.state == "downloadable"
    assert "interrupted" in order.get("ReviewNote"), order.get("ReviewNote")
    login(w, "RNK001", a.pin)
    download(w, order, "RNK001")
    assert wait_state(order, {"completed", "downloadable"}) == "completed", \
        order.get("ReviewNote")
    assert order.get("ReviewNote") == ""
    check_renewed(w, a, "RNK001", old, tmp_dir, old_end + 365 * DAY)
    check_ledger(w)


def test_a_window_that_closed_while_the_order_waited_is_refused_at_download(world):
    w = world
    a, old = made_key(w, "org", "RNC001")
    old_end = epoch(old.not_valid_after)
    now_real = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    # Whole days from now to the end, rounded up: moving by base + N days lands N days (and
    # a fraction) past the end, whatever the time of day the certificate was issued.
    base = -((now_real - old_end) // DAY)
    w.move_clock(f"+{base + 360}d")  # expired 360 days: still eligible
    login(w, "RNC001", a.pin)
    order = create_renewal(w, a, "RNC001")
    order.confirm()
    pay(w, order)
    w.move_clock(f"+{base + 370}d")  # 370 days: the window closed
    login(w, "RNC001", a.pin)
    order = w.client.order(order.id)
    with dbus_error(ERR_NOT_ELIGIBLE, "more than 365 days ago"):
        download(w, order, "RNC001")
    assert order.state == "downloadable"
    # Paid: cancelling refunds.
    order.cancel()
    assert order.state == "refunding"
    check_ledger(w)


def test_the_cli_renews_and_resumes_a_download(world, tmp_dir):
    """certseal renew (PIN on stdin, fields from a file) up to the payment; certseal order
    download after it."""
    w = world
    a, old = made_key(w, "person", "RNL001")
    old_end = epoch(old.not_valid_after)
    now_real = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    w.move_clock(f"+{(old_end - now_real) // DAY - 20}d")
    wait_key(w, "RNL001")
    fields = os.path.join(tmp_dir, "renew.fields")
    with open(fields, "w") as f:
        f.write("\n".join(f"{k} = {v}" for k, v in renew_fields(a).items()) + "\n")
    cp = run_cli(w.bus, "--json", "renew", "--key", "RNL001", "--fields", fields, "--yes",
                 input=a.pin + "\n")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    out = json.loads(cp.stdout)
    assert out["state"] == "unpaid", out
    assert a.pin not in cp.stdout + cp.stderr
    order = w.client.order(out["order"])
    assert order.get("Fields")["certificate_serial"] == hexserial(old)
    pay(w, order)
    cp = run_cli(w.bus, "--json", "order", "download", order.id, "--key", "RNL001",
                 timeout=60)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert json.loads(cp.stdout)["State"] == "completed", cp.stdout
    check_renewed(w, a, "RNL001", old, tmp_dir, old_end + 365 * DAY)
    check_ledger(w)


def reminder_events(state_dir, order_id):
    with ledger(state_dir) as db:
        return [json.loads(r[0]) for r in db.execute(
            "SELECT data FROM events WHERE order_id = ? AND kind = 'expiry_reminder' "
            "ORDER BY seq", (order_id,))]


def test_expiry_reminders_go_once_at_each_threshold_across_restarts(world):
    w = world
    a, old = made_key(w, "org", "RNR001")
    old_end = epoch(old.not_valid_after)
    now_real = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    # Whole days from now to the end, rounded up: moving by base + N days lands N days (and
    # a fraction) past the end, whatever the time of day the certificate was issued.
    base = -((now_real - old_end) // DAY)
    phone = a.fields["handler_phone"]
    assert reminder_events(w.daemon.state_dir, a.id) == []  # 365 days left: none due

    def moved(days, threshold):
        mark = w.office.mark("sms")
        w.move_clock(f"+{base + days}d")
        msg = w.office.wait_message("sms", to=phone, template="expiry_reminder", after=mark)
        assert msg is not None, f"no reminder at {days} days"
        assert hexserial(old) in msg["text"] or threshold in msg["text"], msg
        sent = [e for e in reminder_events(w.daemon.state_dir, a.id) if e["sms"]]
        assert sent[-1]["threshold"] == threshold, sent
        return len(w.office.messages("sms", to=phone, template="expiry_reminder"))

    n = moved(-89, "before_90")  # 89 days left
    # A restart on the same day repeats nothing.
    events = reminder_events(w.daemon.state_dir, a.id)
    w.move_clock(w.daemon.test_now)
    assert reminder_events(w.daemon.state_dir, a.id) == events
    assert len(w.office.messages("sms", to=phone, template="expiry_reminder")) == n
    assert moved(-29, "before_30") == n + 1  # 29 days left
    # Expired 30 days: 7 and 1 days before passed while the daemon was off — recorded,
    # and one SMS for the latest.
    assert moved(30, "after_30") == n + 2
    thresholds = [e["threshold"] for e in reminder_events(w.daemon.state_dir, a.id)]
    assert sorted(thresholds) == sorted(["before_90", "before_30", "before_7", "before_1",
                                         "after_30"]), thresholds
    assert len(set(thresholds)) == len(thresholds)
    check_ledger(w)


def test_pulled_after_the_old_certificate_went_finishes_with_the_new_one(world, tmp_dir):
    """Pulled while the old key pair is deleted (the new certificate and seal written, the
    old certificate gone): Download again finishes the writing and completes, the new
    certificate kept (not revoked), the old seal's picture on the new seal."""
    w = world
    a, old = made_key(w, "org", "RNG001")
    old_seal = json.loads(run_cli(w.bus, "--json", "seal", "show", seal_file(
        w, "RNG001", tmp_dir, "old")).stdout)
    old_end = epoch(old.not_valid_after)
    now_real = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    w.move_clock(f"+{(old_end - now_real) // DAY - 5}d")
    login(w, "RNG001", a.pin)
    order = create_renewal(w, a, "RNG001")
    order.confirm()
    pay(w, order)
    # C_DestroyObject: 1 the old seal (replaced), 2 the old certificate, 3 the old public key.
    vkey(w.daemon.state_dir, "fault", "RNG001", "C_DestroyObject", "--after", "3", "--mode",
         "unplug")
    download(w, order, "RNG001")
    assert wait_state(order, {"downloadable", "completed"}) == "downloadable"
    vkey(w.daemon.state_dir, "plug", "RNG001")
    login(w, "RNG001", a.pin)
    new_serial = w.client.get(key_path("RNG001"), KEY_IFACE, "CertificateSerial")
    assert new_serial.upper().lstrip("0") != f"{old.serial_number:X}"
    download(w, order, "RNG001")
    assert wait_state(order, {"completed", "downloadable"}) == "completed", \
        order.get("ReviewNote")
    new = check_renewed(w, a, "RNG001", old, tmp_dir, old_end + 365 * DAY)
    assert f"{new.serial_number:X}" == new_serial.upper().lstrip("0")
    new_seal = json.loads(run_cli(w.bus, "--json", "seal", "show", seal_file(
        w, "RNG001", tmp_dir, "new")).stdout)
    assert new_seal["picture_size"] == old_seal["picture_size"]
    assert new_seal["valid_end"] != old_seal["valid_end"]
    check_ledger(w)


def seal_file(w, serial, tmp_dir, name):
    path = os.path.join(tmp_dir, f"{serial}-{name}.seal")
    with open(path, "wb") as f:
        f.write(key_seal(w.client, key_path(serial)))
    return path


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as uid 65534")
def test_a_key_another_user_logged_in_to_is_not_downloaded_to(world):
    """Order.Download reaches the key through the same rule as the Key methods: a key that
    another uid logged in to serves neither root's order nor anyone else's."""
    from test_key_owner import USER_A, calls_as
    w = world
    serial = "RNO001"
    a, old = made_key(w, "org", serial)
    now_real = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    w.move_clock(f"+{(epoch(old.not_valid_after) - now_real) // DAY - 60}d")
    path = login(w, serial, a.pin)
    order = create_renewal(w, a, serial)
    order.confirm()
    pay(w, order)
    assert order.state == "downloadable"
    w.client.call(path, KEY_IFACE, "Logout", "", ())
    [r] = calls_as(USER_A, w.bus, path, [["Login", [a.pin]]])
    assert r["ok"], r
    with dbus_error(ERR_ACCESS_DENIED, "logged in by another user"):
        download(w, order, serial)
    assert order.state == "downloadable"
    [r] = calls_as(USER_A, w.bus, path, [["Logout", []]])
    assert r["ok"], r
    login(w, serial, a.pin)
    download(w, order, serial)
    assert wait_state(order, {"completed", "downloadable"}) == "completed", \
        order.get("ReviewNote")
