"""
test_office_sample.py — the document is the gateway developer's only guide (issue 19): the
§8 sample worker of dbus/office-protocol.md, extracted from the document as it stands, runs
as the real SMS gateway of a real daemon. Its key is installed while the daemon runs
(`certseal-office keygen --install`); it serves the Submit code of a `new` application and
sends exactly the text the §4b template table gives, with the code task.secret returned —
the code the applicant then confirms.
"""

import json
import os
import re
import subprocess
import sys

import pytest

from conftest import BUILD_DIR, SOURCE_DIR, Client, Daemon, short_tmpdir
from flow_helpers import Application, Office
from office_helpers import OfficeEnv, Worker, run_office_json, serving_office

DOC = os.path.join(SOURCE_DIR, "dbus", "office-protocol.md")


def doc_text():
    with open(DOC, encoding="utf-8") as f:
        return f.read()


def sample_source():
    """The ```python block of §8."""
    section = doc_text().split("\n## 8.", 1)[1]
    m = re.search(r"```python\n(.*?)```", section, re.S)
    assert m, "§8 has no python block"
    return m.group(1)


def template_table():
    """{(template, has secret): (params, text)} from the §4b table."""
    section = doc_text().split("\n## 4b.", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[0].startswith("`"):
            continue
        name = cells[0].strip("`")
        params = re.findall(r"`(\w+)`", re.sub(r"\(.*?\)", "", cells[2]))
        rows[(name, cells[1].startswith("yes"))] = (params, cells[4])
    return rows


def test_template_table_names_every_template_the_daemon_sends():
    """Every template name the daemon and the flows send is in the table, and no other."""
    names = set()
    for sub in ("daemon", "plugins"):
        for root, _, files in os.walk(os.path.join(SOURCE_DIR, sub)):
            for f in files:
                if f.endswith(".c"):
                    with open(os.path.join(root, f), encoding="utf-8") as src:
                        text = src.read()
                    names |= set(re.findall(r'cs_tasks_send_sms_in_txn\([^;]*?"(\w+)"', text, re.S))
                    names |= set(re.findall(r'cs_step_send_notice\([^;]*?"(\w+)"', text, re.S))
    table = template_table()
    assert names and names == {name for name, _ in table}, (names, table.keys())
    for (name, secret), (params, text) in table.items():
        assert ("${code}" in text or "${password}" in text) == secret, name
        for p in params:
            if p not in ("purpose", "threshold"):  # for the gateway, not in the text
                assert "${%s}" % p in text, (name, p)


@pytest.fixture(scope="module")
def env():
    return OfficeEnv(short_tmpdir("cssample-"), {"audrey": "auditor", "gw": "gateway"},
                     plugin_dir=os.path.join(BUILD_DIR, "plugins"))


@pytest.fixture(scope="module")
def daemon(bus, env):
    yield from serving_office(Daemon(bus, config=env.config))


def test_the_documents_sample_serves_sms_with_the_template_text(daemon, env, bus, tmp_dir):
    # A gateway key installed while the daemon runs.
    key = os.path.join(tmp_dir, "smsgw.key")
    rc, out = run_office_json(daemon.state_dir, "keygen", "--output", key, "--user", "smsgw",
                              "--roles", "gateway", "--install")
    assert rc == 0, out
    sample = os.path.join(tmp_dir, "sms_gateway.py")
    with open(sample, "w", encoding="utf-8") as f:
        f.write(sample_source())
    worker = subprocess.Popen([sys.executable, sample, daemon.state_dir, key],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              encoding="utf-8")
    client = Client(bus)
    try:
        # The sample says when its READY was accepted (the first HEARTBEAT's timing).
        line = worker.stderr.readline()
        assert line.startswith("READY for sms"), line + worker.stderr.read()
        app = Application(client, Office(daemon.state_dir), "org")
        app.confirm()
        app.attach_all()
        app.call("Submit")
        assert app.state == "sms_pending"
        sent = json.loads(worker.stdout.readline())
        assert sent["to"] == app.handler_phone
        params, text = template_table()[("sms_code", True)]
        assert params == ["order"]
        m = re.fullmatch(re.escape(text).replace(r"\$\{code\}", r"(\d{6})")
                         .replace(r"\$\{order\}", re.escape(app.id)), sent["text"])
        assert m, (sent["text"], text)
        # The code in the text is the one the daemon made: the applicant confirms with it.
        app.verify(m.group(1))
        assert app.state != "sms_pending"
        # The gateway did the work, not the sandbox.
        rc, outbox = run_office_json(daemon.state_dir, "sms", "outbox")
        assert rc == 0 and not [m for m in outbox if app.id in m.get("text", "")], outbox
        audrey = Worker(daemon.state_dir, env.keys["audrey"])
        tasks = [t for t in audrey.ok("tasks.list", {"service": "sms"}) if t["order_id"] == app.id]
        assert [(t["state"], t.get("lease_user")) for t in tasks] == [("done", "smsgw")], tasks
        assert tasks[0]["result"] == {}
        audrey.close()
    finally:
        worker.kill()
        worker.wait()
        client.close()


def test_an_sms_task_and_its_secret_match_the_schemas(daemon, env, bus):
    """The same Submit served by a schema-checked worker: the sms TASK with secret_ref and
    task.secret's result as dbus/office-schema says."""
    import office_schema
    office_schema.SEEN.clear()
    gw = Worker(daemon.state_dir, env.keys["gw"])
    gw.send("READY", {"service": "sms"})
    assert gw.recv(skip_heartbeats=False)[0] == "HEARTBEAT"
    client = Client(bus)
    try:
        app = Application(client, Office(daemon.state_dir), "org")
        app.confirm()
        app.attach_all()
        app.call("Submit")
        verb, task = gw.recv()
        assert verb == "TASK" and task["service"] == "sms", task
        p = task["payload"]
        assert p["template"] == "sms_code" and p["params"] == {"order": app.id}
        assert isinstance(p["secret_ref"], int)
        code = gw.ok("task.secret", {"lease": task["lease"]})["secret"]
        gw.send("DONE", {"lease": task["lease"], "result": {}})
        assert gw.recv()[0] == "RESULT"
        app.verify(code)
        assert app.state != "sms_pending"
        assert office_schema.SEEN["received", "TASK"] and office_schema.SEEN["result", "task.secret"]
    finally:
        gw.close()
        client.close()


def test_a_gateway_restarting_mid_task_sends_no_message_twice(daemon, env, bus):
    """The sandbox once took a task whenever no worker was READY — after a worker restart
    the same code went out twice, once from each. Now a service a worker has been READY for
    waits for a worker until the daemon restarts."""
    import time
    client = Client(bus)
    first = Worker(daemon.state_dir, env.keys["gw"])
    try:
        first.send("READY", {"service": "sms"})
        assert first.recv(skip_heartbeats=False)[0] == "HEARTBEAT"
        app = Application(client, Office(daemon.state_dir), "org")
        app.confirm()
        app.attach_all()
        app.call("Submit")
        verb, task = first.recv()
        assert verb == "TASK" and task["payload"]["params"]["order"] == app.id
        first.close()  # the gateway dies before delivering
        audrey = Worker(daemon.state_dir, env.keys["audrey"])

        def state():
            return [t["state"] for t in audrey.ok("tasks.list", {"service": "sms"})
                    if t["task_id"] == task["task_id"]][0]
        while state() == "leased":  # until the daemon gives up on the silent connection
            time.sleep(0.05)
        assert state() == "queued"
        again = Worker(daemon.state_dir, env.keys["gw"])
        again.send("READY", {"service": "sms"})
        verb, retry = again.recv()
        assert verb == "TASK" and retry["task_id"] == task["task_id"], retry
        code = again.ok("task.secret", {"lease": retry["lease"]})["secret"]
        again.send("DONE", {"lease": retry["lease"], "result": {}})
        assert again.recv()[0] == "RESULT"
        again.close()
        app.verify(code)
        rc, outbox = run_office_json(daemon.state_dir, "sms", "outbox")
        assert rc == 0 and not [m for m in outbox if app.id in m.get("text", "")], outbox
        assert state() == "done"
        audrey.close()
    finally:
        client.close()
