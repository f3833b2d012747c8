"""
The drawing module (docs/architecture.md, "Drawing"): certseald opens certseal-draw.so the
first time it draws, so an idle daemon maps no pango; a module that cannot be opened fails
each drawing with an error naming its file, and the daemon runs on.
"""

import os

import dbus
import pytest

from conftest import Client, write_config
from test_forms import download


def mapped(pid, name):
    with open(f"/proc/{pid}/maps") as f:
        return name in f.read()


def test_drawing_module_opened_on_first_drawing(make_daemon, bus):
    d = make_daemon().start()
    c = Client(bus)
    try:
        assert c.manager("Plugins")  # the daemon answers, and has drawn nothing yet
        assert not mapped(d.pid, "certseal-draw.so")
        assert not mapped(d.pid, "libpango")
        assert download(c, "seal_form_person").startswith(b"%PDF-")
        assert mapped(d.pid, "certseal-draw.so")
        assert mapped(d.pid, "libpango")
    finally:
        c.close()


def test_missing_drawing_module_fails_the_drawing_naming_it(make_daemon, bus, tmp_dir):
    missing = os.path.join(tmp_dir, "no-such-draw.so")
    conf = write_config(os.path.join(tmp_dir, "nodraw.conf"), daemon={"draw_module": missing})
    make_daemon(config=conf).start()
    c = Client(bus)
    try:
        for _ in range(2):  # the failure is remembered and told the same way
            with pytest.raises(dbus.exceptions.DBusException) as e:
                download(c, "seal_form_org")
            assert e.value.get_dbus_name() == "org.certseal.Error.Internal"
            assert f"drawing module {missing}: cannot stat" in e.value.get_dbus_message()
        assert c.manager("Plugins")  # and runs on
    finally:
        c.close()
