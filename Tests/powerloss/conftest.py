"""Prints one line per power-loss round at the end of the run (acknowledged / found / lost ...)."""


def pytest_terminal_summary(terminalreporter):
    try:
        from test_powerloss import RESULTS
    except ImportError:
        return
    if RESULTS:
        terminalreporter.section("power loss rounds")
        for line in RESULTS:
            terminalreporter.write_line(line)
