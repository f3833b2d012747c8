"""
The embedded CA of each vendor profile (docs/architecture.md §4): certseald creates a root, an issuing
CA and a seal maker per vendor on first start in <state_dir>/ca/<vendor>/ (keys 0600),
records their certificates in the ledger, writes each issuing CA's CRL, keeps the same CA
across restarts, and the real `openssl` accepts the chains and the CRL.
"""

import os
import sqlite3
import stat
import subprocess

from conftest import CLI

VENDORS = ("demo-a", "demo-b")


def openssl(*args):
    return subprocess.run(["openssl", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=30)


def test_first_start_creates_each_vendors_ca(make_daemon, bus):
    d = make_daemon().start()
    assert d.stop() == 0
    for vendor in VENDORS:
        ca = os.path.join(d.state_dir, "ca", vendor)
        for name in ("root", "issuing", "seal-maker"):
            mode = stat.S_IMODE(os.stat(os.path.join(ca, name + ".key")).st_mode)
            assert mode == 0o600, f"{vendor}/{name}.key has mode {oct(mode)}"
            assert os.path.exists(os.path.join(ca, name + ".crt"))
        root = os.path.join(ca, "root.crt")
        issuing = os.path.join(ca, "issuing.crt")
        for cert in (issuing, os.path.join(ca, "seal-maker.crt")):
            cp = openssl("verify", "-CAfile", root, cert)
            assert cp.returncode == 0 and ": OK" in cp.stdout, cp.stdout
        cp = openssl("crl", "-inform", "DER", "-in", os.path.join(ca, "issuing.crl"),
                     "-CAfile", issuing, "-noout", "-verify")
        assert "verify OK" in cp.stdout, cp.stdout
        # The profile's CA algorithm (the demo vendors use EC P-256).
        cp = openssl("x509", "-in", root, "-noout", "-text")
        assert "prime256v1" in cp.stdout
        # The control: another vendor's root does not vouch for this CA.
        other = os.path.join(d.state_dir, "ca", [v for v in VENDORS if v != vendor][0],
                             "root.crt")
        cp = openssl("verify", "-CAfile", other, issuing)
        assert cp.returncode != 0


def test_restart_keeps_the_ca_and_records_it_once(make_daemon, bus):
    d = make_daemon().start()
    assert d.stop() == 0
    root = os.path.join(d.state_dir, "ca", "demo-a", "root.crt")
    with open(root, encoding="ascii") as f:
        before = f.read()
    d.start()
    assert d.stop() == 0
    with open(root, encoding="ascii") as f:
        assert f.read() == before
    con = sqlite3.connect(os.path.join(d.state_dir, "ledger.db"))
    try:
        rows = con.execute("SELECT vendor, role FROM certificates ORDER BY vendor, role").fetchall()
        events = con.execute(
            "SELECT count(*) FROM events WHERE kind = 'ca_certificate_created'").fetchone()[0]
        keys = con.execute("SELECT count(*) FROM certificates "
                           "WHERE instr(der, CAST('PRIVATE KEY' AS BLOB)) > 0").fetchone()[0]
    finally:
        con.close()
    assert rows == [(v, r) for v in VENDORS for r in ("issuing", "root", "seal_maker")]
    assert events == 6
    assert keys == 0
    cp = d.run("--verify-ledger")
    assert cp.returncode == 0, cp.stdout + cp.stderr


def test_cli_seal_verify_refuses_what_is_not_a_seal(make_daemon, bus, tmp_path):
    d = make_daemon().start()
    assert d.stop() == 0
    junk = tmp_path / "junk.der"
    junk.write_bytes(b"\x30\x03\x02\x01\x01")
    cp = subprocess.run([CLI, "--json", "seal", "verify", str(junk), "--state-dir", d.state_dir],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    assert cp.returncode == 1
    assert '"valid":false' in cp.stdout
    assert "neither a GB/T 38540 seal" in cp.stdout
