#!/usr/bin/env python3
"""The include rule of daemon/ (docs/architecture.md, "Layers"), as a TAP test.

Each folder of daemon/ is a layer; the layers are totally ordered, lowest first:

    base < store < pki < keys < core < services < dbus, office < daemon/ itself

A file may include headers of its own layer and of the layers below it, never above; the
two fronts (dbus, office) never include each other; and the modules (a .c with its .h,
and its -private.h if any) include each other in no circle. Headers of the SDK (certseal/*.h) and of the build
(cs-build-config.h) belong to no layer and may be included anywhere.

It also checks that SQL stays in the store: no file outside daemon/store/ uses sqlite3.
"""
import os
import re
import sys

LAYERS = ["base", "store", "pki", "keys", "core", "services", "dbus", "office", "."]
RANK = {"base": 0, "store": 1, "pki": 2, "keys": 3, "core": 4, "services": 5,
        "dbus": 6, "office": 6, ".": 7}
FRONTS = {"dbus", "office"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def main():
    src = os.environ.get("CS_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..")
    daemon = os.path.join(src, "daemon")
    owner = {}  # header name -> layer
    files = []  # (layer, path)
    for layer in LAYERS:
        d = os.path.join(daemon, layer)
        for name in sorted(os.listdir(d)):
            if not name.endswith((".c", ".h")):
                continue
            files.append((layer, os.path.join(d, name)))
            if name.endswith(".h"):
                if name in owner:
                    raise SystemExit(f"Bail out! {name} is in {owner[name]} and in {layer}")
                owner[name] = layer
    unknown_dirs = [n for n in os.listdir(daemon)
                    if os.path.isdir(os.path.join(daemon, n))
                    and n not in LAYERS and n not in ("include", "vendors.d")]

    problems = []
    graph = {}  # module -> set of modules it includes
    sql = []
    for layer, path in files:
        text = open(path, encoding="utf-8").read()
        rel = os.path.relpath(path, src)
        module = module_of(os.path.basename(path))
        graph.setdefault(module, set())
        if layer != "store" and re.search(r"\bsqlite3\w*", text):
            sql.append(rel)
        for inc in INCLUDE.findall(text):
            if inc.startswith("certseal/") or inc == "cs-build-config.h":
                continue
            target = owner.get(inc)
            if target is None:
                problems.append(f"{rel}: includes {inc}, which is in no layer")
                continue
            other = module_of(inc)
            if other != module:
                graph[module].add(other)
            if RANK[target] > RANK[layer]:
                problems.append(f"{rel} ({layer}) includes {inc} from the higher layer {target}")
            elif layer in FRONTS and target in FRONTS and target != layer:
                problems.append(f"{rel}: the {layer} front includes {inc} of the {target} front")

    cycles = find_cycles(graph)
    print("1..4")
    report(1, "every daemon folder is a known layer", [f"daemon/{d}" for d in unknown_dirs])
    report(2, "includes go only downwards", problems)
    report(3, "no circle of includes between modules", cycles)
    report(4, "only daemon/store/ speaks SQL", sql)
    return 0 if not (unknown_dirs or problems or cycles or sql) else 1


def module_of(name):
    """A module is a .c with its .h; a "-private.h" header belongs to its module."""
    base = os.path.splitext(name)[0]
    return base[:-len("-private")] if base.endswith("-private") else base


def find_cycles(graph):
    out = []
    state = {}
    stack = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                out.append(" -> ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return out


def report(n, what, problems):
    if problems:
        print(f"not ok {n} - {what}")
        for p in problems:
            print(f"# {p}")
    else:
        print(f"ok {n} - {what}")


if __name__ == "__main__":
    sys.exit(main())
