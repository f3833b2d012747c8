"""
Sealing documents with a USB key (docs/architecture.md §3.3 Key.SealDocument, §3.6 `certseal seal sign`,
§9; issue 4 "a document sealed and verified"): real SoftHSM2 tokens behind the virtual
UKey, the pkcs11 driver inside the real certseald, the state directory's real CA.

Each token is prepared before the daemon starts by tests/make-sealed-key (the daemon's
own code; the daemon has no path yet to write a certificate and seal outside key making):
a key pair generated on the token, a certificate issued by the vendor's CA for a CSR
signed on the token, and an e-seal made by the vendor's seal maker holding it. The
signature made over D-Bus must then verify with `certseal seal verify` against the
state directory's CA, and fail for a changed document.
"""

import json
import os
import subprocess
import tempfile
import time

import dbus
import pytest

from conftest import (BUILD_DIR, DEV_CONF, KEY_IFACE, Client, Daemon, dbus_error, key_path,
                      run_cli, run_until, vkey)

MAKE_SEALED_KEY = os.path.join(BUILD_DIR, "tests", "make-sealed-key")
PIN = "123456"
ERR_ACCESS_DENIED = "org.certseal.Error.AccessDenied"
ERR_INVALID_INPUT = "org.certseal.Error.InvalidInput"
ERR_NOT_FOUND = "org.certseal.Error.NotFound"
ERR_KEY_REMOVED = "org.certseal.Error.KeyRemoved"

SEALED = "SD0001"      # key pair, certificate, seal
UNSEALED = "SD0002"    # key pair and certificate, no seal
PULLED = "SD0003"      # sealed; pulled while signing
FOREIGN = "SD0004"     # the seal holds another certificate
CLI_KEY = "SD0005"     # sealed; for `certseal seal sign`
ALL = (SEALED, UNSEALED, PULLED, FOREIGN, CLI_KEY)


def make_sealed_key(state_dir, serial, *opts):
    cp = subprocess.run([MAKE_SEALED_KEY, "--config", DEV_CONF, "--state-dir", state_dir,
                         "--vendor", "demo-a", "--serial", serial, *opts],
                        input=PIN + "\n", capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    return cp.stdout.strip()


@pytest.fixture(scope="module")
def sealed(bus):
    d = Daemon(bus)
    try:
        for serial in ALL:
            vkey(d.state_dir, "create", "--vendor", "demo-a", "--serial", serial)
        make_sealed_key(d.state_dir, SEALED)
        make_sealed_key(d.state_dir, UNSEALED, "--no-seal")
        make_sealed_key(d.state_dir, PULLED)
        make_sealed_key(d.state_dir, FOREIGN, "--other-holder")
        make_sealed_key(d.state_dir, CLI_KEY)
        d.start()
        yield d
    finally:
        d.cleanup()


@pytest.fixture
def work():
    with tempfile.TemporaryDirectory(prefix="cs-seal-") as d:
        yield d


def wait_key(client, serial):
    path = key_path(serial)
    assert run_until(lambda: path in client.managed_objects(), 5.0), f"{serial} not listed"
    return path


def login(client, path):
    client.call(path, KEY_IFACE, "Login", "s", (PIN,))


def seal_document(client, path, filename, fd, timeout=20):
    obj = client.conn.get_object("org.certseal.CertSeal1", path)
    return bytes(obj.SealDocument(filename, dbus.types.UnixFd(fd), dbus_interface=KEY_IFACE,
                                  timeout=timeout))


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def verify(bus, state_dir, sig_path, doc_path):
    return run_cli(bus, "--json", "seal", "verify", sig_path, "--document", doc_path,
                   "--state-dir", state_dir)


def test_a_document_sealed_over_dbus_verifies_and_a_changed_one_does_not(sealed, client, work):
    path = wait_key(client, SEALED)
    assert client.get(path, KEY_IFACE, "HasSeal") is True
    login(client, path)
    doc = write(os.path.join(work, "contract.pdf"), b"%PDF-1.4 the contract\n" * 1000)
    with open(doc, "rb") as f:
        der = seal_document(client, path, "contract.pdf", f.fileno())
    assert der[0] == 0x30 and len(der) > 200
    sig = write(os.path.join(work, "contract.pdf.ses"), der)
    cp = verify(sealed.bus, sealed.state_dir, sig, doc)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    out = json.loads(cp.stdout)
    assert out["valid"] is True, out
    shown = run_cli(sealed.bus, "--json", "seal", "show", sig)
    assert shown.returncode == 0, shown.stderr
    assert "contract.pdf" in shown.stdout and SEALED in shown.stdout
    # One byte changed: the hash no longer matches.
    changed = write(os.path.join(work, "changed.pdf"),
                    b"%PDF-1.4 the contract\n" * 999 + b"%PDF-1.4 the c0ntract\n")
    cp = verify(sealed.bus, sealed.state_dir, sig, changed)
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert json.loads(cp.stdout)["valid"] is False
    assert "document" in cp.stdout
    # Another CA does not vouch for it.
    other = os.path.join(work, "other-state")
    cp = run_cli(sealed.bus, "--json", "seal", "verify", sig, "--document", doc,
                 "--state-dir", other)
    assert cp.returncode == 1, cp.stdout


def test_a_memfd_is_accepted(sealed, client, work):
    path = wait_key(client, SEALED)
    login(client, path)
    fd = os.memfd_create("doc")
    try:
        os.write(fd, b"memfd document")
        der = seal_document(client, path, "memo.txt", fd)
    finally:
        os.close(fd)
    sig = write(os.path.join(work, "memo.ses"), der)
    doc = write(os.path.join(work, "memo.txt"), b"memfd document")
    cp = verify(sealed.bus, sealed.state_dir, sig, doc)
    assert cp.returncode == 0, cp.stdout + cp.stderr


def test_not_logged_in_is_refused(sealed, client, work):
    path = wait_key(client, SEALED)
    client.call(path, KEY_IFACE, "Logout", "", ())
    assert run_until(lambda: client.get(path, KEY_IFACE, "LoggedIn") is False, 3.0)
    doc = write(os.path.join(work, "a.txt"), b"a")
    with open(doc, "rb") as f, dbus_error(ERR_ACCESS_DENIED, "not logged in"):
        seal_document(client, path, "a.txt", f.fileno())


def test_a_pipe_is_invalid_input(sealed, client):
    path = wait_key(client, SEALED)
    login(client, path)
    r, w = os.pipe()
    try:
        os.write(w, b"streamed")
        with dbus_error(ERR_INVALID_INPUT, "fd", "regular file"):
            seal_document(client, path, "a.txt", r)
    finally:
        os.close(r)
        os.close(w)


def test_a_document_over_64_mb_or_a_directory_is_invalid_input(sealed, client, work):
    path = wait_key(client, SEALED)
    login(client, path)
    big = os.path.join(work, "big.bin")
    with open(big, "wb") as f:
        f.truncate(64 * 1024 * 1024 + 1)  # sparse: fstat says too large, nothing is read
    with open(big, "rb") as f, dbus_error(ERR_INVALID_INPUT, "fd", "too large"):
        seal_document(client, path, "big.bin", f.fileno())
    fd = os.open(work, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with dbus_error(ERR_INVALID_INPUT, "fd", "regular file"):
            seal_document(client, path, "dir", fd)
    finally:
        os.close(fd)


def test_a_non_ascii_filename_is_invalid_input(sealed, client, work):
    path = wait_key(client, SEALED)
    login(client, path)
    doc = write(os.path.join(work, "a.txt"), b"a")
    with open(doc, "rb") as f, dbus_error(ERR_INVALID_INPUT, "filename"):
        seal_document(client, path, "合同.pdf", f.fileno())


def test_a_key_without_a_seal_says_so(sealed, client, work):
    path = wait_key(client, UNSEALED)
    assert client.get(path, KEY_IFACE, "HasSeal") is False
    login(client, path)
    doc = write(os.path.join(work, "a.txt"), b"a")
    with open(doc, "rb") as f, dbus_error(ERR_NOT_FOUND, "no e-seal"):
        seal_document(client, path, "a.txt", f.fileno())


def test_a_seal_of_another_certificate_is_refused(sealed, client, work):
    path = wait_key(client, FOREIGN)
    login(client, path)
    doc = write(os.path.join(work, "a.txt"), b"a")
    with open(doc, "rb") as f, dbus_error(ERR_INVALID_INPUT, "certList"):
        seal_document(client, path, "a.txt", f.fileno())


def test_the_key_pulled_during_signing_is_key_removed(sealed, client, work):
    path = wait_key(client, PULLED)
    login(client, path)
    vkey(sealed.state_dir, "fault", PULLED, "C_Sign", "--after", "1", "--mode", "unplug")
    doc = write(os.path.join(work, "a.txt"), b"a")
    t0 = time.monotonic()
    with open(doc, "rb") as f, dbus_error(ERR_KEY_REMOVED):
        seal_document(client, path, "a.txt", f.fileno(), timeout=10)
    assert time.monotonic() - t0 < 8
    # The daemon still answers.
    assert run_until(lambda: path not in client.managed_objects(), 3.0)
    assert client.manager("Version")


def test_certseal_seal_sign_end_to_end(sealed, client, work):
    path = wait_key(client, CLI_KEY)
    doc = write(os.path.join(work, "invoice.pdf"), b"%PDF-1.4 invoice\n")
    # Not logged in yet: refused, nothing written.
    client.call(path, KEY_IFACE, "Logout", "", ())
    cp = run_cli(sealed.bus, "seal", "sign", doc, "--key", CLI_KEY)
    assert cp.returncode != 0 and "not logged in" in cp.stderr, cp.stderr
    assert not os.path.exists(doc + ".ses")
    login(client, path)
    # Several keys are inserted: --key is required, and must name an inserted key.
    cp = run_cli(sealed.bus, "seal", "sign", doc)
    assert cp.returncode != 0 and "--key" in cp.stderr, cp.stderr
    cp = run_cli(sealed.bus, "seal", "sign", doc, "--key", "NOPE01")
    assert cp.returncode != 0 and "NOPE01" in cp.stderr, cp.stderr
    cp = run_cli(sealed.bus, "seal", "sign", doc, "--key", CLI_KEY)
    assert cp.returncode == 0, cp.stderr
    assert os.path.exists(doc + ".ses")
    cp = verify(sealed.bus, sealed.state_dir, doc + ".ses", doc)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    out = os.path.join(work, "out.sig")
    cp = run_cli(sealed.bus, "--json", "seal", "sign", doc, "--key", CLI_KEY, "--output", out)
    assert cp.returncode == 0, cp.stderr
    res = json.loads(cp.stdout)
    assert res["output"] == out and res["serial"] == CLI_KEY
    cp = verify(sealed.bus, sealed.state_dir, out, doc)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    # A document that is not there.
    cp = run_cli(sealed.bus, "seal", "sign", os.path.join(work, "missing.pdf"), "--key", CLI_KEY)
    assert cp.returncode != 0 and "missing.pdf" in cp.stderr, cp.stderr
