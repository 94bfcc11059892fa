"""A DLedger group of three mqbroker processes with the official C++ client (PyPI `rocketmq` 0.4.4): the leader is
killed (SIGKILL) or stopped (SIGSTOP) mid-stream; a new leader is elected, the client's sends resume on it, and
every message the client saw acknowledged is read back from the group (once, unless the client's own retry of a
send whose answer was lost stored it twice)."""
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest
from rocketmq.client import Producer

from test_cpp_client import BUILD, free_port, message, wait_for_line


class DLedgerGroup:
    """A NameServer and three DLedger members of broker-dl; everything stopped at the end."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="compat-dledger-")
        self.namesrv = "127.0.0.1:%d" % free_port()
        with open(os.path.join(self.dir, "namesrv.properties"), "w") as f:
            f.write("listenPort=%s\n" % self.namesrv.split(":")[1])
        self.processes = [self._start("mqnamesrv", "namesrv.properties")]
        peers = ";".join("n%d-127.0.0.1:%d" % (i, free_port()) for i in range(3))
        self.ports = [free_port() for _ in range(3)]
        self.members = []
        for i, port in enumerate(self.ports):
            name = "n%d.conf" % i
            with open(os.path.join(self.dir, name), "w") as f:
                f.write("\n".join([
                    "brokerClusterName=DefaultCluster", "brokerName=broker-dl", "brokerIP1=127.0.0.1",
                    "listenPort=%d" % port, "namesrvAddr=%s" % self.namesrv,
                    "storePathRootDir=%s/n%d" % (self.dir, i), "mappedFileSizeCommitLog=67108864",
                    "enableDLegerCommitLog=true", "dLegerGroup=broker-dl", "dLegerPeers=%s" % peers,
                    "dLegerSelfId=n%d" % i, "slaveSynchronizeInterval=1000", ""]))
            self.members.append(self._start("mqbroker", name))
        self.processes += self.members

    def _start(self, program, conf):
        env = dict(os.environ, MQ_EXIT_WITH_PARENT=str(os.getpid()))
        process = subprocess.Popen([os.path.join(BUILD, program), "-c", os.path.join(self.dir, conf)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        wait_for_line(process, "boot success")
        threading.Thread(target=process.stdout.read, daemon=True).start()  # keep its pipe drained
        return process

    def status(self):
        """mqadmin dledgerStatus's member rows: (name, address, role, writable)."""
        run = subprocess.run([os.path.join(BUILD, "mqadmin"), "dledgerStatus", "-n", self.namesrv, "-b", "broker-dl"],
                             capture_output=True, text=True, timeout=30)
        rows = [line.split() for line in run.stdout.splitlines() if line.startswith("n")]
        return [(row[0], row[1], row[2], row[-1] == "true") for row in rows if len(row) >= 9]

    def leader(self, excluding=None, seconds=30):
        """The index of the member that takes writes (not `excluding`), once one does."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            for name, address, role, writable in self.status():
                index = self.ports.index(int(address.split(":")[1]))
                if writable and index != excluding:
                    return index
            time.sleep(0.1)
        raise AssertionError("no member takes writes within %d s" % seconds)

    def close(self):
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
                process.wait(timeout=10)
        subprocess.call(["rm", "-rf", self.dir])


PULL_SCRIPT = """
import sys, time
from rocketmq.client import PullConsumer
namesrv, topic, group, expected = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
c = PullConsumer(group)
c.set_namesrv_addr(namesrv)
c.start()
seen, deadline = [], time.time() + 60
while len(seen) < expected and time.time() < deadline:
    for m in c.pull(topic):
        seen.append(bytes(m.body))
    time.sleep(0.2)
c.shutdown()
for body in seen:
    print(body.decode())
"""


@pytest.fixture
def group():
    g = DLedgerGroup()
    yield g
    g.close()


@pytest.mark.parametrize("fault", [signal.SIGKILL, signal.SIGSTOP])
def test_a_new_leader_takes_over_and_every_acknowledged_message_is_read_once(group, fault):
    old = group.leader()
    subprocess.run([os.path.join(BUILD, "mqadmin"), "updateTopic", "-n", group.namesrv, "-t", "TopicDL",
                    "-b", "127.0.0.1:%d" % group.ports[old], "-r", "4", "-w", "4"], check=True, capture_output=True)
    p = Producer("PG_DL")
    p.set_namesrv_addr(group.namesrv)
    p.start()
    acknowledged, stop = [], threading.Event()

    def send_until_stopped():
        index = 0
        while not stop.is_set():
            body = ("dl-%d" % index).encode()
            index += 1
            try:
                if p.send_sync(message("TopicDL", body)).status == 0:
                    acknowledged.append((body, time.time()))
            except Exception:
                time.sleep(0.05)  # no master answers yet

    sender = threading.Thread(target=send_until_stopped)
    sender.start()
    deadline = time.time() + 60
    while len(acknowledged) < 300 and time.time() < deadline:
        time.sleep(0.05)
    assert len(acknowledged) >= 300
    at_fault = time.time()
    group.members[old].send_signal(fault)
    new = group.leader(excluding=old)
    elected = time.time() - at_fault
    deadline = time.time() + 90  # the C++ client re-reads routes every 30 s, and after failed sends
    while not any(t > at_fault for _, t in acknowledged) and time.time() < deadline:
        time.sleep(0.05)
    resumed = [t for _, t in acknowledged if t > at_fault]
    stop.set()
    sender.join(timeout=60)
    p.shutdown()
    assert resumed, "no send succeeded after the fault"
    print("dledger C++ %s: new leader n%d after %.0f ms, first acknowledged send after %.0f ms"
          % (signal.Signals(fault).name, new, elected * 1000, (min(resumed) - at_fault) * 1000))
    if fault == signal.SIGSTOP:
        group.members[old].send_signal(signal.SIGCONT)
    bodies = pull_in_fresh_process(group, "TopicDL", "CG_DL_PULL", len(acknowledged))
    missing = [b for b, _ in acknowledged if b not in bodies]
    assert not missing, "%d of %d acknowledged messages missing, e.g. %r" % (len(missing), len(acknowledged), missing[:5])
    # The C++ client retries a send whose answer it did not get (twice, and its C API cannot turn that off): a send
    # stored by the dying leader and sent again to the new one is there twice. Every other message is there once.
    repeated = [b for b, _ in acknowledged if bodies.count(b) > 1]
    assert len(repeated) <= 16, "%d acknowledged messages repeated, e.g. %r" % (len(repeated), repeated[:5])
    print("dledger C++ %s: %d acknowledged, none missing, %d repeated by the client's own retries"
          % (signal.Signals(fault).name, len(acknowledged), len(repeated)))


def pull_in_fresh_process(group, topic, consumer_group, expected):
    """Every body a C++ PullConsumer reads (a list: repeats count), in a process of its own (fresh routes)."""
    run = subprocess.run([sys.executable, "-c", PULL_SCRIPT, group.namesrv, topic, consumer_group, str(expected)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return [line.encode() for line in run.stdout.splitlines()]
