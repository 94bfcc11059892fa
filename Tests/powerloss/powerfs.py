#!/usr/bin/env python3
"""powerfs: a FUSE file system that keeps only what was made durable, so a test can cut the power.

It speaks the kernel's FUSE protocol on /dev/fuse directly (standard library only: no libfuse, no
pyfuse3, whose 3.2 API has no fallocate). Every file and directory lives twice:

- the *live* state, what processes see: inodes and names in memory, file bytes in host files under
  `--live` (a scratch directory, rebuilt from the durable state at every mount);
- the *durable* state, what survives a power cut: `--durable/meta.json` (directories' entries, inode
  kinds and modes) and `--durable/data/<ino>` (each file's durable bytes; its length is the durable size).

What becomes durable, and when (the model; stricter than ext4/xfs, where a journal commit also carries
earlier metadata changes -- `--metadata journal` models that instead):

- A file's bytes and size (writes, including pages the kernel writes back from a shared mmap; truncate;
  fallocate, punch-hole and zero-range) on fsync or fdatasync of that file (msync(MS_SYNC) and io_uring's
  FSYNC reach the same handler: the kernel writes the dirty pages back first, then sends FSYNC).
- A directory's entries (create, mkdir, link, unlink, rmdir, rename) on fsync of that directory (a
  rename between two directories needs both). `--metadata journal`: any fsync or fdatasync, of a file or
  a directory, makes every directory's entries durable (a global journal commit).
- Nothing else: a new file whose data was fsynced but whose directory was not is gone after the cut
  (its bytes land in `--durable/lost+found/<ino>` at the next mount, outside the file system, so a test
  can tell "never written" from "written, but its name was never made durable").

Power cut: SIGUSR1 freezes the file system at a request boundary (the request being handled completes
but gets no reply; nothing after it is applied) and, with `--tear`, copies a seeded random prefix,
in whole 512-byte sectors, of one file's first range of volatile bytes into the durable state (a torn
write: a subtree of the first two path levels, e.g. /store/commitlog, is drawn, then a file in it); then it
prints `frozen ...` on stdout. SIGTERM (or SIGUSR2) then exits at once: closing /dev/fuse aborts the
connection, so every request still pending fails. The harness SIGKILLs the processes using the mount
between the two signals, lazily unmounts, and mounts a fresh instance over `--durable`.

Locks (flock, fcntl) are left to the kernel (the daemon does not ask for FUSE_POSIX_LOCKS or
FUSE_FLOCK_LOCKS), which keeps them per mount, as a local file system does.

Exit status 77 with `unavailable: <reason>` on stdout: FUSE cannot work here (no /dev/fuse, no
permission to open it or to mount), so a test can skip with the reason.
"""
import argparse
import bisect
import ctypes
import ctypes.util
import errno
import json
import os
import random
import select
import shutil
import signal
import stat
import struct
import sys
import time
import traceback

# ---------------------------------------------------------------------------------------------------
# Protocol (linux/fuse.h, 7.38 layouts)

FUSE_LOOKUP, FUSE_FORGET, FUSE_GETATTR, FUSE_SETATTR = 1, 2, 3, 4
FUSE_READLINK, FUSE_SYMLINK, FUSE_MKNOD, FUSE_MKDIR = 5, 6, 8, 9
FUSE_UNLINK, FUSE_RMDIR, FUSE_RENAME, FUSE_LINK = 10, 11, 12, 13
FUSE_OPEN, FUSE_READ, FUSE_WRITE, FUSE_STATFS, FUSE_RELEASE = 14, 15, 16, 17, 18
FUSE_FSYNC, FUSE_FLUSH, FUSE_INIT = 20, 25, 26
FUSE_OPENDIR, FUSE_READDIR, FUSE_RELEASEDIR, FUSE_FSYNCDIR = 27, 28, 29, 30
FUSE_ACCESS, FUSE_CREATE, FUSE_INTERRUPT, FUSE_DESTROY = 34, 35, 36, 38
FUSE_BATCH_FORGET, FUSE_FALLOCATE, FUSE_RENAME2 = 42, 43, 45

FUSE_BIG_WRITES = 1 << 5
FUSE_WRITEBACK_CACHE = 1 << 16
FUSE_MAX_PAGES = 1 << 22
FOPEN_KEEP_CACHE = 1 << 1
FUSE_FSYNC_FDATASYNC = 1 << 0

FATTR_MODE, FATTR_UID, FATTR_GID, FATTR_SIZE = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FATTR_ATIME, FATTR_MTIME, FATTR_ATIME_NOW, FATTR_MTIME_NOW = 1 << 4, 1 << 5, 1 << 7, 1 << 8

FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE = 0x01, 0x02, 0x10
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2

IN_HEADER = struct.Struct("<IIQQIIIHH")          # len opcode unique nodeid uid gid pid extlen pad
OUT_HEADER = struct.Struct("<IiQ")               # len error unique
ATTR = struct.Struct("<QQQQQQIIIIIIIIII")        # fuse_attr (88 bytes)
ENTRY_OUT = struct.Struct("<QQQQII")             # nodeid generation entry_valid attr_valid nsecs (+attr)
ATTR_OUT = struct.Struct("<QII")                 # attr_valid nsec dummy (+attr)
OPEN_OUT = struct.Struct("<QII")
SETATTR_IN = struct.Struct("<IIQQQQQQIIIIIIII")
READ_IN = struct.Struct("<QQIIQII")
WRITE_IN = struct.Struct("<QQIIQII")
FALLOCATE_IN = struct.Struct("<QQQII")
KSTATFS = struct.Struct("<QQQQQIIII24x")

MAX_WRITE = 1 << 20
VALID = 3600        # seconds the kernel may cache names and attributes: only it changes this file system
SECTOR = 512
COPY_CHUNK = 1 << 20

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]


def fallocate(fd, mode, offset, length):
    if libc.fallocate(fd, mode, offset, length) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


class FuseError(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


# ---------------------------------------------------------------------------------------------------
# Byte ranges

class Ranges:
    """Disjoint, sorted, merged [start, end) byte ranges."""

    def __init__(self):
        self.starts, self.ends = [], []

    def add(self, start, end):
        if end <= start:
            return
        i = bisect.bisect_left(self.ends, start)          # first range that ends at or after start
        j = bisect.bisect_right(self.starts, end)         # ranges [i, j) touch [start, end]
        if i < j:
            start = min(start, self.starts[i])
            end = max(end, self.ends[j - 1])
        self.starts[i:j] = [start]
        self.ends[i:j] = [end]

    def clear(self):
        self.starts, self.ends = [], []

    def __iter__(self):
        return iter(zip(self.starts, self.ends))

    def __bool__(self):
        return bool(self.starts)

    def total(self):
        return sum(e - s for s, e in self)


# ---------------------------------------------------------------------------------------------------
# The live inodes

class Node:
    __slots__ = ("ino", "kind", "mode", "uid", "gid", "nlink", "entries", "parent", "nlookup", "opens",
                 "size", "dirty", "trunc_min", "fd", "atime", "mtime", "ctime")

    def __init__(self, ino, kind, mode, uid, gid):
        self.ino, self.kind, self.mode, self.uid, self.gid = ino, kind, mode, uid, gid
        self.nlink = 2 if kind == "d" else 0
        self.entries = {} if kind == "d" else None     # name (bytes) -> ino
        self.parent = None
        self.nlookup = 0
        self.opens = 0
        self.size = 0
        self.dirty = Ranges()       # bytes written since the last fsync (volatile)
        self.trunc_min = None       # smallest size since the last fsync, when it shrank
        self.fd = -1                # the live host file (files only)
        now = time.time()
        self.atime = self.mtime = self.ctime = now


def split_time(t):
    seconds = int(t)
    return seconds, int((t - seconds) * 1e9)


class PowerFS:
    def __init__(self, durable, live, seed, tear, metadata, writeback_cache, log):
        self.durable, self.live = durable, live
        self.data_dir = os.path.join(durable, "data")
        self.meta_path = os.path.join(durable, "meta.json")
        self.rng = random.Random(seed)
        self.tear, self.metadata, self.writeback_cache = tear, metadata, writeback_cache
        self.log = log
        self.nodes = {}
        self.handles = {}           # fh -> (ino, directory snapshot or None)
        self.next_fh = 1
        self.stats = {"fsync": 0, "fsyncdir": 0, "synced_bytes": 0, "writes": 0}
        self.load()

    # --- durable state --------------------------------------------------------------------------------

    def load(self):
        os.makedirs(self.data_dir, exist_ok=True)
        if os.path.exists(self.meta_path):
            with open(self.meta_path) as f:
                meta = json.load(f)
        else:
            meta = {"next_ino": 2, "inodes": {"1": {"kind": "d", "mode": 0o40755, "uid": 0, "gid": 0, "entries": {}}}}
        records = {int(k): v for k, v in meta["inodes"].items()}
        # Only what the root reaches through durable entries exists; the rest is garbage of the last run.
        reachable, stack = set(), [1]
        while stack:
            ino = stack.pop()
            if ino in reachable or ino not in records:
                continue
            reachable.add(ino)
            if records[ino]["kind"] == "d":
                stack.extend(records[ino]["entries"].values())
        self.durable_records = {ino: records[ino] for ino in reachable}
        self.next_ino = max([meta["next_ino"]] + [ino + 1 for ino in records])
        # Files whose bytes were made durable but whose name never was go to lost+found (as fsck would put
        # them), outside the file system: a test can tell "never written" from "written, then unreachable".
        lost = os.path.join(self.durable, "lost+found")
        shutil.rmtree(lost, ignore_errors=True)
        os.makedirs(lost)
        for name in os.listdir(self.data_dir):
            if not name.isdigit() or int(name) not in reachable:
                os.rename(os.path.join(self.data_dir, name), os.path.join(lost, name))
        self.write_meta()
        # The live state starts as a copy of the durable one.
        if os.path.isdir(self.live):
            for name in os.listdir(self.live):
                os.unlink(os.path.join(self.live, name))
        os.makedirs(self.live, exist_ok=True)
        for ino in sorted(reachable):
            r = self.durable_records[ino]
            node = Node(ino, r["kind"], r["mode"], r["uid"], r["gid"])
            if node.kind == "d":
                node.entries = {os.fsencode(name): child for name, child in r["entries"].items() if child in reachable}
            else:
                node.fd = os.open(self.live_path(ino), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
                source = self.data_path(ino)
                if os.path.exists(source):
                    node.size = sparse_copy(source, node.fd)
            self.nodes[ino] = node
        for node in list(self.nodes.values()):
            if node.kind == "d":
                for child in node.entries.values():
                    c = self.nodes[child]
                    if c.kind == "d":
                        c.parent = node.ino
                        node.nlink += 1
                    else:
                        c.nlink += 1
        self.nodes[1].parent = 1
        self.nodes[1].nlookup = 1

    def data_path(self, ino):
        return os.path.join(self.data_dir, str(ino))

    def live_path(self, ino):
        return os.path.join(self.live, str(ino))

    def write_meta(self):
        meta = {"next_ino": self.next_ino,
                "inodes": {str(ino): r for ino, r in self.durable_records.items()}}
        temporary = self.meta_path + ".tmp"
        with open(temporary, "w") as f:
            json.dump(meta, f)
        os.replace(temporary, self.meta_path)    # the host never loses power: replace is enough

    def record_for(self, node):
        return {"kind": node.kind, "mode": node.mode, "uid": node.uid, "gid": node.gid,
                **({"entries": {}} if node.kind == "d" else {})}

    def sync_entries(self, dirs):
        """Makes the live entries of `dirs` durable (fsync of a directory, or a journal commit)."""
        for d in dirs:
            record = self.durable_records.setdefault(d.ino, self.record_for(d))
            record["entries"] = {os.fsdecode(name): child for name, child in d.entries.items()}
            for child in d.entries.values():
                if child not in self.durable_records:
                    self.durable_records[child] = self.record_for(self.nodes[child])
        self.write_meta()

    def sync_data(self, node):
        """Makes the file's live bytes and size durable (fsync or fdatasync of the file)."""
        target = os.open(self.data_path(node.ino), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            durable_size = os.fstat(target).st_size
            if node.trunc_min is not None and node.trunc_min < durable_size:
                os.ftruncate(target, node.trunc_min)
            for start, end in node.dirty:
                copy_range(node.fd, target, start, min(end, node.size))
                self.stats["synced_bytes"] += max(0, min(end, node.size) - start)
            os.ftruncate(target, node.size)
        finally:
            os.close(target)
        node.dirty.clear()
        node.trunc_min = None
        if node.ino in self.durable_records:
            self.durable_records[node.ino]["mode"] = node.mode

    def cut(self):
        """The power cut: optionally tears one file's volatile bytes into the durable state."""
        torn = "none"
        if self.tear:
            # Where a tear can land: whole sectors of a file's volatile bytes below its durable size (a write
            # past it would need a size change that was never made durable). The first such range of each file:
            # for an append-only log, the next bytes after its durable end.
            tearable = {}
            for ino, node in sorted(self.nodes.items()):
                if node.kind != "f" or not node.dirty:
                    continue
                target_path = self.data_path(ino)
                durable_size = os.path.getsize(target_path) if os.path.exists(target_path) else 0
                if node.trunc_min is not None:
                    durable_size = min(durable_size, node.trunc_min)
                for start, end in node.dirty:
                    end = min(end, durable_size, node.size)
                    if end // SECTOR > start // SECTOR:      # a sector boundary past start: a prefix to keep
                        path = self.path_of(ino)
                        group = "/".join(path.split("/")[:3])    # e.g. /store/commitlog: each subtree is as likely
                        tearable.setdefault(group, []).append((node, path, start, end))
                        break
            if tearable:
                group = self.rng.choice(sorted(tearable))
                node, path, start, end = self.rng.choice(tearable[group])
                stop = self.rng.randint(start // SECTOR + 1, end // SECTOR) * SECTOR
                target = os.open(self.data_path(node.ino), os.O_RDWR)
                try:
                    copy_range(node.fd, target, start, stop)
                finally:
                    os.close(target)
                torn = "%s[%d,%d)of[%d,%d)" % (path, start, stop, start, end)
        volatile = sum(n.dirty.total() for n in self.nodes.values() if n.kind == "f")
        return "torn=%s volatile_bytes=%d" % (torn, volatile)

    def path_of(self, ino):
        for d in self.nodes.values():
            if d.kind == "d":
                for name, child in d.entries.items():
                    if child == ino:
                        return (self.path_of(d.ino) if d.ino != 1 else "") + "/" + os.fsdecode(name)
        return "#%d" % ino

    # --- helpers --------------------------------------------------------------------------------------

    def node(self, ino):
        node = self.nodes.get(ino)
        if node is None:
            raise FuseError(errno.ENOENT)
        return node

    def directory(self, ino):
        node = self.node(ino)
        if node.kind != "d":
            raise FuseError(errno.ENOTDIR)
        return node

    def attr(self, node):
        a, an = split_time(node.atime)
        m, mn = split_time(node.mtime)
        c, cn = split_time(node.ctime)
        size = node.size if node.kind == "f" else 4096
        return ATTR.pack(node.ino, size, (size + 511) // 512, a, m, c, an, mn, cn, node.mode, node.nlink,
                         node.uid, node.gid, 0, 4096, 0)

    def entry(self, node):
        node.nlookup += 1
        return ENTRY_OUT.pack(node.ino, 0, VALID, VALID, 0, 0) + self.attr(node)

    def new_node(self, kind, mode, uid, gid):
        ino = self.next_ino
        self.next_ino += 1
        node = Node(ino, kind, mode, uid, gid)
        if kind == "f":
            node.fd = os.open(self.live_path(ino), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self.nodes[ino] = node
        return node

    def link_into(self, parent, name, node):
        if name in parent.entries:
            raise FuseError(errno.EEXIST)
        parent.entries[name] = node.ino
        if node.kind == "d":
            node.parent = parent.ino
            node.nlink = 2
            parent.nlink += 1
        else:
            node.nlink += 1
        parent.mtime = parent.ctime = node.ctime = time.time()

    def unlink_from(self, parent, name):
        ino = parent.entries.pop(name)
        node = self.nodes[ino]
        if node.kind == "d":
            parent.nlink -= 1
            node.nlink = 0
        else:
            node.nlink -= 1
        parent.mtime = parent.ctime = node.ctime = time.time()
        self.maybe_drop(node)

    def maybe_drop(self, node):
        if node.nlink == 0 and node.nlookup <= 0 and node.opens == 0 and node.ino != 1:
            if node.fd >= 0:
                os.close(node.fd)
                os.unlink(self.live_path(node.ino))
            del self.nodes[node.ino]

    def set_size(self, node, size):
        if size < node.size:
            node.trunc_min = size if node.trunc_min is None else min(node.trunc_min, size)
        os.ftruncate(node.fd, size)
        node.size = size

    def journal_commit(self):
        if self.metadata == "journal":
            self.sync_entries([n for n in self.nodes.values() if n.kind == "d"])

    # --- operations: each takes (header fields, payload) and returns the reply body ---------------------

    def op_init(self, h, body):
        major, minor, max_readahead, flags = struct.unpack_from("<IIII", body)
        if major != 7:
            raise FuseError(errno.EPROTO)
        want = flags & (FUSE_BIG_WRITES | FUSE_MAX_PAGES)
        if self.writeback_cache:
            want |= flags & FUSE_WRITEBACK_CACHE
        return struct.pack("<IIIIHHIIHHI28x", 7, min(minor, 38), max_readahead, want, 16, 12, MAX_WRITE, 1,
                           MAX_WRITE // 4096, 0, 0)

    def op_lookup(self, h, body):
        parent = self.directory(h[3])
        name = body.split(b"\0", 1)[0]
        if name == b".":
            return self.entry(parent)
        if name == b"..":
            return self.entry(self.nodes[parent.parent])
        ino = parent.entries.get(name)
        if ino is None:
            raise FuseError(errno.ENOENT)
        return self.entry(self.nodes[ino])

    def forget(self, ino, count):
        node = self.nodes.get(ino)
        if node is not None and ino != 1:
            node.nlookup -= count
            self.maybe_drop(node)

    def op_getattr(self, h, body):
        return ATTR_OUT.pack(VALID, 0, 0) + self.attr(self.node(h[3]))

    def op_setattr(self, h, body):
        node = self.node(h[3])
        (valid, _, fh, size, _, atime, mtime, _, atimensec, mtimensec, _, mode, _, uid, gid, _) = SETATTR_IN.unpack_from(body)
        if valid & FATTR_SIZE:
            if node.kind != "f":
                raise FuseError(errno.EISDIR)
            self.set_size(node, size)
            node.mtime = time.time()
        if valid & FATTR_MODE:
            node.mode = (node.mode & ~0o7777) | (mode & 0o7777)
        if valid & FATTR_UID:
            node.uid = uid
        if valid & FATTR_GID:
            node.gid = gid
        now = time.time()
        if valid & FATTR_ATIME:
            node.atime = atime + atimensec / 1e9
        if valid & FATTR_ATIME_NOW:
            node.atime = now
        if valid & FATTR_MTIME:
            node.mtime = mtime + mtimensec / 1e9
        if valid & FATTR_MTIME_NOW:
            node.mtime = now
        node.ctime = now
        return ATTR_OUT.pack(VALID, 0, 0) + self.attr(node)

    def op_mknod(self, h, body):
        mode, rdev, umask, _ = struct.unpack_from("<IIII", body)
        if not stat.S_ISREG(mode):
            raise FuseError(errno.EPERM)
        return self.make(h, body[16:], "f", mode)

    def op_mkdir(self, h, body):
        mode, umask = struct.unpack_from("<II", body)
        return self.make(h, body[8:], "d", stat.S_IFDIR | (mode & 0o7777))

    def make(self, h, rest, kind, mode):
        parent = self.directory(h[3])
        name = rest.split(b"\0", 1)[0]
        if name in parent.entries:
            raise FuseError(errno.EEXIST)
        node = self.new_node(kind, mode, h[4], h[5])
        self.link_into(parent, name, node)
        return self.entry(node)

    def op_create(self, h, body):
        flags, mode, umask, _ = struct.unpack_from("<IIII", body)
        parent = self.directory(h[3])
        name = body[16:].split(b"\0", 1)[0]
        if name in parent.entries:
            raise FuseError(errno.EEXIST)     # the kernel sends CREATE only for names it found missing
        node = self.new_node("f", stat.S_IFREG | (mode & 0o7777), h[4], h[5])
        self.link_into(parent, name, node)
        entry = self.entry(node)
        return entry + OPEN_OUT.pack(self.open_handle(node, None), FOPEN_KEEP_CACHE, 0)

    def op_unlink(self, h, body):
        parent = self.directory(h[3])
        name = body.split(b"\0", 1)[0]
        ino = parent.entries.get(name)
        if ino is None:
            raise FuseError(errno.ENOENT)
        if self.nodes[ino].kind == "d":
            raise FuseError(errno.EISDIR)
        self.unlink_from(parent, name)
        return b""

    def op_rmdir(self, h, body):
        parent = self.directory(h[3])
        name = body.split(b"\0", 1)[0]
        ino = parent.entries.get(name)
        if ino is None:
            raise FuseError(errno.ENOENT)
        node = self.nodes[ino]
        if node.kind != "d":
            raise FuseError(errno.ENOTDIR)
        if node.entries:
            raise FuseError(errno.ENOTEMPTY)
        self.unlink_from(parent, name)
        return b""

    def op_rename(self, h, body):
        (newdir,) = struct.unpack_from("<Q", body)
        return self.rename(h[3], newdir, 0, body[8:])

    def op_rename2(self, h, body):
        newdir, flags, _ = struct.unpack_from("<QII", body)
        return self.rename(h[3], newdir, flags, body[16:])

    def rename(self, olddir, newdir, flags, names):
        if flags & ~RENAME_NOREPLACE:
            raise FuseError(errno.EINVAL)
        source, target = self.directory(olddir), self.directory(newdir)
        oldname, newname = names.split(b"\0")[:2]
        ino = source.entries.get(oldname)
        if ino is None:
            raise FuseError(errno.ENOENT)
        node = self.nodes[ino]
        existing = target.entries.get(newname)
        if existing == ino:
            return b""
        if existing is not None:
            if flags & RENAME_NOREPLACE:
                raise FuseError(errno.EEXIST)
            victim = self.nodes[existing]
            if victim.kind == "d":
                if node.kind != "d":
                    raise FuseError(errno.EISDIR)
                if victim.entries:
                    raise FuseError(errno.ENOTEMPTY)
            elif node.kind == "d":
                raise FuseError(errno.ENOTDIR)
            self.unlink_from(target, newname)
        del source.entries[oldname]
        if node.kind == "d":
            source.nlink -= 1
            node.parent = target.ino
            target.nlink += 1
        target.entries[newname] = ino
        source.mtime = source.ctime = target.mtime = target.ctime = node.ctime = time.time()
        return b""

    def op_link(self, h, body):
        (oldino,) = struct.unpack_from("<Q", body)
        parent = self.directory(h[3])
        node = self.node(oldino)
        if node.kind == "d":
            raise FuseError(errno.EPERM)
        self.link_into(parent, body[8:].split(b"\0", 1)[0], node)
        return self.entry(node)

    def open_handle(self, node, snapshot):
        fh = self.next_fh
        self.next_fh += 1
        self.handles[fh] = (node.ino, snapshot)
        node.opens += 1
        return fh

    def release_handle(self, fh):
        ino, _ = self.handles.pop(fh, (None, None))
        node = self.nodes.get(ino)
        if node is not None:
            node.opens -= 1
            self.maybe_drop(node)

    def op_open(self, h, body):
        node = self.node(h[3])
        if node.kind == "d":
            raise FuseError(errno.EISDIR)
        return OPEN_OUT.pack(self.open_handle(node, None), FOPEN_KEEP_CACHE, 0)

    def op_read(self, h, body):
        fh, offset, size, _, _, _, _ = READ_IN.unpack_from(body)
        node = self.node(h[3])
        end = min(node.size, offset + size)
        if end <= offset:
            return b""
        data = os.pread(node.fd, end - offset, offset)
        return data + bytes(end - offset - len(data))

    def op_write(self, h, body):
        fh, offset, size, _, _, _, _ = WRITE_IN.unpack_from(body)
        node = self.node(h[3])
        data = body[WRITE_IN.size:WRITE_IN.size + size]
        os.pwrite(node.fd, data, offset)
        node.dirty.add(offset, offset + len(data))
        node.size = max(node.size, offset + len(data))
        node.mtime = node.ctime = time.time()
        self.stats["writes"] += 1
        return struct.pack("<II", len(data), 0)

    def op_fallocate(self, h, body):
        fh, offset, length, mode, _ = FALLOCATE_IN.unpack_from(body)
        node = self.node(h[3])
        if mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE):
            raise FuseError(errno.EOPNOTSUPP)
        try:
            fallocate(node.fd, mode, offset, length)
        except OSError as e:
            raise FuseError(e.errno)
        end = offset + length
        if mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE):
            node.dirty.add(offset, min(end, node.size))     # those bytes are zeros now, volatile as any write
        if not mode & FALLOC_FL_KEEP_SIZE and end > node.size:
            node.size = end
        node.mtime = node.ctime = time.time()
        return b""

    def op_statfs(self, h, body):
        s = os.statvfs(self.live)
        return KSTATFS.pack(s.f_blocks, s.f_bfree, s.f_bavail, s.f_files, s.f_ffree, s.f_bsize, 255, s.f_frsize, 0)

    def op_release(self, h, body):
        self.release_handle(struct.unpack_from("<Q", body)[0])
        return b""

    def op_flush(self, h, body):
        return b""

    def op_fsync(self, h, body):
        node = self.node(h[3])
        if node.kind == "f":
            self.sync_data(node)
        self.stats["fsync"] += 1
        if self.metadata == "journal":
            self.journal_commit()
        elif node.ino in self.durable_records:
            self.write_meta()
        return b""

    def op_fsyncdir(self, h, body):
        node = self.directory(h[3])
        self.stats["fsyncdir"] += 1
        if self.metadata == "journal":
            self.journal_commit()
        else:
            self.sync_entries([node])
        return b""

    def op_opendir(self, h, body):
        node = self.directory(h[3])
        snapshot = [(b".", node.ino, "d"), (b"..", node.parent, "d")]
        snapshot += [(name, ino, self.nodes[ino].kind) for name, ino in sorted(node.entries.items())]
        return OPEN_OUT.pack(self.open_handle(node, snapshot), 0, 0)

    def op_readdir(self, h, body):
        fh, offset, size, _, _, _, _ = READ_IN.unpack_from(body)
        _, snapshot = self.handles.get(fh, (None, None))
        if snapshot is None:
            raise FuseError(errno.EBADF)
        out = bytearray()
        for index in range(offset, len(snapshot)):
            name, ino, kind = snapshot[index]
            record = struct.pack("<QQII", ino, index + 1, len(name), 4 if kind == "d" else 8) + name
            record += bytes(-len(record) % 8)
            if len(out) + len(record) > size:
                break
            out += record
        return bytes(out)

    def op_releasedir(self, h, body):
        self.release_handle(struct.unpack_from("<Q", body)[0])
        return b""


def copy_range(source, target, start, end):
    """Copies bytes [start, end) of fd `source` to fd `target`; all-zero chunks become holes."""
    while start < end:
        n = min(COPY_CHUNK, end - start)
        data = os.pread(source, n, start)
        data += bytes(n - len(data))
        if data.count(0) == n:
            size = os.fstat(target).st_size
            if start < size:
                fallocate(target, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, start, min(n, size - start))
        else:
            os.pwrite(target, data, start)
        start += n


def sparse_copy(path, target):
    """Copies the file at `path` into fd `target`, data extents only; returns its size."""
    source = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(source).st_size
        position = 0
        while position < size:
            try:
                data = os.lseek(source, position, os.SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:
                    break
                raise
            hole = os.lseek(source, data, os.SEEK_HOLE)
            at = data
            while at < hole:
                n = os.copy_file_range(source, target, min(hole - at, 1 << 26), at, at)
                if n <= 0:
                    raise OSError(errno.EIO, "short copy")
                at += n
            position = hole
        os.ftruncate(target, size)
        return size
    finally:
        os.close(source)


HANDLERS = {
    FUSE_INIT: "op_init", FUSE_LOOKUP: "op_lookup", FUSE_GETATTR: "op_getattr", FUSE_SETATTR: "op_setattr",
    FUSE_MKNOD: "op_mknod", FUSE_MKDIR: "op_mkdir", FUSE_CREATE: "op_create", FUSE_UNLINK: "op_unlink",
    FUSE_RMDIR: "op_rmdir", FUSE_RENAME: "op_rename", FUSE_RENAME2: "op_rename2", FUSE_LINK: "op_link",
    FUSE_OPEN: "op_open", FUSE_READ: "op_read", FUSE_WRITE: "op_write", FUSE_FALLOCATE: "op_fallocate",
    FUSE_STATFS: "op_statfs", FUSE_RELEASE: "op_release", FUSE_FLUSH: "op_flush", FUSE_FSYNC: "op_fsync",
    FUSE_FSYNCDIR: "op_fsyncdir", FUSE_OPENDIR: "op_opendir", FUSE_READDIR: "op_readdir",
    FUSE_RELEASEDIR: "op_releasedir",
}


# ---------------------------------------------------------------------------------------------------
# Mount and serve

def unavailable(reason):
    print("unavailable: %s" % reason, flush=True)
    sys.exit(77)


def mount(mountpoint):
    device = os.environ.get("POWERFS_DEVICE", "/dev/fuse")     # another path: to see the skip path work
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        unavailable("%s: %s" % (device, e.strerror))
    options = "fd=%d,rootmode=40000,user_id=%d,group_id=%d,default_permissions,allow_other" % (
        fd, os.getuid(), os.getgid())
    if libc.mount(b"powerfs", os.fsencode(mountpoint), b"fuse.powerfs", 0, options.encode()) != 0:
        code = ctypes.get_errno()
        if code in (errno.EPERM, errno.EACCES, errno.ENODEV):
            unavailable("mount(fuse) %s: %s" % (mountpoint, os.strerror(code)))
        raise OSError(code, "mount %s: %s" % (mountpoint, os.strerror(code)))
    return fd


class Signals:
    """SIGUSR1 (cut) and SIGTERM/SIGUSR2 (exit) as flags, with a self-pipe (signal.set_wakeup_fd) that the main
    loop polls beside /dev/fuse: a signal arriving just before a blocking read is never missed."""

    def __init__(self):
        self.cut = self.exit = False
        self.wake, writer = os.pipe()
        os.set_blocking(self.wake, False)
        os.set_blocking(writer, False)
        signal.set_wakeup_fd(writer)
        signal.signal(signal.SIGUSR1, self.on_cut)
        for number in (signal.SIGTERM, signal.SIGUSR2):
            signal.signal(number, self.on_exit)

    def on_cut(self, signum, frame):
        self.cut = True

    def on_exit(self, signum, frame):
        self.exit = True

    def drain(self):
        try:
            while os.read(self.wake, 512):
                pass
        except BlockingIOError:
            pass


def parent_gone(parent):
    """With --exit-with-parent PID: whether that process is gone (this daemon was re-parented)."""
    return parent is not None and os.getppid() != parent


def serve(fs, fd, signals, trace, parent=None):
    """Answers requests until the power is cut ("cut"), an exit is asked ("exit") or the mount goes away."""
    buffer_size = MAX_WRITE + 65536
    os.set_blocking(fd, False)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    poller.register(signals.wake, select.POLLIN)
    while True:
        if signals.exit or parent_gone(parent):
            return "exit"
        if signals.cut:
            return "cut"
        ready = {f for f, _ in poller.poll(None if parent is None else 500)}
        if signals.wake in ready:
            signals.drain()
            continue
        try:
            request = os.read(fd, buffer_size)
        except BlockingIOError:
            continue
        except OSError as e:
            if e.errno == errno.ENOENT:      # the request was interrupted before we read it
                continue
            if e.errno == errno.ENODEV:      # unmounted
                return "unmounted"
            raise
        reply = handle(fs, request, trace)
        if signals.cut or signals.exit:      # the cut came during this request: it is applied, never answered
            continue
        if reply is not None:
            try:
                os.write(fd, reply)
            except OSError as e:
                if e.errno != errno.ENOENT:  # the request was interrupted and is gone
                    raise


def handle(fs, request, trace):
    h = IN_HEADER.unpack_from(request)
    opcode, unique = h[1], h[2]
    body = request[IN_HEADER.size:]
    if opcode == FUSE_FORGET:
        fs.forget(h[3], struct.unpack_from("<Q", body)[0])
        return None
    if opcode == FUSE_BATCH_FORGET:
        (count,) = struct.unpack_from("<I", body)
        for i in range(count):
            ino, n = struct.unpack_from("<QQ", body, 8 + 16 * i)
            fs.forget(ino, n)
        return None
    if opcode == FUSE_INTERRUPT:
        return None
    name = HANDLERS.get(opcode)
    error, payload = 0, b""
    if name is None:
        error = errno.ENOSYS
    else:
        try:
            payload = getattr(fs, name)(h, body)
        except FuseError as e:
            error = e.code
        except OSError as e:
            error = e.errno or errno.EIO
        except Exception:                    # a bug here: say so, answer EIO, keep serving
            traceback.print_exc()
            error = errno.EIO
    if trace:
        trace.write("%s ino=%d -> %s\n" % (name or opcode, h[3], error or len(payload)))
    if error:
        return OUT_HEADER.pack(OUT_HEADER.size, -error, unique)
    return OUT_HEADER.pack(OUT_HEADER.size + len(payload), 0, unique) + payload


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--durable", help="the durable state (created if missing)")
    parser.add_argument("--live", help="scratch directory for the live bytes (emptied)")
    parser.add_argument("--mountpoint")
    parser.add_argument("--seed", type=int, default=0, help="seeds the torn write")
    parser.add_argument("--tear", action="store_true", help="on a power cut, tear one file's volatile bytes")
    parser.add_argument("--metadata", choices=("strict", "journal"), default="strict")
    parser.add_argument("--writeback-cache", action="store_true", help="ask the kernel for FUSE_WRITEBACK_CACHE")
    parser.add_argument("--trace", help="append one line per request to this file")
    parser.add_argument("--exit-with-parent", type=int, metavar="PID",
                        help="exit once process PID (our parent) is gone, checked every 0.5 s, instead of "
                        "PR_SET_PDEATHSIG, which fires when the parent *thread* ends (a launcher that starts us "
                        "from a pool thread)")
    parser.add_argument("--probe", action="store_true",
                        help="only check that FUSE works here: mount a scratch file system in a temporary "
                        "directory, unmount it, exit 0 (or 77 with `unavailable: ...`)")
    args = parser.parse_args()
    if args.probe:
        probe()
    if not (args.durable and args.live and args.mountpoint):
        parser.error("--durable, --live and --mountpoint are required")
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGUSR2, lambda *_: os._exit(0))
    if args.exit_with_parent is None:
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)    # PR_SET_PDEATHSIG: a harness that dies takes the power with it
    fs = PowerFS(args.durable, args.live, args.seed, args.tear, args.metadata, args.writeback_cache, None)
    fd = mount(args.mountpoint)
    trace = open(args.trace, "a", buffering=1) if args.trace else None
    signals = Signals()
    print("ready", flush=True)
    outcome = serve(fs, fd, signals, trace, args.exit_with_parent)
    if outcome == "cut":
        detail = fs.cut()
        print("frozen %s fsync=%d fsyncdir=%d writes=%d synced_bytes=%d" % (
            detail, fs.stats["fsync"], fs.stats["fsyncdir"], fs.stats["writes"], fs.stats["synced_bytes"]), flush=True)
        # Frozen: nothing more is applied; SIGTERM (or the parent gone) exits and aborts the connection.
        while not signals.exit and not parent_gone(args.exit_with_parent):
            select.select([signals.wake], [], [], None if args.exit_with_parent is None else 0.5)
            signals.drain()
    os._exit(0)


def probe():
    """Mounts an empty powerfs in a temporary directory and detaches it at once: exit 0 when FUSE works here,
    77 with `unavailable: <reason>` (no /dev/fuse, no permission to open it or to mount) when it does not."""
    import tempfile
    base = tempfile.mkdtemp(prefix="powerfs-probe-")
    mountpoint = os.path.join(base, "mnt")
    os.mkdir(mountpoint)
    try:
        fd = mount(mountpoint)          # exits 77 with the reason when FUSE cannot work
        libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        if libc.umount2(os.fsencode(mountpoint), 2) != 0:    # MNT_DETACH: nobody serves it
            code = ctypes.get_errno()
            print("unavailable: umount2 %s: %s" % (mountpoint, os.strerror(code)), flush=True)
            sys.exit(77)
        os.close(fd)
        print("available", flush=True)
        sys.exit(0)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
