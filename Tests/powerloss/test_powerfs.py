"""powerfs itself: what survives a power cut is exactly what was made durable, for every operation the
broker uses (write, pwrite, O_APPEND, shared mmap + msync, fdatasync, fallocate, punch hole, ftruncate,
create, rename, link, unlink, mkdir; flock and fcntl locks and statvfs work)."""
import ctypes
import fcntl
import mmap
import os

import pytest

from powermount import PowerMount, Unavailable

libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE = 1, 2, 0x10


def fallocate(fd, mode, offset, length):
    assert libc.fallocate(fd, mode, offset, length) == 0, os.strerror(ctypes.get_errno())


class Power:
    """Mounts powerfs over one durable state; `cut()` cuts the power and mounts again."""

    def __init__(self, base, **options):
        self.base, self.options = str(base), options
        self.mount = None
        self.fds = []
        self.up()

    def up(self):
        try:
            self.mount = PowerMount(self.base, **self.options)
        except Unavailable as e:
            pytest.skip("FUSE unavailable: %s" % e)

    def path(self, *parts):
        return self.mount.path(*parts)

    def open(self, name, flags=os.O_RDWR | os.O_CREAT, mode=0o644):
        fd = os.open(self.path(name), flags, mode)
        self.fds.append(fd)
        return fd

    def sync_dir(self, name=""):
        fd = os.open(self.path(name) if name else self.mount.mountpoint, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(fd)
        os.close(fd)

    def cut(self):
        """Cuts the power (nothing touches the mount after the freeze), then mounts what survived."""
        frozen = self.mount.cut()
        self.mount.stop()
        for fd in self.fds:   # closing sends FLUSH: only after the connection is gone
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []
        self.up()
        return frozen

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def names(self, name=""):
        return sorted(os.listdir(self.path(name)))

    def close(self):
        if self.mount:
            self.mount.stop()
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture(params=[False, True], ids=["write-through", "writeback-cache"])
def power(tmp_path, request):
    p = Power(tmp_path, writeback_cache=request.param)
    yield p
    p.close()


def durable_file(power, name, data):
    fd = power.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.write(fd, data)
    os.fsync(fd)
    power.sync_dir()


def test_unsynced_bytes_are_lost_and_fsynced_ones_stay(power):
    durable_file(power, "f", b"durable")
    fd = power.open("f")
    os.pwrite(fd, b"VOLATILE-TAIL", 7)
    os.pwrite(fd, b"D", 0)
    power.cut()
    assert power.read("f") == b"durable"
    fd = power.open("f")
    os.pwrite(fd, b"more", 7)
    os.fdatasync(fd)
    os.pwrite(fd, b"lost", 11)
    power.cut()
    assert power.read("f") == b"durablemore"


def test_o_append_writes_become_durable_on_fdatasync(power):
    durable_file(power, "journal", b"")
    fd = power.open("journal", os.O_WRONLY | os.O_APPEND)
    os.write(fd, b"one\n")
    os.write(fd, b"two\n")
    os.fdatasync(fd)
    os.write(fd, b"thr")
    power.cut()
    assert power.read("journal") == b"one\ntwo\n"


def test_a_new_file_needs_its_directory_synced(power):
    fd = power.open("new")
    os.write(fd, b"data")
    os.fsync(fd)          # data durable, name not
    power.cut()
    assert power.names() == []
    fd = power.open("new")
    os.write(fd, b"data")
    os.fsync(fd)
    power.sync_dir()
    power.cut()
    assert power.read("new") == b"data"


def test_a_name_made_durable_before_its_data_shows_the_durable_bytes(power):
    fd = power.open("empty")
    os.write(fd, b"never synced")
    power.sync_dir()
    power.cut()
    assert power.read("empty") == b""


def test_rename_and_unlink_need_the_directory_synced(power):
    durable_file(power, "config.json", b"old")
    durable_file(power, "doomed", b"x")
    fd = power.open("config.json.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.write(fd, b"new")
    os.fsync(fd)
    os.rename(power.path("config.json.tmp"), power.path("config.json"))
    os.link(power.path("config.json"), power.path("config.json.bak"))
    os.unlink(power.path("doomed"))
    power.cut()
    assert power.names() == ["config.json", "doomed"]
    assert power.read("config.json") == b"old"
    fd = power.open("config.json.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.write(fd, b"new")
    os.fsync(fd)
    os.link(power.path("config.json"), power.path("config.json.bak"))
    os.rename(power.path("config.json.tmp"), power.path("config.json"))
    os.unlink(power.path("doomed"))
    power.sync_dir()
    power.cut()
    assert power.names() == ["config.json", "config.json.bak"]
    assert (power.read("config.json"), power.read("config.json.bak")) == (b"new", b"old")


def test_directories_need_their_parent_synced(power):
    os.makedirs(power.path("a", "b"))
    fd = power.open("a/b/f")
    os.write(fd, b"x")
    os.fsync(fd)
    power.sync_dir("a/b")
    power.sync_dir("a")
    power.cut()
    assert power.names() == []
    os.makedirs(power.path("a", "b"))
    fd = power.open("a/b/f")
    os.write(fd, b"x")
    os.fsync(fd)
    for name in ("a/b", "a", ""):
        power.sync_dir(name)
    power.cut()
    assert power.read("a/b/f") == b"x"


def test_shared_mmap_pages_become_durable_on_msync_or_fdatasync(power):
    size = 1 << 20
    fd = power.open("segment")
    fallocate(fd, 0, 0, size)
    os.fdatasync(fd)
    power.sync_dir()
    mapping = mmap.mmap(fd, size)
    mapping[0:6] = b"MSYNCD"
    mapping.flush(0, 4096)                      # msync(MS_SYNC) of the first page
    mapping[4096:4102] = b"FDSYNC"
    os.fdatasync(fd)                            # writes the dirty page back, then FSYNC
    mapping[8192:8200] = b"VOLATILE"            # dirty in the page cache only
    power.cut()
    mapping.close()
    data = power.read("segment")
    assert len(data) == size
    assert data[0:6] == b"MSYNCD" and data[4096:4102] == b"FDSYNC"
    assert data[8192:8200] == bytes(8)


def test_fallocate_truncate_punch_hole_and_zero_range(power):
    fd = power.open("f")
    fallocate(fd, 0, 0, 65536)                  # size 64 KiB, durable only after fdatasync
    power.sync_dir()
    power.cut()
    assert power.read("f") == b""
    fd = power.open("f")
    fallocate(fd, 0, 0, 65536)
    os.pwrite(fd, b"\xff" * 65536, 0)
    os.fdatasync(fd)
    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096)
    fallocate(fd, FALLOC_FL_ZERO_RANGE, 8192, 4096)
    os.fdatasync(fd)
    os.ftruncate(fd, 16384)                     # a volatile shrink
    power.cut()
    data = power.read("f")
    assert len(data) == 65536
    assert data[:4096] == bytes(4096) and data[4096:8192] == b"\xff" * 4096
    assert data[8192:12288] == bytes(4096) and data[12288:] == b"\xff" * (65536 - 12288)
    fd = power.open("f")
    os.ftruncate(fd, 4196)                      # shrink and grow again: the middle reads zeros
    os.ftruncate(fd, 8192)
    os.fsync(fd)
    power.cut()
    assert power.read("f") == bytes(4096) + b"\xff" * 100 + bytes(3996)


def test_locks_statvfs_and_reads_work(power):
    fd = power.open("lock")
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    other = os.open(power.path("lock"), os.O_RDWR)
    power.fds.append(other)
    with pytest.raises(BlockingIOError):
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    stats = os.statvfs(power.mount.mountpoint)
    assert stats.f_bavail > 0 and stats.f_bsize > 0
    os.pwrite(fd, b"abc", 10)
    assert os.pread(other, 13, 0) == bytes(10) + b"abc"


def test_a_torn_write_keeps_a_sector_prefix_of_the_volatile_bytes(tmp_path):
    power = Power(tmp_path, tear=True, seed=7)
    try:
        size = 1 << 16
        durable_file(power, "log", bytes(size))
        fd = power.open("log")
        os.pwrite(fd, b"\xab" * 20000, 1000)
        frozen = power.cut()
        data = power.read("log")
        assert len(data) == size
        torn = len(data[1000:].split(b"\x00", 1)[0])
        assert "torn=/log[1000," in frozen, frozen
        assert data[:1000] == bytes(1000)
        assert (1000 + torn) % 512 == 0 and 0 < torn and 1000 + torn <= 21000
        assert data[1000 + torn:] == bytes(size - 1000 - torn)
    finally:
        power.close()


def test_journal_mode_commits_names_with_any_fsync(tmp_path):
    power = Power(tmp_path, metadata="journal")
    try:
        fd = power.open("new")
        os.write(fd, b"data")
        os.fsync(fd)
        power.cut()
        assert power.read("new") == b"data"
    finally:
        power.close()
