"""Compatibility with the official RocketMQ C++ client 1.2.3 (PyPI `rocketmq` 0.4.4), driven from Python
against real `mqnamesrv` and `mqbroker` processes on 127.0.0.1."""
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest
from rocketmq.client import Message, Producer, PullConsumer, PushConsumer

BUILD = os.environ.get("BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", ".build", "debug"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_line(process, needle, seconds=30):
    deadline = time.time() + seconds
    lines = []
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return
    raise RuntimeError("process did not print %r: %s" % (needle, "".join(lines)))


def committed_offsets(cluster, group, topic):
    """The group's committed offsets on `topic`, summed over queues (from `mqadmin consumerProgress`)."""
    run = subprocess.run([os.path.join(BUILD, "mqadmin"), "consumerProgress", "-n", cluster.namesrv, "-g", group, "-t", topic],
                         capture_output=True, text=True, timeout=30)
    if run.returncode != 0:
        return 0
    total = 0
    for line in run.stdout.splitlines()[1:]:
        columns = line.split()
        if len(columns) >= 6 and columns[0] == topic:
            total += int(columns[4])
    return total


def wait_for_committed(cluster, group, topic, total, seconds=30):
    """Waits (bounded) until the broker holds `total` committed messages of the group on `topic`."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if committed_offsets(cluster, group, topic) >= total:
            return True
        time.sleep(0.5)
    return False


class Cluster:
    """One NameServer and one broker; restartable broker; everything stopped at the end."""

    def __init__(self, flush="ASYNC_FLUSH", extra=""):
        self.dir = tempfile.mkdtemp(prefix="compat-")
        self.ns_port, self.broker_port = free_port(), free_port()
        self.namesrv = "127.0.0.1:%d" % self.ns_port
        with open(os.path.join(self.dir, "namesrv.properties"), "w") as f:
            f.write("listenPort=%d\n" % self.ns_port)
        with open(os.path.join(self.dir, "broker.conf"), "w") as f:
            f.write("\n".join([
                "brokerClusterName=DefaultCluster", "brokerName=broker-a", "brokerId=0", "brokerIP1=127.0.0.1",
                "listenPort=%d" % self.broker_port, "haListenPort=%d" % free_port(), "namesrvAddr=%s" % self.namesrv,
                "storePathRootDir=%s/store" % self.dir, "mappedFileSizeCommitLog=67108864",
                "flushDiskType=%s" % flush, extra, ""]))
        self.ns = self._start([os.path.join(BUILD, "mqnamesrv"), "-c", os.path.join(self.dir, "namesrv.properties")],
                              "boot success")
        self.broker = None
        self.start_broker()

    def _start(self, argv, ready):
        env = dict(os.environ, MQ_EXIT_WITH_PARENT=str(os.getpid()))  # stops by itself if pytest dies first
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        wait_for_line(process, ready)
        return process

    def start_broker(self):
        self.broker = self._start([os.path.join(BUILD, "mqbroker"), "-c", os.path.join(self.dir, "broker.conf")],
                                  "boot success")

    def stop_broker(self):
        self.broker.send_signal(signal.SIGTERM)
        assert self.broker.wait(timeout=30) == 0, "SIGTERM stops the broker with exit 0"

    def close(self):
        for process in (self.broker, self.ns):
            if process and process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        subprocess.call(["rm", "-rf", self.dir])


@pytest.fixture
def cluster():
    c = Cluster()
    yield c
    c.close()


def producer(cluster, group="PG_COMPAT"):
    p = Producer(group)
    p.set_namesrv_addr(cluster.namesrv)
    p.start()
    return p


def message(topic, body, tag="TagA", keys="", props=None):
    m = Message(topic)
    m.set_body(body)
    m.set_tags(tag)
    if keys:
        m.set_keys(keys)
    for k, v in (props or {}).items():
        m.set_property(k, v)
    return m


class Received:
    """A consumed message copied out of the client's memory (it is freed after the callback or pull)."""

    def __init__(self, msg):
        self.body, self.tags, self.keys, self.id = msg.body, msg.tags, msg.keys, msg.id
        self.color = msg.get_property("color")

    def get_property(self, name):
        assert name == "color"
        return self.color


def pull_all(cluster, topic, group, expected, seconds=30):
    c = PullConsumer(group)
    c.set_namesrv_addr(cluster.namesrv)
    c.start()
    got = []
    deadline = time.time() + seconds
    try:
        while len(got) < expected and time.time() < deadline:
            got.extend(Received(m) for m in c.pull(topic))
            if len(got) < expected:
                time.sleep(0.2)
    finally:
        c.shutdown()
    return got


def push_collect(cluster, topic, group, expected, seconds=30, fail_first=0):
    got, attempts = [], {}
    def callback(msg):
        body = bytes(msg.body)
        attempts[body] = attempts.get(body, 0) + 1
        if attempts[body] <= fail_first:
            raise RuntimeError("fail on purpose: redeliver later")
        got.append(Received(msg))
    c = PushConsumer(group)
    c.set_namesrv_addr(cluster.namesrv)
    c.subscribe(topic, callback)
    c.start()
    deadline = time.time() + seconds
    while len({m.body for m in got}) < expected and time.time() < deadline:
        time.sleep(0.2)
    return c, got


def test_send_sync_then_pull_keeps_body_keys_tags_and_properties(cluster):
    p = producer(cluster)
    sent = {}
    for i in range(20):
        body = ("pull-%d" % i).encode()
        result = p.send_sync(message("TopicPull", body, tag="Tag%d" % (i % 2), keys="k%d" % i, props={"color": "c%d" % i}))
        assert result.status == 0
        assert result.msg_id
        sent[body] = i
    p.shutdown()
    got = pull_all(cluster, "TopicPull", "CG_PULL", 20)
    assert sorted(m.body for m in got) == sorted(sent)
    for m in got:
        i = sent[m.body]
        assert m.tags == ("Tag%d" % (i % 2)).encode()
        assert m.keys == ("k%d" % i).encode()
        assert m.get_property("color") == ("c%d" % i).encode()


def test_push_consumer_clustering_gets_sync_oneway_and_orderly_sends(cluster):
    p = producer(cluster)
    bodies = set()
    for i in range(10):
        body = ("push-%d" % i).encode()
        assert p.send_sync(message("TopicPush", body)).status == 0
        bodies.add(body)
    p.send_oneway(message("TopicPush", b"oneway"))
    bodies.add(b"oneway")
    assert p.send_orderly(message("TopicPush", b"orderly"), 1).status == 0
    bodies.add(b"orderly")
    p.shutdown()
    consumer, got = push_collect(cluster, "TopicPush", "CG_PUSH", len(bodies))
    consumer.shutdown()
    assert {m.body for m in got} == bodies


def test_offsets_survive_a_broker_restart(cluster):
    p = producer(cluster)
    for i in range(10):
        assert p.send_sync(message("TopicOffsets", ("old-%d" % i).encode())).status == 0
    consumer, got = push_collect(cluster, "TopicOffsets", "CG_OFFSETS", 10)
    # The client commits offsets every 5 s: wait until the broker has them.
    assert wait_for_committed(cluster, "CG_OFFSETS", "TopicOffsets", 10)
    consumer.shutdown()
    p.shutdown()
    assert len({m.body for m in got}) == 10
    cluster.stop_broker()
    cluster.start_broker()
    p = producer(cluster, "PG_AFTER")
    for i in range(5):
        assert p.send_sync(message("TopicOffsets", ("new-%d" % i).encode())).status == 0
    p.shutdown()
    consumer, got = push_collect(cluster, "TopicOffsets", "CG_OFFSETS", 5, seconds=40)
    # Every message up to the end was consumed and committed: a redelivered old one would be in `got` by now.
    assert wait_for_committed(cluster, "CG_OFFSETS", "TopicOffsets", 15)
    consumer.shutdown()
    assert {m.body for m in got} == {("new-%d" % i).encode() for i in range(5)}, "old messages were delivered again"


def test_garbage_on_both_ports_leaves_them_serving(cluster):
    for port in (cluster.ns_port, cluster.broker_port):
        for garbage in (b"\xff\xff\xff\xff\x01\x02", b"\x00\x00\x00\x08\x00\x00\x00\x04nope", b"\x00\x00"):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(garbage)
                s.shutdown(socket.SHUT_WR)
                s.settimeout(5)
                try:
                    s.recv(1)
                except OSError:
                    pass
    p = producer(cluster)
    assert p.send_sync(message("TopicAfterGarbage", b"still serving")).status == 0
    p.shutdown()
    assert [m.body for m in pull_all(cluster, "TopicAfterGarbage", "CG_GARBAGE", 1)] == [b"still serving"]


def test_delayed_message_arrives_after_its_delay(cluster):
    p = producer(cluster)
    m = message("TopicDelay", b"later")
    m.set_delay_time_level(2)  # 5 s
    sent_at = time.time()
    assert p.send_sync(m).status == 0
    p.shutdown()
    arrivals = []
    def callback(msg):
        arrivals.append((bytes(msg.body), time.time()))
    c = PushConsumer("CG_DELAY")
    c.set_namesrv_addr(cluster.namesrv)
    c.subscribe("TopicDelay", callback)
    c.start()
    deadline = time.time() + 30
    while not arrivals and time.time() < deadline:
        time.sleep(0.1)
    c.shutdown()
    assert [body for body, _ in arrivals] == [b"later"]
    assert arrivals[0][1] - sent_at >= 4.5, "delivered before its 5 s delay"


def test_failing_listener_gets_messages_again_through_the_retry_topic(cluster):
    p = producer(cluster)
    bodies = {("retry-%d" % i).encode() for i in range(3)}
    for body in sorted(bodies):
        assert p.send_sync(message("TopicRetry", body)).status == 0
    p.shutdown()
    # Every message fails once: it comes back after the first retry delay (10 s).
    consumer, got = push_collect(cluster, "TopicRetry", "CG_RETRY", len(bodies), seconds=45, fail_first=1)
    consumer.shutdown()
    assert {m.body for m in got} == bodies


def test_broadcasting_consumers_each_get_every_message(cluster):
    from rocketmq.client import MessageModel
    warmup = producer(cluster, "PG_WARMUP")  # the topic exists (and has a route) before consumers start
    assert warmup.send_sync(message("TopicBroadcast", b"warm-up")).status == 0
    warmup.shutdown()
    received = [[], []]
    consumers = []
    for index in range(2):
        c = PushConsumer("CG_BROADCAST", message_model=MessageModel.BROADCASTING)
        c.set_instance_name("instance-%d" % index)
        c.set_namesrv_addr(cluster.namesrv)
        c.subscribe("TopicBroadcast", lambda msg, index=index: received[index].append(bytes(msg.body)))
        c.start()
        consumers.append(c)
    time.sleep(2)
    p = producer(cluster)
    for i in range(6):
        assert p.send_sync(message("TopicBroadcast", ("b-%d" % i).encode())).status == 0
    p.shutdown()
    deadline = time.time() + 30
    wanted = {("b-%d" % i).encode() for i in range(6)}
    while any(not wanted <= set(r) for r in received) and time.time() < deadline:
        time.sleep(0.2)
    for c in consumers:
        c.shutdown()
    for r in received:
        assert wanted <= set(r)


def test_send_batch_stores_each_message(cluster):
    p = producer(cluster)
    batch = [message("TopicBatch", ("batch-%d" % i).encode(), keys="bk%d" % i) for i in range(5)]
    result = p.send_batch(batch)
    assert result.status == 0
    p.shutdown()
    got = pull_all(cluster, "TopicBatch", "CG_BATCH", 5)
    assert sorted(m.body for m in got) == sorted(("batch-%d" % i).encode() for i in range(5))
    assert sorted(m.keys for m in got) == sorted(("bk%d" % i).encode() for i in range(5))


def test_orderly_consumer_takes_queue_locks_and_keeps_order(cluster):
    p = producer(cluster)
    assert p.send_sync(message("TopicOrder", b"warm-up")).status == 0  # the topic and its route exist first
    for i in range(20):
        assert p.send_orderly(message("TopicOrder", ("o-%02d" % i).encode()), 7).status == 0
    p.shutdown()
    got = []
    c = PushConsumer("CG_ORDER", orderly=True)
    c.set_namesrv_addr(cluster.namesrv)
    c.subscribe("TopicOrder", lambda msg: got.append(bytes(msg.body)))
    c.start()
    deadline = time.time() + 40
    while len([b for b in got if b.startswith(b"o-")]) < 20 and time.time() < deadline:
        time.sleep(0.2)
    c.shutdown()
    ordered = [b for b in got if b.startswith(b"o-")]
    assert ordered == [("o-%02d" % i).encode() for i in range(20)]


def test_message_failed_past_max_reconsume_times_goes_to_the_dlq():
    cluster = Cluster(extra="maxReconsumeTimes=1")
    try:
        p = producer(cluster)
        assert p.send_sync(message("TopicDLQ", b"doomed")).status == 0
        p.shutdown()
        attempts = []
        def always_fail(msg):
            attempts.append(time.time())
            raise RuntimeError("always fails")
        c = PushConsumer("CG_DLQ")
        c.set_namesrv_addr(cluster.namesrv)
        c.subscribe("TopicDLQ", always_fail)
        c.start()
        # First delivery fails -> %RETRY% after 10 s; that fails too -> reconsumeTimes 1 >= 1 -> %DLQ%.
        deadline = time.time() + 40
        dead = []
        while not dead and time.time() < deadline:
            time.sleep(1)
            if len(attempts) >= 2:
                dead = pull_all(cluster, "%DLQ%CG_DLQ", "CG_DLQ_READER", 1, seconds=2)
        c.shutdown()
        assert len(attempts) >= 2, "the failed message was not redelivered"
        assert [m.body for m in dead] == [b"doomed"]
    finally:
        cluster.close()
