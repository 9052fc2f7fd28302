#!/usr/bin/env python3
"""Alternating A/B/C... benchmark runner: each round runs every command once,
in turn, so machine noise lands on all of them alike.

    run.py OUT.json RUNS name1 'cmd1' name2 'cmd2' ...

Records wall time (perf_counter around the child) and the child's own peak
RSS (wait4); commands containing a pipe run under bash, and their RSS is not
recorded. One warm-up round is run first and discarded.

BENCH_SETTLE, if set, is a command run (untimed) before every timed one:
`sync`, so that the dirty pages one command leaves (an output file not
synced) are not written back during the next one's time."""
import json
import os
import shlex
import statistics
import sys
import time


def run_once(cmd):
    shell = any(c in cmd for c in "|>&")
    argv = ["bash", "-c", cmd] if shell else shlex.split(cmd)
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            if not shell:
                os.dup2(devnull, 1)
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    dt = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"command failed ({os.waitstatus_to_exitcode(status)}): {cmd}")
    return dt, (None if shell else usage.ru_maxrss)


def main():
    out, runs, rest = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    cmds = list(zip(rest[0::2], rest[1::2]))
    times = {n: [] for n, _ in cmds}
    rss = {n: 0 for n, _ in cmds}
    settle = os.environ.get("BENCH_SETTLE")
    for rnd in range(runs + 1):
        for name, cmd in cmds:
            if settle:
                run_once(settle)
            dt, r = run_once(cmd)
            if rnd == 0:
                continue  # warm-up
            times[name].append(dt)
            if r is not None:
                rss[name] = max(rss[name], r)
    result = {
        "results": [
            {
                "command": n,
                "median": statistics.median(times[n]),
                "min": min(times[n]),
                "stddev": statistics.pstdev(times[n]),
                "times": times[n],
                "max_rss_kib": rss[n] or None,
            }
            for n, _ in cmds
        ]
    }
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    for r in result["results"]:
        print(f"  {r['command']:<18} median {r['median']:.3f}s  min {r['min']:.3f}s  sd {r['stddev']:.3f}")


main()
