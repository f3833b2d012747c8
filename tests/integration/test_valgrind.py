"""
No leaks on the daemon's main paths: certseald runs under valgrind's memcheck while a
client creates, updates, confirms and cancels orders, lists them and reads the Manager,
and takes one organisation's application through the whole new flow (materials, SMS code,
payment, e-invoice, review, making on a blank virtual key, shipping), then stops on
SIGTERM. Any definite leak or memory error makes valgrind exit 99.

valgrind cannot run an AddressSanitizer build; the ASan tree covers the same paths with
LeakSanitizer instead, so this test runs in the plain build only.
"""

import json
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import (BUILD_DIR, ORDER_IFACE, ORG_FIELDS, PERSON_FIELDS, SOURCE_DIR, VKEY, Client,
                      Daemon, run_cli)
from office_helpers import run_office, run_office_json
from test_materials import attach_bytes, make_png, seal_form_pdf


VALGRIND_SUPP = os.path.join(SOURCE_DIR, "tests", "valgrind.supp")


def sanitized_build():
    info = os.path.join(BUILD_DIR, "meson-info", "intro-buildoptions.json")
    with open(info, encoding="utf-8") as f:
        for option in json.load(f):
            if option["name"] == "b_sanitize":
                return option["value"] != "none"
    return False


class ValgrindDaemon(Daemon):
    def __init__(self, bus, **kwargs):
        super().__init__(bus, **kwargs)
        self.vg_log = os.path.join(self.workdir, "valgrind.log")

    def command(self, *args):
        return ["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite",
                "--show-leak-kinds=definite", "--error-exitcode=99",
                f"--suppressions={VALGRIND_SUPP}",
                f"--log-file={self.vg_log}", *super().command(*args)]


def wait_state(order, state, timeout=120):
    end = time.monotonic() + timeout
    while order.state != state:
        assert time.monotonic() < end, f"{order.state}, not {state}: {order.get('History')}"
        time.sleep(0.5)


def office(d, *args):
    r = run_office(d.state_dir, *args)
    assert r.returncode == 0, r.stdout + r.stderr


def sms_code(d, template):
    rc, out = run_office_json(d.state_dir, "sms", "outbox")
    assert rc == 0
    texts = [m["text"] for m in out if f"[{template}]" in m["text"]]
    return re.search(r"code: (\S+)$", texts[-1]).group(1)


def walk_the_new_flow(d, c, org):
    for kind in ("business_license", "handler_id_front", "handler_id_back"):
        attach_bytes(org, kind, kind + ".png", make_png())
    attach_bytes(org, "seal_form", "form.pdf", seal_form_pdf(c))
    c.call(org.path, ORDER_IFACE, "Submit", "", [])
    with pytest.raises(Exception):
        c.call(org.path, ORDER_IFACE, "VerifySmsCode", "s", ["000000x"])  # a wrong code
    c.call(org.path, ORDER_IFACE, "VerifySmsCode", "s", [sms_code(d, "sms_code")])
    c.call(org.path, ORDER_IFACE, "StartPayment", "s", ["sandbox"])
    office(d, "pay-notify", org.id, "--channel", "sandbox")
    wait_state(org, "in_review")
    assert bytes(c.call(org.path, ORDER_IFACE, "GetInvoice", "", [])).startswith(b"%PDF")
    office(d, "review", "approve", org.id, "--note", "ok")
    wait_state(org, "approved")
    subprocess.run([VKEY, "--state-dir", d.state_dir, "create", "--vendor", "demo-a",
                    "--serial", "VGBLANK1", "--blank"], check=True, capture_output=True)
    end = time.monotonic() + 60
    while run_office(d.state_dir, "make", org.id, "--key", "VGBLANK1").returncode != 0:
        assert time.monotonic() < end, "the blank key never appeared"
        time.sleep(1)
    wait_state(org, "made")
    office(d, "ship", org.id, "--tracking", "SF1001")
    office(d, "deliver", org.id)
    wait_state(org, "completed")


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_main_paths_leak_nothing(bus):
    if sanitized_build():
        pytest.skip("valgrind cannot run an ASan build; LeakSanitizer covers this tree")
    d = ValgrindDaemon(bus)
    try:
        d.start(timeout=60)
        c = Client(bus)
        org = c.create_order("new", "org", ORG_FIELDS)
        org.update({"email": "audit@example.cn"})
        org.confirm()
        person = c.create_order("new", "person", PERSON_FIELDS)
        person.cancel()
        with pytest.raises(Exception):
            person.confirm()  # WrongState: the error path too
        assert len(c.managed_objects()) >= 2
        assert "new" in c.manager("Plugins")
        assert run_cli(bus, "status").returncode == 0
        assert run_cli(bus, "order", "show", org.get("Id")).returncode == 0
        walk_the_new_flow(d, c, org)
        c.close()
        rc = d.stop(timeout=60)
        with open(d.vg_log, encoding="utf-8") as f:
            report = f.read()
        if os.environ.get("CS_KEEP_VALGRIND_LOG"):
            shutil.copy(d.vg_log, os.environ["CS_KEEP_VALGRIND_LOG"])
        assert rc == 0, f"certseald under valgrind exited {rc}:\n{report[-4000:]}"
        assert "definitely lost: 0 bytes" in report or "no leaks are possible" in report, \
            report[-4000:]
        assert "ERROR SUMMARY: 0 errors" in report, report[-4000:]
    finally:
        d.cleanup()
