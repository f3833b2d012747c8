"""
Replacement after loss or damage (丢失补办, docs/architecture.md §1.4): a certificate found by
an order query on the caller's connection is reissued on a new blank key, exactly as a new
order runs (materials, SMS, payment, review, making, shipping). A lost key's certificate is
revoked keyCompromise in the step that verifies the order's SMS code and stays revoked if
the order is cancelled; a damaged key's is revoked superseded when the new key is made. The
new certificate keeps the old one's end date. Real daemon, real CA, real virtual keys.
"""

import datetime
import json
import os
import subprocess
import tempfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from conftest import (CLI, KEY_IFACE, MANAGER_IFACE, MANAGER_PATH, Bus, ClockDaemon, Client, dbus_error,
                      key_path, run_until, short_tmpdir, vkey, write_config)
from flow_helpers import Application, Office, blank_key, key_certificate, openssl, secret_of
from office_helpers import office_info
from test_crash import recompute_chain
from test_new_flow import Crashes, ca_chain
from test_renew import cert_rows

ERR_NOT_FOUND = "org.certseal.Error.NotFound"
ERR_NOT_ELIGIBLE = "org.certseal.Error.NotEligible"


class World:
    def __init__(self):
        self.bus = Bus()
        workdir = short_tmpdir("csr-")
        conf = write_config(os.path.join(workdir, "certseald.conf"),
                            sms={"query_grant_s": 600, "resend_cooldown_s": 0,
                                 "daily_cap": 1000, "query_codes_per_uid_hour": 1000,
                                 "query_codes_per_subject_day": 1000})
        self.daemon = ClockDaemon(self.bus, config=conf)
        self.daemon.start()
        office_info(self.daemon.state_dir)
        self.office = Office(self.daemon.state_dir)
        self.client = Client(self.bus)
        self.n = 900

    def move_clock(self, value):
        """Restart with the business clock at @value (the grants end with the restart)."""
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
    """A key made and delivered through the new flow: (application, certificate)."""
    w.n += 1
    a = Application(w.client, w.office, subject, n=w.n)
    a.to_review()
    a.approve()
    blank_key(w.daemon.state_dir, w.client, serial)
    a.make(serial)
    a.ship(f"SF{serial}")
    a.deliver()
    path = key_path(serial)
    assert run_until(lambda: w.client.get(path, KEY_IFACE, "CertificateSerial") != "", 5.0)
    return a, x509.load_der_x509_certificate(key_certificate(w.client, path))


def id_of(a):
    return a.fields["uscc" if a.subject == "org" else "id_number"]


def hexserial(cert):
    return f"{cert.serial_number:032X}"


def query(w, client, a):
    """SendQueryCode and FindCertificates on @client's connection: the certificates."""
    mark = w.office.mark("sms")
    client.call(MANAGER_PATH, MANAGER_IFACE, "SendQueryCode", "sss", ("", a.subject, id_of(a)))
    msg = w.office.wait_message("sms", to=a.handler_phone, template="query_code", after=mark)
    assert msg is not None, "no query code"
    return find_certs(client, a, secret_of(msg))


def find_certs(client, a, code=""):
    rows = client.call(MANAGER_PATH, MANAGER_IFACE, "FindCertificates", "ssss",
                       ("", a.subject, id_of(a), code))
    return {str(r[0]).upper(): str(r[3]) for r in rows}


class Reissue(Application):
    """A `reissue` order driven with the new flow's steps."""

    def __init__(self, old, client, serial, reason):
        self.client = client
        self.office = old.office
        self.subject = old.subject
        self.n = old.n
        self.fields = dict(old.fields)
        self.order = client.create_order("reissue", old.subject,
                                         {"certificate_serial": serial, "reason": reason})
        self.id = self.order.id
        self.code = None
        self.pin = None
        self.paid_window = None
        self.codes = []


def crl_reason(w, cert):
    pem = w.office.ok("ca", "crl", "--vendor", "demo-a")
    text = pem[0]["pem"] if isinstance(pem, list) else pem
    crl = x509.load_pem_x509_crl(text.encode())
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if entry is None:
        return None
    return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason


def check_ledger(w):
    with tempfile.TemporaryDirectory() as tmp:
        assert recompute_chain(os.path.join(w.daemon.state_dir, "ledger.db"), tmp) > 0


@pytest.mark.parametrize("subject,reason", [("org", "lost"), ("person", "lost"),
                                            ("org", "damaged"), ("person", "damaged")])
def test_a_reissue_makes_a_new_key_and_revokes_the_old_certificate(world, subject, reason,
                                                                   tmp_dir):
    w = world
    old, cert = made_key(w, subject, f"RO{subject[0]}{reason[0]}1")
    old_serial = hexserial(cert)
    # A month later: the replacement still ends when the old certificate ends.
    w.move_clock("+30d")
    old.client = w.client
    old.order = w.client.order(old.id)
    assert query(w, w.client, old) == {old_serial: "valid"}
    r = Reissue(old, w.client, old_serial.lower(), reason)
    assert r.state == "draft"
    # Pre-filled from the old order and the registry.
    fields = r.prop("Fields")
    assert fields["certificate_serial"] == old_serial
    assert fields["address"] == old.fields["address"]
    assert fields["auth_method"] == old.fields["auth_method"]
    r.confirm()
    r.attach_all()
    r.submit()
    r.verify()
    assert r.state == "unpaid"
    status = find_certs(w.client, old)
    if reason == "lost":
        assert status[old_serial] == "revoked", status
        assert crl_reason(w, cert) == x509.ReasonFlags.key_compromise
    else:
        assert status[old_serial] == "valid", status
        assert crl_reason(w, cert) is None
    r.pay()
    r.approve()
    serial = f"RN{subject[0]}{reason[0]}1"
    blank_key(w.daemon.state_dir, w.client, serial)
    r.make(serial)
    path = key_path(serial)
    assert run_until(lambda: w.client.get(path, KEY_IFACE, "CertificateSerial") != "", 5.0)
    new = x509.load_der_x509_certificate(key_certificate(w.client, path))
    assert new.serial_number != cert.serial_number
    assert new.subject == cert.subject
    # The old end date kept.
    assert new.not_valid_after == cert.not_valid_after
    assert (new.not_valid_before - cert.not_valid_before).days >= 29
    chain = ca_chain(w.office, tmp_dir)
    pem = os.path.join(tmp_dir, f"{serial}.pem")
    with open(pem, "wb") as f:
        f.write(new.public_bytes(Encoding.PEM))
    # At the moved business clock: the new certificate starts a month from now.
    at = int(new.not_valid_before.replace(tzinfo=datetime.timezone.utc).timestamp()) + 60
    v = openssl("verify", "-attime", str(at), "-CAfile", chain, pem)
    assert v.returncode == 0 and f"{pem}: OK" in v.stdout, v.stdout + v.stderr
    status = find_certs(w.client, old)
    expect = "revoked" if reason == "lost" else "superseded"
    assert status[old_serial] == expect, status
    assert crl_reason(w, cert) == (x509.ReasonFlags.key_compromise if reason == "lost"
                                   else x509.ReasonFlags.superseded)
    assert status[hexserial(new)] == "valid", status
    r.ship("SF-R1")
    r.deliver()
    check_ledger(w)


def test_refusals(world):
    w = world
    old, cert = made_key(w, "org", "RREF1")
    old_serial = hexserial(cert)
    # Not found on this connection: no query yet.
    with dbus_error(ERR_NOT_FOUND, "FindCertificates"):
        w.client.create_order("reissue", "org", {"certificate_serial": old_serial,
                                                 "reason": "lost"})
    # Another connection of the same user, without the grant.
    query(w, w.client, old)
    other = Client(w.bus)
    try:
        with dbus_error(ERR_NOT_FOUND):
            other.create_order("reissue", "org", {"certificate_serial": old_serial,
                                                  "reason": "damaged"})
    finally:
        other.close()
    # A second open reissue of the same certificate.
    first = Reissue(old, w.client, old_serial, "damaged")
    with dbus_error(ERR_NOT_ELIGIBLE, first.id):
        Reissue(old, w.client, old_serial, "lost")
    # Cancelled before payment: a damaged key's certificate stays valid.
    first.call("Cancel")
    assert first.state == "cancelled"
    assert find_certs(w.client, old)[old_serial] == "valid"
    # A lost one stays revoked after a cancel.
    lost = Reissue(old, w.client, old_serial, "lost")
    lost.confirm()
    lost.attach_all()
    lost.submit()
    lost.verify()
    assert find_certs(w.client, old)[old_serial] == "revoked"
    lost.call("Cancel")
    assert lost.state == "cancelled"
    assert find_certs(w.client, old)[old_serial] == "revoked"
    assert crl_reason(w, cert) == x509.ReasonFlags.key_compromise
    # A revoked certificate is not reissued.
    with dbus_error(ERR_NOT_ELIGIBLE, "revoked (keyCompromise)"):
        Reissue(old, w.client, old_serial, "lost")
    check_ledger(w)


def test_certseal_reissue_queries_then_creates_the_order_on_the_same_connection(world):
    w = world
    old, cert = made_key(w, "person", "RCLI1")
    old_serial = hexserial(cert)
    args = [CLI, "--session", "--json", "reissue", "--subject", "person", "--id", id_of(old),
            "--serial", old_serial, "--reason", "damaged"]
    mark = w.office.mark("sms")
    p = subprocess.Popen(args, env=w.bus.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    msg = w.office.wait_message("sms", to=old.handler_phone, template="query_code", after=mark)
    assert msg is not None
    code = secret_of(msg)
    out, err = p.communicate(code + "\n", timeout=30)
    assert p.returncode == 0, out + err
    assert code not in out and code not in err
    doc = json.loads(out)
    order = w.client.order(doc["order"])
    assert order.get("Kind") == "reissue" and order.state == "draft"
    assert order.get("Fields")["reason"] == "damaged"
    assert [c["status"] for c in doc["certificates"] if c["serial"] == old_serial] == ["valid"]
    # The help says why the query runs in the same process.
    r = subprocess.run([CLI, "--session", "reissue"], env=w.bus.env(), capture_output=True,
                       text=True)
    assert r.returncode == 2 and "per connection" in r.stderr, r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as uid 65534")
def test_another_user_reissues_only_with_the_grant_of_its_own_connection(world):
    """The subject's handler on another account (uid 65534, owning none of the orders): the
    certificate is refused before the query and on another connection, taken after it."""
    from test_query import Stranger

    w = world
    old, cert = made_key(w, "person", "RSTR1")
    old_serial = hexserial(cert)
    s = Stranger(w.bus)
    try:
        fields = {"certificate_serial": old_serial, "reason": "damaged"}
        r = s.manager("A", "CreateOrder", "ssa{sv}", "reissue", "person", fields)
        assert not r["ok"] and r["error"] == ERR_NOT_FOUND, r
        mark = w.office.mark("sms")
        r = s.manager("A", "SendQueryCode", "sss", "", "person", id_of(old))
        assert r["ok"], r
        msg = w.office.wait_message("sms", to=old.handler_phone, template="query_code",
                                    after=mark)
        code = secret_of(msg)
        r = s.manager("A", "FindCertificates", "ssss", "", "person", id_of(old), code)
        assert r["ok"] and [c[0] for c in r["value"]] == [old_serial], r
        # Connection B of the same user holds no grant.
        r = s.manager("B", "CreateOrder", "ssa{sv}", "reissue", "person", fields)
        assert not r["ok"] and r["error"] == ERR_NOT_FOUND, r
        r = s.manager("A", "CreateOrder", "ssa{sv}", "reissue", "person", fields)
        assert r["ok"], r
        path = r["value"]
        r = s.state("A", path)
        assert r["ok"] and r["value"] == "draft", r
        # The order is the stranger's: it goes on from its other connection too.
        r = s.call("B", path, "org.certseal.CertSeal1.Order", "Cancel")
        assert r["ok"], r
        assert s.state("B", path)["value"] == "cancelled"
    finally:
        s.stop()
    # Cancelled before payment: the damaged key's certificate stays valid.
    assert query(w, w.client, old)[old_serial] == "valid"


def test_sigkill_after_a_lost_keys_sms_step_keeps_the_revocation(world):
    w = world
    old, cert = made_key(w, "org", "RKIL1")
    old_serial = hexserial(cert)
    query(w, w.client, old)
    r = Reissue(old, w.client, old_serial, "lost")
    r.confirm()
    r.attach_all()
    r.submit()
    r.verify()
    assert r.state == "unpaid"
    w.client.close()
    w.daemon.kill()
    w.daemon.start()
    w.client = Client(w.bus)
    order = w.client.order(r.id)
    assert order.state == "unpaid"
    assert order.get("Fields")["certificate_serial"] == old_serial
    assert crl_reason(w, cert) == x509.ReasonFlags.key_compromise
    # The grant ended with the connection; a new query shows the certificate revoked.
    assert query(w, w.client, old)[old_serial] == "revoked"
    check_ledger(w)


def test_the_daemon_killed_in_every_state_of_a_reissue_loses_nothing(world):
    """A lost key's and a damaged key's reissue, and the reissues resting in the other states,
    are as they were after a SIGKILL in each state; a kill while the new key is being made
    goes back to approved and the key is made again. The lost key's certificate is revoked
    keyCompromise from the SMS step on, the damaged one's stays valid until the new key is
    made and is then superseded; the ledger verifies."""
    w = world
    crash = Crashes(w.daemon, w.client)
    olds = {serial: made_key(w, subject, serial)
            for subject, serial in (("org", "RKEV1"), ("person", "RKEV2"), ("person", "RKEV3"),
                                    ("org", "RKEV4"))}
    serials = {serial: hexserial(cert) for serial, (_, cert) in olds.items()}
    for a, _ in olds.values():
        query(w, w.client, a)

    def reissue(serial, reason):
        r = Reissue(olds[serial][0], w.client, serials[serial], reason)
        crash.watch(r)
        return r

    def status():
        rows = cert_rows(w.daemon.state_dir, set(serials.values()))
        return {serial: rows[hexserial] for serial, hexserial in serials.items()}

    # Every order is created within the grants, which end with the daemon.
    lost = reissue("RKEV1", "lost")
    damaged = reissue("RKEV2", "damaged")
    rejected = reissue("RKEV3", "damaged")
    cancelled = reissue("RKEV4", "lost")
    main = (lost, damaged)
    crash.kill_restart()                                        # draft
    for r in main:
        r.confirm()
    crash.kill_restart()                                        # confirmed
    for r in main:
        r.attach_all()
        r.submit()
    crash.kill_restart()                                        # sms_pending
    for r in main:
        r.verify()
        assert r.state == "unpaid"
    crash.kill_restart()                                        # unpaid
    assert status()["RKEV1"] == ("revoked", "keyCompromise")
    assert status()["RKEV2"][0] == "valid"
    for r in main:
        r.pay()
    # Reissues resting in the other states while the daemon dies.
    rejected.to_review()
    rejected.reject("身份证反面不清晰")
    cancelled.confirm()
    cancelled.call("Cancel")
    assert cancelled.state == "cancelled"
    crash.kill_restart()                                        # in_review, rejected, cancelled
    for r in main:
        r.approve()
    crash.kill_restart()                                        # approved
    # making: held in key generation by a hanging token, then killed.
    blank_key(w.daemon.state_dir, w.client, "RKNEW1")
    vkey(w.daemon.state_dir, "fault", "RKNEW1", "C_GenerateKeyPair", "--after", "1", "--mode",
         "hang", "--timeout", "30000")
    mark = w.daemon.log_size()
    w.office.ok("make", damaged.id, "--key", "RKNEW1", "--no-wait")
    assert run_until(lambda: "fault on C_GenerateKeyPair" in w.daemon.log(mark), 15.0), \
        "the making never reached key generation"
    assert damaged.state == "making"
    crash.kill_restart(making=damaged)                          # making → approved
    assert status()["RKEV2"][0] == "valid"
    assert run_until(lambda: key_path("RKNEW1") in w.client.managed_objects(), 5.0)
    damaged.make("RKNEW1")
    blank_key(w.daemon.state_dir, w.client, "RKNEW2")
    lost.make("RKNEW2")
    crash.kill_restart()                                        # made
    assert status()["RKEV2"] == ("revoked", "superseded")
    for r, tracking in ((lost, "SF0000000071"), (damaged, "SF0000000072")):
        r.ship(tracking)
    crash.kill_restart()                                        # shipped
    for r in main:
        r.deliver()
    crash.kill_restart()                                        # completed
    assert crash.seen_states >= {
        "draft", "confirmed", "sms_pending", "unpaid", "in_review", "approved", "made",
        "shipped", "completed", "cancelled", "rejected"}, crash.seen_states
    assert status()["RKEV1"] == ("revoked", "keyCompromise")
    assert status()["RKEV4"][0] == "valid"  # cancelled before its SMS step
    assert status()["RKEV3"][0] == "valid"
    # Each new key logs in with the password its approval delivered.
    # The keys plugged in are listed a moment after the restarted daemon's READY=1.
    for r, serial in ((lost, "RKNEW2"), (damaged, "RKNEW1")):
        assert run_until(lambda: key_path(serial) in w.client.managed_objects(), 5.0)
        w.client.call(key_path(serial), KEY_IFACE, "Login", "s", (r.pin,))
        assert w.client.get(key_path(serial), KEY_IFACE, "HasSeal") is True
    check_ledger(w)


def served_crl(w):
    """The CRL the daemon publishes (ca/VENDOR/issuing.crl; `ca crl` would issue a new one)."""
    with open(os.path.join(w.daemon.state_dir, "ca", "demo-a", "issuing.crl"), "rb") as f:
        crl = x509.load_der_x509_crl(f.read())
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    return crl, number


def test_a_crl_is_issued_again_when_the_daemon_comes_back_after_its_refresh_time(world):
    """The CRLs are re-issued daily, well before their 7-day nextUpdate; a daemon that was
    down when that time came re-issues them as it starts, and a restart within the day
    serves the same CRL."""
    w = world
    first, n1 = served_crl(w)
    assert first.next_update - first.last_update == datetime.timedelta(days=7)
    w.move_clock("+0d")
    same, n2 = served_crl(w)
    assert n2 == n1 and same.last_update == first.last_update
    w.move_clock("+3d")
    later, n3 = served_crl(w)
    assert n3 > n1
    assert later.last_update - first.last_update >= datetime.timedelta(days=3)
    assert later.next_update - later.last_update == datetime.timedelta(days=7)


def test_certseal_order_continue_runs_the_next_step(world):
    w = world
    old, cert = made_key(w, "org", "RCON1")
    old_serial = hexserial(cert)
    query(w, w.client, old)
    r = Reissue(old, w.client, old_serial, "damaged")

    def cont(*extra, input=None):
        return subprocess.run([CLI, "--session", "order", "continue", r.id, *extra],
                              env=w.bus.env(LC_ALL="C.UTF-8"), capture_output=True, text=True,
                              input=input, stdin=None if input is not None else
                              subprocess.DEVNULL, timeout=30)

    cp = cont()
    assert cp.returncode == 0 and "Next step: confirm" in cp.stderr, cp.stdout + cp.stderr
    assert r.state == "confirmed"
    cp = cont()
    assert cp.returncode == 1 and "business_license" in cp.stderr, cp.stdout + cp.stderr
    r.attach_all()
    mark = w.office.mark("sms")
    cp = cont()
    assert cp.returncode == 0 and "Next step: submit" in cp.stderr, cp.stdout + cp.stderr
    assert r.state == "sms_pending"
    msg = w.office.wait_message("sms", to=r.handler_phone, template="sms_code", after=mark)
    cp = cont(input=secret_of(msg) + "\n")
    assert cp.returncode == 0 and "Next step: verify" in cp.stderr, cp.stdout + cp.stderr
    assert r.state == "unpaid"
    # Paying needs its channel, as `order pay` does.
    cp = cont()
    assert cp.returncode == 2, cp.stdout + cp.stderr
