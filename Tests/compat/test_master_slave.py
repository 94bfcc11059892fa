"""Master/slave replication with the official C++ client (PyPI `rocketmq` 0.4.4): under SYNC_MASTER every message
the client saw acknowledged is on the slave when the master is killed, and consumers read it there."""
import os
import signal
import sys
import subprocess
import tempfile
import threading
import time

import pytest
from rocketmq.client import Producer, PushConsumer

from test_cpp_client import BUILD, free_port, message, wait_for_line


class Group:
    """A NameServer, a SYNC_MASTER and its SLAVE (one broker name); everything stopped at the end."""

    def __init__(self, role="SYNC_MASTER"):
        self.dir = tempfile.mkdtemp(prefix="compat-ha-")
        self.namesrv = "127.0.0.1:%d" % free_port()
        with open(os.path.join(self.dir, "namesrv.properties"), "w") as f:
            f.write("listenPort=%s\n" % self.namesrv.split(":")[1])
        self.processes = [self._start("mqnamesrv", "namesrv.properties")]
        self.master_port, self.slave_port = free_port(), free_port()
        self._conf("master.conf", self.master_port, ["brokerId=0", "brokerRole=%s" % role])
        self._conf("slave.conf", self.slave_port, ["brokerId=1", "brokerRole=SLAVE", "slaveSynchronizeInterval=1000"])
        self.master = self._start("mqbroker", "master.conf")
        self.slave = self._start("mqbroker", "slave.conf")
        self.processes += [self.master, self.slave]

    def _conf(self, name, port, lines):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write("\n".join([
                "brokerClusterName=DefaultCluster", "brokerName=broker-ha", "brokerIP1=127.0.0.1",
                "listenPort=%d" % port, "haListenPort=%d" % free_port(), "namesrvAddr=%s" % self.namesrv,
                "storePathRootDir=%s/%s" % (self.dir, name.split(".")[0]), "mappedFileSizeCommitLog=67108864",
                "flushDiskType=ASYNC_FLUSH"] + lines + [""]))

    def _start(self, program, conf):
        env = dict(os.environ, MQ_EXIT_WITH_PARENT=str(os.getpid()))
        process = subprocess.Popen([os.path.join(BUILD, program), "-c", os.path.join(self.dir, conf)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        wait_for_line(process, "boot success")
        return process

    def close(self):
        for process in self.processes:
            if process.poll() is None:
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
seen, deadline = set(), time.time() + 60
while len(seen) < expected and time.time() < deadline:
    for m in c.pull(topic):
        seen.add(bytes(m.body))
    time.sleep(0.2)
c.shutdown()
for body in sorted(seen):
    print(body.decode())
"""


def pull_in_fresh_process(group, topic, consumer_group, expected):
    """Every body a C++ PullConsumer reads, in a process of its own: the C++ client shares one route cache per
    process, and this process's producer still lists the dead master (it refreshes routes every 30 s)."""
    run = subprocess.run([sys.executable, "-c", PULL_SCRIPT, group.namesrv, topic, consumer_group, str(expected)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return {line.encode() for line in run.stdout.splitlines()}


@pytest.fixture
def group():
    g = Group()
    yield g
    g.close()


def test_every_acknowledged_message_is_on_the_slave_when_the_master_dies(group):
    p = Producer("PG_HA")
    p.set_namesrv_addr(group.namesrv)
    p.start()
    acknowledged, stop = [], threading.Event()

    def send_until_stopped():
        index = 0
        while not stop.is_set() and index < 5000:
            body = ("ha-%d" % index).encode()
            index += 1
            try:
                if p.send_sync(message("TopicHA", body)).status == 0:
                    acknowledged.append(body)
            except Exception:
                time.sleep(0.05)  # the master is gone: the client has no route until it gives up

    sender = threading.Thread(target=send_until_stopped)
    sender.start()
    deadline = time.time() + 60
    while len(acknowledged) < 300 and time.time() < deadline:
        time.sleep(0.05)
    group.master.send_signal(signal.SIGKILL)  # mid-stream: sends in flight when it dies are not acknowledged
    group.master.wait(timeout=10)
    stop.set()
    sender.join(timeout=60)
    p.shutdown()
    assert len(acknowledged) >= 300
    bodies = pull_in_fresh_process(group, "TopicHA", "CG_HA_PULL", len(acknowledged))
    lost = [b for b in acknowledged if b not in bodies]
    assert not lost, "%d acknowledged messages are not on the slave, e.g. %r" % (len(lost), lost[:5])


def test_a_push_consumer_reads_the_slave_after_the_master_dies(group):
    p = Producer("PG_HA_PUSH")
    p.set_namesrv_addr(group.namesrv)
    p.start()
    for index in range(40):
        assert p.send_sync(message("TopicHAPush", ("push-%d" % index).encode())).status == 0
    p.shutdown()
    # The slave has the topic's config once a sync period passed; then the master dies.
    deadline = time.time() + 20
    while time.time() < deadline:
        listed = subprocess.run([os.path.join(BUILD, "mqadmin"), "topicStatus", "-n", group.namesrv, "-t", "TopicHAPush"],
                                capture_output=True, text=True)
        if listed.returncode == 0:
            break
        time.sleep(0.2)
    group.master.send_signal(signal.SIGKILL)
    group.master.wait(timeout=10)
    got = []
    c = PushConsumer("CG_HA_PUSH")
    c.set_namesrv_addr(group.namesrv)
    c.subscribe("TopicHAPush", lambda msg: got.append(bytes(msg.body)))
    c.start()
    wanted = {("push-%d" % i).encode() for i in range(40)}
    deadline = time.time() + 60
    while not wanted <= set(got) and time.time() < deadline:
        time.sleep(0.2)
    c.shutdown()
    assert wanted <= set(got), "got %d of 40 from the slave" % len(wanted & set(got))
