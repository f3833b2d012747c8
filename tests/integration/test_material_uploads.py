"""
Order.AttachMaterial does not hold the main loop: the file is read, hashed, sniffed and
stored on a worker thread, streamed to a content-addressed file in the state directory
(<state>/materials/<2 hex>/<sha256>) that the ledger refers to by its SHA-256 — the bytes
never enter the database; concurrent uploads are bounded (material_uploads_per_user, 2 by
default, and material_uploads_max, 8), and one beyond a bound is refused at once with
RateLimited. A property Get sent while large uploads run answers before they finish
(checked by the order of the replies, not by timing). Real daemon, private bus, real files.
"""

import hashlib
import os
import sqlite3

import dbus

from conftest import (BUS_NAME, ORDER_IFACE, ORG_FIELDS, PROPS_IFACE, Client, run_until,
                      write_config)
from office_helpers import run_office_json

RATE_LIMITED = "org.certseal.Error.RateLimited"
BIG = 10 * 1024 * 1024 - 4096  # just under the default 10 MiB limit


def big_pdf(size, seed):
    """A structurally whole PDF of about @size bytes: catalog, pages, one large stream of
    bytes particular to @seed, an xref table with the right offsets, the trailer."""
    filler = hashlib.sha256(seed.encode()).digest() * ((size // 32) + 1)
    stream = filler[:max(0, size - 600)]
    parts = [b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"]
    offsets = []

    def obj(body):
        offsets.append(sum(len(p) for p in parts))
        parts.append(body)

    obj(b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n")
    obj(b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n")
    obj(b"3 0 obj\n<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream\nendobj\n")
    xref = sum(len(p) for p in parts)
    table = b"xref\n0 4\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o
                                                          for o in offsets)
    parts.append(table)
    parts.append(b"trailer\n<< /Size 4 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref)
    return b"".join(parts)


def memfd(data):
    fd = os.memfd_create("material", os.MFD_CLOEXEC)
    os.write(fd, data)
    return fd


def confirmed_order(client):
    order = client.create_order("new", "org", ORG_FIELDS)
    order.confirm()
    return order


def uploads_and_a_get(client, order, contents):
    """Send one AttachMaterial per content, then a property Get, all without waiting;
    return the replies in the order they arrived: (label, error name or None)."""
    replies = []
    fds = [memfd(c) for c in contents]

    def handlers(label):
        return (lambda *args: replies.append((label, None)),
                lambda e: replies.append((label, e.get_dbus_name(), e.get_dbus_message())))

    try:
        for i, fd in enumerate(fds):
            ok, err = handlers(f"upload{i}")
            client.conn.call_async(BUS_NAME, order.path, ORDER_IFACE, "AttachMaterial", "ssh",
                                   ("business_license", f"license{i}.pdf",
                                    dbus.types.UnixFd(fd)), ok, err, timeout=120)
        ok, err = handlers("get")
        client.conn.call_async(BUS_NAME, order.path, PROPS_IFACE, "Get", "ss",
                               (ORDER_IFACE, "State"), ok, err, timeout=120)
        assert run_until(lambda: len(replies) == len(contents) + 1, timeout=120), replies
    finally:
        for fd in fds:
            os.close(fd)
    return replies


def stored_path(state_dir, sha):
    return os.path.join(state_dir, "materials", sha[:2], sha)


def check_get_answered_while_uploads_ran(replies):
    labels = [r[0] for r in replies]
    accepted = [i for i, r in enumerate(replies) if r[0].startswith("upload") and r[1] is None]
    assert accepted, replies
    assert replies[labels.index("get")][1] is None, replies
    # The Get did not wait for the uploads: it answered before the last of them finished.
    assert labels.index("get") < accepted[-1], labels


def test_uploads_beyond_the_per_user_bound_are_rate_limited(make_daemon, bus):
    d = make_daemon().start()
    c = Client(bus)
    order = confirmed_order(c)
    contents = [big_pdf(BIG, f"user{i}") for i in range(3)]
    replies = uploads_and_a_get(c, order, contents)
    limited = [r for r in replies if r[1] == RATE_LIMITED]
    assert len(limited) == 1, replies
    assert "at most 2" in limited[0][2], limited
    check_get_answered_while_uploads_ran(replies)
    # Once they finished, uploading works again.
    fd = memfd(contents[2])
    try:
        c.call(order.path, ORDER_IFACE, "AttachMaterial", "ssh",
               ("business_license", "again.pdf", dbus.types.UnixFd(fd)))
    finally:
        os.close(fd)
    c.close()
    assert d.stop() == 0


def test_large_uploads_leave_the_bus_answering_and_read_back_identical(make_daemon, bus,
                                                                       tmp_dir):
    conf = write_config(os.path.join(tmp_dir, "uploads.conf"),
                        daemon={"material_uploads_per_user": "8", "material_uploads_max": "8"})
    d = make_daemon(config=conf).start()
    c = Client(bus)
    order = confirmed_order(c)
    contents = [big_pdf(BIG, f"many{i}") for i in range(9)]
    replies = uploads_and_a_get(c, order, contents)
    limited = [r for r in replies if r[1] == RATE_LIMITED]
    assert len(limited) == 1 and "at most 8" in limited[0][2], replies
    check_get_answered_while_uploads_ran(replies)
    accepted = [int(r[0][len("upload"):]) for r in replies
                if r[0].startswith("upload") and r[1] is None]
    assert len(accepted) == 8, replies

    # Each accepted upload is a content-addressed file, byte for byte; the database holds
    # none of it.
    for i in accepted:
        sha = hashlib.sha256(contents[i]).hexdigest()
        with open(stored_path(d.state_dir, sha), "rb") as f:
            assert f.read() == contents[i]
    db = sqlite3.connect(f"file:{os.path.join(d.state_dir, 'ledger.db')}?mode=ro", uri=True)
    try:
        columns = [r[1] for r in db.execute("PRAGMA table_info(materials)")]
        shas = [r[0] for r in db.execute("SELECT sha256 FROM materials ORDER BY id")]
    finally:
        db.close()
    assert "data" not in columns, columns
    assert sorted(shas) == sorted(hashlib.sha256(contents[i]).hexdigest() for i in accepted)
    ledger_bytes = sum(os.path.getsize(os.path.join(d.state_dir, n))
                       for n in os.listdir(d.state_dir) if n.startswith("ledger.db"))
    assert ledger_bytes < 4 * 1024 * 1024, ledger_bytes

    # The office reads the latest back identical.
    out = os.path.join(tmp_dir, "latest.pdf")
    rc, res = run_office_json(d.state_dir, "order", "material", order.id, "business_license",
                              "--output", out)
    assert rc == 0, res
    with open(out, "rb") as f:
        got = f.read()
    assert hashlib.sha256(got).hexdigest() == shas[-1]
    assert got in [contents[i] for i in accepted]
    c.close()
    assert d.stop() == 0
