"""
flow_helpers.py — driving whole `new` applications (docs/architecture.md §1.1) through the real daemon:
the applicant's D-Bus calls, the office's `certseal-office` commands, the sandbox outboxes
(SMS, mail, bank) where codes and certificate passwords arrive, and virtual UKeys. Used by
test_new_flow.py and by the end-to-end benchmark (tests/bench/bench-new-flow).

Every application gets its own subject (a USCC or resident ID computed here with its check
character) and its own phone numbers, so that many orders share one daemon without the
subject registry or the per-phone SMS limits of one touching another.
"""

import datetime
import itertools
import json
import os
import re
import subprocess
import time

import dbus

from conftest import (BUS_NAME, KEY_IFACE, ORDER_IFACE, ORG_FIELDS, PERSON_FIELDS, key_path,
                      run_until, vkey)
from office_helpers import Worker, run_office
from test_materials import JPEG, make_png

ORG_MATERIALS = ["business_license", "handler_id_front", "handler_id_back", "seal_form"]
PERSON_MATERIALS = ["id_front", "id_back", "seal_form"]
PRICE_FEN = {"org": 30000, "person": 10000}  # demo-a's [prices] new.org / new.person
REVIEW_WORKING_DAYS = {"org": 5, "person": 3}
SECRET_RE = re.compile(r"code: (\S+)$")

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]

_SEQ = itertools.count(1)
POLL_S = 0.05  # how often the outboxes are read while waiting for a message


# --- test data ----------------------------------------------------------------------------

def uscc(n):
    """A valid unified social credit code (GB 32100) numbered @n."""
    body = "91350200" + f"{n:09d}"
    total = sum(USCC_CHARSET.index(c) * w for c, w in zip(body, USCC_WEIGHTS))
    return body + USCC_CHARSET[(31 - total % 31) % 31]


def resident_id(n, born=datetime.date(1980, 1, 1)):
    """A valid resident ID number (GB 11643) numbered @n."""
    body = "110105" + (born + datetime.timedelta(days=n % 9000)).strftime("%Y%m%d") + \
        f"{n % 1000:03d}"
    total = sum(int(c) * w for c, w in zip(body, ID_WEIGHTS))
    return body + "10X98765432"[total % 11]


def phone(prefix, n):
    return f"{prefix}{n:08d}"


def org_fields(n, **overrides):
    """An organisation's application; legal_rep_phone="handler" makes the legal
    representative the handler (one phone)."""
    f = dict(ORG_FIELDS)
    f.update(org_name=f"厦门示例科技第{n}有限公司", uscc=uscc(n), legal_rep_id=resident_id(2 * n),
             legal_rep_phone=phone("137", n), handler_id=resident_id(2 * n + 1),
             handler_phone=phone("139", n), email=f"ops{n}@example.cn")
    f.update(overrides)
    if f.get("legal_rep_phone") == "handler":
        f["legal_rep_phone"] = f["handler_phone"]
    return {k: v for k, v in f.items() if v is not None}


def person_fields(n, **overrides):
    f = dict(PERSON_FIELDS)
    f.update(name=f"王五{n}", id_number=resident_id(5000 + n), phone=phone("136", n),
             email=f"p{n}@example.cn")
    f.update(overrides)
    return {k: v for k, v in f.items() if v is not None}


def masked(number):
    """The masking the spec shows: 138****8000."""
    return number[:3] + "****" + number[-4:]


def due_by(start, working_days, holidays=()):
    """End (23:59:59 local) of the @working_days-th working day after @start's day,
    weekends and @holidays (dates) skipped — computed here independently of the daemon."""
    day = datetime.date.fromtimestamp(start)
    left = working_days
    while left > 0:
        day += datetime.timedelta(days=1)
        if day.weekday() < 5 and day not in holidays:
            left -= 1
    return int(datetime.datetime.combine(day, datetime.time(23, 59, 59)).timestamp())


def pin_like(text, pin):
    """Does @text (str or bytes) contain @pin as a whole number — not inside a longer run of
    digits such as a timestamp, nor inside a hex digest or MAC (the keyed hashes the ledger
    keeps are hex text, and any six digits turn up in enough of them)?"""
    if isinstance(text, (bytes, bytearray)):
        return re.search(rb"(?<![0-9A-Fa-f])" + re.escape(pin.encode()) + rb"(?![0-9A-Fa-f])",
                         text) is not None
    return re.search(r"(?<![0-9A-Fa-f])" + re.escape(pin) + r"(?![0-9A-Fa-f])", text) is not None


# --- materials ----------------------------------------------------------------------------

def attach_bytes(order, kind, filename, data):
    fd = os.memfd_create("material", os.MFD_CLOEXEC)
    try:
        os.write(fd, data)
        order.client.call(order.path, ORDER_IFACE, "AttachMaterial", "ssh",
                          (kind, filename, dbus.types.UnixFd(fd)))
    finally:
        os.close(fd)


def attach_file(order, kind, path):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        order.client.call(order.path, ORDER_IFACE, "AttachMaterial", "ssh",
                          (kind, os.path.basename(path), dbus.types.UnixFd(fd)))
    finally:
        os.close(fd)


# --- the office side ----------------------------------------------------------------------

class Office:
    """certseal-office and the admin worker against one daemon's state directory."""

    def __init__(self, state_dir):
        self.state_dir = state_dir

    def run(self, *args, timeout=30):
        """`certseal-office --json ARGS`: (exit code, parsed stdout or None)."""
        r = run_office(self.state_dir, "--json", *args, timeout=timeout)
        out = None
        if r.stdout.strip():
            try:
                out = json.loads(r.stdout)
            except ValueError:
                out = r.stdout
        return r.returncode, out

    def ok(self, *args, timeout=30):
        rc, out = self.run(*args, timeout=timeout)
        assert rc == 0, f"certseal-office {' '.join(args)}: exit {rc}: {out}"
        return out

    def call(self, method, params=None):
        w = Worker(self.state_dir)
        try:
            return w.ok(method, params or {})
        finally:
            w.close()

    def outbox(self, service):
        return self.call("outbox.list", {"service": service})

    def mark(self, service):
        box = self.outbox(service)
        return max((m["id"] for m in box), default=0)

    def wait_message(self, service, to=None, template=None, after=0, timeout=10.0,
                     contains=None):
        """The first outbox message of @service newer than @after, to @to, of @template
        ("[template]" at the start of the text); None after @timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for m in self.outbox(service):
                if m["id"] <= after:
                    continue
                if to is not None and m.get("to") != to:
                    continue
                text = m.get("text", "")
                if template is not None and not text.startswith(f"[{template}]"):
                    continue
                if contains is not None and contains not in text:
                    continue
                return m
            if time.monotonic() > deadline:
                return None
            time.sleep(POLL_S)

    def messages(self, service, to=None, template=None, after=0):
        return [m for m in self.outbox(service) if m["id"] > after and
                (to is None or m.get("to") == to) and
                (template is None or m.get("text", "").startswith(f"[{template}]"))]

    def tasks(self, service=None, order_id=None):
        params = {"service": service} if service else {}
        return [t for t in self.call("tasks.list", params)
                if order_id is None or t.get("order_id") == order_id]


def secret_of(message):
    assert message is not None, "no message arrived in the outbox"
    m = SECRET_RE.search(message["text"])
    assert m is not None, f"no secret in {message['text']!r}"
    return m.group(1)


# --- one application ----------------------------------------------------------------------

class Application:
    """One `new` order, driven step by step as the applicant and the office would."""

    def __init__(self, client, office, subject="org", n=None, **overrides):
        self.client = client
        self.office = office
        self.subject = subject
        self.n = n if n is not None else next(_SEQ)
        self.fields = (org_fields if subject == "org" else person_fields)(self.n, **overrides)
        self.order = client.create_order("new", subject, self.fields)
        self.id = self.order.id
        self.code = None
        self.pin = None
        self.paid_window = None
        self.codes = []  # every SMS code this application was sent

    # properties and calls
    def prop(self, name):
        return self.order.get(name)

    @property
    def state(self):
        return self.order.state

    def call(self, method, signature="", args=()):
        return self.client.call(self.order.path, ORDER_IFACE, method, signature, args)

    @property
    def handler_phone(self):
        return self.fields["handler_phone" if self.subject == "org" else "phone"]

    @property
    def materials(self):
        return ORG_MATERIALS if self.subject == "org" else PERSON_MATERIALS

    def pin_route(self):
        """(service, recipient, template) the certificate password travels by."""
        method = self.fields["auth_method"]
        if method in ("corporate_account", "bank_account_transfer"):
            return "bank", self.fields["bank_account"], None
        to = self.fields["legal_rep_phone"] if self.subject == "org" else self.fields["phone"]
        template = "review_approved" if to == self.handler_phone else "password"
        return "sms", to, template

    # the steps
    def update(self, fields):
        self.order.update(fields)
        self.fields.update(fields)

    def confirm(self):
        self.order.confirm()
        assert self.state == "confirmed"

    def attach_all(self, seal_image=None):
        for i, kind in enumerate(self.materials):
            data = make_png(3 + i, 2) if kind != "handler_id_front" else JPEG
            attach_bytes(self.order, kind, f"{kind}.{'jpg' if data is JPEG else 'png'}", data)
        if seal_image is not None:
            attach_bytes(self.order, "seal_image", "seal.png", seal_image)
        assert self.prop("Missing") == []

    def submit(self):
        """Submit; returns the SMS code sent to the handler."""
        mark = self.office.mark("sms")
        self.call("Submit")
        assert self.state == "sms_pending"
        msg = self.office.wait_message("sms", to=self.handler_phone, template="sms_code",
                                       after=mark)
        assert msg is not None, f"no sms_code message to {self.handler_phone}"
        self.code = secret_of(msg)
        self.codes.append(self.code)
        return self.code

    def verify(self, code=None):
        self.call("VerifySmsCode", "s", (code or self.code,))

    def start_payment(self, channel="sandbox"):
        return self.call("StartPayment", "s", (channel,))

    def notify_paid(self):
        t0 = time.time()
        out = self.office.ok("pay-notify", self.id, "--channel", "sandbox")
        self.paid_window = (t0, time.time())
        return out

    def pay(self):
        self.start_payment()
        out = self.notify_paid()
        assert out["applied"] is True, out
        assert self.state == "in_review"
        return out

    def to_review(self):
        """Confirm, attach every material, submit, type the code and pay: in review."""
        self.confirm()
        self.attach_all()
        self.submit()
        self.verify()
        self.pay()

    def approve(self, note=None):
        """Approve the review; returns the certificate password read from the outbox."""
        service, to, template = self.pin_route()
        mark = self.office.mark(service)
        args = ["review", "approve", self.id] + (["--note", note] if note else [])
        out = self.office.ok(*args)
        assert out.get("committed") is True, out
        assert self.state == "approved"
        msg = self.office.wait_message(service, to=to, template=template, after=mark)
        assert msg is not None, f"the certificate password never reached the {service} " \
            f"outbox for {to} ({template})"
        self.pin = secret_of(msg)
        return self.pin

    def reject(self, note):
        out = self.office.ok("review", "reject", self.id, "--note", note)
        assert out.get("committed") is True, out
        assert self.state == "rejected"

    def make(self, serial, timeout=30.0):
        """Make the key on blank vkey @serial (already plugged) and wait for made."""
        self.office.ok("make", self.id, "--key", serial, "--no-wait")
        self.wait_state("made", timeout)

    def wait_state(self, state, timeout=30.0):
        deadline = time.monotonic() + timeout
        while self.state != state:
            assert time.monotonic() < deadline, \
                f"order {self.id} is {self.state}, not {state}, after {timeout} s: " \
                f"{self.prop('History')[-3:]}"
            time.sleep(POLL_S)

    def ship(self, tracking):
        self.office.ok("ship", self.id, "--tracking", tracking)
        assert self.state == "shipped"

    def deliver(self):
        self.office.ok("deliver", self.id)
        assert self.state == "completed"

    def invoice(self):
        return bytes(self.client.conn.call_blocking(BUS_NAME, self.order.path, ORDER_IFACE,
                                                    "GetInvoice", "", (), timeout=30,
                                                    byte_arrays=True))


def unpaid_application(client, office, subject="person", **overrides):
    """A new order of @subject ("person" or "org") submitted with its SMS code verified:
    unpaid."""
    a = Application(client, office, subject, **overrides)
    a.confirm()
    a.attach_all()
    a.submit()
    a.verify()
    assert a.state == "unpaid"
    return a


def blank_key(state_dir, client, serial, vendor="demo-a"):
    """A blank vkey, waited for on the bus; returns its object path."""
    vkey(state_dir, "create", "--vendor", vendor, "--serial", serial, "--blank")
    path = key_path(serial)
    assert run_until(lambda: path in client.managed_objects(), 5.0), f"key {serial} not listed"
    return path


def key_certificate(client, path):
    """The DER certificate on a key (an explicit property)."""
    return bytes(client.conn.call_blocking(BUS_NAME, path, "org.freedesktop.DBus.Properties",
                                           "Get", "ss", (KEY_IFACE, "Certificate"),
                                           timeout=10, byte_arrays=True))


def key_seal(client, path):
    return bytes(client.conn.call_blocking(BUS_NAME, path, KEY_IFACE, "ReadSeal", "", (),
                                           timeout=20, byte_arrays=True))


def openssl(*args, input=None):
    return subprocess.run(["openssl", *args], capture_output=True, text=input is None or
                          isinstance(input, str), input=input, timeout=30)
