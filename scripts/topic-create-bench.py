#!/usr/bin/env python3
"""Time to create N topics one after another (UPDATE_AND_CREATE_TOPIC, each answered before the next), against a
broker started from a build folder on free loopback ports. Prints the total and the time per topic at every
1,000th topic, so a cost that grows with the table shows.

    scripts/topic-create-bench.py --build .build/release [-n 10000]"""
import argparse, json, socket, struct, time

from local_broker import LocalBroker


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
    with LocalBroker(args.build, "topic-bench-") as local:
        sock = socket.create_connection(("127.0.0.1", local.broker_port))
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


if __name__ == "__main__":
    main()
