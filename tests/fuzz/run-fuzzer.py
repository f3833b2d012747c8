#!/usr/bin/python3
"""Run a libFuzzer binary for a bounded time from a seed corpus and report TAP.

usage: run-fuzzer.py BINARY SEED_DIR SECONDS [MAX_LEN]
The corpus grows in a temporary copy; a crash, leak or timeout is one failing case.
MAX_LEN (default 4096) bounds the inputs libFuzzer makes; the seeds may be longer."""
import os
import shutil
import subprocess
import sys
import tempfile

binary, seeds, seconds = sys.argv[1], sys.argv[2], sys.argv[3]
max_len = sys.argv[4] if len(sys.argv) > 4 else "4096"
name = os.path.basename(binary)
with tempfile.TemporaryDirectory(prefix="csfuzz-") as tmp:
    corpus = os.path.join(tmp, "corpus")
    shutil.copytree(seeds, corpus)
    proc = subprocess.run([binary, f"-max_total_time={seconds}", "-rss_limit_mb=2048",
                           f"-max_len={max_len}", "-print_final_stats=1", f"-artifact_prefix={tmp}/",
                           corpus], capture_output=True, text=True)
    runs = [l for l in proc.stderr.splitlines() if l.startswith("stat::number_of_executed_units")]
    print("1..1")
    if proc.returncode == 0:
        print(f"ok 1 - {name} ({runs[-1].split(':')[-1].strip() if runs else '?'} inputs)")
    else:
        print(f"not ok 1 - {name} exited {proc.returncode}")
        print("\n".join("# " + l for l in proc.stderr.splitlines()[-40:]))
sys.exit(0 if proc.returncode == 0 else 1)
