"""A NameServer and one broker from a build folder, on free loopback ports with a temporary store, for the
measuring scripts (broker-cpu.py, topic-create-bench.py): started in `with LocalBroker(...)`, stopped (SIGTERM,
then SIGKILL) and removed when the block ends."""
import os, shutil, signal, socket, subprocess, sys, tempfile, time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(process, needle, seconds=60):
    """Reads the process's output until `needle`; otherwise raises with the output's last lines (why it failed)."""
    deadline, seen = time.time() + seconds, []
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        if needle in line:
            return
        seen = (seen + [line.rstrip()])[-20:]
    state = "exited with %s" % process.poll() if process.poll() is not None else "still running after %d s" % seconds
    raise RuntimeError("process did not print %r (%s); its last lines:\n%s" % (needle, state, "\n".join(seen)))


class PortTaken(RuntimeError):
    """A role could not listen on a port that was free when it was picked (another process took it meanwhile)."""


class LocalBroker:
    """`conf` holds extra broker.conf lines; `stop_seconds` is how long each role may take to stop on SIGTERM."""

    def __init__(self, build, prefix, conf=(), stop_seconds=60):
        self.build, self.prefix, self.conf, self.stop_seconds = build, prefix, list(conf), stop_seconds
        self.ns = self.broker = None

    def __enter__(self):
        # Ports are picked free and bound later: another process may take one in between. Only then try again.
        for attempt in range(3):
            try:
                return self._enter_once()
            except PortTaken as error:
                if attempt == 2:
                    raise
                print("local_broker: a port was taken meanwhile, starting again on others: %s" % error, file=sys.stderr)

    def _enter_once(self):
        self.directory = tempfile.mkdtemp(prefix=self.prefix)
        self.ns_port, self.broker_port = free_port(), free_port()
        open(os.path.join(self.directory, "ns.properties"), "w").write("listenPort=%d\n" % self.ns_port)
        open(os.path.join(self.directory, "broker.conf"), "w").write("\n".join([
            "brokerName=broker-a", "brokerIP1=127.0.0.1", "listenPort=%d" % self.broker_port,
            "haListenPort=%d" % free_port(), "namesrvAddr=127.0.0.1:%d" % self.ns_port,
            "storePathRootDir=%s/store" % self.directory] + self.conf + [""]))
        self.env = dict(os.environ, MQ_EXIT_WITH_PARENT=str(os.getpid()))
        try:
            self.ns = self._start("mqnamesrv", "ns.properties")
            self._boot(self.ns)
            self.broker = self._start("mqbroker", "broker.conf")
            self._boot(self.broker)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    @staticmethod
    def _boot(process):
        try:
            wait_for(process, "boot success")
        except RuntimeError as error:
            if "address already in use" in str(error):
                raise PortTaken(str(error))
            raise

    def _start(self, role, conf):
        return subprocess.Popen([os.path.join(self.build, role), "-c", os.path.join(self.directory, conf)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env)

    def __exit__(self, *exc):
        for process in (self.broker, self.ns):
            if process and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=self.stop_seconds)
                except subprocess.TimeoutExpired:
                    process.kill()
        shutil.rmtree(self.directory, ignore_errors=True)
        return False


def add_load_arguments(parser):
    """The options the measuring scripts share: which build, which bench, the store's modes, the load's shape."""
    parser.add_argument("--build", required=True)
    parser.add_argument("--bench")
    parser.add_argument("--flush", default="ASYNC_FLUSH")
    parser.add_argument("--io", default="mmap")
    parser.add_argument("-w", type=int, default=64)
    parser.add_argument("-s", type=int, default=1024)
