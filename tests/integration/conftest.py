"""
conftest.py — fixtures for certseal's integration tests (docs/architecture.md §7, STYLE.md "Tests").

Real components only: every test module gets its own private dbus-daemon (a short socket
directory under /tmp, a policy that lets a client running as another uid connect), and
tests run the real certseald from the build tree on it, with a state directory in a
temporary directory. The daemon's stdout and stderr go to a log file that is attached to
the report of a failing test. Nothing outlives the session: processes are killed and
temporary directories removed by the fixtures' finalizers.

Paths come from the environment meson sets for `meson test`: CS_BUILD_DIR, CS_SOURCE_DIR
(and CS_TEST_DATA). Run directly with
  CS_BUILD_DIR=$PWD/build CS_SOURCE_DIR=$PWD /usr/bin/python3 -m pytest -q tests/integration
"""

import contextlib
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time

import dbus
import dbus.mainloop.glib
import pytest
from gi.repository import GLib

dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("CS_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
BUILD_DIR = os.environ.get("CS_BUILD_DIR") or os.path.join(SOURCE_DIR, "build")
CERTSEALD = os.path.join(BUILD_DIR, "daemon", "certseald")
CLI = os.path.join(BUILD_DIR, "cli", "certseal")
VKEY = os.path.join(BUILD_DIR, "cli", "certseal-vkey")
DRIVER_CHECK = os.path.join(BUILD_DIR, "cli", "certseal-driver-check")
PKCS11_DRIVER = os.path.join(BUILD_DIR, "drivers", "certseal-driver-pkcs11.so")
DEV_VENDORS_D = os.path.join(BUILD_DIR, "daemon", "vendors.d")
DEV_CONF = os.path.join(BUILD_DIR, "certseal-dev.conf")
TEST_MODULES = os.path.join(BUILD_DIR, "tests", "plugins")
VENDORS_D = os.path.join(SOURCE_DIR, "daemon", "vendors.d")
INTROSPECTION_XML = os.path.join(SOURCE_DIR, "dbus", "org.certseal.CertSeal1.xml")

BUS_NAME = "org.certseal.CertSeal1"
MANAGER_PATH = "/org/certseal/CertSeal1"
ORDERS_PATH = MANAGER_PATH + "/orders"
MANAGER_IFACE = "org.certseal.CertSeal1.Manager"
ORDER_IFACE = "org.certseal.CertSeal1.Order"
KEY_IFACE = "org.certseal.CertSeal1.Key"
KEYS_PATH = MANAGER_PATH + "/keys"
PROPS_IFACE = "org.freedesktop.DBus.Properties"
OBJMGR_IFACE = "org.freedesktop.DBus.ObjectManager"

ERR_INVALID_INPUT = "org.certseal.Error.InvalidInput"
ERR_WRONG_STATE = "org.certseal.Error.WrongState"
ERR_ACCESS_DENIED = "org.certseal.Error.AccessDenied"

CALL_TIMEOUT = 10  # seconds, for every D-Bus call a test makes
START_TIMEOUT = 10  # seconds for certseald to own its name

# Valid test vectors (docs/architecture.md §9).
USCC = "91350200776049653A"
USCC_BAD_CHECK = "91350200776049653B"
USCC_LEGACY = "91350100M0001TGQXM"  # in the dev config's legacy_uscc list
ID_1949 = "11010519491231002X"
ID_2000_LEAP = "110105200002290021"
ID_BAD_CHECK = "110105194912310021"
ID_29_FEB_1949 = "110105194902290029"
PHONE = "13800138000"

ORG_FIELDS = {
    "vendor": "demo-a",
    "auth_method": "legal_rep_phone",
    "email": "ops@example.cn",
    "address": "福建省厦门市思明区软件园二期望海路 1 号",
    "postcode": "361000",
    "org_name": "厦门示例科技有限公司",
    "uscc": USCC,
    "legal_rep_name": "张三",
    "legal_rep_id": ID_1949,
    "legal_rep_phone": PHONE,
    "handler_name": "李四",
    "handler_id": ID_2000_LEAP,
    "handler_phone": PHONE,
    "handler_auth_method": "handler_phone",
}

PERSON_FIELDS = {
    "vendor": "demo-a",
    "auth_method": "phone",
    "email": "wangwu@example.cn",
    "address": "北京市西城区示例胡同 2 号",
    "postcode": "100032",
    "name": "王五",
    "id_number": ID_1949,
    "phone": PHONE,
}

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={dir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    <allow user="*"/>
  </policy>
</busconfig>
"""

# Every Daemon not yet cleaned up; their logs go into the report of a failing test.
_DAEMONS = []


def short_tmpdir(prefix):
    """A temporary directory with a short path (Unix socket paths are limited to ~108
    bytes), readable by other users so that a client running as another uid can reach a
    socket in it."""
    path = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(path, 0o755)
    return path


def unwrap(value):
    """python-dbus values → plain Python values."""
    if isinstance(value, dbus.Boolean):
        return bool(value)
    if isinstance(value, (dbus.String, dbus.ObjectPath, dbus.Signature)):
        return str(value)
    if isinstance(value, (dbus.Byte, dbus.Int16, dbus.Int32, dbus.Int64, dbus.UInt16,
                          dbus.UInt32, dbus.UInt64)):
        return int(value)
    if isinstance(value, dbus.Double):
        return float(value)
    if isinstance(value, dbus.Dictionary):
        return {unwrap(k): unwrap(v) for k, v in value.items()}
    if isinstance(value, dbus.Struct):
        return tuple(unwrap(v) for v in value)
    if isinstance(value, (dbus.Array, list, tuple)):
        return [unwrap(v) for v in value]
    return value


def run_until(predicate, timeout=5.0):
    """Run the GLib main loop until @predicate() is true or @timeout seconds passed, so a
    test waiting for a signal can never hang. Returns the last predicate value."""
    if predicate():
        return True
    loop = GLib.MainLoop()
    deadline = time.monotonic() + timeout

    def tick():
        if predicate() or time.monotonic() >= deadline:
            loop.quit()
            return False
        return True

    def hard_stop():
        loop.quit()
        return False

    sources = [GLib.timeout_add(20, tick), GLib.timeout_add(int(timeout * 1000) + 1000, hard_stop)]
    try:
        loop.run()
    finally:
        for s in sources:
            ctx_source = GLib.MainContext.default().find_source_by_id(s)
            if ctx_source is not None and not ctx_source.is_destroyed():
                GLib.source_remove(s)
    return predicate()


def pump(seconds):
    """Let the main loop dispatch whatever arrives for @seconds."""
    run_until(lambda: False, timeout=seconds)


@contextlib.contextmanager
def dbus_error(name, *mentions):
    """Expect a D-Bus error named @name whose message contains each of @mentions."""
    with pytest.raises(dbus.exceptions.DBusException) as info:
        yield info
    got = info.value.get_dbus_name()
    msg = info.value.get_dbus_message() or ""
    assert got == name, f"expected {name}, got {got}: {msg}"
    for m in mentions:
        assert m in msg, f"{name} message {msg!r} does not mention {m!r}"


class Bus:
    """A private dbus-daemon."""

    def __init__(self):
        self.dir = short_tmpdir("csbus-")
        self.config = os.path.join(self.dir, "bus.conf")
        with open(self.config, "w") as f:
            f.write(BUS_CONFIG.format(dir=self.dir))
        self.log = open(os.path.join(self.dir, "dbus-daemon.log"), "w")
        self.proc = subprocess.Popen(
            ["dbus-daemon", f"--config-file={self.config}", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL,
            start_new_session=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline().decode().strip() if ready else ""
        if not line:
            self.close()
            raise RuntimeError("dbus-daemon did not print its address")
        self.address = line
        self._conn = None

    def connect(self):
        """A new private connection to this bus (with the GLib main loop)."""
        return dbus.bus.BusConnection(self.address)

    @property
    def conn(self):
        """A connection shared by the fixtures (name polling)."""
        if self._conn is None:
            self._conn = self.connect()
        return self._conn

    def name_has_owner(self, name=BUS_NAME):
        return bool(self.conn.call_blocking("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                            "org.freedesktop.DBus", "NameHasOwner", "s", (name,),
                                            timeout=CALL_TIMEOUT))

    def env(self, **extra):
        env = dict(os.environ)
        env["DBUS_SESSION_BUS_ADDRESS"] = self.address
        env.pop("DBUS_STARTER_ADDRESS", None)
        env.update(extra)
        return env

    def close(self):
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class DaemonFailed(AssertionError):
    pass


class Daemon:
    """certseald on a test bus, with its own state and log in a temporary directory."""

    def __init__(self, bus, config=DEV_CONF, state_dir=None, extra_args=()):
        self.bus = bus
        self.config = config
        self.workdir = tempfile.mkdtemp(prefix="csd-", dir="/tmp")
        self.state_dir = state_dir or os.path.join(self.workdir, "state")
        self.extra_args = list(extra_args)
        self.log_path = os.path.join(self.workdir, "certseald.log")
        open(self.log_path, "w").close()
        self.proc = None
        self.mark = 0
        _DAEMONS.append(self)

    def command(self, *args):
        return [CERTSEALD, "--session", "--state-dir", self.state_dir, "--config", self.config,
                *self.extra_args, *args]

    def env(self):
        return self.bus.env(G_DEBUG="fatal-criticals", G_SLICE="always-malloc",
                            G_MESSAGES_DEBUG="all", LC_ALL="C.UTF-8")

    def _note(self, text):
        with open(self.log_path, "a") as f:
            f.write(f"--- {text}\n")

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid

    def start(self, wait=True, timeout=START_TIMEOUT):
        assert not self.running, "certseald already running"
        self._note("start: " + " ".join(self.command()))
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=self.env(),
                                         start_new_session=True)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DaemonFailed(f"certseald exited with {self.proc.returncode} before "
                                   f"owning {BUS_NAME}:\n{self.log()}")
            if self.bus.name_has_owner():
                return
            time.sleep(0.05)
        raise DaemonFailed(f"certseald did not own {BUS_NAME} within {timeout} s:\n{self.log()}")

    def stop(self, timeout=10):
        """SIGTERM and wait; returns the exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise DaemonFailed(f"certseald ignored SIGTERM for {timeout} s")
        self._note(f"exited with {self.proc.returncode}")
        return self.proc.returncode

    def kill(self):
        """SIGKILL: no shutdown code runs. Returns once the bus has noticed (the name is
        free again), so that a restart cannot race with the dead daemon's name."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._note("killed with SIGKILL")
        self.wait_name_released()

    def wait_name_released(self, timeout=5):
        deadline = time.monotonic() + timeout
        while self.bus.name_has_owner():
            if time.monotonic() > deadline:
                raise DaemonFailed(f"{BUS_NAME} still owned {timeout} s after certseald died")
            time.sleep(0.02)

    def restart(self):
        if self.running:
            assert self.stop() == 0
        return self.start()

    def run(self, *args, timeout=15):
        """Run certseald in the foreground (a refusal, --verify-ledger) and return the
        CompletedProcess; its output is also appended to the log."""
        cmd = self.command(*args)
        self._note("run: " + " ".join(cmd))
        try:
            cp = subprocess.run(cmd, capture_output=True, text=True, env=self.env(),
                                stdin=subprocess.DEVNULL, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise DaemonFailed(f"certseald {' '.join(args)} did not exit within {timeout} s "
                               f"(did it start serving instead of refusing?):\n"
                               f"{e.stdout}\n{e.stderr}")
        with open(self.log_path, "a") as f:
            f.write(cp.stdout)
            f.write(cp.stderr)
            f.write(f"--- exited with {cp.returncode}\n")
        return cp

    def log(self, since=0):
        try:
            with open(self.log_path, errors="replace") as f:
                f.seek(since)
                return f.read()
        except FileNotFoundError:
            return ""

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def cleanup(self):
        if self.running:
            self.proc.kill()
            self.proc.wait()
            with contextlib.suppress(Exception):
                self.wait_name_released()
        shutil.rmtree(self.workdir, ignore_errors=True)
        with contextlib.suppress(ValueError):
            _DAEMONS.remove(self)


class ClockDaemon(Daemon):
    """certseald whose business clock a test moves: CERTSEAL_TEST_NOW at each start."""

    test_now = None

    def env(self):
        env = super().env()
        if self.test_now is not None:
            env["CERTSEAL_TEST_NOW"] = self.test_now
        else:
            env.pop("CERTSEAL_TEST_NOW", None)
        return env

    def move_clock(self, value):
        self.test_now = value
        self.restart()


class Order:
    """One order object, seen through a client connection."""

    def __init__(self, client, path):
        self.client = client
        self.path = str(path)
        self.id = self.path.rsplit("/", 1)[-1]

    def get(self, prop):
        return self.client.get(self.path, ORDER_IFACE, prop)

    def get_all(self):
        return self.client.get_all(self.path, ORDER_IFACE)

    def update(self, fields):
        self.client.call(self.path, ORDER_IFACE, "Update", "a{sv}", (fields_arg(fields),))

    def confirm(self):
        self.client.call(self.path, ORDER_IFACE, "Confirm", "", ())

    def cancel(self):
        self.client.call(self.path, ORDER_IFACE, "Cancel", "", ())

    @property
    def state(self):
        return self.get("State")


def fields_arg(fields):
    """An a{sv}; plain str values become 's', dbus-typed values keep their type."""
    return dbus.Dictionary(fields, signature="sv")


class Client:
    """A D-Bus client of certseald on a test bus (its own connection)."""

    def __init__(self, bus):
        self.bus = bus
        self.conn = bus.connect()

    def call(self, path, iface, method, signature, args):
        return unwrap(self.conn.call_blocking(BUS_NAME, path, iface, method, signature, args,
                                              timeout=CALL_TIMEOUT))

    def get(self, path, iface, prop):
        return self.call(path, PROPS_IFACE, "Get", "ss", (iface, prop))

    def get_all(self, path, iface):
        return self.call(path, PROPS_IFACE, "GetAll", "s", (iface,))

    def manager(self, prop):
        return self.get(MANAGER_PATH, MANAGER_IFACE, prop)

    def managed_objects(self):
        return self.call(MANAGER_PATH, OBJMGR_IFACE, "GetManagedObjects", "", ())

    def introspect(self, path):
        return self.call(path, "org.freedesktop.DBus.Introspectable", "Introspect", "", ())

    def create_order(self, kind, subject_type, fields):
        path = self.call(MANAGER_PATH, MANAGER_IFACE, "CreateOrder", "ssa{sv}",
                         (kind, subject_type, fields_arg(fields)))
        return Order(self, path)

    def order(self, order_id_or_path):
        p = order_id_or_path
        if not p.startswith("/"):
            p = f"{ORDERS_PATH}/{p}"
        return Order(self, p)

    def close(self):
        with contextlib.suppress(Exception):
            self.conn.close()


class SignalRecorder:
    """Records certseald's signals on a connection; wait_for() runs the main loop."""

    def __init__(self, client, **match):
        self.signals = []  # (member, path, interface, args)
        self._match = client.conn.add_signal_receiver(
            self._on_signal, bus_name=BUS_NAME, path_keyword="path", member_keyword="member",
            interface_keyword="interface", **match)

    def _on_signal(self, *args, path=None, member=None, interface=None):
        self.signals.append((str(member), str(path), str(interface), unwrap(list(args))))

    def wait_for(self, predicate, timeout=5.0):
        """The first recorded signal (member, path, interface, args) satisfying
        @predicate, or None after @timeout seconds."""
        def find():
            for s in self.signals:
                if predicate(*s):
                    return s
            return None
        run_until(lambda: find() is not None, timeout)
        return find()

    def clear(self):
        self.signals.clear()

    def remove(self):
        self._match.remove()


def write_config(path, base=DEV_CONF, **groups):
    """Write a copy of @base with keys replaced or added: groups={"daemon": {"k": "v"}}.
    Returns @path."""
    with open(base) as f:
        lines = f.read().splitlines()
    out = []
    group = None
    pending = {g: dict(keys) for g, keys in groups.items()}

    def flush(g):
        for k, v in pending.get(g, {}).items():
            out.append(f"{k} = {v}")
        pending.pop(g, None)

    for line in lines:
        m = re.match(r"^\s*\[([^\]]+)\]\s*$", line)
        if m:
            if group is not None:
                flush(group)
            group = m.group(1)
            out.append(line)
            continue
        km = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*=", line)
        if km and group in pending and km.group(1) in pending[group]:
            out.append(f"{km.group(1)} = {pending[group].pop(km.group(1))}")
            continue
        out.append(line)
    if group is not None:
        flush(group)
    for g in list(pending):
        out.append(f"[{g}]")
        flush(g)
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return path


def run_cli(bus, *args, timeout=30, input=None):
    """Run `certseal --session ARGS…` against the test bus (@input: its stdin)."""
    return subprocess.run([CLI, "--session", *args], capture_output=True, text=True,
                          env=bus.env(LC_ALL="C.UTF-8", NO_COLOR="1"), input=input,
                          stdin=subprocess.DEVNULL if input is None else None, timeout=timeout)


def vkey(state_dir, *args, check=True):
    """Run `certseal-vkey --state-dir STATE_DIR ARGS…`; returns its stdout."""
    cp = subprocess.run([VKEY, "--state-dir", state_dir, *args], capture_output=True, text=True,
                        stdin=subprocess.DEVNULL, timeout=60)
    if check:
        assert cp.returncode == 0, f"certseal-vkey {' '.join(args)}: {cp.stderr}"
    return cp.stdout


def key_path(serial, driver="pkcs11"):
    """The object path of a key (sd_bus_path_encode escapes '_' as _5f)."""
    ident = f"{driver}_{serial}"
    enc = "".join(c if c.isalnum() else "_%02x" % ord(c) for c in ident)
    return f"{KEYS_PATH}/{enc}"


# --- fixtures ------------------------------------------------------------------------

@pytest.fixture(scope="session", autouse=True)
def built_tree():
    for path in (CERTSEALD, CLI, DEV_CONF):
        if not os.path.exists(path):
            pytest.fail(f"{path} is missing: build first (ninja -C {BUILD_DIR})")


@pytest.fixture(scope="module")
def bus():
    b = Bus()
    yield b
    b.close()


@pytest.fixture(scope="module")
def daemon(bus):
    """certseald with the development configuration, shared by a module's tests."""
    d = Daemon(bus)
    try:
        d.start()
        yield d
    finally:
        d.cleanup()


@pytest.fixture
def make_daemon(bus):
    """A factory of daemons owned by one test (they are killed at its end)."""
    made = []

    def make(**kwargs):
        d = Daemon(bus, **kwargs)
        made.append(d)
        return d

    yield make
    for d in made:
        d.cleanup()


@pytest.fixture
def client(bus):
    c = Client(bus)
    yield c
    c.close()


@pytest.fixture
def tmp_dir():
    path = tempfile.mkdtemp(prefix="cst-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


# --- reporting -----------------------------------------------------------------------

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    for d in _DAEMONS:
        d.mark = d.log_size()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    for d in list(_DAEMONS):
        text = d.log(since=d.mark)
        rep.sections.append((f"certseald log {d.log_path} ({rep.when})", text or "(empty)"))
