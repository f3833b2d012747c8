"""
The new-certificate flow end to end (新办, docs/architecture.md §1.1, §3.3–3.6, §6): real components only —
the real certseald on a private bus, the office over ZeroMQ through `certseal-office`, the
built-in sandbox gateways (SMS, mail and bank outboxes: the only place a code or a
certificate password may be read in clear), and virtual UKeys over SoftHSM2.

An organisation and a person apply, confirm, attach their materials, submit, type the SMS
code, pay, get reviewed, have a blank key made, shipped and delivered; the key then holds a
certificate that chains to the vendor's CA, an e-seal that verifies, and logs in with the
password that reached the applicant. Around that path: refused inputs, wrong, expired and
too-frequent codes, a payment notified twice, a rejection fixed and reviewed again without
a second payment, a free application, review deadlines over weekends and holidays,
cancellation before and after payment, the daemon SIGKILLed in every state (making
included, in key generation and while the certificate is written), a key pulled while being
made, and the password and codes found nowhere but in the outbox.

One daemon serves most of the module (each application has its own subject and phones);
a second one has short-lived codes, holidays and a free price; the crash tests kill
daemons of their own.
"""

import contextlib
import datetime
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import time

import dbus
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from conftest import (DEV_VENDORS_D, ERR_INVALID_INPUT, ERR_WRONG_STATE, ID_29_FEB_1949,
                      ID_BAD_CHECK, KEY_IFACE, USCC_BAD_CHECK, Bus, Client, Daemon,
                      SignalRecorder, dbus_error, key_path, pump, run_cli, run_until,
                      short_tmpdir, vkey, write_config)
from flow_helpers import (PERSON_MATERIALS, PRICE_FEN, REVIEW_WORKING_DAYS, SECRET_RE,
                          Application, Office, attach_bytes, attach_file, blank_key, due_by,
                          key_certificate, key_seal, masked, openssl, org_fields, person_fields,
                          pin_like, secret_of)
from office_helpers import office_info
from test_crash import recompute_chain
from test_materials import JPEG, make_png

@contextlib.contextmanager
def daemon_on_own_bus(**daemon_args):
    """(daemon, client, office) of a daemon started on a bus of its own; all stopped after."""
    bus = Bus()
    d = Daemon(bus, **daemon_args)
    c = None
    try:
        d.start()
        office_info(d.state_dir)
        c = Client(bus)
        yield d, c, Office(d.state_dir)
    finally:
        if c is not None:
            c.close()
        d.cleanup()
        bus.close()


ERR_CODE_INVALID = "org.certseal.Error.CodeInvalid"
ERR_CODE_EXPIRED = "org.certseal.Error.CodeExpired"
ERR_TOO_MANY = "org.certseal.Error.TooManyAttempts"
ERR_RATE_LIMITED = "org.certseal.Error.RateLimited"
ERR_NOT_FOUND = "org.certseal.Error.NotFound"

ORGANIZATION_IDENTIFIER = x509.ObjectIdentifier("2.5.4.97")
CRL_URL = "http://crl.demo-a.certseal.test/issuing.crl"

# Every application of the module, for the final look for leaked secrets.
APPS = []


@pytest.fixture(scope="module")
def office(daemon):
    office_info(daemon.state_dir)
    return Office(daemon.state_dir)


@pytest.fixture
def app(client, office):
    def make(subject="org", **overrides):
        a = Application(client, office, subject, **overrides)
        APPS.append(a)
        return a
    return make


def states_of(history):
    """The states an order went through, each once in a row (entries without a state, the
    office's calls about the order, left out)."""
    out = []
    for _, state, _ in history:
        if state and (not out or out[-1] != state):
            out.append(state)
    return out


def notes_of(history):
    return [note for _, _, note in history]


def ledger(state_dir):
    return sqlite3.connect(f"file:{os.path.join(state_dir, 'ledger.db')}?mode=ro", uri=True)


def count(state_dir, sql, *args):
    with ledger(state_dir) as db:
        return db.execute(sql, args).fetchone()[0]


def pdf_text(pdf, tmp_dir, name="doc.pdf"):
    path = os.path.join(tmp_dir, name)
    with open(path, "wb") as f:
        f.write(pdf)
    return subprocess.run(["pdftotext", "-layout", path, "-"], capture_output=True, text=True,
                          check=True).stdout


def ca_chain(office, tmp_dir, vendor="demo-a"):
    pem = office.ok("ca", "export", "--vendor", vendor)
    text = "".join(v["pem"] for v in pem) if isinstance(pem, list) else pem
    assert text.count("-----BEGIN CERTIFICATE-----") == 3, text
    path = os.path.join(tmp_dir, f"{vendor}-ca.pem")
    with open(path, "w") as f:
        f.write(text)
    return path


# --- checks shared by several tests ---------------------------------------------------

def check_paid(a, office, tmp_dir, mail_mark):
    """What entering in_review after payment brings: the invoice, its mail, the review
    deadline and the review task."""
    assert a.state == "in_review"
    assert a.prop("InvoiceAvailable") is True
    assert "GetInvoice" in a.prop("NextActions")
    assert "StartPayment" not in a.prop("NextActions")
    pdf = a.invoice()
    assert pdf.startswith(b"%PDF-"), pdf[:16]
    text = pdf_text(pdf, tmp_dir, f"invoice-{a.id}.pdf")
    number = re.search(r"发票号码：\s*(\S+)", text)
    assert number is not None, text
    number = number.group(1)
    assert a.id in text
    buyer = a.fields["org_name"] if a.subject == "org" else a.fields["name"]
    assert buyer in text
    if a.subject == "org":
        assert a.fields["uscc"] in text
    assert f"{PRICE_FEN[a.subject] // 100:,}.00" in text, text

    mail = office.wait_message("mail", to=a.fields["email"], after=mail_mark)
    assert mail is not None, f"no invoice mail to {a.fields['email']}"
    subject_line = mail["text"].splitlines()[0]
    assert number in subject_line, mail["text"]

    n = REVIEW_WORKING_DAYS[a.subject]
    t0, t1 = a.paid_window
    expected = {due_by(t0, n), due_by(t1, n)}
    assert a.prop("DueBy") in expected, \
        f"DueBy {a.prop('DueBy')} ({datetime.datetime.fromtimestamp(a.prop('DueBy'))}), " \
        f"expected {[str(datetime.datetime.fromtimestamp(e)) for e in expected]}"
    review = [t for t in office.tasks("review", a.id) if t["state"] in ("queued", "leased")]
    assert len(review) == 1, office.tasks("review", a.id)
    return number


def check_made_key(client, office, daemon, a, serial, tmp_dir, seal_image=None):
    """The made key: its certificate chains to the vendor's CA and names the subject, its
    seal verifies and holds that certificate, and the delivered password logs in and signs."""
    path = key_path(serial)
    assert run_until(lambda: client.get(path, KEY_IFACE, "CertificateSerial") != "", 5.0), \
        "the key shows no certificate"
    props = client.get_all(path, KEY_IFACE)
    assert props["HasSeal"] is True
    der = key_certificate(client, path)
    cert = x509.load_der_x509_certificate(der)
    assert props["CertificateSerial"].upper().lstrip("0") == f"{cert.serial_number:X}"
    assert props["NotAfter"] == int(cert.not_valid_after.replace(
        tzinfo=datetime.timezone.utc).timestamp())

    # The chain: `certseal-office ca export` and openssl.
    chain = ca_chain(office, tmp_dir)
    cert_pem = os.path.join(tmp_dir, f"{serial}.pem")
    with open(cert_pem, "wb") as f:
        f.write(cert.public_bytes(Encoding.PEM))
    v = openssl("verify", "-CAfile", chain, cert_pem)
    assert v.returncode == 0 and f"{cert_pem}: OK" in v.stdout, v.stdout + v.stderr

    # The subject of docs/architecture.md §9, the vendor's algorithm, CRL point and period.
    subj = cert.subject
    attr = lambda oid: [x.value for x in subj.get_attributes_for_oid(oid)]
    assert attr(NameOID.COUNTRY_NAME) == ["CN"]
    if a.subject == "org":
        assert attr(NameOID.ORGANIZATION_NAME) == [a.fields["org_name"]]
        assert attr(NameOID.COMMON_NAME) == [a.fields["org_name"]]
        assert attr(ORGANIZATION_IDENTIFIER) == ["NTRCN-" + a.fields["uscc"]]
    else:
        assert attr(NameOID.COMMON_NAME) == [a.fields["name"]]
        want = hashlib.sha256(a.fields["id_number"].encode()).hexdigest()
        assert [s.lower() for s in attr(NameOID.SERIAL_NUMBER)] == [want]
        assert a.fields["id_number"] not in subj.rfc4514_string()
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    crl = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for dp in crl for n in dp.full_name] == [CRL_URL]
    days = (cert.not_valid_after - cert.not_valid_before).days
    assert 364 <= days <= 366, days
    assert abs(cert.not_valid_before.replace(tzinfo=datetime.timezone.utc).timestamp()
               - time.time()) < 600
    # The ledger recorded it as this order's certificate.
    with ledger(daemon.state_dir) as db:
        rows = db.execute("SELECT order_id, role, vendor FROM certificates WHERE serial = ?",
                          (f"{cert.serial_number:032X}",)).fetchall()
    assert rows == [(a.id, "subscriber", "demo-a")], rows

    # The e-seal read from the key: it verifies against the exported CA, names the subject
    # and holds this certificate; its picture is the attached seal image if any.
    seal = key_seal(client, path)
    seal_path = os.path.join(tmp_dir, f"{serial}.seal")
    with open(seal_path, "wb") as f:
        f.write(seal)
    cp = run_cli(daemon.bus, "--json", "seal", "verify", seal_path, "--ca", chain)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert json.loads(cp.stdout)["valid"] is True, cp.stdout
    cp = run_cli(daemon.bus, "--json", "seal", "show", seal_path)
    assert cp.returncode == 0, cp.stderr
    shown = json.loads(cp.stdout)
    name = a.fields["org_name"] if a.subject == "org" else a.fields["name"]
    assert shown["name"] == name and shown["type"] == a.subject, shown
    assert shown["vendor_id"] == "demo-a"
    assert len(shown["holders"]) == 1
    if a.subject == "org":
        assert a.fields["uscc"] in shown["holders"][0], shown["holders"]
    else:
        assert a.fields["name"] in shown["holders"][0], shown["holders"]
    assert shown["picture_type"] == "PNG" and shown["picture_size"] > 0
    if seal_image is not None:
        assert shown["picture_size"] == len(seal_image), shown
    # The password that reached the applicant logs in.
    client.call(path, KEY_IFACE, "Login", "s", (a.pin,))
    assert client.get(path, KEY_IFACE, "LoggedIn") is True
    client.call(path, KEY_IFACE, "Logout", "", ())
    return cert


def check_key_signs(client, office, daemon, a, serial, tmp_dir):
    """Logged in with the delivered password, the made key seals a document at the first
    try, and the signature verifies against the vendor's CA."""
    path = key_path(serial)
    chain = ca_chain(office, tmp_dir)
    client.call(path, KEY_IFACE, "Login", "s", (a.pin,))
    doc = os.path.join(tmp_dir, f"{serial}-doc.txt")
    with open(doc, "wb") as f:
        f.write(f"合同 {a.id}\n".encode())
    with open(doc, "rb") as f:
        sig = bytes(client.conn.call_blocking("org.certseal.CertSeal1", path, KEY_IFACE,
                                              "SealDocument", "sh",
                                              ("doc.txt", dbus.types.UnixFd(f.fileno())),
                                              timeout=20, byte_arrays=True))
    sig_path = doc + ".ses"
    with open(sig_path, "wb") as f:
        f.write(sig)
    cp = run_cli(daemon.bus, "--json", "seal", "verify", sig_path, "--document", doc,
                 "--ca", chain)
    assert cp.returncode == 0 and json.loads(cp.stdout)["valid"] is True, cp.stdout + cp.stderr
    client.call(path, KEY_IFACE, "Logout", "", ())


# --- the whole application ------------------------------------------------------------

@pytest.mark.parametrize("subject", ["org", "person"])
def test_whole_application_from_draft_to_completed(daemon, client, office, app, tmp_dir,
                                                   subject):
    seal_image = make_png(40, 40, text=b"red seal") if subject == "org" else None
    a = app(subject)
    serial = f"NF{a.n:04d}{subject[0].upper()}"
    rec = SignalRecorder(client, signal_name="PropertiesChanged", path=a.order.path)
    assert a.state == "draft"
    assert a.prop("AmountFen") == PRICE_FEN[subject]
    assert a.prop("DueBy") == 0 and a.prop("InvoiceAvailable") is False
    a.order.update({"address": "福建省厦门市思明区示例路 8 号"})  # 返回修改
    a.confirm()
    assert {"AttachMaterial", "Submit", "Cancel"} <= set(a.prop("NextActions"))
    a.attach_all(seal_image=seal_image)

    code = a.submit()
    assert re.fullmatch(r"[0-9]{6}", code), code
    assert {"SendSmsCode", "VerifySmsCode", "Cancel"} <= set(a.prop("NextActions"))
    a.verify()
    assert a.state == "unpaid"
    assert "StartPayment" in a.prop("NextActions")
    assert a.prop("InvoiceAvailable") is False
    with dbus_error(ERR_NOT_FOUND):
        a.invoice()

    with dbus_error(ERR_INVALID_INPUT, "channel"):
        a.start_payment("bitcoin")
    now = time.time()
    qr, expires = a.start_payment("sandbox")
    assert qr == f"certseal-sandbox://pay?order={a.id}&amount_fen={PRICE_FEN[subject]}"
    assert now + 14 * 60 <= expires <= time.time() + 16 * 60, (now, expires)
    assert a.prop("PaymentChannel") == "sandbox"
    assert a.state == "unpaid"
    mail_mark = office.mark("mail")
    out = a.notify_paid()
    assert out["applied"] is True and out["order_id"] == a.id, out
    check_paid(a, office, tmp_dir, mail_mark)
    with dbus_error(ERR_WRONG_STATE):
        a.start_payment("sandbox")

    # Review: the result goes to the handler, the password only by the auth method.
    sms_mark = office.mark("sms")
    pin = a.approve(note="材料齐全")
    assert re.fullmatch(r"[0-9]{6,16}", pin), pin
    assert a.prop("ReviewNote") == "材料齐全"
    notice = office.wait_message("sms", to=a.handler_phone, template="review_approved",
                                 after=sms_mark)
    assert notice is not None, "no review_approved SMS to the handler"
    service, to, template = a.pin_route()
    if subject == "org":
        # The legal representative's phone is not the handler's: the password travels
        # alone, and the handler's notice carries none.
        assert to != a.handler_phone and template == "password"
        assert SECRET_RE.search(notice["text"]) is None, notice
    else:
        assert secret_of(notice) == pin
    assert a.prop("PasswordDelivery") == "sms:" + masked(to)
    assert "Submit" not in a.prop("NextActions")

    # Making on a blank key.
    blank_key(daemon.state_dir, client, serial)
    a.make(serial)
    assert a.prop("Progress") == 100
    assert a.prop("ReviewNote") == "材料齐全"
    with dbus_error(ERR_WRONG_STATE):
        a.order.cancel()
    assert a.state == "made"

    sms_mark = office.mark("sms")
    a.ship(f"SF{a.n:010d}")
    assert a.prop("TrackingNumber") == f"SF{a.n:010d}"
    shipped = office.wait_message("sms", to=a.handler_phone, template="shipped", after=sms_mark)
    assert shipped is not None, "no shipped SMS to the handler"
    a.deliver()
    assert a.state == "completed"
    assert states_of(a.prop("History")) == [
        "draft", "confirmed", "sms_pending", "unpaid", "in_review", "approved", "making",
        "made", "shipped", "completed"]
    assert "Cancel" not in a.prop("NextActions")
    # The applicant followed every step the office and the daemon took.
    office_driven = ["in_review", "approved", "making", "made", "shipped", "completed"]
    rec.wait_for(lambda m, p, i, args: args[1].get("State") == "completed", 5.0)
    seen = []
    for m, p, i, args in rec.signals:
        state = args[1].get("State") if m == "PropertiesChanged" else None
        if state in office_driven and (not seen or seen[-1] != state):
            seen.append(state)
    rec.remove()
    assert seen == office_driven, seen

    check_made_key(client, office, daemon, a, serial, tmp_dir, seal_image)
    rc, out = office.run("ledger", "verify")
    assert rc == 0 and out["ok"] is True, out
    check_key_signs(client, office, daemon, a, serial, tmp_dir)


# --- refused inputs -------------------------------------------------------------------

@pytest.mark.parametrize("subject,field,value", [
    ("org", "uscc", USCC_BAD_CHECK),
    ("org", "legal_rep_id", ID_BAD_CHECK),
    ("org", "handler_id", ID_29_FEB_1949),
    ("org", "legal_rep_phone", "12800138000"),
    ("org", "handler_phone", "1380013800"),
    ("person", "id_number", "110105209901010020"),
    ("person", "phone", "138001380001"),
], ids=["uscc", "legal-rep-id", "handler-id-date", "legal-rep-phone", "handler-phone",
        "person-id-born-2099", "person-phone"])
def test_an_invalid_identity_or_phone_is_refused_naming_the_field(daemon, client, office, app,
                                                                  subject, field, value):
    fields = (org_fields if subject == "org" else person_fields)(9000, **{field: value})
    with dbus_error(ERR_INVALID_INPUT, field) as info:
        client.create_order("new", subject, fields)
    assert value not in info.value.get_dbus_message()
    a = app(subject)
    before = a.prop("Fields")[field]
    with dbus_error(ERR_INVALID_INPUT, field):
        a.order.update({field: value})
    assert a.prop("Fields")[field] == before
    assert notes_of(a.prop("History")) == ["created"]


def test_a_huge_or_wrongly_typed_upload_is_refused(daemon, client, app, tmp_dir):
    a = app("person")
    a.confirm()
    huge = os.path.join(tmp_dir, "id_front.png")
    with open(huge, "wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse: 50 MB of nothing
    t0 = time.monotonic()
    with dbus_error(ERR_INVALID_INPUT, "id_front:", "52428800 bytes"):
        attach_file(a.order, "id_front", huge)
    assert time.monotonic() - t0 < 2.0
    with open("/bin/true", "rb") as f:
        elf = f.read()
    with dbus_error(ERR_INVALID_INPUT, "id_back:", "not a PNG, JPEG or PDF"):
        attach_bytes(a.order, "id_back", "id_back.jpg", elf)
    with dbus_error(ERR_INVALID_INPUT, "seal_form:"):
        attach_bytes(a.order, "seal_form", "seal_form.pdf", b"%PDX not a pdf at all\n" * 10)
    assert a.prop("Materials") == []
    assert a.prop("Missing") == PERSON_MATERIALS
    assert a.state == "confirmed"


def test_submit_names_every_missing_material(daemon, client, office, app):
    a = app("org")
    with dbus_error(ERR_WRONG_STATE):
        a.call("Submit")  # a draft is confirmed first
    a.confirm()
    with dbus_error(ERR_WRONG_STATE):
        a.order.update({"address": "已确认的订单不能修改"})  # 返回修改 is for drafts
    attach_bytes(a.order, "business_license", "license.png", make_png())
    mark = office.mark("sms")
    with dbus_error(ERR_INVALID_INPUT, "materials", "handler_id_front", "handler_id_back",
                    "seal_form") as info:
        a.call("Submit")
    assert "business_license" not in info.value.get_dbus_message()
    assert a.state == "confirmed"
    assert office.messages("sms", to=a.handler_phone, after=mark) == []
    attach_bytes(a.order, "handler_id_front", "front.jpg", JPEG)
    attach_bytes(a.order, "handler_id_back", "back.png", make_png(2, 2))
    with dbus_error(ERR_INVALID_INPUT, "seal_form") as info:
        a.call("Submit")
    assert "handler_id" not in info.value.get_dbus_message()
    attach_bytes(a.order, "seal_form", "form.png", make_png(5, 7))
    a.submit()
    assert a.state == "sms_pending"


# --- SMS codes ------------------------------------------------------------------------

def submitted(app, subject="org"):
    a = app(subject)
    a.confirm()
    a.attach_all()
    a.submit()
    return a


def test_wrong_codes_count_down_to_too_many_attempts(daemon, client, office, app):
    a = submitted(app)
    wrong = f"{(int(a.code) + 1) % 1000000:06d}"
    for left in (4, 3, 2, 1):
        with dbus_error(ERR_CODE_INVALID, "code", f"{left} tries left") as info:
            a.verify(wrong)
        assert a.code not in info.value.get_dbus_message()
    with pytest.raises(dbus.exceptions.DBusException) as info:
        a.verify(wrong)  # the fifth wrong try
    assert info.value.get_dbus_name() in (ERR_CODE_INVALID, ERR_TOO_MANY)
    # The code is dead now: even the right one is refused.
    with dbus_error(ERR_TOO_MANY):
        a.verify(a.code)
    assert a.state == "sms_pending"
    assert "unpaid" not in states_of(a.prop("History"))
    # Nothing else moves a submitted application meanwhile.
    with dbus_error(ERR_WRONG_STATE):
        attach_bytes(a.order, "seal_image", "seal.png", make_png())
    with dbus_error(ERR_WRONG_STATE):
        a.start_payment("sandbox")
    with dbus_error(ERR_WRONG_STATE):
        a.order.update({"email": "x@example.cn"})


def test_a_resend_inside_the_cooldown_is_rate_limited(daemon, client, office, app):
    a = submitted(app, "person")
    mark = office.mark("sms")
    with dbus_error(ERR_RATE_LIMITED):
        a.call("SendSmsCode")
    pump(0.3)
    assert office.messages("sms", to=a.handler_phone, after=mark) == []
    # The first code still stands.
    a.verify()
    assert a.state == "unpaid"
    # A code is single-use: the order moved on, and the code opens nothing twice.
    with pytest.raises(dbus.exceptions.DBusException):
        a.verify()
    assert a.state == "unpaid"


def next_weekdays(n):
    """The next @n weekdays after today."""
    out, day = [], datetime.date.today()
    while len(out) < n:
        day += datetime.timedelta(days=1)
        if day.weekday() < 5:
            out.append(day)
    return out


@pytest.fixture(scope="module")
def quick():
    """A second daemon on its own bus: codes live 3 s, a resend waits 1 s, the next two
    weekdays are public holidays, and demo-b issues a person's certificate for free."""
    work = short_tmpdir("csquick-")
    vendors = os.path.join(work, "vendors.d")
    os.makedirs(vendors)
    for name in os.listdir(DEV_VENDORS_D):
        with open(os.path.join(DEV_VENDORS_D, name)) as f:
            text = f.read()
        if name == "demo-b.conf":
            text = re.sub(r"(?m)^new\.person = \d+$", "new.person = 0", text)
            assert "new.person = 0" in text
        with open(os.path.join(vendors, name), "w") as f:
            f.write(text)
    holidays = next_weekdays(2)
    cfg = write_config(os.path.join(work, "quick.conf"),
                       daemon={"vendor_dir": vendors},
                       sms={"code_lifetime_s": "3", "resend_cooldown_s": "1"},
                       review={"holidays": ";".join(d.isoformat() for d in holidays)})
    try:
        # the module's daemon owns the name on the shared bus: this one has its own
        with daemon_on_own_bus(config=cfg) as (d, c, office):
            d.holidays = holidays
            yield d, c, office
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_an_expired_code_is_refused_and_a_new_one_works(quick):
    d, c, off = quick
    a = Application(c, off, "org")
    a.confirm()
    a.attach_all()
    old = a.submit()
    time.sleep(3.6)
    with dbus_error(ERR_CODE_EXPIRED):
        a.verify(old)
    assert a.state == "sms_pending"
    mark = off.mark("sms")
    assert a.call("SendSmsCode") == masked(a.handler_phone)
    new = secret_of(off.wait_message("sms", to=a.handler_phone, template="sms_code",
                                     after=mark))
    a.codes.append(new)
    if new != old:
        with pytest.raises(dbus.exceptions.DBusException) as info:
            a.verify(old)
        assert info.value.get_dbus_name() in (ERR_CODE_INVALID, ERR_CODE_EXPIRED)
    a.verify(new)
    assert a.state == "unpaid"
    log = d.log()
    for code in (old, new):
        assert not pin_like(log, code), f"the SMS code {code} is in the daemon log"


def test_after_too_many_attempts_a_new_code_opens_the_order(quick):
    d, c, off = quick
    a = Application(c, off, "person")
    a.confirm()
    a.attach_all()
    a.submit()
    wrong = f"{(int(a.code) + 1) % 1000000:06d}"
    for _ in range(5):
        with pytest.raises(dbus.exceptions.DBusException):
            a.verify(wrong)
    with dbus_error(ERR_TOO_MANY):
        a.verify(a.code)
    time.sleep(1.1)  # the resend cooldown
    mark = off.mark("sms")
    a.call("SendSmsCode")
    new = secret_of(off.wait_message("sms", to=a.handler_phone, template="sms_code",
                                     after=mark))
    a.verify(new)
    assert a.state == "unpaid"


def test_a_free_application_goes_from_the_code_to_review_and_due_skips_holidays(quick):
    d, c, off = quick
    a = Application(c, off, "person", vendor="demo-b")
    assert a.prop("AmountFen") == 0
    a.confirm()
    a.attach_all()
    a.submit()
    t0 = time.time()
    a.verify()
    t1 = time.time()
    assert a.state == "in_review", "a free application skips the payment"
    assert "StartPayment" not in a.prop("NextActions")
    assert "unpaid" not in states_of(a.prop("History"))
    assert [t for t in off.tasks("review", a.id) if t["state"] == "queued"]
    assert a.prop("DueBy") in {due_by(t0, 3, d.holidays), due_by(t1, 3, d.holidays)}
    # A paid one counts the same holidays.
    p = Application(c, off, "person")
    p.confirm()
    p.attach_all()
    p.submit()
    p.verify()
    p.pay()
    t0, t1 = p.paid_window
    assert p.prop("DueBy") in {due_by(t0, 3, d.holidays), due_by(t1, 3, d.holidays)}
    assert p.prop("DueBy") > due_by(t1, 3)
    a.approve()
    assert a.pin and a.prop("PasswordDelivery") == "sms:" + masked(a.fields["phone"])


# --- payment --------------------------------------------------------------------------

def test_a_payment_notified_twice_is_paid_once(daemon, client, office, app, tmp_dir):
    a = submitted(app)
    a.verify()
    a.start_payment()
    mail_mark = office.mark("mail")
    first = a.notify_paid()
    assert first["applied"] is True, first
    check_paid(a, office, tmp_dir, mail_mark)
    due = a.prop("DueBy")
    second = office.ok("pay-notify", a.id, "--channel", "sandbox")
    assert second["applied"] is False and second["duplicate"] is True, second
    pump(0.5)
    assert a.state == "in_review"
    assert a.prop("DueBy") == due
    sd = daemon.state_dir
    assert count(sd, "SELECT count(*) FROM payments WHERE order_id = ?", a.id) == 1
    assert count(sd, "SELECT amount_fen FROM payments WHERE order_id = ?", a.id) == 30000
    assert count(sd, "SELECT count(*) FROM events WHERE order_id = ? AND kind = 'pay'", a.id) == 1
    assert notes_of(a.prop("History")).count("pay") == 1
    assert len(office.messages("mail", to=a.fields["email"], after=mail_mark)) == 1
    assert len(office.tasks("review", a.id)) == 1


# --- rejection and resubmission -------------------------------------------------------

def test_a_rejected_application_is_fixed_and_reviewed_again_without_paying_twice(
        daemon, client, office, app, tmp_dir):
    account = "622202020011234567"
    a = app("org", auth_method="corporate_account", bank_name="中国工商银行厦门分行",
            bank_account=account)
    a.confirm()
    a.attach_all()
    first_code = a.submit()
    a.verify()
    mail_mark = office.mark("mail")
    a.pay()
    check_paid(a, office, tmp_dir, mail_mark)

    sms_mark = office.mark("sms")
    note = "营业执照模糊，请重新上传"
    a.reject(note)
    assert a.prop("ReviewNote") == note
    assert office.wait_message("sms", to=a.handler_phone, template="review_rejected",
                               after=sms_mark) is not None, "no review_rejected SMS"
    assert {"Update", "AttachMaterial", "Submit"} <= set(a.prop("NextActions"))
    assert "StartPayment" not in a.prop("NextActions")

    # 返回修改: still validated; a field and a material fixed.
    with dbus_error(ERR_INVALID_INPUT, "postcode"):
        a.order.update({"postcode": "3610"})
    # The first code went to the handler's phone a moment ago (a real rejection comes
    # days later) and its 60 s resend cooldown holds: the fix is a new handler phone.
    a.update({"address": "福建省厦门市湖里区示例路 99 号", "handler_phone": "13912345678"})
    assert a.prop("Fields")["address"] == "福建省厦门市湖里区示例路 99 号"
    attach_bytes(a.order, "business_license", "license-clear.png", make_png(9, 9))
    assert count(daemon.state_dir, "SELECT count(*) FROM materials WHERE order_id = ? AND "
                 "kind = 'business_license'", a.id) == 2

    second_code = a.submit()
    if first_code != second_code:  # the first code was used: it opens nothing again
        with dbus_error(ERR_CODE_INVALID):
            a.verify(first_code)
    a.verify(second_code)
    assert a.state == "in_review", "a paid application goes straight back to review"
    assert "unpaid" not in states_of(a.prop("History"))[states_of(a.prop("History")).index(
        "rejected"):]
    sd = daemon.state_dir
    assert count(sd, "SELECT count(*) FROM payments WHERE order_id = ?", a.id) == 1
    assert count(sd, "SELECT count(*) FROM events WHERE order_id = ? AND kind = 'pay'", a.id) == 1
    assert a.prop("PaymentChannel") == "sandbox"
    assert a.prop("InvoiceAvailable") is True
    pump(0.3)
    assert len(office.messages("mail", to=a.fields["email"], after=mail_mark)) == 1, \
        "a second invoice was mailed"
    assert len([t for t in office.tasks("review", a.id) if t["state"] == "queued"]) == 1

    pin = a.approve()
    assert a.prop("PasswordDelivery") == "transfer:****" + account[-4:]
    service, to, _ = a.pin_route()
    assert service == "bank"
    deposit = [m for m in office.outbox("bank") if m["to"] == to]
    assert len(deposit) == 1 and secret_of(deposit[0]) == pin
    task = [t for t in office.tasks("bank", a.id)]
    assert len(task) == 1, task
    payload = task[0]["payload"]
    assert (payload.get("kind"), payload.get("account"), payload.get("amount_fen")) == (
        "micro_deposit", account, 1), payload
    # 发票抬头与企业账户名称默认为证书使用单位名称: the account name is the organisation's.
    assert payload.get("account_name") == a.fields["org_name"], payload
    # The handler's approval notice does not carry the password.
    notice = office.wait_message("sms", to=a.handler_phone, template="review_approved")
    assert notice is not None and SECRET_RE.search(notice["text"]) is None, notice
    assert states_of(a.prop("History")) == [
        "draft", "confirmed", "sms_pending", "unpaid", "in_review", "rejected", "sms_pending",
        "in_review", "approved"]


# --- cancellation ---------------------------------------------------------------------

def test_cancel_before_payment_cancels(daemon, client, office, app):
    orders = {}
    orders["draft"] = app("person")
    orders["confirmed"] = app("person")
    orders["confirmed"].confirm()
    orders["sms_pending"] = submitted(app, "person")
    orders["unpaid"] = submitted(app, "person")
    orders["unpaid"].verify()
    orders["unpaid"].start_payment()
    for state, a in orders.items():
        assert a.state == state
        assert "Cancel" in a.prop("NextActions")
        a.order.cancel()
        assert a.state == "cancelled", state
        assert a.prop("NextActions") == []
        assert office.tasks("cashier", a.id) == [], "a refund for an unpaid order"
    # Money that arrives for a cancelled order (its QR was still valid) is not lost: it is
    # recorded and handed to the cashier to give back; the order stays cancelled.
    out = office.ok("pay-notify", orders["unpaid"].id, "--channel", "sandbox")
    assert out["applied"] is False and out["refunding"] is True and out["duplicate"] is False
    assert orders["unpaid"].state == "cancelled"
    assert count(daemon.state_dir, "SELECT count(*) FROM payments WHERE order_id = ?",
                 orders["unpaid"].id) == 1
    refunds = office.tasks("cashier", orders["unpaid"].id)
    assert [t["payload"]["kind"] for t in refunds] == ["refund"], refunds
    assert refunds[0]["payload"]["amount_fen"] == PRICE_FEN["person"]
    assert any(h[2].startswith("payment_unexpected") for h in orders["unpaid"].prop("History"))


def test_cancel_after_payment_is_refunded(daemon, client, office, app):
    paid = {}
    for state in ("in_review", "rejected", "approved"):
        a = submitted(app, "person")
        a.verify()
        a.pay()
        if state == "rejected":
            a.reject("照片不清晰")
        elif state == "approved":
            a.approve()
        paid[state] = a
    for state, a in paid.items():
        assert a.state == state
        a.order.cancel()
        assert a.state == "refunding", state
        refunds = [t for t in office.tasks("cashier", a.id)
                   if t["payload"].get("kind") == "refund"]
        assert len(refunds) == 1, office.tasks("cashier", a.id)
        assert refunds[0]["payload"].get("amount_fen") == PRICE_FEN["person"]
        # Nobody reviews or makes a cancelled application.
        rc, _ = office.run("review", "approve", a.id)
        assert rc != 0
        rc, _ = office.run("make", a.id, "--key", "NOSUCHKEY", "--no-wait")
        assert rc != 0
        assert a.state == "refunding"
    for state, a in paid.items():
        office.ok("refund", a.id)
        assert a.state == "refunded", state
        assert states_of(a.prop("History"))[-2:] == ["refunding", "refunded"]
        with dbus_error(ERR_WRONG_STATE):
            a.order.cancel()


# --- the daemon killed in every state -------------------------------------------------

STABLE_PROPS = ("Id", "Kind", "SubjectType", "Vendor", "State", "Fields", "Materials",
                "Missing", "AmountFen", "AuthMethod", "PasswordDelivery", "PaymentChannel",
                "ReviewNote", "TrackingNumber", "DueBy", "InvoiceAvailable", "History",
                "CreatedAt", "UpdatedAt", "Warnings", "NextActions")


class Crashes:
    """SIGKILL the daemon and start it again, checking that every order is as it was."""

    def __init__(self, daemon, client):
        self.d = daemon
        self.client = client
        self.watched = []
        self.kills = 0
        self.seen_states = set()

    def watch(self, *apps):
        self.watched.extend(apps)

    def snapshot(self, a):
        props = a.order.get_all()
        return {k: props.get(k) for k in STABLE_PROPS}

    def kill_restart(self, making=None):
        before = {a.id: self.snapshot(a) for a in self.watched}
        self.seen_states.update(s["State"] for s in before.values())
        self.d.kill()
        self.kills += 1
        self.d.start()
        for a in self.watched:
            after = self.snapshot(a)
            if a is making:
                assert after["State"] == "approved", after["History"][-3:]
                hist = after["History"]
                assert hist[:len(before[a.id]["History"])] == before[a.id]["History"]
                assert hist[-1][1] == "approved" and "recover" in hist[-1][2], hist[-2:]
                for k in STABLE_PROPS:
                    if k not in ("State", "History", "UpdatedAt", "NextActions", "ReviewNote"):
                        assert after[k] == before[a.id][k], (a.id, k)
            else:
                assert after == before[a.id], \
                    f"order {a.id} ({before[a.id]['State']}) changed across a SIGKILL: " + \
                    str({k: (before[a.id][k], after[k]) for k in STABLE_PROPS
                         if after[k] != before[a.id][k]})


def test_the_daemon_killed_in_every_state_loses_nothing(tmp_dir):
    bus = Bus()
    d = Daemon(bus)
    c = None
    try:
        d.start()
        office_info(d.state_dir)
        c = Client(bus)
        off = Office(d.state_dir)
        crash = Crashes(d, c)

        def new(subject="org", **kw):
            a = Application(c, off, subject, **kw)
            crash.watch(a)
            return a

        main = new("org", legal_rep_phone="handler")
        crash.kill_restart()                                        # draft
        main.confirm()
        crash.kill_restart()                                        # confirmed
        main.attach_all()
        main.submit()
        crash.kill_restart()                                        # sms_pending
        main.verify()
        assert main.state == "unpaid"
        crash.kill_restart()                                        # unpaid
        main.start_payment()  # (killed after StartPayment: a test of its own, below)
        main.notify_paid()
        assert main.state == "in_review"

        # Orders resting in the other states while the daemon dies.
        cancelled = new("person")
        cancelled.confirm()
        cancelled.order.cancel()
        rejected = new("person")
        rejected.confirm()
        rejected.attach_all()
        rejected.submit()
        rejected.verify()
        rejected.pay()
        rejected.reject("身份证反面不清晰")
        refunding = new("person")
        refunding.confirm()
        refunding.attach_all()
        refunding.submit()
        refunding.verify()
        refunding.pay()
        refunding.order.cancel()
        assert refunding.state == "refunding"
        refunded = new("person")
        refunded.confirm()
        refunded.attach_all()
        refunded.submit()
        refunded.verify()
        refunded.pay()
        refunded.order.cancel()
        off.ok("refund", refunded.id)
        assert refunded.state == "refunded"
        crash.kill_restart()                                        # in_review …
        assert main.prop("InvoiceAvailable") is True
        assert main.invoice().startswith(b"%PDF-")

        pin = main.approve()
        crash.kill_restart()                                        # approved

        # making: held in key generation by a hanging token, then killed.
        serial = "CRASH01"
        blank_key(d.state_dir, c, serial)
        vkey(d.state_dir, "fault", serial, "C_GenerateKeyPair", "--after", "1", "--mode", "hang",
             "--timeout", "30000")
        mark = d.log_size()
        off.ok("make", main.id, "--key", serial, "--no-wait")
        assert run_until(lambda: "fault on C_GenerateKeyPair" in d.log(mark), 15.0), \
            "the making never reached key generation"
        assert main.state == "making"
        with dbus_error(ERR_WRONG_STATE):
            main.order.cancel()  # too late: the key is being made
        crash.kill_restart(making=main)                             # making → approved
        assert main.state == "approved"
        # Making starts over on the key this order's first attempt initialised.
        assert run_until(lambda: key_path(serial) in c.managed_objects(), 5.0)
        main.make(serial)
        crash.kill_restart()                                        # made
        main.ship("SF0000000042")
        crash.kill_restart()                                        # shipped
        main.deliver()
        crash.kill_restart()                                        # completed
        assert crash.seen_states >= {
            "draft", "confirmed", "sms_pending", "unpaid", "in_review", "approved", "made",
            "shipped", "completed", "cancelled", "rejected", "refunding", "refunded"}, \
            crash.seen_states

        # Every order finishes.
        # The rejected order's handler got the rejection SMS moments ago: a new phone
        # keeps this test about crashes rather than about SMS pacing.
        rejected.update({"address": "北京市西城区示例胡同 3 号", "phone": "13512345678"})
        attach_bytes(rejected.order, "id_back", "back.png", make_png(6, 6))
        rejected.submit()
        rejected.verify()
        assert rejected.state == "in_review"
        rejected.approve()
        off.ok("refund", refunding.id)
        assert refunding.state == "refunded"

        # The key: the password of the approval logs in on the key made after the crash.
        path = key_path(serial)
        c.call(path, KEY_IFACE, "Login", "s", (pin,))
        assert c.get(path, KEY_IFACE, "LoggedIn") is True
        assert c.get(path, KEY_IFACE, "HasSeal") is True
        rc, out = off.run("ledger", "verify")
        assert rc == 0 and out["ok"] is True, out
        log = d.log()
        for a in crash.watched:
            for secret in [a.pin] + a.codes if a.pin else a.codes:
                assert not pin_like(log, secret), f"a secret of {a.id} is in the log"
        assert d.stop() == 0
        cp = d.run("--verify-ledger")
        assert cp.returncode == 0, cp.stdout + cp.stderr
        assert "chain verified" in cp.stdout, cp.stdout
        n = recompute_chain(os.path.join(d.state_dir, "ledger.db"), tmp_dir)
        assert f"chain verified, {n} events" in cp.stdout, cp.stdout
    finally:
        if c is not None:
            c.close()
        d.cleanup()
        bus.close()


# --- a key pulled while being made ----------------------------------------------------

def test_a_key_pulled_during_making_goes_back_to_approved_and_another_key_is_made(
        daemon, client, office, app, tmp_dir):
    account = "6217000010001234"
    a = app("person", auth_method="bank_account_transfer", bank_name="中国建设银行北京西城支行",
            bank_account=account)
    a.to_review()
    pin = a.approve()
    assert a.prop("PasswordDelivery") == "transfer:****" + account[-4:]

    # A key that is not there makes nothing.
    office.run("make", a.id, "--key", "NOSUCHKEY", "--no-wait")
    assert run_until(lambda: a.state == "approved", 10.0)
    # A key that is not blank is not wiped: the order stays approved (or comes back).
    used = f"PU{a.n:04d}X"
    vkey(daemon.state_dir, "create", "--vendor", "demo-a", "--serial", used)
    used_path = key_path(used)
    assert run_until(lambda: used_path in client.managed_objects(), 5.0)
    office.run("make", a.id, "--key", used, "--no-wait")
    assert run_until(lambda: a.state == "approved", 15.0)
    pump(0.5)
    assert a.state == "approved"
    assert client.get(used_path, KEY_IFACE, "CertificateSerial") == ""
    client.call(used_path, KEY_IFACE, "Login", "s", ("123456",))  # its own PIN still opens it
    client.call(used_path, KEY_IFACE, "Logout", "", ())

    # Pulled in the middle of key generation.
    first = f"PU{a.n:04d}A"
    blank_key(daemon.state_dir, client, first)
    vkey(daemon.state_dir, "fault", first, "C_GenerateKeyPair", "--after", "1", "--mode",
         "unplug")
    office.ok("make", a.id, "--key", first, "--no-wait")
    a.wait_state("approved", 20.0)
    history = a.prop("History")
    assert "making" in states_of(history)
    assert states_of(history)[-2:] == ["making", "approved"], history[-3:]
    assert any("make_failed" in n for n in notes_of(history)), history[-3:]
    assert first in a.prop("ReviewNote") and "remov" in a.prop("ReviewNote"), \
        f"ReviewNote does not say why the making failed: {a.prop('ReviewNote')!r}"
    assert run_until(lambda: key_path(first) not in client.managed_objects(), 3.0)
    assert [t for t in office.tasks("make", a.id) if t["state"] == "queued"], \
        "no new make task after the failed making"
    assert count(daemon.state_dir, "SELECT count(*) FROM certificates WHERE order_id = ?",
                 a.id) == 0, "a certificate was issued although key generation failed"

    # Made on another blank key; the password delivered at approval opens it.
    bank_mark = office.mark("bank")
    second = f"PU{a.n:04d}B"
    blank_key(daemon.state_dir, client, second)
    a.make(second)
    assert "failed" not in a.prop("ReviewNote"), "the old failure still shows once made"
    check_made_key(client, office, daemon, a, second, tmp_dir)
    assert count(daemon.state_dir, "SELECT count(*) FROM certificates WHERE order_id = ?",
                 a.id) == 1
    pump(0.3)
    assert office.messages("bank", after=bank_mark) == [], "a second password was sent"
    assert pin == a.pin
    check_key_signs(client, office, daemon, a, second, tmp_dir)


def certificates_of(state_dir, order_id):
    with ledger(state_dir) as db:
        return db.execute("SELECT serial, status, reason FROM certificates WHERE order_id = ? "
                          "ORDER BY created, serial", (order_id,)).fetchall()


def crl_serials(office, tmp_dir):
    pem = office.ok("ca", "crl", "--vendor", "demo-a")
    text = pem[0]["pem"] if isinstance(pem, list) else pem
    path = os.path.join(tmp_dir, "demo-a.crl.pem")
    with open(path, "w") as f:
        f.write(text)
    crl = x509.load_pem_x509_crl(text.encode())
    return {f"{r.serial_number:032X}" for r in crl}


def test_a_key_pulled_while_written_is_made_again_once_plugged_back(daemon, client, office, app,
                                                                    tmp_dir):
    a = app("org", legal_rep_phone="handler")
    a.to_review()
    pin = a.approve()
    serial = f"PW{a.n:04d}"
    blank_key(daemon.state_dir, client, serial)
    vkey(daemon.state_dir, "fault", serial, "C_CreateObject", "--after", "1", "--mode", "unplug")
    office.ok("make", a.id, "--key", serial, "--no-wait")
    a.wait_state("approved", 20.0)
    assert states_of(a.prop("History"))[-2:] == ["making", "approved"]
    # The certificate issued for the attempt never reached the key: it is revoked.
    certs = certificates_of(daemon.state_dir, a.id)
    assert len(certs) == 1 and certs[0][1] == "revoked", certs
    assert certs[0][0] in crl_serials(office, tmp_dir)
    # The same key, plugged back in, is the key this order initialised: it is made.
    vkey(daemon.state_dir, "plug", serial)
    assert run_until(lambda: key_path(serial) in client.managed_objects(), 5.0)
    a.make(serial)
    certs = certificates_of(daemon.state_dir, a.id)
    assert [c[1] for c in certs].count("valid") == 1, certs
    cert = check_made_key(client, office, daemon, a, serial, tmp_dir)
    assert (f"{cert.serial_number:032X}", "valid") in [(c[0], c[1]) for c in certs]
    assert a.pin == pin


def test_a_payment_started_survives_sigkill_as_acknowledged(own_daemon):
    d, c, off = own_daemon
    crash = Crashes(d, c)
    a = Application(c, off, "org")
    crash.watch(a)
    a.confirm()
    a.attach_all()
    a.submit()
    a.verify()
    # StartPayment in the next second, so that an UpdatedAt kept only in memory shows.
    time.sleep(1.0 - time.time() % 1.0 + 0.05)
    a.start_payment()
    assert a.prop("PaymentChannel") == "sandbox"
    assert a.prop("UpdatedAt") >= int(time.time()) - 1
    crash.kill_restart()
    assert a.prop("PaymentChannel") == "sandbox"
    a.notify_paid()
    assert a.state == "in_review"


def crash_while_writing(d, c, off, serial):
    """An approved person's application whose making dies (SIGKILL) while the certificate
    is written to blank key @serial; the daemon is started again. Returns (app, pin,
    serial of the certificate issued for the attempt)."""
    a = Application(c, off, "person")
    a.to_review()
    pin = a.approve()
    blank_key(d.state_dir, c, serial)
    vkey(d.state_dir, "fault", serial, "C_CreateObject", "--after", "1", "--mode", "hang",
         "--timeout", "30000")
    mark = d.log_size()
    off.ok("make", a.id, "--key", serial, "--no-wait")
    assert run_until(lambda: "fault on C_CreateObject" in d.log(mark), 15.0), \
        "the making never reached writing the certificate"
    issued = certificates_of(d.state_dir, a.id)
    assert len(issued) == 1 and issued[0][1] == "valid", issued
    d.kill()
    d.start()
    assert a.state == "approved"
    assert "recover" in a.prop("History")[-1][2]
    assert run_until(lambda: key_path(serial) in c.managed_objects(), 5.0)
    return a, pin, issued[0][0]


@pytest.fixture
def own_daemon():
    """A daemon on its own bus, for a test that kills it."""
    with daemon_on_own_bus() as running:
        yield running


def test_a_crash_while_the_certificate_is_written_and_making_again_revokes_it(own_daemon,
                                                                            tmp_dir):
    d, c, off = own_daemon
    a, pin, first = crash_while_writing(d, c, off, "CW0001")
    a.make("CW0001")  # on the key this order's attempt initialised
    certs = certificates_of(d.state_dir, a.id)
    assert (first, "revoked", "cessationOfOperation") in certs, certs
    assert [x[1] for x in certs].count("valid") == 1, certs
    assert first in crl_serials(off, tmp_dir)
    c.call(key_path("CW0001"), KEY_IFACE, "Login", "s", (pin,))
    assert c.get(key_path("CW0001"), KEY_IFACE, "CertificateSerial").upper() != first
    rc, out = off.run("ledger", "verify")
    assert rc == 0 and out["ok"] is True, out


def test_a_crash_while_the_certificate_is_written_then_a_refund_revokes_it(own_daemon):
    d, c, off = own_daemon
    a, pin, first = crash_while_writing(d, c, off, "CW0002")
    a.order.cancel()
    assert a.state == "refunding"
    off.ok("refund", a.id)
    assert a.state == "refunded"
    # No key holds the certificate of the interrupted making, and none ever will: it must
    # not stay valid (FindCertificates would offer it for a reissue).
    certs = certificates_of(d.state_dir, a.id)
    assert [x[1] for x in certs] == ["revoked"], \
        f"the refunded order keeps the certificate of its interrupted making: {certs}"


# --- secrets --------------------------------------------------------------------------

def test_the_password_and_the_codes_appear_nowhere_but_the_outbox(daemon, client, office, app,
                                                                  tmp_dir):
    # One more application through making, so that the module has at least one made key
    # whatever tests ran before.
    a = app("org", legal_rep_phone="handler")
    a.to_review()
    a.approve()
    serial = f"SEC{a.n:04d}"
    blank_key(daemon.state_dir, client, serial)
    a.make(serial)

    apps = [x for x in APPS if x.client.bus is daemon.bus and x.office.state_dir ==
            daemon.state_dir]
    pins = {x.pin for x in apps if x.pin}
    codes = {c for x in apps for c in x.codes}
    assert pins and codes

    log = daemon.log()
    files = {}
    for name in ("ledger.db", "ledger.db-wal"):
        path = os.path.join(daemon.state_dir, name)
        if os.path.exists(path):
            with open(path, "rb") as f:
                files[name] = f.read()
    with ledger(daemon.state_dir) as db:
        tasks = db.execute("SELECT id, service, order_id, payload, secret_ref FROM tasks"
                           ).fetchall()
        events = db.execute("SELECT data FROM events").fetchall()
    payloads = "\n".join(t[3] for t in tasks)
    event_data = "\n".join(e[0] for e in events)
    objects = client.managed_objects()
    dbus_text = repr(objects)
    certs = [key_certificate(client, p) for p, ifaces in objects.items() if KEY_IFACE in ifaces
             and ifaces[KEY_IFACE].get("CertificateSerial")]
    assert certs

    for secret, what in [(p, "certificate password") for p in pins] + \
                        [(c, "SMS code") for c in codes]:
        assert not pin_like(log, secret), f"a {what} is in the daemon log"
        for name, data in files.items():
            assert not pin_like(data, secret), f"a {what} is in {name}"
        assert not pin_like(payloads, secret), f"a {what} is in a task payload"
        assert not pin_like(event_data, secret), f"a {what} is in a ledger event"
        assert not pin_like(dbus_text, secret), f"a {what} is in a D-Bus property"
        for der in certs:
            assert not pin_like(der, secret), f"a {what} is in a key's certificate"

    # Staff never see them: not in an order as the office shows it, nor in the task list.
    staff = json.dumps(office.call("tasks.list"), ensure_ascii=False)
    for x in apps:
        staff += json.dumps(office.ok("order", "show", x.id), ensure_ascii=False)
    for secret in pins | codes:
        assert not pin_like(staff, secret), "a secret is shown to the office"

    # The tasks that delivered passwords and codes refer to sealed secrets.
    by_id = {t[0]: t for t in tasks}
    checked = set()
    for service in ("sms", "bank"):
        for m in office.outbox(service):
            found = SECRET_RE.search(m["text"])
            if not found or found.group(1) not in pins | codes:
                continue
            task = by_id[m["task_id"]]
            assert task[4] is not None, f"task {task[0]} carries a secret but no secret_ref"
            payload = json.loads(task[3])
            assert payload.get("secret_ref") == task[4], payload
            assert not pin_like(task[3], found.group(1))
            checked.add(found.group(1))
            # Delivered: the task's sealed copy is wiped (docs/architecture.md §3.5).
            with ledger(daemon.state_dir) as db:
                sealed, wiped = db.execute("SELECT sealed, wiped FROM secrets WHERE id = ?",
                                           (task[4],)).fetchone()
            assert sealed is None and wiped is not None, \
                f"the secret of delivered task {task[0]} is still sealed in the ledger"
    assert pins <= checked, "a password reached no outbox through a task"


def test_no_staff_key_reads_a_secret_a_gateway_task_carries(daemon, client, office, app):
    """The admin key may do everything in the office but serve a gateway or open a secret:
    the certificate password travels on sms/bank tasks and only a gateway delivers it."""
    from office_helpers import Worker
    a = app()
    a.to_review()
    admin = Worker(daemon.state_dir)
    try:
        for method, params in (("task.next", {"service": "sms"}),
                               ("task.next", {"service": "bank"}),
                               ("task.claim", {"order_id": a.id, "service": "sms"}),
                               ("task.secret", {"lease": "0" * 36})):
            verb, body = admin.call(method, params)
            assert verb == "ERROR" and body["code"] == "AccessDenied", (method, body)
        pin = a.approve()
        assert pin and pin not in json.dumps(office.tasks(order_id=a.id))
    finally:
        admin.close()
