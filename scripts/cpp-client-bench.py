"""Send throughput and RT through a broker with the official C++ client (PyPI rocketmq 0.4.4): several
threads doing send_sync of SIZE-byte bodies for SECONDS. Usage: cpp-client-bench.py NAMESRV THREADS SIZE SECONDS"""
import sys
import threading
import time

from rocketmq.client import Message, Producer

namesrv, threads, size, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
producer = Producer("PG_BENCH")
producer.set_namesrv_addr(namesrv)
producer.start()
warm = Message("BenchmarkTest"); warm.set_body(b"w"); producer.send_sync(warm)
body = b"x" * size
latencies, failures = [], [0]
lock = threading.Lock()
stop = time.time() + seconds


def run():
    mine = []
    while time.time() < stop:
        m = Message("BenchmarkTest")
        m.set_body(body)
        began = time.perf_counter()
        try:
            producer.send_sync(m)
            mine.append(time.perf_counter() - began)
        except Exception as error:
            with lock:
                failures[0] += 1
                if failures[0] <= 3:
                    print("send failed after %.2f s:" % (time.time() - stop + seconds), repr(error), file=sys.stderr)
    with lock:
        latencies.extend(mine)


workers = [threading.Thread(target=run) for _ in range(threads)]
start = time.time()
for w in workers: w.start()
for w in workers: w.join()
elapsed = time.time() - start
producer.shutdown()
latencies.sort()
pick = lambda p: latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1e3
print("threads=%d size=%d sent=%d failed=%d tps=%.0f p50=%.2fms p99=%.2fms p99.9=%.2fms max=%.2fms" % (
    threads, size, len(latencies), failures[0], len(latencies) / elapsed, pick(0.5), pick(0.99), pick(0.999), latencies[-1] * 1e3))
