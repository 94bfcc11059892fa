"""Mixed clients: the Swift client (through `mqadmin sendMessage` / `consumeMessage`) and the official C++
client 1.2.3 agree on every field of each other's messages."""
import os
import re
import subprocess
import time

from test_cpp_client import BUILD, Cluster, message, producer, pull_all  # noqa: F401  (fixture below)
import pytest


@pytest.fixture
def cluster():
    c = Cluster()
    yield c
    c.close()


def mqadmin(cluster, *args):
    result = subprocess.run([os.path.join(BUILD, "mqadmin"), args[0], "-n", cluster.namesrv] + list(args[1:]),
                            capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout, result.stderr


def test_swift_producer_to_cpp_consumer(cluster):
    sent = {}
    for i in range(5):
        code, out, err = mqadmin(cluster, "sendMessage", "-t", "TopicSwiftToCpp", "-p", "swift body %d" % i,
                                 "-k", "sk%d common" % i, "-c", "TagS", "-u", "color=c%d" % i)
        assert code == 0, err
        row = out.strip().splitlines()[-1].split()
        assert row[2] == "SEND_OK", out
        sent["swift body %d" % i] = row[3]  # the producer's msgId (UNIQ_KEY)
    got = pull_all(cluster, "TopicSwiftToCpp", "CG_MIXED_1", 5)
    assert sorted(m.body.decode() for m in got) == sorted(sent)
    for m in got:
        body = m.body.decode()
        i = int(body.split()[-1])
        assert m.tags.decode() == "TagS"
        assert m.keys.decode() == "sk%d common" % i
        assert m.get_property("color").decode() == "c%d" % i
        assert (m.id if isinstance(m.id, str) else m.id.decode()) == sent[body]


def test_cpp_producer_to_swift_consumer(cluster):
    p = producer(cluster)
    sent = {}
    bodies = ["cpp body %d" % i for i in range(5)] + ["x" * 10000]  # the last is zlib-compressed by the C++ client
    for i, body in enumerate(bodies):
        result = p.send_sync(message("TopicCppToSwift", body, tag="TagC", keys="ck%d" % i, props={"color": "k%d" % i}))
        sent[body] = (result.msg_id, i)
    p.shutdown()
    # A send is answered once the commit log holds it; its consume-queue unit is dispatched a moment later.
    deadline = time.monotonic() + 10
    while True:
        code, out, err = mqadmin(cluster, "consumeMessage", "-t", "TopicCppToSwift")
        assert code == 0, err
        lines = [line for line in out.splitlines() if line.startswith("MSGID:")]
        if len(lines) >= len(bodies) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(lines) == len(bodies), out
    pattern = re.compile(r"MSGID: (\S+) \S+ OFFSET: \d+ TAGS: (\S*) KEYS: (.*) PROPERTIES: \{(.*)\} BODY: (.*)$")
    for line in lines:
        match = pattern.match(line)
        assert match, line
        msg_id, tags, keys, props, body = match.groups()
        assert body in sent, line[:200]
        want_id, i = sent[body]
        assert msg_id == want_id
        assert tags == "TagC"
        assert keys == "ck%d" % i
        assert "color=k%d" % i in props
