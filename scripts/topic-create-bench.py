#!/usr/bin/env python3
"""Time to create N topics one after another (UPDATE_AND_CREATE_TOPIC, each answered before the next), against a
broker started from a build folder on free loopback ports. Prints the total and the time per topic at every
1,000th topic, so a cost that grows with the table shows.

    scripts/topic-create-bench.py --build .build/release [-n 10000]"""
import argparse, json, os, shutil, signal, socket, struct, subprocess, tempfile, time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(process, needle, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        line = process.stdout.readline()
        if needle in line:
            return
    raise RuntimeError("process did not print %r" % needle)


def request(sock, code, opaque, fields):
    header = json.dumps({"code": code, "extFields": fields, "flag": 0, "language": "JAVA", "opaque": opaque,
                         "serializeTypeCurrentRPC": "JSON", "version": 407}, separators=(",", ":")).encode()
    sock.sendall(struct.pack(">iI", 4 + len(header), len(header)) + header)
    length = struct.unpack(">i", recv_exactly(sock, 4))[0]
    frame = recv_exactly(sock, length)
    header_length = struct.unpack(">I", frame[:4])[0] & 0xFFFFFF
    return json.loads(frame[4:4 + header_length])


def recv_exactly(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise RuntimeError("connection closed")
        data += chunk
    return data


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", required=True)
    parser.add_argument("-n", type=int, default=10000)
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="topic-bench-")
    ns_port, broker_port = free_port(), free_port()
    open(os.path.join(directory, "ns.properties"), "w").write("listenPort=%d\n" % ns_port)
    open(os.path.join(directory, "broker.conf"), "w").write("\n".join([
        "brokerName=broker-a", "brokerIP1=127.0.0.1", "listenPort=%d" % broker_port, "haListenPort=%d" % free_port(),
        "namesrvAddr=127.0.0.1:%d" % ns_port, "storePathRootDir=%s/store" % directory, ""]))
    env = dict(os.environ, MQ_EXIT_WITH_PARENT=str(os.getpid()))
    start = lambda argv: subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    ns = start([os.path.join(args.build, "mqnamesrv"), "-c", os.path.join(directory, "ns.properties")])
    broker = None
    try:
        wait_for(ns, "boot success")
        broker = start([os.path.join(args.build, "mqbroker"), "-c", os.path.join(directory, "broker.conf")])
        wait_for(broker, "boot success")
        sock = socket.create_connection(("127.0.0.1", broker_port))
        began = last = time.time()
        for index in range(args.n):
            answer = request(sock, 17, index + 1, {"topic": "Topic%05d" % index, "readQueueNums": "8",
                                                   "writeQueueNums": "8", "perm": "6"})
            assert answer["code"] == 0, answer
            if (index + 1) % 1000 == 0:
                now = time.time()
                print("%6d topics: %.2f ms per topic over the last 1,000" % (index + 1, (now - last)), flush=True)
                last = now
        print("%d topics in %.1f s (%.2f ms per topic)" % (args.n, time.time() - began, (time.time() - began) * 1000 / args.n))
    finally:
        for process in (broker, ns):
            if process and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
