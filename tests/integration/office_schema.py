"""
office_schema.py — the JSON Schemas of dbus/office-schema/, applied to CSO1 traffic.

office_helpers.Worker checks every message it sends and receives with these, so every
integration test that talks CSO1 also checks that the document's schemas match the wire;
test_office_schema.py exercises every verb and method on purpose.
"""

import collections
import json
import os

import jsonschema

from conftest import SOURCE_DIR

SCHEMA_DIR = os.path.join(SOURCE_DIR, "dbus", "office-schema")
VERB_FILES = {"READY": "ready.json", "DONE": "done.json", "FAIL": "fail.json",
              "HEARTBEAT": "heartbeat.json", "CALL": "call.json", "TASK": "task.json",
              "RESULT": "result.json", "ERROR": "error.json"}
SENT_BY_WORKER = {"READY", "DONE", "FAIL", "HEARTBEAT", "CALL"}
SENT_BY_DAEMON = {"TASK", "RESULT", "ERROR", "HEARTBEAT"}

# What was checked, by direction and verb (and CALL method): the schema test asserts that
# every verb and method was seen.
SEEN = collections.Counter()


def _load():
    store = {}
    for name in sorted(os.listdir(SCHEMA_DIR)):
        if name.endswith(".json"):
            with open(os.path.join(SCHEMA_DIR, name)) as f:
                schema = json.load(f)
            jsonschema.Draft202012Validator.check_schema(schema)
            store[schema["$id"]] = schema
            store[name] = schema
    return store


STORE = _load()


def _validator(schema):
    resolver = jsonschema.RefResolver(base_uri=schema["$id"], referrer=schema, store=STORE)
    return jsonschema.Draft202012Validator(schema, resolver=resolver)


VALIDATORS = {verb: _validator(STORE[name]) for verb, name in VERB_FILES.items()}
METHODS = STORE["methods.json"]


def _check(validator, instance, what):
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        raise AssertionError(f"{what} does not match dbus/office-schema: "
                             f"{'/'.join(map(str, e.path)) or '(body)'}: {e.message}\n"
                             f"{json.dumps(instance, ensure_ascii=False)[:2000]}")


def check_sent(verb, body):
    assert verb in SENT_BY_WORKER, f"{verb} is not a worker's verb"
    SEEN["sent", verb] += 1
    if body is not None:
        _check(VALIDATORS[verb], body, f"the {verb} sent")
        if verb == "CALL":
            SEEN["call", body.get("method")] += 1


def check_received(verb, body):
    assert verb in SENT_BY_DAEMON, f"the daemon sent {verb}"
    SEEN["received", verb] += 1
    _check(VALIDATORS[verb], body, f"the {verb} received")


def check_result(method, result):
    """A CALL's RESULT .result against methods.json#/$defs/<method>."""
    name = method.replace(".", "_")
    assert name in METHODS["$defs"], f"methods.json has no schema for {method}"
    SEEN["result", method] += 1
    schema = {"$schema": METHODS["$schema"], "$id": METHODS["$id"],
              "$ref": f"#/$defs/{name}", "$defs": METHODS["$defs"]}
    _check(_validator(schema), result, f"the result of {method}")


def check_event(body):
    SEEN["event", "order"] += 1
    _check(_validator(STORE["event.json"]), body, "the event")
