"""Plain ACL with the official C++ client 1.2.3 (PyPI `rocketmq` 0.4.4, `set_session_credentials`) against a real
`mqbroker` with `aclEnable=true`: the right keys send and consume; a wrong secret, an unknown key and a topic marked
DENY are refused and store nothing; a non-admin's admin request (a raw frame signed here with Python's
hmac/hashlib/base64, independently of our code) is refused while the admin's is served; a rewritten plain_acl.yml
changes permissions without a restart."""
import base64
import hashlib
import hmac
import json
import os
import socket
import struct
import subprocess
import tempfile
import time

import pytest
from rocketmq.client import Producer, PullConsumer, PushConsumer

from test_cpp_client import BUILD, Cluster, message

USER = ("RocketMQ", "12345678")
ADMIN = ("rocketmq2", "87654321")


def acl_file(deny_topic_perm="DENY"):
    return "\n".join([
        "globalWhiteRemoteAddresses:",
        "accounts:",
        "  - accessKey: RocketMQ",
        "    secretKey: '12345678'",
        "    admin: false",
        "    defaultTopicPerm: DENY",
        "    defaultGroupPerm: SUB",
        "    topicPerms:",
        "      - AclTopic=PUB|SUB",
        "      - DenyTopic=%s" % deny_topic_perm,
        "  - accessKey: rocketmq2",
        "    secretKey: '87654321'",
        "    admin: true",
        ""])


def write_atomically(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.rename(path + ".tmp", path)


def mqadmin(cluster, *args, keys=ADMIN):
    argv = [os.path.join(BUILD, "mqadmin"), args[0], "-n", cluster.namesrv]
    if keys:
        argv += ["--access-key", keys[0], "--secret-key", keys[1]]
    return subprocess.run(argv + list(args[1:]), capture_output=True, text=True, timeout=60)


def stored(cluster, topic):
    """The sum of the topic's max offsets (mqadmin topicStatus with the admin's keys)."""
    run = mqadmin(cluster, "topicStatus", "-t", topic)
    assert run.returncode == 0, run.stdout + run.stderr
    return sum(int(line.split()[3]) for line in run.stdout.splitlines()[1:] if len(line.split()) >= 4)


@pytest.fixture
def acl_cluster():
    directory = tempfile.mkdtemp(prefix="acl-")
    path = os.path.join(directory, "plain_acl.yml")
    write_atomically(path, acl_file())
    cluster = Cluster(extra="aclEnable=true\nplainAclFile=%s" % path)
    cluster.acl_path = path
    try:
        for topic in ("AclTopic", "DenyTopic"):
            run = mqadmin(cluster, "updateTopic", "-t", topic, "-c", "DefaultCluster", "-r", "2", "-w", "2")
            assert run.returncode == 0, run.stdout + run.stderr
        deadline = time.time() + 20
        while time.time() < deadline and mqadmin(cluster, "topicRoute", "-t", "DenyTopic").returncode != 0:
            time.sleep(0.2)
        yield cluster
    finally:
        cluster.close()
        subprocess.call(["rm", "-rf", directory])


def acl_producer(cluster, keys, group="PG_ACL"):
    p = Producer(group)
    p.set_namesrv_addr(cluster.namesrv)
    p.set_session_credentials(keys[0], keys[1], "ALIYUN")
    p.start()
    return p


def refused(producer, topic):
    try:
        producer.send_sync(message(topic, b"should be refused"))
    except Exception:  # the C++ client raises on any non-OK answer
        return True
    return False


def test_right_keys_send_and_consume(acl_cluster):
    p = acl_producer(acl_cluster, USER)
    try:
        result = p.send_sync(message("AclTopic", b"signed by the C++ client"))
        assert result.status == 0, "SEND_OK"
    finally:
        p.shutdown()

    pull = PullConsumer("CG_ACL_PULL")
    pull.set_namesrv_addr(acl_cluster.namesrv)
    pull.set_session_credentials(USER[0], USER[1], "ALIYUN")
    pull.start()
    bodies = []
    try:
        deadline = time.time() + 30
        while time.time() < deadline and not bodies:
            bodies += [bytes(m.body) for m in pull.pull("AclTopic")]
            if not bodies:
                time.sleep(0.2)
    finally:
        pull.shutdown()
    assert bodies == [b"signed by the C++ client"]

    received = []
    push = PushConsumer("CG_ACL_PUSH")
    push.set_namesrv_addr(acl_cluster.namesrv)
    push.set_session_credentials(USER[0], USER[1], "ALIYUN")
    push.subscribe("AclTopic", lambda msg: received.append(bytes(msg.body)))
    push.start()
    try:
        deadline = time.time() + 30
        while time.time() < deadline and not received:
            time.sleep(0.2)
    finally:
        push.shutdown()
    assert received == [b"signed by the C++ client"]


def test_wrong_secret_unknown_key_and_deny_topic_are_refused_and_store_nothing(acl_cluster):
    good = acl_producer(acl_cluster, USER)
    wrong_secret = acl_producer(acl_cluster, (USER[0], "not-the-secret"), group="PG_ACL_2")
    unknown = acl_producer(acl_cluster, ("stranger", "12345678"), group="PG_ACL_3")
    try:
        assert refused(wrong_secret, "AclTopic")
        assert refused(unknown, "AclTopic")
        assert refused(good, "DenyTopic")
        # One good send after the refused ones: queues are built in log order.
        assert good.send_sync(message("AclTopic", b"after the refusals")).status == 0
    finally:
        for p in (good, wrong_secret, unknown):
            p.shutdown()
    deadline = time.time() + 20
    while time.time() < deadline and stored(acl_cluster, "AclTopic") < 1:
        time.sleep(0.2)
    assert stored(acl_cluster, "AclTopic") == 1
    assert stored(acl_cluster, "DenyTopic") == 0


def signed_request(code, fields, keys):
    """A JSON-header remoting frame signed with Python's own HMAC-SHA1 (values in key order, then the body: none)."""
    fields = dict(fields, AccessKey=keys[0])
    content = "".join(fields[k] for k in sorted(fields)).encode()
    fields["Signature"] = base64.b64encode(hmac.new(keys[1].encode(), content, hashlib.sha1).digest()).decode()
    header = json.dumps({"code": code, "extFields": fields, "flag": 0, "language": "PYTHON", "opaque": 7, "version": 407}).encode()
    return struct.pack(">ii", 4 + len(header), len(header)) + header


def call(address, frame):
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(frame)
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack(">i", data[:4])[0]:
            chunk = s.recv(65536)
            assert chunk, "the broker closed the connection"
            data += chunk
    header_length = struct.unpack(">i", data[4:8])[0] & 0xFFFFFF
    return json.loads(data[8:8 + header_length])


def test_a_non_admin_calling_an_admin_code_is_refused(acl_cluster):
    fields = {"topic": "SneakyTopic", "defaultTopic": "TBW102", "readQueueNums": "1", "writeQueueNums": "1", "perm": "6",
              "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": "false"}
    address = "127.0.0.1:%d" % acl_cluster.broker_port
    answer = call(address, signed_request(17, fields, USER))
    assert answer["code"] == 16, answer
    assert answer["remark"] == "Need admin permission for request code=17, but accessKey=RocketMQ is not"
    topics = call(address, signed_request(21, {}, ADMIN))
    assert topics["code"] == 0
    assert mqadmin(acl_cluster, "topicRoute", "-t", "SneakyTopic").returncode != 0
    # The same request with the admin's keys, signed the same way, is served: Python's signature is the broker's.
    assert call(address, signed_request(17, dict(fields, topic="AdminTopic"), ADMIN))["code"] == 0
    assert call(address, signed_request(17, dict(fields, topic="AdminTopic2"), (ADMIN[0], "wrong-secret")))["remark"] \
        == "Check signature failed for accessKey=rocketmq2"


def test_a_reload_changes_permissions_without_a_restart(acl_cluster):
    p = acl_producer(acl_cluster, USER)
    try:
        assert refused(p, "DenyTopic")
        write_atomically(acl_cluster.acl_path, acl_file(deny_topic_perm="PUB"))
        deadline = time.time() + 20
        allowed = False
        while time.time() < deadline and not allowed:
            allowed = not refused(p, "DenyTopic")
            if not allowed:
                time.sleep(0.2)
        assert allowed, "DenyTopic=PUB took effect without a restart"
        assert acl_cluster.broker.poll() is None
    finally:
        p.shutdown()
