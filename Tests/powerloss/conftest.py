"""Prints one line per power-loss round at the end of the run, then totals per io path x flush x model."""
import re


def pytest_terminal_summary(terminalreporter):
    try:
        from test_powerloss import RESULTS
    except ImportError:
        return
    if not RESULTS:
        return
    terminalreporter.section("power loss rounds")
    totals = {}
    for line in RESULTS:
        terminalreporter.write_line(line)
        m = re.search(r"io=(\S+) flush=(\S+) metadata=(\S+) .* acked=(\d+) found=(\d+) lost=(\d+)", line)
        if m:
            t = totals.setdefault(m.group(1, 2, 3), [0, 0, 0, 0, 0])
            t[0] += 1
            for i in range(3):
                t[i + 1] += int(m.group(4 + i))
            t[4] += "PROBLEMS" in line
    terminalreporter.section("power loss totals")
    for (io, flush, model), (rounds, acked, found, lost, bad) in sorted(totals.items()):
        terminalreporter.write_line("io=%-8s flush=%-11s metadata=%-7s rounds=%d acked=%d found=%d lost=%d rounds_with_problems=%d" % (
            io, flush, model, rounds, acked, found, lost, bad))
