"""
The demo script from a checkout (docs/architecture.md §4): it runs the daemon with the development
configuration and walks one organisation's and one person's new-certificate application
through every step — apply, materials, submit, the SMS code, the payment QR code, the
invoice, review, making the key on a blank virtual key, shipping, delivery — then shows
the keys made, a certificate and its e-seal, logs in with the delivered password, and
then moves the clock (a restart with CERTSEAL_TEST_NOW), shows the expiry reminder and
renews the organisation's key: the new validity, the new seal, and a login with the
unchanged PIN; unlocks the person's locked key; changes the organisation's name; and, the
person follows their orders by an order query and saves an invoice again; the
organisation's key is lost and reissued; and stops everything it started.
"""

import os
import re
import subprocess

from conftest import BUILD_DIR, SOURCE_DIR

DEMO = os.path.join(SOURCE_DIR, "demo.sh")


def test_demo_script_walks_two_applications_to_made_keys(bus, tmp_dir):
    env = bus.env(CERTSEAL_SKIP_INSTALL="1", CERTSEAL_BUILD_DIR=BUILD_DIR, LC_ALL="C.UTF-8",
                  NO_COLOR="1", CERTSEAL_DEMO_DIR=tmp_dir)
    cp = subprocess.run(["bash", DEMO], capture_output=True, text=True, env=env,
                        stdin=subprocess.DEVNULL, timeout=600, cwd=SOURCE_DIR)
    out = cp.stdout + cp.stderr
    assert cp.returncode == 0, f"demo.sh exited {cp.returncode}:\n{cp.stdout}\n{cp.stderr}"
    assert "\x1b[" not in cp.stdout  # no colours when not on a terminal
    assert "certseald" in cp.stdout and re.search(r"Flows: .*\bnew\b", cp.stdout), out
    assert "id_number: bad check character" in out, out
    assert os.path.exists(os.path.join(tmp_dir, "state", "ledger.db"))

    # Each application reaches every state in turn, in this order.
    story = ["submit   → sms_pending", "State: unpaid", "Payload: certseal-sandbox://pay?order=",
             "State: in_review", "The invoice saved to", "State: approved", ": made (key ",
             "State: shipped", "State: completed"]
    orders = re.findall(r"create   → draft  \(order (CS\w+)\)", cp.stdout)
    assert len(orders) == 2, out
    org_part, person_part = cp.stdout.split(f"(order {orders[1]})", 1)
    for part, key in ((org_part, "DEMOORG01"), (person_part, "DEMOPER01")):
        pos = 0
        for mark in story:
            found = part.find(mark, pos)
            assert found >= 0, f"{mark!r} missing (after position {pos}):\n{part}"
            pos = found
        assert f"made (key {key})" in part
        assert "█" in part  # the payment QR code, drawn
    assert "Password: sms:139****9000" in org_part  # to the legal representative
    assert "Password: sms:137****7000" in person_part
    for subject in ("org", "person"):
        with open(os.path.join(tmp_dir, "files", f"invoice-{subject}.pdf"), "rb") as f:
            assert f.read(5) == b"%PDF-"

    # The keys made: listed with their certificates, the org's certificate and e-seal shown,
    # and a login with the password delivered by SMS.
    ending = cp.stdout.split("certseal keys (the two keys, made)", 1)[1]
    for serial in ("DEMOORG01", "DEMOPER01"):
        line = next((l for l in ending.splitlines() if serial in l), "")
        assert "demo-a" in line and "valid until" in line, ending
    assert "厦门示例科技有限公司" in ending
    assert "organizationIdentifier" in ending or "NTRCN-91350200776049653A" in ending, ending
    assert "valid: seal" in ending, ending
    assert "Logged in." in ending, ending

    # The renewal: the clock moved, the reminder SMS, the order to completed, the new
    # certificate and seal, and a login with the unchanged PIN.
    renewal = cp.stdout.split("The clock moves", 1)[1].split("locked by wrong PINs", 1)[0]
    assert "test mode: CERTSEAL_TEST_NOW=+" in renewal, renewal
    assert "[expiry_reminder]" in renewal, renewal
    assert "State: downloadable" in renewal and "State: completed" in renewal, renewal
    assert "notAfter=" in renewal and renewal.count("valid: seal") == 1, renewal
    assert renewal.rstrip().count("Logged in.") == 1, renewal
    # Then the person's key, locked by wrong PINs, is unlocked and opens with the new PIN.
    unlock = ending.split("locked by wrong PINs", 1)[1].split(
        "inserted for the change", 1)[0]
    assert re.search(r"DEMOPER01 .* locked", unlock), unlock
    assert "Unlocked: the key's PIN is the new one" in unlock, unlock
    assert re.search(r"DEMOPER01 .* 6 tries left", unlock), unlock
    assert unlock.rstrip().count("Logged in.") == 1, unlock
    # Then the organisation changes its name: the new certificate and seal carry it, the
    # seal's picture is saved, the old certificate is in the CRL as affiliationChanged.
    change = cp.stdout.split("inserted for the change", 1)[1].split("(订单查询", 1)[0]
    assert "submit → in_review" in change and "State: completed" in change, change
    assert "O=厦门示例新名科技有限公司" in change, change
    assert re.search(r"name +厦门示例新名科技有限公司", change), change
    m = re.search(r"the new seal's picture is saved in (\S+)", change)
    assert m is not None, change
    with open(m.group(1), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "Affiliation Changed" in change, change
    # Then the person's orders, found by a query code, and an invoice saved again.
    query = cp.stdout.split("(订单查询", 1)[1].split("key DEMOORG01 is lost", 1)[0]
    assert "A query code was sent to 137****7000." in query, query
    assert re.search(r"CS\w+ +unlock +completed", query), query
    assert re.search(r"CS\w+ +new +completed", query), query
    with open(os.path.join(tmp_dir, "files", "invoice-again.pdf"), "rb") as f:
        assert f.read(5) == b"%PDF-"
    # The organisation's key is lost: the query shows its valid certificate, the reissue
    # revokes it (keyCompromise) once the order's SMS code is verified, and the new key made
    # opens with the password sent to the legal representative.
    lost = cp.stdout.split("key DEMOORG01 is lost", 1)[1]
    assert "A query code was sent to 138****8000." in lost, lost
    m = re.search(r"^([0-9A-F]{32}) +demo-a +valid +\S+ .*厦门示例新名科技有限公司", lost, re.M)
    assert m is not None, lost
    serial = m.group(1)
    assert re.search(r"^[0-9A-F]{32} +demo-a +revoked ", lost, re.M), lost  # the name change
    assert re.search(rf"Order CS\w+ created: reissue \(lost\) of certificate {serial}", lost)
    story = ["State: confirmed", "State: sms_pending", "State: unpaid", "Serial Number: ",
             "Key Compromise", "State: approved", "Password: sms:139****9000",
             "made (key DEMOORG02)", "State: completed"]
    pos = 0
    for mark in story:
        found = lost.find(mark, pos)
        assert found >= 0, f"{mark!r} missing (after position {pos}):\n{lost}"
        pos = found
    assert re.search(rf"Serial Number: 0*{serial.lstrip('0')}\n", lost), lost
    assert re.search(r"DEMOORG02 .* valid until", lost), lost
    assert lost.split("certseal login DEMOORG02", 1)[1].count("Logged in.") == 1, lost
    assert "certseald stopped" in cp.stdout, out
