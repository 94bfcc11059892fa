"""Mounting powerfs from a test: start, cut the power, unmount, remount over what survived."""
import os
import select
import signal
import subprocess
import sys
import time

POWERFS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "powerfs.py")
UNAVAILABLE = 77


class Unavailable(Exception):
    """FUSE cannot work on this machine (the reason is the message): a test skips."""


def read_line(process, seconds):
    """One line of the process's stdout within `seconds`, or '' at EOF; raises on timeout."""
    deadline = time.monotonic() + seconds
    line = b""
    fd = process.stdout.fileno()
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("powerfs printed no line within %ss (so far %r)" % (seconds, line))
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 1)
            if not chunk:
                break
            line += chunk
    return line.decode()


def is_mounted(mountpoint):
    target = os.path.realpath(mountpoint)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)


def lazy_unmount(mountpoint):
    """Detaches the mount even when its daemon is gone (umount -l; fusermount3 -u -z as a fallback)."""
    for argv in (["umount", "-l", mountpoint], ["fusermount3", "-u", "-z", mountpoint]):
        if not is_mounted(mountpoint):
            return
        try:
            subprocess.run(argv, capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass
    if is_mounted(mountpoint):
        raise RuntimeError("%s is still mounted" % mountpoint)


class PowerMount:
    """One powerfs instance over `base`/durable, mounted at `base`/mnt.

    `cut()` freezes it (returns the daemon's `frozen ...` line), `stop()` ends the daemon (which aborts the
    connection) and unmounts. After a stop, a new PowerMount over the same base sees what was durable.
    """

    def __init__(self, base, seed=0, tear=False, metadata="strict", writeback_cache=False, trace=None):
        self.base = base
        self.durable = os.path.join(base, "durable")
        self.live = os.path.join(base, "live")
        self.mountpoint = os.path.join(base, "mnt")
        os.makedirs(self.mountpoint, exist_ok=True)
        argv = [sys.executable, POWERFS, "--durable", self.durable, "--live", self.live,
                "--mountpoint", self.mountpoint, "--seed", str(seed), "--metadata", metadata]
        if tear:
            argv.append("--tear")
        if writeback_cache:
            argv.append("--writeback-cache")
        if trace:
            argv += ["--trace", trace]
        self.stderr = open(os.path.join(base, "powerfs.stderr"), "ab")
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.stderr)
        self.frozen = None
        try:
            line = read_line(self.process, 60)
        except BaseException:
            self.stop()
            raise
        if line.startswith("ready"):
            return
        self.stop()
        if self.process.returncode == UNAVAILABLE or line.startswith("unavailable"):
            raise Unavailable(line.strip() or "powerfs exited with %s" % self.process.returncode)
        raise RuntimeError("powerfs did not mount: %r (exit %s; stderr in %s/powerfs.stderr)" % (
            line, self.process.returncode, base))

    def path(self, *parts):
        return os.path.join(self.mountpoint, *parts)

    def cut(self, seconds=30):
        """Power cut: the file system applies nothing more. Returns the `frozen ...` line."""
        self.process.send_signal(signal.SIGUSR1)
        line = read_line(self.process, seconds)
        if not line.startswith("frozen"):
            raise RuntimeError("powerfs did not freeze: %r" % line)
        self.frozen = line.strip()
        return self.frozen

    def stop(self):
        """Ends the daemon (pending requests fail) and unmounts; safe to call more than once."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        lazy_unmount(self.mountpoint)
        self.stderr.close()
