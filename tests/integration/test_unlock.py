"""
The unlock flow (解锁 / 找回密码, docs/architecture.md §1.3, the manual's section 3) end to end, with real
components: keys made by the daemon itself through a `new` application on blank virtual
UKeys (so their SO PIN is sealed in the vault), the sandbox identity gateway, the SMS and
bank outboxes where the authorization code (授权码) arrives, and the keys' real PIN
counters.

Covered: org and person, each identity method, a key locked by wrong PINs and a forgotten
PIN on an unlocked key → Unlock → login with the new PIN and PinTriesLeft back to the
maximum; the second unlock of a key takes the shorter path (no identity check, the code by
the channel verified the first time); wrong codes until TooManyAttempts, an expired code, a
code of another order or key; a new PIN outside the vendor's policy; a key made elsewhere
and a locked SO PIN (NotEligible); three failed identity checks a day (RateLimited); the key
pulled during Unlock; SIGKILL in every state; the secrets in no log, event, task or
property.
"""

import contextlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import time

import dbus
import pytest

from conftest import (BUILD_DIR, DEV_VENDORS_D, KEY_IFACE, ORDER_IFACE, Bus, Client, Daemon, dbus_error,
                      key_path, run_until, vkey, write_config)
from flow_helpers import Application, Office, blank_key, pin_like, secret_of
from office_helpers import OfficeEnv, Worker
from test_vkey_pkcs11 import sanitizer_env

MODULE = os.path.join(BUILD_DIR, "drivers", "vkey", "certseal-vkey-pkcs11.so")
MAKE_SEALED_KEY = os.path.join(BUILD_DIR, "tests", "make-sealed-key")
ERR = "org.certseal.Error."
MAX_TRIES = 6  # demo-a's [pin] max_tries
CODE_RE = re.compile(r"^[2-9A-HJ-NP-Z]{8}$")  # no 0 O 1 I

_SERIALS = iter(range(1, 10000))


@pytest.fixture(scope="module")
def env(bus):
    d = Daemon(bus)
    d.start()
    c = Client(bus)
    yield d, c, Office(d.state_dir)
    c.close()
    d.cleanup()


@pytest.fixture
def plugged(env):
    """Keys a test made; unplugged at its end so that the next test's key is the only one
    inserted (an unlock wants exactly one)."""
    d, client, _ = env
    made = []
    yield made
    for serial in made:
        vkey(d.state_dir, "unplug", serial, check=False)
    for serial in made:
        run_until(lambda: key_path(serial) not in client.managed_objects(), 5.0)


@contextlib.contextmanager
def own_daemon(**daemon_args):
    """A daemon on a bus of its own (the module's daemon owns the name on the shared one):
    (daemon, client, office)."""
    bus = Bus()
    d = Daemon(bus, **daemon_args)
    c = None
    try:
        d.start()
        c = Client(bus)
        yield d, c, Office(d.state_dir)
    finally:
        if c is not None:
            c.close()
        d.cleanup()
        bus.close()


def made_key(env, plugged, subject="org", **overrides):
    """A key this platform made through a `new` application: (application, PIN, path)."""
    d, client, office = env
    serial = f"UK{next(_SERIALS):04d}"
    path = blank_key(d.state_dir, client, serial)
    plugged.append(serial)
    a = Application(client, office, subject, **overrides)
    a.to_review()
    pin = a.approve()
    a.make(serial)
    assert run_until(lambda: client.get(path, KEY_IFACE, "CertificateSerial") != "", 10.0)
    return a, pin, path, serial


def unlock_fields(app, path, method=None):
    """An unlock order's fields for the subject of @app, with the identity method's
    details (the same people, phones and accounts as the key's application)."""
    f = app.fields
    method = method or f["auth_method"]
    out = {"vendor": "demo-a", "key": path, "auth_method": method}
    if app.subject == "org":
        out.update(org_name=f["org_name"], uscc=f["uscc"], legal_rep_name=f["legal_rep_name"],
                   legal_rep_id=f["legal_rep_id"], legal_rep_phone=f["legal_rep_phone"])
    else:
        out.update(name=f["name"], id_number=f["id_number"], phone=f["phone"])
    if method in ("corporate_account", "bank_account_transfer"):
        out.update(bank_name="中国银行厦门分行", bank_account="6217000010001234567")
    if method in ("legal_rep_bank_card", "bank_card"):
        out.update(bank_card="6222020200112233445")
    return out


def code_route(fields, subject):
    """(outbox service, recipient, template) the authorization code travels by."""
    if fields["auth_method"] in ("corporate_account", "bank_account_transfer"):
        return "bank", fields["bank_account"], "auth_code_transfer"
    return "sms", fields["legal_rep_phone" if subject == "org" else "phone"], "auth_code"


class Unlock:
    """One unlock order, driven as the applicant would."""

    def __init__(self, env, app, path, method=None, fields=None):
        self.daemon, self.client, self.office = env
        self.subject = app.subject
        self.path = path
        self.fields = fields or unlock_fields(app, path, method)
        self.order = self.client.create_order("unlock", self.subject, self.fields)
        self.id = self.order.id

    @property
    def state(self):
        return self.order.state

    def prop(self, name):
        return self.order.get(name)

    def call(self, method, signature="", args=()):
        return self.client.call(self.order.path, ORDER_IFACE, method, signature, args)

    def wait_state(self, state, timeout=15.0):
        assert run_until(lambda: self.state == state, timeout), \
            f"order {self.id} is {self.state}, not {state}: {self.prop('History')[-3:]}"

    def to_authorized(self):
        """Confirm and Submit; returns the authorization code from the outbox."""
        service, to, template = code_route(self.fields, self.subject)
        mark = self.office.mark(service)
        self.order.confirm()
        self.call("Submit")
        self.wait_state("authorized")
        msg = self.office.wait_message(service, to=to, template=template, after=mark)
        code = secret_of(msg)
        assert CODE_RE.match(code), code
        return code

    def unlock(self, code, new_pin, key=None):
        self.call("Unlock", "oss", (dbus.ObjectPath(key or self.path), code, new_pin))


def lock(client, path, wrong="000000"):
    for _ in range(MAX_TRIES):
        with contextlib.suppress(dbus.exceptions.DBusException):
            client.call(path, KEY_IFACE, "Login", "s", (wrong,))
        if client.get(path, KEY_IFACE, "PinLocked"):
            return
    raise AssertionError("the key never locked")


def login(client, path, pin):
    client.call(path, KEY_IFACE, "Login", "s", (pin,))
    assert client.get(path, KEY_IFACE, "LoggedIn") is True
    client.call(path, KEY_IFACE, "Logout", "", ())


def next_task(worker, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = worker.recv(timeout=deadline - time.monotonic())
        if got is not None and got[0] == "TASK":
            return got[1]
    raise AssertionError("no TASK arrived")


def idv_tasks(office, order_id):
    return [t for t in office.tasks("idv") if t.get("order_id") == order_id]


# --- the main path, every subject type and method ----------------------------------------

@pytest.mark.parametrize("subject,method", [
    ("org", "legal_rep_phone"), ("org", "corporate_account"), ("org", "legal_rep_bank_card"),
    ("person", "phone"), ("person", "bank_card"), ("person", "bank_account_transfer"),
])
def test_a_key_locked_by_wrong_pins_is_unlocked(env, plugged, subject, method):
    _, client, office = env
    app, pin, path, _ = made_key(env, plugged, subject)
    lock(client, path)
    assert client.get(path, KEY_IFACE, "PinTriesLeft") == 0
    u = Unlock(env, app, path, method)
    assert u.state == "draft"
    code = u.to_authorized()
    assert len(idv_tasks(office, u.id)) == 1  # the first unlock of the key was checked
    assert u.prop("PasswordDelivery").split(":")[0] in ("sms", "transfer")
    u.unlock(code, "246810")
    assert u.state == "completed"
    # At once, not a poll later: the key is unlocked and its tries restored.
    assert client.get(path, KEY_IFACE, "PinLocked") is False
    assert client.get(path, KEY_IFACE, "PinTriesLeft") == MAX_TRIES
    login(client, path, "246810")
    with dbus_error(ERR + "PinIncorrect"):
        client.call(path, KEY_IFACE, "Login", "s", (pin,))


def test_a_forgotten_pin_on_an_unlocked_key_and_the_shorter_second_time(env, plugged):
    d, client, office = env
    app, pin, path, _ = made_key(env, plugged, "person")
    first = Unlock(env, app, path, "phone")
    first.unlock(first.to_authorized(), "135790")
    assert first.state == "completed"
    login(client, path, "135790")
    # The second unlock of the key: no identity check, the code by the phone verified the
    # first time — even though this order names another method and phone.
    fields = unlock_fields(app, path, "bank_card")
    fields["phone"] = "13912345678"
    second = Unlock(env, app, path, fields=fields)
    mark = office.mark("sms")
    second.order.confirm()
    second.call("Submit")
    assert second.state == "authorized"
    assert idv_tasks(office, second.id) == []
    assert not [s for _, s, _ in second.prop("History") if s == "verifying"]
    msg = office.wait_message("sms", to=app.fields["phone"], template="auth_code", after=mark)
    assert office.messages("sms", to="13912345678", after=mark) == []
    second.unlock(secret_of(msg), "975310")
    assert second.state == "completed"
    login(client, path, "975310")


def test_a_priced_unlock_is_paid_before_the_check(tmp_dir):
    """With a price in the vendor's table, Submit waits for the payment (unpaid); the
    cashier's confirmation starts the identity check, and the code follows."""
    vendors = os.path.join(tmp_dir, "vendors.d")
    shutil.copytree(DEV_VENDORS_D, vendors)
    profile = os.path.join(vendors, "demo-a.conf")
    with open(profile) as f:
        text = f.read()
    with open(profile, "w") as f:
        f.write(text.replace("unlock.person = 0", "unlock.person = 500"))
    conf = write_config(os.path.join(tmp_dir, "priced.conf"), daemon={"vendor_dir": vendors})
    with own_daemon(config=conf) as env:
        d, client, office = env
        app, pin, path, _ = made_key(env, [], "person")
        lock(client, path)
        u = Unlock(env, app, path, "phone")
        assert u.prop("AmountFen") == 500
        u.order.confirm()
        u.call("Submit")
        assert u.state == "unpaid"
        mark = office.mark("sms")
        u.call("StartPayment", "s", ("sandbox",))
        assert office.ok("pay-notify", u.id, "--channel", "sandbox")["applied"] is True
        u.wait_state("authorized")
        assert len(idv_tasks(office, u.id)) == 1
        msg = office.wait_message("sms", to=app.fields["phone"], template="auth_code",
                                  after=mark)
        u.unlock(secret_of(msg), "246810")
        assert u.state == "completed"
        login(client, path, "246810")


# --- the code -----------------------------------------------------------------------------

def test_wrong_codes_until_too_many_attempts(env, plugged):
    _, client, _ = env
    app, pin, path, _ = made_key(env, plugged)
    u = Unlock(env, app, path)
    code = u.to_authorized()
    wrong = "2345678A" if code != "2345678A" else "2345678B"
    for left in (4, 3, 2, 1):
        with dbus_error(ERR + "CodeInvalid", f"{left} tries left"):
            u.unlock(wrong, "246810")
    with dbus_error(ERR + "TooManyAttempts"):
        u.unlock(wrong, "246810")
    # Dead now, even the right one; the PIN is unchanged.
    with dbus_error(ERR + "TooManyAttempts"):
        u.unlock(code, "246810")
    assert u.state == "authorized"
    login(client, path, pin)


def test_a_code_of_another_order_or_another_key_is_invalid(env, plugged):
    d, client, _ = env
    app, pin, path, serial = made_key(env, plugged)
    first = Unlock(env, app, path)
    first_code = first.to_authorized()
    first.call("Cancel")
    second = Unlock(env, app, path)
    second_code = second.to_authorized()
    with dbus_error(ERR + "CodeInvalid"):
        second.unlock(first_code, "246810")
    # The right code for another key: another key's path makes it wrong.
    other = "/org/certseal/CertSeal1/keys/pkcs11_5fNOSUCHKEY"
    with dbus_error(ERR + "CodeInvalid"):
        second.unlock(second_code, "246810", key=other)
    second.unlock(second_code, "246810")
    assert second.state == "completed"
    # Single use.
    with dbus_error(ERR + "WrongState"):
        second.unlock(second_code, "864200")


def test_an_expired_code_is_refused(tmp_dir):
    conf = os.path.join(tmp_dir, "short.conf")
    write_config(conf, auth_code={"lifetime_s": "2"})
    with own_daemon(config=conf) as env:
        d, c, _ = env
        app, pin, path, _ = made_key(env, [])
        u = Unlock(env, app, path)
        code = u.to_authorized()
        time.sleep(2.5)
        with dbus_error(ERR + "CodeExpired"):
            u.unlock(code, "246810")
        assert u.state == "authorized"
        login(c, path, pin)


# --- the new PIN --------------------------------------------------------------------------

def test_a_new_pin_outside_the_vendor_policy_is_refused(env, plugged):
    _, client, _ = env
    app, pin, path, _ = made_key(env, plugged)
    u = Unlock(env, app, path)
    code = u.to_authorized()
    with dbus_error(ERR + "InvalidInput", "new_pin", "6 to 16"):
        u.unlock(code, "12345")
    with dbus_error(ERR + "InvalidInput", "new_pin", "digits only"):
        u.unlock(code, "abcdef12")
    with dbus_error(ERR + "InvalidInput", "new_pin", "one digit repeated"):
        u.unlock(code, "888888")
    # None of these used a try of the code.
    u.unlock(code, "246810")
    assert u.state == "completed"


# --- eligibility --------------------------------------------------------------------------

def test_a_key_made_elsewhere_is_not_eligible(env, plugged):
    d, client, office = env
    app, pin, path, serial = made_key(env, plugged)
    vkey(d.state_dir, "unplug", serial)
    assert run_until(lambda: path not in client.managed_objects(), 5.0)
    # A key whose certificate is the subject's but whose SO PIN the vault never held.
    other = f"UX{next(_SERIALS):04d}"
    vkey(d.state_dir, "create", "--vendor", "demo-a", "--serial", other)
    plugged.append(other)
    other_path = key_path(other)
    assert run_until(lambda: other_path in client.managed_objects(), 5.0)
    u = Unlock(env, app, other_path)
    with dbus_error(ERR + "NotEligible", other, "not made by this platform"):
        u.order.confirm()
    assert u.state == "draft"


def test_no_key_or_several_keys(env, plugged):
    d, client, _ = env
    app, pin, path, serial = made_key(env, plugged)
    other = f"UM{next(_SERIALS):04d}"
    vkey(d.state_dir, "create", "--vendor", "demo-a", "--serial", other)
    plugged.append(other)
    assert run_until(lambda: key_path(other) in client.managed_objects(), 5.0)
    u = Unlock(env, app, path)
    with dbus_error(ERR + "MultipleKeys"):
        u.order.confirm()
    for s in (serial, other):
        vkey(d.state_dir, "unplug", s)
    assert run_until(lambda: path not in client.managed_objects() and
                     key_path(other) not in client.managed_objects(), 5.0)
    with dbus_error(ERR + "NoKey"):
        u.order.confirm()


def test_a_locked_so_pin_is_not_eligible(env, plugged):
    d, client, _ = env
    app, pin, path, serial = made_key(env, plugged)
    u = Unlock(env, app, path)
    code = u.to_authorized()
    # Lock the key's SO PIN with a peer's tool (as a user with a wrong admin PIN would).
    tool_env = sanitizer_env(
        dict(os.environ, CERTSEAL_VKEY_DIR=os.path.join(d.state_dir, "drivers", "vkey")))
    for _ in range(10):
        subprocess.run(["pkcs11-tool", "--module", MODULE, "--login", "--login-type", "so",
                        "--so-pin", "99999999", "--init-pin", "--new-pin", "246810"],
                       env=tool_env, capture_output=True, timeout=30)
    with dbus_error(ERR + "NotEligible", "SO PIN", "补办"):
        u.unlock(code, "246810")
    assert u.state == "authorized"
    assert "SO PIN" in u.prop("ReviewNote")
    login(client, path, pin)


def test_three_failed_identity_checks_a_day_rate_limit_the_key(tmp_dir):
    # An identity gateway that says no: a worker with the gateway role, READY for idv
    # (it takes precedence over the sandbox).
    office_env = OfficeEnv(tmp_dir, {"gw": "gateway"},
                           plugin_dir=os.path.join(BUILD_DIR, "plugins"))
    with own_daemon(config=office_env.config) as env:
        d, client, office = env
        app, pin, path, _ = made_key(env, [], "person")
        w = Worker(d.state_dir, key_file=office_env.keys["gw"])
        try:
            w.send("READY", {"service": "idv"})
            w.ok("info")  # READY was read before anything is queued
            u = Unlock(env, app, path, "phone")
            u.order.confirm()
            for i in range(3):
                u.call("Submit")
                assert u.state == "verifying"
                task = next_task(w)
                assert task["service"] == "idv"
                assert task["payload"]["method"] == "phone"
                assert task["payload"]["fields"]["id_number"] == app.fields["id_number"]
                w.send("DONE", {"lease": task["lease"],
                                "result": {"result": "fail", "reason": f"名字不符 {i}"}})
                u.wait_state("draft")
                assert f"名字不符 {i}" in u.prop("ReviewNote")
                u.order.confirm()
            with dbus_error(ERR + "RateLimited", "try again tomorrow"):
                u.call("Submit")
            # Another order for the same key: the same limit.
            again = Unlock(env, app, path, "phone")
            again.order.confirm()
            with dbus_error(ERR + "RateLimited"):
                again.call("Submit")
            u.call("Cancel")
            assert u.state == "cancelled"
        finally:
            w.close()


def test_sigkill_while_verifying_keeps_the_check_queued(tmp_dir):
    """An identity check nobody answered yet survives a SIGKILL: after the restart its idv
    task is queued again (no gateway is READY now, so the sandbox takes it) and the code
    goes out."""
    office_env = OfficeEnv(tmp_dir, {"gw": "gateway"},
                           plugin_dir=os.path.join(BUILD_DIR, "plugins"))
    with own_daemon(config=office_env.config) as env:
        d, client, office = env
        app, pin, path, _ = made_key(env, [], "person")
        w = Worker(d.state_dir, key_file=office_env.keys["gw"])
        try:
            w.send("READY", {"service": "idv"})
            w.ok("info")
            u = Unlock(env, app, path, "phone")
            u.order.confirm()
            u.call("Submit")
            assert next_task(w)["payload"]["order"]["id"] == u.id  # leased, never answered
        finally:
            w.close()
        mark = office.mark("sms")
        assert u.state == "verifying"
        d.kill()
        d.start()
        u.wait_state("authorized")
        msg = office.wait_message("sms", to=app.fields["phone"], template="auth_code",
                                  after=mark)
        assert [t["state"] for t in idv_tasks(office, u.id)] == ["done"]
        assert run_until(lambda: path in client.managed_objects(), 5.0)
        u.unlock(secret_of(msg), "246810")
        assert u.state == "completed"


# --- faults -------------------------------------------------------------------------------

def test_the_key_pulled_during_unlock_keeps_the_order_authorized(env, plugged):
    d, client, _ = env
    app, pin, path, serial = made_key(env, plugged)
    lock(client, path)
    u = Unlock(env, app, path)
    code = u.to_authorized()
    vkey(d.state_dir, "fault", serial, "C_Login", "--after", "1", "--mode", "unplug")
    with dbus_error(ERR + "KeyRemoved"):
        u.unlock(code, "246810")
    assert u.state == "authorized"
    assert "246810" not in u.prop("ReviewNote")
    vkey(d.state_dir, "plug", serial)
    assert run_until(lambda: path in client.managed_objects(), 5.0)
    assert client.get(path, KEY_IFACE, "PinLocked") is True  # the PIN unchanged
    # The code was not used up: unlock again. (A re-plugged key is a fresh key: the driver
    # may drop and list it once more while it notices; a KeyRemoved then is answered like
    # the first one — the order stays authorized — and the applicant tries again.)
    for _ in range(5):
        try:
            u.unlock(code, "246810")
            break
        except dbus.exceptions.DBusException as e:
            assert e.get_dbus_name() == ERR + "KeyRemoved", e
            assert u.state == "authorized"
            assert run_until(lambda: path in client.managed_objects(), 5.0)
    assert u.state == "completed"
    login(client, path, "246810")


def test_sigkill_in_every_state_loses_nothing():
    with own_daemon() as env:
        d, c, _ = env
        made = []
        app, pin, path, _ = made_key(env, made)
        u = Unlock(env, app, path)
        seen = []

        def crash():
            state = u.state
            d.kill()
            d.start()
            assert run_until(lambda: path in c.managed_objects(), 5.0)
            assert u.state == state
            seen.append(state)

        crash()  # draft
        u.order.confirm()
        crash()  # confirmed
        service, to, template = code_route(u.fields, "org")
        mark = env[2].mark(service)
        u.call("Submit")
        u.wait_state("authorized")
        crash()  # authorized
        code = secret_of(env[2].wait_message(service, to=to, template=template, after=mark))
        u.unlock(code, "246810")
        crash()  # completed
        assert seen == ["draft", "confirmed", "authorized", "completed"]
        login(c, path, "246810")
        rc, out = env[2].run("ledger", "verify")
        assert rc == 0, out


def test_a_crash_while_unlocking_falls_back_to_authorized():
    with own_daemon() as env:
        d, c, _ = env
        made = []
        app, pin, path, serial = made_key(env, made)
        u = Unlock(env, app, path)
        code = u.to_authorized()
        vkey(d.state_dir, "fault", serial, "C_InitPIN", "--after", "1", "--mode", "hang",
             "--timeout", "60000")
        conn = c.conn
        conn.call_async("org.certseal.CertSeal1", u.order.path, ORDER_IFACE, "Unlock", "oss",
                        (dbus.ObjectPath(path), code, "246810"), None, None)
        u.wait_state("unlocking")
        fault = os.path.join(d.state_dir, "drivers", "vkey", serial, "fault")
        assert run_until(lambda: not os.path.exists(fault), 10.0)  # the reset hangs now
        d.kill()  # the hung call dies with it
        d.start()
        assert u.state == "authorized"
        assert run_until(lambda: path in c.managed_objects(), 5.0)
        u.unlock(code, "246810")
        assert u.state == "completed"


# --- secrets ------------------------------------------------------------------------------

def test_the_code_the_so_pin_and_the_new_pin_appear_nowhere():
    with own_daemon() as env:
        d, c, office = env
        app, pin, path, _ = made_key(env, [])
        u = Unlock(env, app, path)
        code = u.to_authorized()
        new_pin = "731946"
        u.unlock(code, new_pin)
        assert u.state == "completed"
        shown = json.dumps({str(k): str(v) for k, v in u.order.get_all().items()},
                           ensure_ascii=False)
        tasks = json.dumps(office.tasks(), ensure_ascii=False)
        d.stop()
        db = sqlite3.connect(os.path.join(d.state_dir, "ledger.db"))
        try:
            rows = [" ".join(str(v) for v in row)
                    for table in ("events", "orders", "order_attrs", "tasks")
                    for row in db.execute(f"SELECT * FROM {table}")]
            hashes = [r[0] for r in db.execute("SELECT code_hash FROM codes")]
        finally:
            db.close()
        blob = "\n".join([d.log(), shown, tasks] + rows)
        assert code not in blob and code not in hashes
        assert not pin_like(blob, new_pin)
        # The SO PIN the making sealed is 12 digits: no such number is anywhere (digits
        # inside a hex digest or MAC are not a number).
        assert re.search(r"(?<![0-9A-Za-z\\])[0-9]{12}(?![0-9A-Za-z])", blob) is None


# --- the command line ---------------------------------------------------------------------

def test_certseal_unlock_from_a_script(env, plugged, tmp_dir):
    """`certseal unlock`: fields from a file, the code and the new PIN twice on stdin (never
    argv), --json; the key locked by wrong PINs opens with the new PIN."""
    d, client, office = env
    app, pin, path, serial = made_key(env, plugged, "person")
    lock(client, path)
    fields = os.path.join(tmp_dir, "unlock.txt")
    with open(fields, "w") as f:
        f.write(f"# key=value lines\nname = {app.fields['name']}\n"
                f"id_number = {app.fields['id_number']}\nphone = {app.fields['phone']}\n")
    mark = office.mark("sms")
    cli = subprocess.Popen([os.path.join(BUILD_DIR, "cli", "certseal"), "--session", "--json",
                            "unlock", "--key", serial, "--subject", "person", "--method",
                            "phone", "--fields", fields],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=d.bus.env())
    try:
        msg = office.wait_message("sms", to=app.fields["phone"], template="auth_code",
                                  after=mark, timeout=20)
        out, err = cli.communicate(f"{secret_of(msg)}\n246810\n246810\n", timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 0, f"{out}\n{err}"
    doc = json.loads(out)
    assert doc["unlocked"] is True and doc["state"] == "completed"
    assert client.get(path, KEY_IFACE, "PinTriesLeft") == MAX_TRIES
    login(client, path, "246810")
    # A wrong code (the second unlock of the key: the code goes at once): the daemon's
    # refusal as JSON, exit 1.
    cp = subprocess.run([os.path.join(BUILD_DIR, "cli", "certseal"), "--session", "--json",
                         "unlock", "--subject", "person", "--method", "phone", "--fields",
                         fields], input="2345678A\n135790\n135790\n", capture_output=True,
                        text=True, env=d.bus.env(), timeout=60)
    assert cp.returncode == 1, cp
    assert json.loads(cp.stdout)["error"]["code"] == ERR + "CodeInvalid"
    login(client, path, "246810")
