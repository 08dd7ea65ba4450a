"""Times whole commands, each run as a new process, interleaved so that a slow spell of the
machine falls on all of them alike. Prints `label: median ms per process (min, p90)` for each.
Usage: bench-processes.py RUNS LABEL COMMAND [LABEL COMMAND...] (a command is split on spaces).
"""
import statistics
import subprocess
import sys
import time

runs = int(sys.argv[1])
pairs = list(zip(sys.argv[2::2], sys.argv[3::2]))
timings = {label: [] for label, _ in pairs}
for label, command in pairs:  # One run each first, unmeasured: the page cache warms.
    subprocess.run(command.split(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
for _ in range(runs):
    for label, command in pairs:
        began = time.perf_counter()
        subprocess.run(command.split(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        timings[label].append((time.perf_counter() - began) * 1000)
for label, _ in pairs:
    values = sorted(timings[label])
    print(f"{label}: {statistics.median(values):.1f} ms per process "
          f"(min {values[0]:.1f}, p90 {values[int(len(values) * 0.9)]:.1f})")
