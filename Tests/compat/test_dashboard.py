"""The dashboard people look at: real mqnamesrv/mqbroker processes, messages sent with mqadmin, a consumer group
made by the dashboard's own reset form. Headless Chromium renders every page after its scripts ran: the DOM must
show the real data (brokers, topics with offsets, the group's lag, a message found by key and by id with its body
escaped), the live TPS chart must be drawn (its series colour over many pixels), writes are refused unless enabled.
DASHBOARD_SHOTS=<dir> keeps the screenshots (the README's comes from there)."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from PIL import Image

BUILD = os.environ.get("BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", ".build", "debug"))
SERIES_BLUE = (0x1F, 0x77, 0xB4)


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed (scripts/setup.sh installs it)")
    pytest.skip("chromium is not installed here; scripts/setup.sh installs it")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def near(pixel, color, tolerance=40):
    return all(abs(int(a) - int(b)) <= tolerance for a, b in zip(pixel[:3], color))


class Cluster:
    """A NameServer, a broker and two dashboards (writes enabled, and not); all stopped by close()."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="compat-dashboard-")
        self.env = dict(os.environ, MQ_EXIT_WITH_PARENT=str(os.getpid()))
        self.processes = []
        with open(os.path.join(self.dir, "namesrv.properties"), "w") as f:
            f.write("listenPort=%d\n" % free_port())
        line = self.start(["mqnamesrv", "-c", os.path.join(self.dir, "namesrv.properties"), "--logs-dir", self.dir + "/nslogs"],
                          "boot success")
        self.namesrv = "127.0.0.1:" + line.rsplit("=", 1)[1].strip()
        self.broker = "127.0.0.1:%d" % free_port()
        with open(os.path.join(self.dir, "broker.conf"), "w") as f:
            f.write("\n".join(["brokerName=broker-d", "brokerIP1=127.0.0.1", "listenPort=" + self.broker.split(":")[1],
                               "haListenPort=%d" % free_port(), "namesrvAddr=" + self.namesrv, "storePathRootDir=" + self.dir + "/store",
                               "mappedFileSizeCommitLog=16777216", ""]))
        self.start(["mqbroker", "-c", os.path.join(self.dir, "broker.conf")], "boot success")
        self.url = self.start_dashboard(["--enable-writes"])
        self.read_only_url = self.start_dashboard([])

    def start(self, argv, needle, seconds=30):
        process = subprocess.Popen([os.path.join(BUILD, argv[0])] + argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, env=self.env)
        self.processes.append(process)
        deadline = time.time() + seconds
        seen = []
        while time.time() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            if needle in line:
                return line
        raise AssertionError("%s did not print %r: %s" % (argv[0], needle, "".join(seen)))

    def start_dashboard(self, extra):
        line = self.start(["mqdashboard", "-n", self.namesrv, "--port", "0"] + extra, "serving http://")
        return line.split("serving ", 1)[1].split(" ", 1)[0].rstrip("/")

    def mqadmin(self, *args):
        run = subprocess.run([os.path.join(BUILD, "mqadmin")] + list(args) + ["-n", self.namesrv], capture_output=True, text=True,
                             timeout=60)
        assert run.returncode == 0, run.stdout + run.stderr
        return run.stdout

    def close(self):
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def cluster():
    c = Cluster()
    yield c
    c.close()


def post(url, fields):
    data = urllib.parse.urlencode(fields).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST"), timeout=30) as response:
        return response.status, response.read().decode()


def render(url, shot=None):
    """The DOM after the page's scripts ran for a few (virtual) seconds; with `shot`, a screenshot instead."""
    argv = [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,1000",
            "--virtual-time-budget=5000"]
    argv += ["--screenshot=" + shot] if shot else ["--dump-dom"]
    run = subprocess.run(argv + [url], capture_output=True, text=True, timeout=120)
    if shot:
        assert os.path.exists(shot), "chromium wrote no screenshot: " + run.stderr[-2000:]
    return run.stdout


def eventually(condition, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def test_every_dashboard_page_renders_real_data_in_chromium(cluster):
    body = "<b>bold</b> body & more"
    sent = cluster.mqadmin("sendMessage", "-t", "DashTopic", "-p", body, "-k", "dashkey1", "-c", "TagD")
    offset_id = sent.strip().splitlines()[-1].split()[-1]
    for index in range(5):
        cluster.mqadmin("sendMessage", "-t", "DashTopic", "-p", "plain %d" % index, "-k", "k%d" % index)
    # The group exists once it has committed offsets: the dashboard's reset form commits them (earliest: lag 6).
    status, _ = post(cluster.url + "/groups/reset", {"group": "DashGroup", "topic": "DashTopic", "to": "earliest"})
    assert status == 200

    shots = os.environ.get("DASHBOARD_SHOTS") or tempfile.mkdtemp(prefix="dashboard-shots-")
    os.makedirs(shots, exist_ok=True)
    # Cluster: the broker with its role and today's puts; the chart script ran and drew the TPS series.
    assert eventually(lambda: "samples)" in render(cluster.url + "/"))
    dom = render(cluster.url + "/")
    assert cluster.broker in dom and "ASYNC_MASTER" in dom and "DefaultCluster" in dom and "broker-d" in dom, dom
    assert "samples)" in dom, "the live chart's script fetched /api/tps"
    shot = os.path.join(shots, "dashboard-cluster.png")
    render(cluster.url + "/", shot)
    image = Image.open(shot).convert("RGB")
    raw = image.tobytes()
    blue = sum(1 for i in range(0, len(raw), 3) if near(raw[i:i + 3], SERIES_BLUE))
    assert blue > 300, "the TPS chart's put series is drawn: %d pixels" % blue

    # Topics: queues with their offsets and the messages held; create then delete one through the forms.
    dom = render(cluster.url + "/topics")
    assert "DashTopic" in dom and "broker-d/0: 0–" in dom and ">6</td>" in dom, dom
    post(cluster.url + "/topics", {"topic": "MadeByDashboard", "queues": "2", "cluster": "DefaultCluster"})
    assert eventually(lambda: "MadeByDashboard" in render(cluster.url + "/topics"))
    post(cluster.url + "/topics/delete", {"topic": "MadeByDashboard"})
    assert eventually(lambda: "MadeByDashboard" not in render(cluster.url + "/topics"))
    render(cluster.url + "/topics", os.path.join(shots, "dashboard-topics.png"))

    # Consumer groups: the group, its lag per queue and in total.
    dom = render(cluster.url + "/groups")
    assert "DashGroup" in dom and 'class="total-lag">6<' in dom, dom
    render(cluster.url + "/groups", os.path.join(shots, "dashboard-groups.png"))

    # Messages: found by key and by id; the body is shown as text, never as markup.
    dom = render(cluster.url + "/messages?topic=DashTopic&key=dashkey1")
    assert "&lt;b&gt;bold&lt;/b&gt; body &amp; more" in dom and "<b>bold</b>" not in dom, dom
    assert offset_id in dom and "TagD" in dom
    shot = os.path.join(shots, "dashboard-messages.png")
    render(cluster.url + "/messages?topic=DashTopic&key=dashkey1", shot)
    raw = Image.open(shot).convert("RGB").tobytes()
    drawn = sum(1 for i in range(0, len(raw), 3) if not near(raw[i:i + 3], (255, 255, 255), 6))
    assert drawn > 20000, "the message page is nearly blank: %d drawn pixels" % drawn
    dom = render(cluster.url + "/messages?id=" + offset_id)
    assert "&lt;b&gt;bold&lt;/b&gt; body &amp; more" in dom and "DashTopic" in dom, dom

    # A dashboard started without --enable-writes refuses every write.
    for path, fields in (("/topics", {"topic": "Nope", "queues": "1"}), ("/topics/delete", {"topic": "DashTopic"}),
                         ("/groups/reset", {"group": "DashGroup", "topic": "DashTopic", "to": "latest"})):
        with pytest.raises(urllib.error.HTTPError) as refused:
            post(cluster.read_only_url + path, fields)
        assert refused.value.code == 403
    assert "DashTopic" in render(cluster.url + "/topics")
