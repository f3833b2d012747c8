"""
Backup and restore of a state directory (docs/development.md, "Backup and restore"), with
the real daemon, the real CLI and real files.

Covered: `certseal-office backup` of a running daemon while the office keeps moving orders
(pay-notify and review steps in a loop during the backup); the archive is 0600 and holds
no plaintext secret; `certseald --restore` into a new state directory verifies the ledger,
the restored daemon starts, serves every order in a state the ledger really had at one
moment of the backup, and unlocks — with the SO PIN sealed in the restored vault — a key
the platform made and whose PIN was locked before the backup (the key itself, hardware,
is carried over). Refused: a wrong passphrase (nothing written), a non-empty state
directory (named), a short or over-long passphrase, an existing output file, a passphrase
in argv, a state directory whose lock is held; what an interrupted restore left is removed
or, beside names it moved, named. On a terminal the passphrase is asked twice without echo, and a mismatch is
refused. The passphrase reaches no log, output or argv.
"""

import fcntl
import json
import os
import pty
import re
import select
import signal
import shutil
import stat
import subprocess
import termios
import threading

import pytest

from conftest import CERTSEALD, DEV_CONF, KEY_IFACE, Client, Daemon, run_until, write_config
from flow_helpers import Application, Office, blank_key
from office_helpers import OFFICE_CLI
from test_unlock import Unlock, lock, login

PASSPHRASE = "correct horse battery staple 马"
RANK = {"unpaid": 0, "in_review": 1, "rejected": 2}


def backup_cmd(state_dir, output, *extra):
    return [OFFICE_CLI, "--state-dir", state_dir, "--json", "backup", "--output", output,
            *extra]


def restore_cmd(archive, state_dir):
    return [CERTSEALD, "--restore", archive, "--state-dir", state_dir, "--config", DEV_CONF]


def run(cmd, input):
    return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, LC_ALL="C.UTF-8"))


def backup(state_dir, output, passphrase=PASSPHRASE):
    return run(backup_cmd(state_dir, output), passphrase + "\n")


def restore(archive, state_dir, passphrase=PASSPHRASE):
    return run(restore_cmd(archive, state_dir), passphrase + "\n")


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def carry_key(old_state, new_state, serial):
    """Move a virtual key (hardware in production: never in a backup) to the restored
    machine: its token folder, with its SoftHSM2 configuration pointed at the new place."""
    src = os.path.join(old_state, "drivers", "vkey", serial)
    dst = os.path.join(new_state, "drivers", "vkey", serial)
    os.makedirs(os.path.dirname(dst), mode=0o700, exist_ok=True)
    shutil.copytree(src, dst, symlinks=True)
    conf = os.path.join(dst, "softhsm2.conf")
    with open(conf) as f:
        text = f.read()
    with open(conf, "w") as f:
        f.write(text.replace(src, dst))


@pytest.fixture(scope="module")
def stopped_state(bus):
    """The state directory of a daemon that ran (an order, CAs, office keys) and stopped."""
    d = Daemon(bus)
    d.start()
    c = Client(bus)
    Application(c, Office(d.state_dir), "org")
    c.close()
    assert d.stop() == 0
    yield d.state_dir
    d.cleanup()


class Stepper(threading.Thread):
    """The office in a loop: pay-notify, then a review rejection, for each order in turn,
    noting which steps finished before the backup started and which started after it
    ended."""

    def __init__(self, state_dir, order_ids):
        super().__init__(daemon=True)
        self.office = Office(state_dir)
        self.order_ids = order_ids
        self.lock = threading.Lock()
        self.first_done = threading.Event()
        self.backup_started = False
        self.backup_ended = False
        self.steps = []  # (order id, state after, finished before start, started after end)
        self.failure = None

    def run(self):
        try:
            for oid in self.order_ids:
                for args, state in ((("pay-notify", oid, "--channel", "sandbox"), "in_review"),
                                    (("review", "reject", oid, "--note", "blurred"),
                                     "rejected")):
                    with self.lock:
                        after_end = self.backup_ended
                    self.office.ok(*args)
                    with self.lock:
                        self.steps.append((oid, state, not self.backup_started, after_end))
                    self.first_done.set()
        except Exception as e:  # reported by the test
            self.failure = e
            self.first_done.set()

    def mark(self, started=None, ended=None):
        with self.lock:
            if started:
                self.backup_started = True
            if ended:
                self.backup_ended = True


def unpaid_order(client, office):
    a = Application(client, office, "org")
    a.confirm()
    a.attach_all()
    a.submit()
    a.verify()
    a.start_payment()
    assert a.state == "unpaid", a.state
    return a.id


def test_a_running_daemon_under_load_is_backed_up_and_restored(bus, make_daemon, tmp_dir):
    d = make_daemon().start()
    client = Client(bus)
    office = Office(d.state_dir)
    # A key this platform made (its SO PIN sealed in the vault), its PIN then locked.
    serial = "UKBK0001"
    path = blank_key(d.state_dir, client, serial)
    app = Application(client, office, "org")
    app.to_review()
    pin = app.approve()
    app.make(serial)
    assert run_until(lambda: client.get(path, KEY_IFACE, "CertificateSerial") != "", 10.0)
    lock(client, path)
    assert client.get(path, KEY_IFACE, "PinLocked") is True
    load = [unpaid_order(client, office) for _ in range(6)]

    archive = os.path.join(tmp_dir, "certseal.backup")
    stepper = Stepper(d.state_dir, load)
    stepper.start()
    assert stepper.first_done.wait(60) and stepper.failure is None, stepper.failure
    stepper.mark(started=True)
    bcp = backup(d.state_dir, archive)
    stepper.mark(ended=True)
    stepper.join(120)
    assert stepper.failure is None, stepper.failure
    assert bcp.returncode == 0, bcp.stdout + bcp.stderr
    out = json.loads(bcp.stdout)
    assert out["output"] == archive and out["files"] >= 10, out
    # The daemon kept serving throughout, and still does.
    assert [client.order(oid).state for oid in load] == ["rejected"] * len(load)

    # 0600, and no plaintext inside: not the vault key, a CA key, the ledger, the PIN.
    assert mode_of(archive) == 0o600
    blob = open(archive, "rb").read()
    assert blob.startswith(b"CSBACKUP")
    vault_key = open(os.path.join(d.state_dir, "vault.key"), "rb").read()
    root_key = open(os.path.join(d.state_dir, "ca", "demo-a", "root.key"), "rb").read()
    for secret in (vault_key, root_key.splitlines()[1], b"SQLite format 3", pin.encode(),
                   PASSPHRASE.encode(), b"vault.key", app.fields["org_name"].encode()):
        assert secret not in blob, secret
    assert sorted(os.listdir(tmp_dir)) == ["certseal.backup"]  # no temporary left beside it

    # Restored into a new state directory on another machine: the old daemon is gone.
    assert d.stop() == 0
    new_state = os.path.join(tmp_dir, "restored")
    cp = restore(archive, new_state)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "ledger verified" in cp.stdout, cp.stdout
    assert mode_of(new_state) == 0o700
    for rel in ("ledger.db", "vault.key", "vault.check", "ca/demo-a/root.key",
                "ca/demo-a/issuing.key", "ca/demo-a/seal-maker.key", "office/admin.key",
                "office/server.key"):
        assert mode_of(os.path.join(new_state, rel)) == 0o600, rel
    assert mode_of(os.path.join(new_state, "ca", "demo-a", "root.crt")) == 0o644
    assert not os.path.exists(os.path.join(new_state, "drivers"))
    assert not [n for n in os.listdir(new_state) if n.startswith(".")]
    materials = os.path.join(new_state, "materials")
    assert len([f for _, _, files in os.walk(materials) for f in files]) >= 1
    carry_key(d.state_dir, new_state, serial)

    r = make_daemon(state_dir=new_state).start()
    c2 = Client(bus)
    assert run_until(lambda: "ledger verified in the background" in r.log(), 20.0), r.log()
    assert c2.order(app.id).state == "made"
    # Every load order is in a state the ledger had at one moment of the backup.
    for oid in load:
        got = RANK[c2.order(oid).state]
        before = [RANK[s] for o, s, done_before, _ in stepper.steps if o == oid and done_before]
        not_after = [RANK[s] for o, s, _, after in stepper.steps if o == oid and not after]
        assert got >= max(before, default=0), (oid, got, stepper.steps)
        assert got <= max(not_after, default=0), (oid, got, stepper.steps)

    # The key made before the backup is unlocked by the restored daemon.
    assert run_until(lambda: path in c2.managed_objects(), 10.0)
    assert c2.get(path, KEY_IFACE, "PinLocked") is True
    u = Unlock((r, c2, Office(new_state)), app, path, "legal_rep_phone")
    u.unlock(u.to_authorized(), "246810")
    assert u.state == "completed"
    login(c2, path, "246810")
    c2.close()
    client.close()

    # The passphrase reached no log or output.
    for text in (d.log(), r.log(), bcp.stdout, bcp.stderr, cp.stdout, cp.stderr):
        assert PASSPHRASE not in text
        assert "correct horse" not in text


def test_a_wrong_passphrase_writes_nothing(stopped_state, tmp_dir):
    archive = os.path.join(tmp_dir, "b")
    assert backup(stopped_state, archive).returncode == 0
    target = os.path.join(tmp_dir, "new")
    cp = restore(archive, target, "correct horse battery stable")
    assert cp.returncode == 1
    assert "wrong passphrase" in cp.stderr, cp.stderr
    assert "stable" not in cp.stderr + cp.stdout
    assert not os.path.exists(target)
    os.mkdir(target, 0o700)
    cp = restore(archive, target, "correct horse battery stable")
    assert cp.returncode == 1 and "wrong passphrase" in cp.stderr, cp.stderr
    assert os.listdir(target) == []
    # A byte changed: refused as damaged, nothing written.
    data = bytearray(open(archive, "rb").read())
    data[len(data) // 2] ^= 0x20
    open(archive, "wb").write(bytes(data))
    cp = restore(archive, target)
    assert cp.returncode == 1 and "damaged or altered" in cp.stderr, cp.stderr
    assert os.listdir(target) == []


def test_a_non_empty_state_dir_is_refused(stopped_state, tmp_dir):
    archive = os.path.join(tmp_dir, "b")
    assert backup(stopped_state, archive).returncode == 0
    target = os.path.join(tmp_dir, "busy")
    os.mkdir(target)
    open(os.path.join(target, "notes"), "w").write("mine")
    cp = restore(archive, target)
    assert cp.returncode == 1
    assert f"{target}: not empty" in cp.stderr, cp.stderr
    assert os.listdir(target) == ["notes"]
    # The live state directory itself, above all.
    cp = restore(archive, stopped_state)
    assert cp.returncode == 1 and "not empty" in cp.stderr, cp.stderr
    # Usage: --restore with --verify-ledger.
    cp = run(restore_cmd(archive, target) + ["--verify-ledger"], PASSPHRASE + "\n")
    assert cp.returncode == 2, cp.stderr


def test_what_an_interrupted_restore_left_is_removed_or_named(stopped_state, tmp_dir):
    """A restore killed before it moved anything leaves its private folder: the next one
    removes it and says so. Killed while moving names into place: the next one is refused,
    naming the folder and what was moved, and touches nothing. A directory whose lock a
    daemon holds is never restored into."""
    archive = os.path.join(tmp_dir, "b")
    assert backup(stopped_state, archive).returncode == 0
    target = os.path.join(tmp_dir, "half")
    staging = os.path.join(target, ".restore-Ab12Cd")
    os.makedirs(staging, mode=0o700)
    os.mkdir(os.path.join(staging, "ca"), 0o700)
    open(os.path.join(staging, "vault.key"), "wb").write(b"k" * 32)
    open(os.path.join(target, "ledger.db"), "w").write("moved into place")
    cp = restore(archive, target)
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert ".restore-Ab12Cd" in cp.stderr and "interrupted restore" in cp.stderr, cp.stderr
    assert "ledger.db" in cp.stderr, cp.stderr
    assert sorted(os.listdir(target)) == [".restore-Ab12Cd", "ledger.db"]
    os.unlink(os.path.join(target, "ledger.db"))
    cp = restore(archive, target)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "removed 1 folder(s) .restore-XXXXXX" in cp.stderr, cp.stderr
    assert not os.path.exists(staging)
    assert open(os.path.join(target, "vault.key"), "rb").read() == \
        open(os.path.join(stopped_state, "vault.key"), "rb").read()
    # The lock held (a certseald starting on the empty directory): refused, nothing written.
    locked = os.path.join(tmp_dir, "locked")
    os.mkdir(locked, 0o700)
    with open(os.path.join(locked, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        cp = restore(archive, locked)
    assert cp.returncode == 1 and "a running certseald holds" in cp.stderr, cp.stderr
    assert os.listdir(locked) == ["lock"]


def test_short_and_over_long_passphrases_are_refused(stopped_state, tmp_dir):
    out = os.path.join(tmp_dir, "b")
    for passphrase, what in (("eleven char", "11 characters"), ("", "0 characters"),
                             ("x" * 1025, "1025 characters"),
                             ("y" * 5000, "longer than 1024")):
        cp = backup(stopped_state, out, passphrase)
        assert cp.returncode == 1, cp.stdout + cp.stderr
        assert "passphrase" in cp.stdout and what in cp.stdout, cp.stdout
        assert "eleven" not in cp.stdout + cp.stderr
        assert not os.path.exists(out)
    cp = run(backup_cmd(stopped_state, out), "")
    assert cp.returncode == 1 and "none given" in cp.stdout, cp.stdout
    # Never from argv; an option without its value is a usage error too.
    cp = run(backup_cmd(stopped_state, out, "--passphrase", PASSPHRASE), "")
    assert cp.returncode == 2
    cp = run(backup_cmd(stopped_state, out, "--config"), PASSPHRASE + "\n")
    assert cp.returncode == 2
    assert not os.path.exists(out)


def test_without_state_dir_the_configuration_names_it(stopped_state, tmp_dir):
    conf = write_config(os.path.join(tmp_dir, "c.conf"), daemon={"state_dir": stopped_state})
    out = os.path.join(tmp_dir, "b")
    cp = run([OFFICE_CLI, "--json", "backup", "--output", out, "--config", conf],
             PASSPHRASE + "\n")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert json.loads(cp.stdout)["state_dir"] == stopped_state
    target = os.path.join(tmp_dir, "new")
    conf2 = write_config(os.path.join(tmp_dir, "c2.conf"), daemon={"state_dir": target})
    cp = run([CERTSEALD, "--restore", out, "--config", conf2], PASSPHRASE + "\n")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert os.path.exists(os.path.join(target, "vault.key"))
    assert open(os.path.join(target, "vault.key"), "rb").read() == \
        open(os.path.join(stopped_state, "vault.key"), "rb").read()


def test_the_passphrase_is_read_unbuffered(stopped_state, tmp_dir):
    """stdin is read a byte at a time up to the passphrase's line end: no stdio buffer,
    which nothing wipes, keeps the passphrase (what follows it stays unread)."""
    archive = os.path.join(tmp_dir, "b")
    for cmd in (backup_cmd(stopped_state, archive), restore_cmd(archive, os.path.join(
            tmp_dir, "new"))):
        r, w = os.pipe()
        os.write(w, (PASSPHRASE + "\nthe rest\n").encode())
        os.close(w)
        try:
            cp = subprocess.run(cmd, stdin=r, capture_output=True, text=True, timeout=120)
            assert cp.returncode == 0, cp.stdout + cp.stderr
            os.set_blocking(r, False)
            assert os.read(r, 100) == b"the rest\n"
        finally:
            os.close(r)


def test_an_existing_output_is_never_replaced(stopped_state, tmp_dir):
    out = os.path.join(tmp_dir, "b")
    open(out, "w").write("precious")
    cp = backup(stopped_state, out)
    assert cp.returncode == 1 and "exists" in cp.stdout, cp.stdout
    assert open(out).read() == "precious"
    os.symlink("/nonexistent", os.path.join(tmp_dir, "link"))
    cp = backup(stopped_state, os.path.join(tmp_dir, "link"))
    assert cp.returncode == 1 and "exists" in cp.stdout, cp.stdout
    assert sorted(os.listdir(tmp_dir)) == ["b", "link"]


def read_until(fd, wanted, sink):
    """Read @fd into @sink until it ends with @wanted (EOF fails)."""
    while not sink[0].endswith(wanted):
        ready, _, _ = select.select([fd], [], [], 60)
        assert ready, f"no {wanted!r} within 60 s: {sink[0]!r}"
        chunk = os.read(fd, 4096)
        assert chunk, f"EOF before {wanted!r}: {sink[0]!r}"
        sink[0] += chunk


def drain(fd):
    out = b""
    while select.select([fd], [], [], 0)[0]:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out


def on_pty(cmd, answers):
    """Run @cmd with a terminal as stdin; each (prompt, line) of @answers is typed once the
    prompt shows on stderr. Returns (exit code, stdout, stderr, what the terminal echoed,
    whether echo was back on afterwards)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, LC_ALL="C.UTF-8"))
    err = [b""]
    echoed = b""
    try:
        for prompt, line in answers:
            read_until(proc.stderr.fileno(), prompt.encode() + b": ", err)
            os.write(master, line.encode() + b"\n")
            echoed += drain(master)
        out = proc.stdout.read()
        err[0] += proc.stderr.read()
        proc.wait(120)
        echoed += drain(master)
        echo_on = bool(termios.tcgetattr(slave)[3] & termios.ECHO)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        os.close(slave)
    return proc.returncode, out.decode(), err[0].decode(), echoed, echo_on


def test_on_a_terminal_the_passphrase_is_asked_twice_without_echo(stopped_state, tmp_dir):
    out = os.path.join(tmp_dir, "b")
    first, again = "Backup passphrase", "The same passphrase again"
    rc, stdout, stderr, echoed, echo_on = on_pty(
        backup_cmd(stopped_state, out), [(first, PASSPHRASE), (again, PASSPHRASE + "!")])
    assert rc == 1 and "differ" in stdout, stdout + stderr
    assert not os.path.exists(out)
    assert PASSPHRASE.encode() not in echoed and echo_on

    rc, stdout, stderr, echoed, echo_on = on_pty(
        backup_cmd(stopped_state, out), [(first, PASSPHRASE), (again, PASSPHRASE)])
    assert rc == 0, stdout + stderr
    assert PASSPHRASE.encode() not in echoed, echoed
    assert PASSPHRASE not in stdout + stderr
    assert echo_on, "echo was left off"
    assert mode_of(out) == 0o600

    # Restoring asks once, the same way.
    target = os.path.join(tmp_dir, "new")
    rc, stdout, stderr, echoed, echo_on = on_pty(restore_cmd(out, target),
                                                 [(first, PASSPHRASE)])
    assert rc == 0, stdout + stderr
    assert stderr.count(first) == 1 and again not in stderr
    assert PASSPHRASE.encode() not in echoed and echo_on
    assert re.search(r"restored \d+ files .*ledger verified", stdout), stdout


def test_what_can_be_told_before_the_passphrase_is_told_first(stopped_state, tmp_dir):
    """A missing --output, a folder that is no state directory or an existing output are
    refused before a passphrase is read: the person types nothing in vain."""
    out = os.path.join(tmp_dir, "b")
    cp = run([OFFICE_CLI, "--state-dir", stopped_state, "--json", "backup"], "")
    assert cp.returncode == 1 and "--output: missing" in cp.stdout, cp.stdout + cp.stderr
    nowhere = os.path.join(tmp_dir, "nowhere")
    open(os.path.join(tmp_dir, "taken"), "w").close()
    for cmd, what in ((backup_cmd(nowhere, out), f"{nowhere}: not a state directory"),
                      (backup_cmd(stopped_state, os.path.join(tmp_dir, "taken")), "exists")):
        r, w = os.pipe()
        os.write(w, (PASSPHRASE + "\n").encode())
        os.close(w)
        try:
            cp = subprocess.run(cmd, stdin=r, capture_output=True, text=True, timeout=120)
            assert cp.returncode == 1 and what in cp.stdout, cp.stdout + cp.stderr
            os.set_blocking(r, False)
            assert os.read(r, 100) == (PASSPHRASE + "\n").encode(), "the passphrase was read"
        finally:
            os.close(r)
    assert not os.path.exists(out)


def test_ctrl_c_at_the_prompt_gives_the_terminal_its_echo_back(stopped_state, tmp_dir):
    out = os.path.join(tmp_dir, "b")
    for sig in (signal.SIGINT, signal.SIGTERM):
        master, slave = pty.openpty()
        proc = subprocess.Popen(backup_cmd(stopped_state, out), stdin=slave,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=dict(os.environ, LC_ALL="C.UTF-8"))
        try:
            read_until(proc.stderr.fileno(), b"Backup passphrase: ", [b""])
            assert not termios.tcgetattr(slave)[3] & termios.ECHO, "echo on at the prompt"
            proc.send_signal(sig)
            assert proc.wait(60) == -sig
            assert termios.tcgetattr(slave)[3] & termios.ECHO, f"echo left off after {sig!r}"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(master)
            os.close(slave)
    assert not os.path.exists(out)
