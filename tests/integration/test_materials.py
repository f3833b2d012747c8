"""
Materials (docs/architecture.md §1.1, §3.3, §3.5): Order.AttachMaterial takes a kind, a file name and an
fd (a regular file or a memfd); the size is checked with fstat before a byte is read, the
content is sniffed (PNG, JPEG, PDF), hashed and stored off the main loop in a
content-addressed file the materials table names by SHA-256 (test_material_uploads.py) —
the "material" event holds {kind, sha256, size, mime}. The office reads materials with orders.get (described) and materials.get (the
bytes); `certseal order attach` and `certseal-office order material` are the CLIs. One
daemon with the `new` flow and office workers serves the whole module.
"""

import base64
import hashlib
import json
import os
import re
import sqlite3
import struct
import subprocess
import time
import zlib

import dbus
import pytest

from conftest import (BUILD_DIR, ERR_INVALID_INPUT, ERR_WRONG_STATE, MANAGER_IFACE, MANAGER_PATH,
                      ORDER_IFACE, ORG_FIELDS, PERSON_FIELDS, Daemon, SignalRecorder, dbus_error,
                      run_cli, short_tmpdir)
from office_helpers import OfficeEnv, Worker, run_office, run_office_json, serving_office

NEW_PLUGINS = os.path.join(BUILD_DIR, "plugins")
ROLES = {"rita": "reviewer", "gw": "gateway", "audrey": "auditor"}
ORG_MATERIALS = ["business_license", "handler_id_front", "handler_id_back", "seal_form"]
MARKER = b"CERTSEAL-MATERIAL-MARKER-7f3a9c"

# A real 1x1 baseline JPEG: JFIF, a quantisation table, a frame header (SOF0), DC and AC
# Huffman tables, one scan, EOI (libjpeg decodes it).
JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB"
    "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQH/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAAAP/EABQQAQAA"
    "AAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8AP//Z")


def make_png(width=4, height=3, text=b""):
    """A real PNG: IHDR, one IDAT of RGB rows, an optional tEXt chunk, IEND."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    rows = []
    for y in range(height):
        row = b"\x00" + b"".join(bytes([(x * 60) % 256, (y * 80) % 256, 128]) for x in range(width))
        rows.append(row)
    raw = b"".join(rows)
    png = b"\x89PNG\r\n\x1a\n"
    png += chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    if text:
        png += chunk(b"tEXt", b"Comment\x00" + text)
    png += chunk(b"IDAT", zlib.compress(raw))
    png += chunk(b"IEND", b"")
    return png


def seal_form_pdf(client, marker=b""):
    """The daemon's own blank seal form (DownloadForm), with an optional comment line."""
    pdf = bytes(client.conn.call_blocking("org.certseal.CertSeal1", MANAGER_PATH, MANAGER_IFACE,
                                          "DownloadForm", "s", ["seal_form_org"], timeout=30))
    assert pdf.startswith(b"%PDF-")
    if marker:
        # A comment after the file's end, then its trailer again (startxref pointing at the
        # same cross-reference table): a reader takes the last trailer, so the file stays
        # one a viewer opens.
        xref = re.findall(rb"startxref\s+(\d+)\s+%%EOF", pdf)[-1]
        pdf += b"%" + marker + b"\nstartxref\n" + xref + b"\n%%EOF\n"
    return pdf


@pytest.fixture(scope="module")
def env():
    return OfficeEnv(short_tmpdir("csmat-"), ROLES, plugin_dir=NEW_PLUGINS)


@pytest.fixture(scope="module")
def daemon(bus, env):
    yield from serving_office(Daemon(bus, config=env.config))


@pytest.fixture
def files(tmp_dir):
    def write(name, data):
        path = os.path.join(tmp_dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path
    return write


def attach(order, kind, filename, fd):
    order.client.call(order.path, ORDER_IFACE, "AttachMaterial", "ssh",
                      (kind, filename, dbus.types.UnixFd(fd)))


def attach_bytes(order, kind, filename, data):
    fd = os.memfd_create("material", os.MFD_CLOEXEC)
    try:
        os.write(fd, data)
        attach(order, kind, filename, fd)
    finally:
        os.close(fd)


def attach_file(order, kind, path, flags=os.O_RDONLY):
    fd = os.open(path, flags | os.O_CLOEXEC)
    try:
        attach(order, kind, os.path.basename(path), fd)
    finally:
        os.close(fd)


def confirmed_org_order(client):
    order = client.create_order("new", "org", ORG_FIELDS)
    order.confirm()
    assert order.state == "confirmed"
    return order


def ledger(daemon):
    return sqlite3.connect(f"file:{os.path.join(daemon.state_dir, 'ledger.db')}?mode=ro", uri=True)


def material_events(daemon, order_id):
    with ledger(daemon) as db:
        rows = db.execute("SELECT data FROM events WHERE order_id = ? AND kind = 'material' "
                          "ORDER BY seq", (order_id,)).fetchall()
    return [json.loads(r[0]) for r in rows]


# --- D-Bus ----------------------------------------------------------------------------

def test_attaching_png_pdf_jpeg_updates_materials_and_missing(daemon, client, files):
    order = confirmed_org_order(client)
    assert order.get("Materials") == []
    assert order.get("Missing") == ORG_MATERIALS
    assert "AttachMaterial" in order.get("NextActions")
    rec = SignalRecorder(client)
    try:
        attach_file(order, "business_license", files("license.png", make_png()))
        changed = rec.wait_for(lambda m, p, i, a: m == "PropertiesChanged" and p == order.path
                               and a[1].get("Materials") == ["business_license"])
        assert changed is not None, f"no PropertiesChanged with Materials: {rec.signals}"
        assert changed[3][1]["Missing"] == ORG_MATERIALS[1:]
    finally:
        rec.remove()
    attach_file(order, "seal_form", files("seal_form.pdf", seal_form_pdf(client)))
    attach_file(order, "handler_id_front", files("front.jpg", JPEG))
    assert order.get("Materials") == ["business_license", "handler_id_front", "seal_form"]
    assert order.get("Missing") == ["handler_id_back"]
    attach_bytes(order, "handler_id_back", "back.png", make_png(2, 2))
    assert order.get("Missing") == []
    # The optional seal picture is never missing, and may be attached.
    attach_bytes(order, "seal_image", "seal.png", make_png(8, 8))
    assert "seal_image" in order.get("Materials")
    mimes = {e["kind"]: e["mime"] for e in material_events(daemon, order.id)}
    assert mimes == {"business_license": "image/png", "seal_form": "application/pdf",
                     "handler_id_front": "image/jpeg", "handler_id_back": "image/png",
                     "seal_image": "image/png"}
    assert [h[2] for h in order.get("History")].count("material") == 5


def test_a_kind_the_flow_does_not_take_is_refused_naming_kind(daemon, client):
    order = confirmed_org_order(client)
    for kind in ("passport", "id_front", ""):  # id_front is a person's material
        with dbus_error(ERR_INVALID_INPUT, "kind:", "business_license"):
            attach_bytes(order, kind, "x.png", make_png())
    assert order.get("Materials") == []


def test_a_file_of_another_type_is_refused_naming_the_kind(daemon, client, files):
    order = confirmed_org_order(client)
    with open("/bin/true", "rb") as f:
        elf = f.read()
    for name, data in (("license.pdf", elf),
                       ("license.pdf", b"<!DOCTYPE html><html><body>%PDF-1.4</body></html>"),
                       ("license.png", b"GIF89a" + b"\x00" * 64)):
        with dbus_error(ERR_INVALID_INPUT, "business_license:", "not a PNG, JPEG or PDF"):
            attach_file(order, "business_license", files(name, data))
    with dbus_error(ERR_INVALID_INPUT, "business_license:", "empty"):
        attach_file(order, "business_license", files("empty.png", b""))
    assert order.get("Materials") == []
    assert material_events(daemon, order.id) == []


def test_files_whose_structure_does_not_hold_are_refused(daemon, client, files):
    """What a hostile probe got stored: a reviewer should only ever open real files."""
    order = confirmed_org_order(client)
    png = make_png()
    with open("/bin/true", "rb") as f:
        elf = f.read()
    pdf = seal_form_pdf(client)
    cases = [
        ("png-random", "x.png", png[:33] + os.urandom(600)),
        ("pdf-14-bytes", "x.pdf", b"%PDF-1.7\n%%EOF"),
        ("jpeg-4-bytes", "x.jpg", b"\xff\xd8\xff\xe0"),
        ("html-pdf", "x.pdf", b"<html><body>hello</body></html>\n" + pdf),
        ("pdf-html", "x.pdf", pdf + b"<html><script>alert(1)</script></html>"),
        ("png-zip", "x.png", png + b"PK\x03\x04" + b"\x00" * 26 + b"PK\x05\x06" + b"\x00" * 18),
        ("elf-pdf-at-900", "x.pdf", elf[:900] + pdf),
        ("jpeg-truncated", "x.jpg", JPEG[:-2]),
    ]
    for label, name, data in cases:
        with dbus_error(ERR_INVALID_INPUT, "business_license:", "not a PNG, JPEG or PDF"):
            attach_file(order, "business_license", files(name, data))
    assert order.get("Materials") == [], label
    attach_file(order, "business_license", files("ok.jpg", JPEG))


def test_a_file_over_the_limit_is_refused_by_its_size_unread(daemon, client, tmp_dir):
    order = confirmed_org_order(client)
    path = os.path.join(tmp_dir, "huge.pdf")
    with open(path, "wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse: 50 MB of nothing
    start = time.monotonic()
    with dbus_error(ERR_INVALID_INPUT,
                    "business_license: 52428800 bytes is larger than the 10 MiB limit"):
        attach_file(order, "business_license", path)
    assert time.monotonic() - start < 2.0
    # Proof it was not read: a write-only fd cannot be read, yet the refusal is the size's.
    with dbus_error(ERR_INVALID_INPUT, "52428800 bytes is larger"):
        attach_file(order, "business_license", path, os.O_WRONLY)
    # … while a small write-only file is read, and that fails.
    small = os.path.join(tmp_dir, "small.png")
    with open(small, "wb") as f:
        f.write(make_png())
    with dbus_error(ERR_INVALID_INPUT, "business_license: cannot read"):
        attach_file(order, "business_license", small, os.O_WRONLY)
    assert order.get("Materials") == []


def test_a_pipe_is_refused(daemon, client):
    order = confirmed_org_order(client)
    r, w = os.pipe()
    try:
        os.write(w, make_png())
        with dbus_error(ERR_INVALID_INPUT, "business_license:", "regular file or a memfd",
                        "pipe"):
            attach(order, "business_license", "license.png", r)
    finally:
        os.close(r)
        os.close(w)
    assert order.get("Materials") == []


def test_attaching_to_a_draft_is_wrong_state(daemon, client):
    order = client.create_order("new", "org", ORG_FIELDS)
    assert "AttachMaterial" not in order.get("NextActions")
    with dbus_error(ERR_WRONG_STATE, order.id, "draft"):
        attach_bytes(order, "business_license", "license.png", make_png())
    order.cancel()
    with dbus_error(ERR_WRONG_STATE, "cancelled"):
        attach_bytes(order, "business_license", "license.png", make_png())
    assert order.get("Materials") == []


def test_file_names_are_kept_as_a_base_name_and_checked(daemon, client):
    order = confirmed_org_order(client)
    attach_bytes(order, "business_license", "/home/someone/scans/营业执照.png", make_png())
    w = Worker(daemon.state_dir)
    try:
        got = w.ok("materials.get", {"order_id": order.id, "kind": "business_license"})
    finally:
        w.close()
    assert got["filename"] == "营业执照.png"
    for bad in ("bad\nname.png", "x" * 256 + ".png", "..", "dir/"):
        with dbus_error(ERR_INVALID_INPUT, "filename:"):
            attach_bytes(order, "business_license", bad, make_png())


def test_a_reupload_replaces_the_material(daemon, client):
    order = confirmed_org_order(client)
    first, second = make_png(4, 4), make_png(5, 5)
    attach_bytes(order, "business_license", "one.png", first)
    attach_bytes(order, "business_license", "two.png", second)
    assert order.get("Materials") == ["business_license"]
    w = Worker(daemon.state_dir)
    try:
        got = w.ok("materials.get", {"order_id": order.id, "kind": "business_license"})
        listed = w.ok("orders.get", {"id": order.id})["materials"]
    finally:
        w.close()
    assert got["filename"] == "two.png"
    assert base64.b64decode(got["data"]) == second
    assert [m["sha256"] for m in listed] == [hashlib.sha256(second).hexdigest()]
    # Both uploads are kept (history), the latest wins; each has its event.
    assert [e["sha256"] for e in material_events(daemon, order.id)] == [
        hashlib.sha256(first).hexdigest(), hashlib.sha256(second).hexdigest()]


def test_cli_attach_passes_the_file(daemon, bus, client, files):
    order = confirmed_org_order(client)
    path = files("license.png", make_png(6, 6))
    r = run_cli(bus, "order", "attach", order.id, "business_license", path)
    assert r.returncode == 0, r.stderr
    assert "Materials: business_license" in r.stdout
    r = run_cli(bus, "order", "attach", order.id, "passport", path)
    assert r.returncode != 0
    assert "kind:" in r.stderr
    assert order.get("Materials") == ["business_license"]


# Runs as uid 65534: tries to attach a material to root's order through a memfd.
CHILD_ATTACH = r"""
import json, os, sys
import dbus
req = json.load(sys.stdin)
conn = dbus.bus.BusConnection(req["address"])
fd = os.memfd_create("m")
os.write(fd, bytes.fromhex(req["png"]))
try:
    conn.call_blocking("org.certseal.CertSeal1", req["path"], "org.certseal.CertSeal1.Order",
                       "AttachMaterial", "ssh", ("business_license", "x.png", dbus.types.UnixFd(fd)),
                       timeout=10)
    print(json.dumps({"ok": True, "uid": os.getuid()}))
except dbus.exceptions.DBusException as e:
    print(json.dumps({"ok": False, "uid": os.getuid(), "error": e.get_dbus_name()}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as uid 65534")
def test_another_user_cannot_attach(daemon, bus, client):
    from test_access import NOBODY, REFUSED, spawn_nobody
    order = confirmed_org_order(client)
    child = spawn_nobody(CHILD_ATTACH, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    out, err = child.communicate(json.dumps({"address": bus.address, "path": order.path,
                                             "png": make_png().hex()}), timeout=60)
    assert child.returncode == 0, err
    got = json.loads(out)
    assert got["uid"] == NOBODY
    assert not got["ok"] and got["error"] in REFUSED, got
    assert order.get("Materials") == []


# --- the ledger -----------------------------------------------------------------------

def test_the_ledger_event_holds_no_content(daemon, client):
    order = confirmed_org_order(client)
    pdf = seal_form_pdf(client, MARKER)
    attach_bytes(order, "seal_form", "form.pdf", pdf)
    png = make_png(text=MARKER)
    attach_bytes(order, "business_license", "license.png", png)
    with ledger(daemon) as db:
        materials = db.execute("SELECT * FROM materials").fetchall()
        events = db.execute("SELECT * FROM events").fetchall()
        tasks = db.execute("SELECT * FROM tasks").fetchall()
    # The content is in its content-addressed file, not in the database.
    for content in (pdf, png):
        sha = hashlib.sha256(content).hexdigest()
        with open(os.path.join(daemon.state_dir, "materials", sha[:2], sha), "rb") as f:
            assert f.read() == content
    dump = repr(materials + events + tasks).encode()
    assert MARKER not in dump and MARKER.hex().encode() not in dump
    assert base64.b64encode(MARKER)[:16] not in dump
    got = material_events(daemon, order.id)
    assert got == [
        {"kind": "seal_form", "sha256": hashlib.sha256(pdf).hexdigest(), "size": len(pdf),
         "mime": "application/pdf"},
        {"kind": "business_license", "sha256": hashlib.sha256(png).hexdigest(),
         "size": len(png), "mime": "image/png"}]
    r = run_office(daemon.state_dir, "--json", "ledger", "verify")
    assert r.returncode == 0, r.stdout + r.stderr


# --- the office -----------------------------------------------------------------------

def test_office_reads_materials_and_the_cli_downloads_the_same_file(daemon, client, env,
                                                                    tmp_dir):
    order = confirmed_org_order(client)
    pdf = seal_form_pdf(client)
    attach_bytes(order, "seal_form", "seal_form.pdf", pdf)
    attach_bytes(order, "handler_id_front", "front.jpg", JPEG)
    rita = Worker(daemon.state_dir, env.keys["rita"])
    try:
        listed = rita.ok("orders.get", {"id": order.id})["materials"]
        got = rita.ok("materials.get", {"order_id": order.id, "kind": "seal_form"})
        verb, missing = rita.call("materials.get", {"order_id": order.id, "kind": "seal_image"})
    finally:
        rita.close()
    assert [(m["kind"], m["mime"], m["size"]) for m in listed] == [
        ("handler_id_front", "image/jpeg", len(JPEG)), ("seal_form", "application/pdf", len(pdf))]
    assert all("data" not in m for m in listed)
    data = base64.b64decode(got["data"])
    assert data == pdf
    assert hashlib.sha256(data).hexdigest() == got["sha256"] == listed[1]["sha256"]
    assert (got["kind"], got["filename"], got["mime"], got["size"]) == (
        "seal_form", "seal_form.pdf", "application/pdf", len(pdf))
    assert verb == "ERROR" and missing["code"] == "NotFound", missing

    # certseal-office: order show lists them; order material writes the same bytes.
    rc, shown = run_office_json(daemon.state_dir, "order", "show", order.id,
                                key=env.keys["rita"])
    assert rc == 0, shown
    assert [m["kind"] for m in shown["materials"]] == ["handler_id_front", "seal_form"]
    out = os.path.join(tmp_dir, "downloaded.pdf")
    rc, res = run_office_json(daemon.state_dir, "order", "material", order.id, "seal_form",
                              "--output", out, key=env.keys["rita"])
    assert rc == 0, res
    with open(out, "rb") as f:
        assert f.read() == pdf
    assert res["sha256"] == hashlib.sha256(pdf).hexdigest()
    rc, res = run_office_json(daemon.state_dir, "order", "material", order.id, "seal_image",
                              "--output", os.path.join(tmp_dir, "none"), key=env.keys["rita"])
    assert rc != 0 and not os.path.exists(os.path.join(tmp_dir, "none"))


def test_a_gateway_may_not_read_materials(daemon, client, env):
    order = confirmed_org_order(client)
    attach_bytes(order, "business_license", "license.png", make_png())
    for user, allowed in (("gw", False), ("audrey", True), ("rita", True)):
        w = Worker(daemon.state_dir, env.keys[user])
        try:
            verb, body = w.call("materials.get", {"order_id": order.id,
                                                  "kind": "business_license"})
        finally:
            w.close()
        if allowed:
            assert verb == "RESULT", (user, body)
        else:
            assert verb == "ERROR" and body["code"] == "AccessDenied", (user, body)
            assert "data" not in json.dumps(body)
