"""
conftest.py — fixtures for the desktop assistant's tests: a real certseal-assistant window
on an X display (xvfb-run), found and driven through the accessibility tree (AT-SPI, as a
screen reader sees it) and the X keyboard and mouse (xdotool), against the real certseald
on a private bus with virtual keys — the integration tests' Bus, Daemon and vkey.

The test bus reads the standard session service directories, so that GTK finds the
accessibility bus (org.a11y.Bus, at-spi-bus-launcher) through it. The tests are skipped,
with the reason, only when the display stack cannot start (no X display, no AT-SPI).
"""

import importlib.util
import os
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "cs_integration", os.path.join(os.path.dirname(HERE), "integration", "conftest.py"))
integration = importlib.util.module_from_spec(_spec)  # the integration tests' helpers
_spec.loader.exec_module(integration)

# The accessibility bus is found through the session bus: activation from the standard
# service directories.
integration.BUS_CONFIG = integration.BUS_CONFIG.replace(
    "<auth>EXTERNAL</auth>", "<auth>EXTERNAL</auth>\n  <standard_session_servicedirs/>")

# The integration helpers (flow_helpers, office_helpers) import their names from
# "conftest": this module offers them too.
sys.path.append(os.path.join(os.path.dirname(HERE), "integration"))
globals().update({k: v for k, v in vars(integration).items()
                  if not k.startswith("_") and not hasattr(v, "_pytestfixturefunction")
                  and not k.startswith("pytest_") and k not in globals()})

BUILD_DIR = integration.BUILD_DIR
Bus, Client, Daemon = integration.Bus, integration.Client, integration.Daemon
key_path, run_until, vkey = integration.key_path, integration.run_until, integration.vkey

ASSISTANT = os.path.join(BUILD_DIR, "assistant", "certseal-assistant")
LOCALEDIR = os.path.join(BUILD_DIR, "assistant", "po")
SCREENSHOT_DIR = os.path.join(BUILD_DIR, "tests", "assistant-screenshots")
WAIT = 10.0  # seconds for the window to show what a test waits for


def display_problem():
    """Why no window can be driven here, or None."""
    if not os.environ.get("DISPLAY"):
        return "no X display (run under xvfb-run)"
    if subprocess.run(["xdpyinfo"], capture_output=True).returncode != 0:
        return f"the X display {os.environ['DISPLAY']} does not answer"
    for tool in ("xdotool", "import", "/usr/libexec/at-spi-bus-launcher"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0 and \
                not os.path.exists(tool):
            return f"{tool} is not installed (tests/install-deps.sh installs it)"
    try:
        import pyatspi  # noqa: F401
    except ImportError:
        return "python3-pyatspi is not installed (tests/install-deps.sh installs it)"
    return None


@pytest.fixture(scope="session", autouse=True)
def built_assistant():
    if not os.path.exists(ASSISTANT):
        pytest.fail(f"{ASSISTANT} is missing: build first")


# One test bus for the whole run: this process's AT-SPI client stays connected to the
# accessibility bus it found first, which lives as long as that bus does.
@pytest.fixture(scope="session")
def bus():
    problem = display_problem()
    if problem:
        pytest.skip(problem)
    b = Bus()
    # This process's AT-SPI client finds the accessibility bus through the test bus.
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = b.address
    yield b
    b.close()


@pytest.fixture(scope="module")
def daemon(bus):
    d = Daemon(bus)
    try:
        d.start()
        yield d
    finally:
        d.cleanup()


@pytest.fixture
def client(bus):
    c = Client(bus)
    yield c
    c.close()


class Window:
    """A running certseal-assistant, seen through AT-SPI."""

    def __init__(self, bus, out_dir, lang="C", args=()):
        import pyatspi
        self.pyatspi = pyatspi
        self.out_dir = out_dir
        os.makedirs(out_dir, exist_ok=True)
        env = bus.env(GSETTINGS_BACKEND="memory", CERTSEAL_LOCALEDIR=LOCALEDIR, GDK_BACKEND="x11",
                      LANG=lang, LC_ALL="", LANGUAGE="", GTK_A11Y="atspi")
        env.pop("LC_ALL")
        env.pop("LANGUAGE")
        self.log = open(os.path.join(out_dir, "assistant.log"), "a")
        prefix = os.environ.get("CS_ASSISTANT_WRAPPER", "").split()  # e.g. gdb, to debug
        self.wrapped = bool(prefix)
        if prefix:
            env["G_DEBUG"] = "fatal-criticals"
        self.proc = subprocess.Popen([*prefix, ASSISTANT, "--session", *args], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.app = None
        self.title = "证书助手" if not lang.startswith("en") else "Certificate Assistant"
        # The first window of a run also waits for the accessibility bus to start.
        assert self.wait(lambda: self._find_app() is not None, 4 * WAIT), \
            "no assistant in the AT-SPI tree"
        self.shots = 0

    def _find_app(self):
        desktop = self.pyatspi.Registry.getDesktop(0)
        for i in range(desktop.childCount):
            app = desktop.getChildAtIndex(i)
            try:
                mine = app is not None and (app.get_process_id() == self.proc.pid or (
                    self.wrapped and app.name == "certseal-assistant"))
                if mine and app.childCount:
                    self.app = app
                    return app
            except Exception:
                continue
        return None

    def wait(self, predicate, timeout=WAIT):
        """Poll @predicate (the tree changes as the window does) until it is true."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = predicate()
            except Exception:
                value = None
            if value:
                return value
            if time.monotonic() > deadline or self.proc.poll() is not None:
                return value
            time.sleep(0.1)

    def nodes(self, root=None):
        """Every showing node under @root (the application)."""
        stack = [root or self.app]
        while stack:
            node = stack.pop()
            if node is None:
                continue
            yield node
            try:
                for i in range(node.childCount - 1, -1, -1):
                    stack.append(node.getChildAtIndex(i))
            except Exception:
                continue

    def find(self, role=None, name=None, contains=None, root=None):
        for n in self.nodes(root):
            try:
                if role is not None and n.getRoleName() != role:
                    continue
                if name is not None and n.name != name:
                    continue
                if contains is not None and contains not in (n.name or ""):
                    continue
                return n
            except Exception:
                continue
        return None

    def wait_find(self, **kw):
        node = self.wait(lambda: self.find(**kw))
        if node is None:
            seen = [(n.getRoleName(), n.name) for n in self.nodes() if n.name]
            assert node is not None, f"nothing in the window matches {kw}; it shows {seen}"
        return node

    def texts(self, root=None):
        return [n.name for n in self.nodes(root) if n.getRoleName() == "label" and n.name]

    def sensitive(self, node):
        return node.getState().contains(self.pyatspi.STATE_SENSITIVE)

    def click(self, node):
        """Press a button as a person would with the keyboard: its default action."""
        try:
            action = node.queryAction()
        except NotImplementedError:
            action = None
        if action is None or action.nActions == 0:
            self.mouse_click(node)
            return
        for i in range(action.nActions):
            if action.getName(i) in ("click", "activate", "press"):
                action.doAction(i)
                return
        action.doAction(0)

    def on_screen(self, node):
        ext = node.queryComponent().getExtents(self.pyatspi.WINDOW_COORDS)
        return 0 <= ext.y and ext.y + ext.height <= 600 and ext.height > 0

    def mouse_click(self, node):
        """A click in the middle of @node, on the main window (XTest)."""
        ext = node.queryComponent().getExtents(self.pyatspi.WINDOW_COORDS)
        x, y = ext.x + ext.width // 2, ext.y + ext.height // 2
        win = subprocess.run(["xdotool", "search", "--onlyvisible", "--pid", str(self.proc.pid),
                              "--name", self.title], capture_output=True, text=True).stdout.split()
        if win:
            subprocess.run(["xdotool", "mousemove", "--window", win[0], str(x), str(y),
                            "click", "1"], check=True)
        else:
            subprocess.run(["xdotool", "mousemove", str(x), str(y), "click", "1"], check=True)

    def tab_to(self, node):
        focused = self.pyatspi.STATE_FOCUSED
        for _ in range(80):
            if node.getState().contains(focused):
                return
            self.keys("Tab")
            self.wait(lambda: node.getState().contains(focused), 1)
        assert node.getState().contains(focused), f"{node.name} took no focus"

    def choose(self, node):
        """Choose a radio choice with the keyboard: Tab to it, then space."""
        self.tab_to(node)
        self.keys("space")
        assert self.wait(lambda: node.getState().contains(self.pyatspi.STATE_CHECKED), 5), \
            f"{node.name} not chosen"

    def press(self, node):
        """Press a button with the keyboard (after what was typed, in the X event order)."""
        self.tab_to(node)
        self.keys("space")

    def type_into(self, node, text):
        """Focus an entry (its focus action or a click on it) and type through XTest."""
        focused = self.pyatspi.STATE_FOCUSED
        if not node.getState().contains(focused):
            try:
                node.queryComponent().grabFocus()
            except Exception:
                pass
        if not node.getState().contains(focused) and self.on_screen(node):
            self.mouse_click(node)
            self.wait(lambda: node.getState().contains(focused), 2)
        # Below the visible part of the page: Tab to it, the page scrolls along.
        self.tab_to(node)
        assert self.wait(lambda: node.getState().contains(focused), 5), "the entry took no focus"
        # XTest types a character outside the keymap by remapping a spare key: slowly, and
        # checked (a password entry shows no text: its length is checked then).
        for _ in range(3):
            subprocess.run(["xdotool", "key", "--clearmodifiers", "ctrl+a", "BackSpace"],
                           check=True)
            if text.isascii():
                subprocess.run(["xdotool", "type", "--delay", "20", text], check=True)
            else:
                for i, ch in enumerate(text):
                    subprocess.run(["xdotool", "type", "--delay", "100", ch], check=True)
                    self.wait(lambda: self.has_text(node, text[:i + 1]), 1)
            if self.wait(lambda: self.has_text(node, text), 3):
                return
        assert self.has_text(node, text), f"typing {text!r} did not arrive"

    def has_text(self, node, text):
        """Does the entry hold @text? GTK 4.8 exposes no entry's text over AT-SPI (and its
        GetText on one can abort it), only a password entry's length: what follows a typing
        goes through the X keyboard too, in order, so a plain entry is not checked."""
        if node.getRoleName() != "password text":
            return True
        return node.queryText().characterCount == len(text)

    def focus_window(self, title):
        """Put the pointer (and so, with no window manager, the keyboard) on the window
        titled @title."""
        ids = subprocess.run(["xdotool", "search", "--sync", "--onlyvisible", "--name", title],
                             capture_output=True, text=True, timeout=15).stdout.split()
        assert ids, f"no window titled {title}"
        subprocess.run(["xdotool", "mousemove", "--window", ids[-1], "40", "40"], check=True)
        subprocess.run(["xdotool", "windowfocus", "--sync", ids[-1]], check=False, timeout=10)
        return ids[-1]

    def keys(self, *keys):
        subprocess.run(["xdotool", "key", "--clearmodifiers", *keys], check=True)

    def type_keys(self, text):
        subprocess.run(["xdotool", "type", "--delay", "20", text], check=True)

    def attach_materials(self, tmp_dir, kinds, shot=None):
        """Attach a PNG for each of @kinds on the order page, as a person would: the next
        "选择文件：" button, the file chooser, its location typed. @shot names the chooser's
        screenshot."""
        from test_materials import make_png
        visible, focused = self.pyatspi.STATE_VISIBLE, self.pyatspi.STATE_FOCUSED
        for i, kind in enumerate(kinds):
            path = os.path.join(str(tmp_dir), f"{kind}.png")
            with open(path, "wb") as f:
                f.write(make_png(3 + i, 2))
            pending = self.wait(lambda: [n for n in self.nodes() if n.getRoleName() ==
                                         "push button" and (n.name or "").startswith("选择文件：")])
            assert pending, "no material left to choose"
            before = len([t for t in self.texts() if "已上传" in t])
            self.click(pending[0])
            chooser = self.wait(lambda: next((n for n in self.nodes() if n.name == "选择扫描件或照片"
                                              and n.getState().contains(visible)), None))
            assert chooser is not None, "no file chooser"
            self.focus_window("选择扫描件或照片")
            location = None
            for _ in range(5):
                self.keys("ctrl+l")
                location = self.wait(lambda: next((n for n in self.nodes(chooser)
                                                   if n.getRoleName() == "text"
                                                   and n.getState().contains(focused)), None), 3)
                if location is not None:
                    break
            assert location is not None, "the file chooser shows no location entry"
            self.type_keys(path)
            if i == 0 and shot:
                self.screenshot(shot)
            # The first Return may only take the location's completion.
            for _ in range(3):
                self.keys("Return")
                if self.wait(lambda: not chooser.getState().contains(visible), 3):
                    break
            assert not chooser.getState().contains(visible), "the chooser stays"
            assert self.wait(lambda: len([t for t in self.texts() if "已上传" in t]) > before), \
                f"{kind} was not attached: {[t for t in self.texts() if '未被接受' in t]}"

    def screenshot(self, name):
        """The screen as PNG into the test's output directory; fails on a blank screen or a
        tree without a labelled widget."""
        path = os.path.join(self.out_dir, f"{name}.png")
        subprocess.run(["import", "-window", "root", path], check=True, timeout=30)
        colours = subprocess.run(["convert", path, "-format", "%k", "info:"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        assert int(colours) > 1, f"the screenshot {path} is a single colour"
        assert self.texts(), "the accessible tree has no labelled widget"
        return path

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def window_factory(bus, daemon, request):
    made = []

    def make(lang="C", args=()):
        w = Window(bus, os.path.join(SCREENSHOT_DIR, request.node.name), lang=lang, args=args)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()
