"""The bench report people look at: a real (short) `bench matrix` run against local mqnamesrv/mqbroker
processes writes report.html; headless Chromium renders it; the screenshot must show the charts with
data (series colours drawn over many pixels), not a blank page."""
import os
import shutil
import subprocess
import tempfile

import pytest
from PIL import Image

from test_cpp_client import BUILD

SERIES_BLUE = (0x1F, 0x77, 0xB4)


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed (scripts/setup.sh installs it)")
    pytest.skip("chromium is not installed here; scripts/setup.sh installs it")


def near(pixel, color, tolerance=40):
    return all(abs(int(a) - int(b)) <= tolerance for a, b in zip(pixel[:3], color))


def test_matrix_report_renders_charts_with_data():
    browser = chromium()
    work = tempfile.mkdtemp(prefix="report-")
    try:
        report = os.path.join(work, "report.html")
        run = subprocess.run([os.path.join(BUILD, "bench"), "matrix", "--sizes", "128", "--threads", "1,4", "--flush", "async",
                              "--io", "mmap", "--replication", "none,sync", "--duration", "2", "--report", report],
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "cell 4/4" in run.stdout and "Report: " + report in run.stdout
        html = open(report).read()
        # Throughput and RT charts, and with a replicated mode the lag p99 in bytes and in ms.
        assert html.count("<svg") == 4 and "<polyline" in html, "every chart has a drawn line"
        # The replication mode is in the legends and in every table; the lag has its own table.
        assert "ASYNC_FLUSH/mmap, no slave" in html and "ASYNC_FLUSH/mmap, SYNC_MASTER+SLAVE" in html
        assert html.count("<th>replication</th>") == 3 and "<h2>Replication lag</h2>" in html
        assert "lag p99 ms" in run.stdout and "SYNC_MASTER+SLAVE" in run.stdout, "the printed table shows the mode and lag"
        assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", ""), "self-contained"
        # Every answer counted as what it is: the cells table has a column for non-OK answers, and a status
        # table gives each cell's sends by status (a healthy local broker answers SEND_OK to every one).
        assert "<th>non-OK answers</th>" in html and "<h2>Send status</h2>" in html
        for status in ("SEND_OK", "FLUSH_DISK_TIMEOUT", "FLUSH_SLAVE_TIMEOUT", "SLAVE_NOT_AVAILABLE", "RESPONSE_FAILED",
                       "SEND_FAILED"):
            assert "<th>%s</th>" % status in html, status
        assert "non-OK" in run.stdout, "the printed table has the non-OK column"

        shot = os.path.join(work, "shot.png")
        subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--window-size=1400,1600", "--screenshot=" + shot, "file://" + report],
                       capture_output=True, text=True, timeout=120)
        assert os.path.exists(shot), "chromium wrote no screenshot"
        image = Image.open(shot).convert("RGB")
        raw = image.tobytes()
        pixels = [tuple(raw[i:i + 3]) for i in range(0, len(raw), 3)]
        blue = sum(1 for p in pixels if near(p, SERIES_BLUE))
        non_background = sum(1 for p in pixels if not near(p, (0xFA, 0xFA, 0xFA), 6) and not near(p, (255, 255, 255), 6))
        # Four charts; no slave is blue in the first two, a 3-px line with markers: well over 1500 blue pixels.
        assert blue > 1500, "series pixels: %d" % blue
        assert non_background > 20000, "the page is nearly blank: %d drawn pixels" % non_background
        # The charts sit where the HTML puts them: blue appears in the upper and lower half of the drawn area.
        rows = [i // image.width for i, p in enumerate(pixels) if near(p, SERIES_BLUE)]
        assert max(rows) - min(rows) > 300, "both charts are drawn (blue spans %d rows)" % (max(rows) - min(rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)
