#!/usr/bin/env python3
"""Runs jobs one after another and prints the rusage of each: CPU (user+sys of the process and
every descendant it waited for) in microseconds, as wait4(2) reports it (Node has no wait4, and GNU
time prints CPU only in 10 ms steps), and the peak RSS in KiB as GNU time reports it: a child forked
from this Python process would count Python's own pages in its peak, one forked by GNU time does not.
The CPU figure includes GNU time's own (~0.5 ms), on both sides of a comparison.

stdin: a JSON list of {"argv": [...], "env": {...}, "stdin": "..."}; stdout: a JSON list of
{"status": N, "cpu_us": N, "maxrss_kb": N, "stdout": "..."} in the same order."""
import json
import os
import subprocess
import sys
import tempfile

rss_file = tempfile.NamedTemporaryFile(prefix="bench-rss-", delete=False).name
results = []
for job in json.load(sys.stdin):
    p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss_file, *job["argv"]], env=job["env"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        p.stdin.write(job.get("stdin", "").encode())
        p.stdin.close()
    except BrokenPipeError:
        pass  # the Go plugins do not read stdin for VERSION
    out = p.stdout.read().decode(errors="replace")
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    with open(rss_file) as f:
        maxrss_kb = int(f.read().split()[-1])
    results.append({"status": p.returncode, "cpu_us": round((ru.ru_utime + ru.ru_stime) * 1e6), "maxrss_kb": maxrss_kb, "stdout": out[:2000]})
os.unlink(rss_file)
json.dump(results, sys.stdout)
