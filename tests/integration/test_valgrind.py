"""
No leaks on the daemon's main paths: certseald runs under valgrind's memcheck while a
client creates, updates, confirms and cancels orders, lists them and reads the Manager,
then stops on SIGTERM. Any definite leak or memory error makes valgrind exit 99.

valgrind cannot run an AddressSanitizer build; the ASan tree covers the same paths with
LeakSanitizer instead, so this test runs in the plain build only.
"""

import json
import os
import shutil

import pytest

from conftest import BUILD_DIR, CERTSEALD, ORG_FIELDS, PERSON_FIELDS, Client, Daemon, run_cli


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
                f"--log-file={self.vg_log}", *super().command(*args)]


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
        c.close()
        rc = d.stop(timeout=60)
        with open(d.vg_log, encoding="utf-8") as f:
            report = f.read()
        assert rc == 0, f"certseald under valgrind exited {rc}:\n{report[-4000:]}"
        assert "definitely lost: 0 bytes" in report or "no leaks are possible" in report, \
            report[-4000:]
        assert "ERROR SUMMARY: 0 errors" in report, report[-4000:]
    finally:
        d.cleanup()
