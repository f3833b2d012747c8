#!/usr/bin/python3
"""Run every suite in the given meson build directories and count the results.

Counts come from the runners themselves: each g_test program's TAP lines ("ok" /
"not ok", "# SKIP") and pytest's JUnit XML. A test program that failed without reporting
a failing case (a crash, a sanitizer abort between cases) counts as one failure. The last
line printed is exactly "N passed, N failed" (skips are counted on the line before).

usage: run-suites.py BUILD_DIR [BUILD_DIR…]
"""
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET


def count_tap(text):
    passed = failed = skipped = 0
    for line in text.splitlines():
        if re.match(r"^not ok\b", line):
            failed += 1
        elif re.match(r"^ok\b", line):
            if re.search(r"#\s*SKIP", line, re.IGNORECASE):
                skipped += 1
            else:
                passed += 1
    return passed, failed, skipped


def count_junit(path):
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    total = failures = errors = skipped = 0
    for s in suites:
        total += int(s.get("tests", 0))
        failures += int(s.get("failures", 0))
        errors += int(s.get("errors", 0))
        skipped += int(s.get("skipped", 0))
    failed = failures + errors
    return total - failed - skipped, failed, skipped


def run(build_dir):
    # The pytest suites, counted from their JUnit reports.
    junits = {name: os.path.join(build_dir, "tests", name + ".xml")
              for name in ("integration", "assistant")}
    for junit in junits.values():
        if os.path.exists(junit):
            os.remove(junit)
    print(f"=== {build_dir}: meson test", flush=True)
    proc = subprocess.run(
        ["meson", "test", "-C", build_dir, "--no-rebuild", "--print-errorlogs"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = proc.stdout
    # Keep the console readable: the per-program lines and the failures' logs.
    print("\n".join(l for l in output.splitlines() if l.strip()), flush=True)

    totals = [0, 0, 0]
    log = os.path.join(build_dir, "meson-logs", "testlog.json")
    seen = 0
    if os.path.exists(log):
        with open(log, encoding="utf-8") as f:
            for line in f:
                entry = json.loads(line)
                seen += 1
                result = entry.get("result")
                short = (entry.get("name") or "").split(" / ")[-1]
                if short in junits:
                    junit = junits[short]
                    counts = count_junit(junit) if os.path.exists(junit) else (0, 0, 0)
                else:
                    counts = count_tap(entry.get("stdout") or "")
                p, fl, sk = counts
                if result not in ("OK", "SKIP", "EXPECTEDFAIL") and fl == 0:
                    fl = 1  # failed without a failing case: crash, abort, timeout
                totals[0] += p
                totals[1] += fl
                totals[2] += sk
                print(f"    {build_dir}/{entry.get('name')}: {p} passed, {fl} failed, {sk} skipped")
    if seen == 0:
        totals[1] += 1
        print(f"    {build_dir}: no test ran")
    return totals


def main():
    dirs = sys.argv[1:] or ["build"]
    grand = [0, 0, 0]
    for d in dirs:
        t = run(d)
        grand = [a + b for a, b in zip(grand, t)]
    if grand[2]:
        print(f"{grand[2]} skipped (see above)")
    print(f"{grand[0]} passed, {grand[1]} failed")
    sys.exit(0 if grand[1] == 0 and grand[0] > 0 else 1)


if __name__ == "__main__":
    main()
