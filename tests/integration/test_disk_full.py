"""test_disk_full.py: a full disk, for real (issue 13 #6): the node's data directory is a small
tmpfs mounted by the test (root only; skipped with 77 where mounting is not allowed).
- Writes on a full disk fail with a clear error and leave nothing behind: no phantom documents
  after a failed bulk, no stub after a failed PUT /newidx; once space is freed the index takes
  writes again without a restart, and a restart still works.
- The flood-stage watermark blocks writes with 429 cluster_block_exception while reads and
  deletes go on, and lifts by itself when space returns."""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import Server, check, eq, run_tests  # noqa: E402


class Tmpfs:
    def __init__(self, mib):
        self.dir = tempfile.mkdtemp(prefix="qd-tmpfs-")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % mib, "tmpfs", self.dir],
                           capture_output=True, text=True)
        if r.returncode != 0:
            os.rmdir(self.dir)
            print("# skip: cannot mount a tmpfs here (%s)" % r.stderr.strip())
            sys.exit(77)

    def fill(self, leave_bytes=0):
        """Write a filler file until the filesystem is full (or LEAVE_BYTES remain)."""
        st = os.statvfs(self.dir)
        free = st.f_bavail * st.f_frsize - leave_bytes
        path = os.path.join(self.dir, "filler")
        with open(path, "ab") as f:
            try:
                while free > 0:
                    n = min(free, 1 << 20)
                    f.write(b"\0" * n)
                    f.flush()
                    free -= n
            except OSError:
                pass
        return path

    def close(self):
        subprocess.run(["umount", "-l", self.dir], capture_output=True)
        try:
            os.rmdir(self.dir)
        except OSError:
            pass


def bulk(s, index, ids, value):
    lines = []
    for i in ids:
        lines += [{"index": {"_index": index, "_id": str(i)}}, {"v": value, "t": "x" * 200}]
    return s.bulk(lines)


def count(s, index):
    s.http("POST", "/%s/_refresh" % index)
    r = s.http("GET", "/%s/_count" % index)
    check(r.status == 200, "count %s" % index, r)
    return r.json["count"]


def t_full_disk_fails_cleanly_and_recovers():
    fs = Tmpfs(24)
    try:
        with Server(data=os.path.join(fs.dir, "data"), extra=["--disk-flood-stage", "100",
                                                             "--disk-high", "100"]) as s:
            r = bulk(s, "a", range(20), 1)
            eq((r.status, r.json["errors"]), (200, False), "bulk before")
            eq(count(s, "a"), 20, "count before")
            filler = fs.fill()
            failed = None
            for attempt in range(5):  # SQLite may still find a free page for a small write
                r = bulk(s, "a", range(100, 600), 2)
                if r.status != 200 or r.json.get("errors"):
                    failed = r
                    break
            check(failed is not None, "a bulk on a full disk fails", r)
            n = count(s, "a")
            if attempt == 0:  # the usual case: the first bulk on a full disk fails whole
                eq(n, 20, "no phantom documents after the failed bulk")
                eq(s.http("GET", "/a/_doc/599").status, 404, "a failed id is not there")
            r = s.http("PUT", "/newidx")
            check(r.status >= 400, "PUT /newidx on a full disk fails", r)
            left = [f for f in os.listdir(os.path.join(s.data, "indices")) if "newidx" in f]
            eq(left, [], "nothing left of the failed create")
            os.unlink(filler)
            ok = None
            end = time.monotonic() + 20
            while time.monotonic() < end:  # the index is reopened from its store on next use
                r = bulk(s, "a", range(1000, 1010), 3)
                if r.status == 200 and not r.json.get("errors"):
                    ok = r
                    break
                time.sleep(0.3)
            check(ok is not None, "writes work again once space is freed, without a restart", r)
            base = count(s, "a")
            check(base >= 30, "the new documents are there: %d" % base)
            eq(s.http("PUT", "/newidx").status, 200, "the create works now")
            s.restart()
            eq(count(s, "a"), base, "count after a restart")
            check("ERROR: AddressSanitizer" not in s.logtext(), "no sanitizer report")
    finally:
        fs.close()


def t_flood_stage_blocks_writes_and_lifts():
    fs = Tmpfs(16)
    try:
        with Server(data=os.path.join(fs.dir, "data"), extra=["--disk-flood-stage", "80",
                                                             "--disk-high", "70"]) as s:
            eq(bulk(s, "w", range(5), 1).status, 200, "bulk before")
            st = os.statvfs(fs.dir)
            filler = fs.fill(leave_bytes=st.f_blocks * st.f_frsize // 10)  # ~90 % used
            blocked = None
            end = time.monotonic() + 15
            while time.monotonic() < end:
                r = s.http("PUT", "/w/_doc/9", {"v": 9})
                if r.status == 429:
                    blocked = r
                    break
                time.sleep(0.2)
            check(blocked is not None and blocked.json["error"]["type"] == "cluster_block_exception",
                  "writes get 429 cluster_block_exception", r)
            check("flood-stage watermark" in blocked.text, "the reason names the watermark", blocked)
            eq(bulk(s, "w", range(5, 8), 1).status, 429, "bulk is blocked too")
            eq(s.http("GET", "/w/_count").status, 200, "reads go on")
            eq(s.http("DELETE", "/w/_doc/1").status, 200, "deletes go on")
            m = s.http("GET", "/metrics").text
            check('quidditch_disk_watermark_exceeded{node="node-1"} 1' in m, "metric says so")
            os.unlink(filler)
            ok = None
            end = time.monotonic() + 15
            while time.monotonic() < end:
                r = s.http("PUT", "/w/_doc/9", {"v": 9})
                if r.status in (200, 201):
                    ok = r
                    break
                time.sleep(0.2)
            check(ok is not None, "the block lifts by itself", r)
            check("writes are blocked" in s.logtext() and "allowed again" in s.logtext(),
                  "both changes are logged")
    finally:
        fs.close()


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("# skip: mounting a tmpfs needs root")
        sys.exit(77)
    run_tests([
        ("a_full_disk_fails_writes_cleanly_and_recovers_without_a_restart",
         t_full_disk_fails_cleanly_and_recovers),
        ("the_flood_stage_watermark_blocks_writes_and_lifts_by_itself",
         t_flood_stage_blocks_writes_and_lifts),
    ])
