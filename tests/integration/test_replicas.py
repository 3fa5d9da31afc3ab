"""test_replicas.py: replicas and failover with real processes on loopback: etcd + 3 data
nodes + a coordinator, an index with 3 shards and 1 replica (docs/cluster.md, "Replication").
Copies are placed on distinct nodes and a write is acknowledged by both; a copy refuses a
stale primary term; then, while a writer records every acknowledged _id with its value and a
reader searches: SIGKILL the node of a primary (an in-sync copy is promoted under a new term,
the restarted node recovers its copies), SIGSTOP a node past its lease and SIGCONT it (it must
not accept writes with its stale term). At the end every acknowledged document is present with
its last acknowledged value on every copy, no copy has a value that was never written, copies
agree per shard, and failed searches are counted (none allowed while only data nodes fail). A
dead node's copy is re-allocated after index.unassigned.node_left.delayed_timeout, and the
returning node deletes its orphaned copy. A promoted primary resyncs its copies: a deposed
primary's unacknowledged write (left on one replica by a test-only hook,
QD_TEST_PARTIAL_REPLICATION) is rolled back there. A primary's op log survives its restart, so
a returning replica still recovers by operations. A copy whose disk fills (a tmpfs; skipped
where it cannot be mounted) leaves the in-sync set without losing an acknowledged write, and
recovers once space is back; a primary whose disk fills steps down and its in-sync copy is
promoted. Skipped (77) without /usr/bin/etcd.
QD_CHAOS=1 (make chaos) runs longer with more faults: kill the coordinator, restart etcd."""
import json
import os
import random
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import (ETCD, Etcd, Server, check, eq, run_tests, skip, skip_all,  # noqa: E402
                    wait_for)

TTL = 2  # seconds: the data nodes' lease
CHAOS = os.environ.get("QD_CHAOS") == "1"
C = {}


def data_node(name, etcd):
    return Server(name=name, extra=["--role", "data", "--etcd", etcd.url, "--lease-ttl", str(TTL)])


def coordinator(name, etcd):
    return Server(name=name, extra=["--role", "coord", "--etcd", etcd.url, "--lease-ttl",
                                    str(TTL)])


def co():
    return C["coord"]


def shards(index="rep"):
    return [r for r in co().http("GET", "/_cat/shards?format=json").json if r["index"] == index]


def health():
    return co().http("GET", "/_cluster/health").json


def node(name):
    return [d for d in C["data"] if d.name == name][0]


def meta(index="rep"):
    """The index's metadata straight from etcd (the shard map with terms and in-sync sets)."""
    import base64
    import urllib.request
    key = base64.b64encode(("/quidditch/v1/indexes/" + index).encode()).decode()
    req = urllib.request.Request(C["etcd"].url + "/v3/kv/range",
                                 data=json.dumps({"key": key}).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        kvs = json.loads(resp.read()).get("kvs", [])
    return json.loads(base64.b64decode(kvs[0]["value"])) if kvs else None


def setup():
    if not os.path.exists(ETCD):
        skip_all("no etcd at %s (scripts/deps.sh installs etcd-server)" % ETCD)
    etcd = Etcd().start()
    C["etcd"] = etcd
    # the test-only hook of src/cluster/replicate.c: a primary forwards a write of an _id
    # "qd-partial-*" to its last replicas only and does not acknowledge it
    os.environ["QD_TEST_PARTIAL_REPLICATION"] = "1"
    C["data"] = [data_node("dn%d" % i, etcd).start() for i in (1, 2, 3)]
    C["coord"] = coordinator("co1", etcd).start()
    wait_for("a leader and 3 data nodes", lambda: health()["number_of_data_nodes"] == 3 and any(
        r["master"] == "*" for r in co().http("GET", "/_cat/nodes?format=json").json))
    r = co().http("PUT", "/rep", {"settings": {
        "number_of_shards": 3, "number_of_replicas": 1,
        "index.unassigned.node_left.delayed_timeout": "60s"},
        "mappings": {"properties": {"v": {"type": "long"}}}})
    eq(r.status, 200, "create the index: %r" % r)


def teardown():
    keep = os.environ.get("QD_KEEP")  # keep the data and logs for a look
    if keep:
        print("# kept: " + " ".join(s.tmp for s in C.get("data", []) + [C["coord"]]))
        for s in C.get("data", []) + [C["coord"]]:
            s.close = s.stop
    for d in C.get("data", []):
        if d.proc:
            try:
                os.kill(d.proc.pid, signal.SIGCONT)
            except OSError:
                pass
        d.close()
    if C.get("coord"):
        C["coord"].close()
    if C.get("etcd"):
        C["etcd"].stop() if keep else C["etcd"].close()


def t_copies_on_distinct_nodes_and_writes_acked_by_both():
    rows = shards()
    eq(len(rows), 6, "3 shards x 2 copies: %r" % rows)
    for s in "012":
        copies = [r for r in rows if r["shard"] == s]
        eq(sorted(r["prirep"] for r in copies), ["p", "r"], "shard %s: a primary and a replica" % s)
        eq(len({r["node"] for r in copies}), 2, "shard %s on two distinct nodes" % s)
        eq({r["state"] for r in copies}, {"STARTED"}, "shard %s started" % s)
    h = health()
    eq((h["status"], h["active_shards"], h["active_primary_shards"], h["unassigned_shards"]),
       ("green", 6, 3, 0), "health")
    r = co().http("PUT", "/rep/_doc/first", {"v": 1})
    eq(r.status, 201, "a write: %r" % r)
    eq((r.json["_shards"]["total"], r.json["_shards"]["successful"], r.json["_primary_term"]),
       (2, 2, 1), "acknowledged by both copies")
    lines = []
    for i in range(60):
        lines += [{"index": {"_index": "rep", "_id": "b%d" % i}}, {"v": i}]
    r = co().bulk(lines)
    check(r.status == 200 and not r.json["errors"], "bulk", r)
    eq({it["index"]["_shards"]["successful"] for it in r.json["items"]}, {2}, "bulk items on 2")
    rows = shards()
    for s in "012":
        eq(len({r["docs"] for r in rows if r["shard"] == s}), 1, "copies of %s agree: %r"
           % (s, rows))
    eq(sum(int(r["docs"]) for r in rows if r["prirep"] == "p"), 61, "61 documents")


def t_a_copy_refuses_a_stale_term():
    m = meta()
    sh = m["shards"][0]
    rep = sh["copies"][1]["node"]
    body = {"term": sh["primary_term"], "primary": "not-the-primary",
            "ops": [{"seq": 99, "id": "evil", "v": 1, "src": "{\"v\": -1}"}]}
    r = node(rep).http("POST", "/_internal/replica/rep/0", body)
    eq(r.status, 409, "a request from a node that is not the primary: %r" % r)
    body["term"] = 0
    r = node(rep).http("POST", "/_internal/replica/rep/0", body)
    eq(r.status, 400, "term 0 is not a term: %r" % r)
    r = node(sh["copies"][0]["node"]).http("POST", "/_internal/replica/rep/0", dict(
        body, term=sh["primary_term"], primary=sh["copies"][0]["node"]))
    eq(r.status, 409, "the primary itself refuses a replica request of its own term: %r" % r)
    r = node(rep).http("PUT", "/rep~0/_doc/evil", {"v": -1})
    eq(r.status, 503, "a replica refuses a client write on its shard: %r" % r)
    r = co().http("GET", "/rep/_doc/evil")
    eq(r.status, 404, "nothing of it was stored")


class Load:
    """A writer per key space recording acknowledged values; a reader counting failures."""

    def __init__(self, writers=3, keys=60):
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked = {}      # id -> last acknowledged value
        self.tried = {}      # id -> values written (acked or not), in order
        self.counter = 0
        self.writes_ok = self.writes_failed = 0
        self.searches = self.search_failures = 0
        self.phase = "data nodes"  # failed searches are counted per phase of the faults
        self.failures_by_phase = {}
        self.last_ok = {}    # shard-free: wall time of the last acknowledged write
        self.threads = [threading.Thread(target=self.writer, args=(w, keys), daemon=True)
                        for w in range(writers)]
        self.threads.append(threading.Thread(target=self.reader, daemon=True))
        for t in self.threads:
            t.start()

    def writer(self, w, keys):
        rnd = random.Random(w)
        while not self.stop.is_set():
            k = "w%d-%d" % (w, rnd.randrange(keys))
            with self.lock:
                self.counter += 1
                v = self.counter
                self.tried.setdefault(k, []).append(v)
            try:
                r = co().http("PUT", "/rep/_doc/" + k, {"v": v}, timeout=40)
                ok = r.status in (200, 201)
            except OSError:
                ok = False
            with self.lock:
                if ok:
                    self.acked[k] = v
                    self.writes_ok += 1
                    self.last_ok[k] = time.monotonic()
                else:
                    self.writes_failed += 1
            if not ok:
                time.sleep(0.05)

    def reader(self):
        while not self.stop.is_set():
            try:
                r = co().http("POST", "/rep/_search", {"size": 0}, timeout=60)
                bad = r.status != 200 or r.json["_shards"]["failed"] > 0
            except OSError:
                bad = True
            with self.lock:
                self.searches += 1
                self.search_failures += bad
                if bad:
                    self.failures_by_phase[self.phase] = \
                        self.failures_by_phase.get(self.phase, 0) + 1
            time.sleep(0.02)

    def wait_acks(self, n, what):
        with self.lock:
            start = self.writes_ok
        wait_for(what, lambda: self.writes_ok >= start + n, deadline_s=40)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=90)


def copy_docs(dn, shard):
    r = dn.http("POST", "/rep~%d/_search" % shard, {"size": 10000, "query": {"match_all": {}}})
    eq(r.status, 200, "search copy of shard %d on %s: %r" % (shard, dn.name, r))
    return {h["_id"]: h["_source"]["v"] for h in r.json["hits"]["hits"]}


def verify(load):
    wait_for("health green", lambda: health()["status"] == "green", deadline_s=60)
    r = co().http("POST", "/rep/_refresh")
    eq(r.status, 200, "refresh")
    m = meta()
    total = 0
    for sh in m["shards"]:
        copies = [c["node"] for c in sh["copies"]]
        eq(sorted(sh["in_sync"]), sorted(copies), "shard %d: every copy in sync" % sh["shard"])
        docs = [copy_docs(node(n), sh["shard"]) for n in copies]
        eq(docs[0], docs[1], "shard %d: copies %s agree" % (sh["shard"], copies))
        total += len(docs[0])
        for k, v in docs[0].items():
            if not k.startswith("w"):
                continue
            check(v in load.tried.get(k, []), "%s=%s on shard %d was never written" %
                  (k, v, sh["shard"]))
    for k, v in load.acked.items():
        r = co().http("GET", "/rep/_doc/" + k)
        eq(r.status, 200, "acknowledged %s is present" % k)
        tried = load.tried[k]
        later = tried[tried.index(v):]  # the acked value or a later attempt (maybe applied)
        check(r.json["_source"]["v"] in later, "%s: acknowledged %s, found %s (tried %s)" %
              (k, v, r.json["_source"]["v"], tried))
        check(r.json["_source"]["v"] == v or r.json["_source"]["v"] in later[1:],
              "last acknowledged value", k)
    return total


def primary_of(shard):
    return meta()["shards"][shard]["copies"][0]["node"]


def t_faults_lose_no_acknowledged_write():
    load = Load()
    try:
        load.wait_acks(30, "writes before the faults")
        # 1. SIGKILL the node of shard 0's primary: a copy is promoted under a new term
        victim = primary_of(0)
        term0 = meta()["shards"][0]["primary_term"]
        t0 = time.monotonic()
        node(victim).kill()
        wait_for("shard 0 promoted", lambda: primary_of(0) != victim, deadline_s=4 * TTL + 4)
        promoted_s = time.monotonic() - t0
        eq(meta()["shards"][0]["primary_term"], term0 + 1, "a new primary term")
        load.wait_acks(20, "writes after the promotion")
        print("# SIGKILL of [%s] to the promoted primary of shard 0: %.2f s (lease %d s)"
              % (victim, promoted_s, TTL))
        check(promoted_s < 2 * TTL + 2.5, "promotion within about 2 x the lease", promoted_s)
        node(victim).start()
        wait_for("the killed node's copies recovered", lambda: health()["status"] == "green",
                 deadline_s=60)
        load.wait_acks(20, "writes after the recovery")
        # 2. SIGSTOP a primary's node past its lease, then SIGCONT: its term is stale
        paused = primary_of(1)
        old = meta()["shards"][1]
        os.kill(node(paused).proc.pid, signal.SIGSTOP)
        try:
            wait_for("shard 1 promoted away from the paused node",
                     lambda: primary_of(1) != paused, deadline_s=4 * TTL + 4)
            load.wait_acks(20, "writes while a node is paused")
        finally:
            os.kill(node(paused).proc.pid, signal.SIGCONT)
        # the resumed node is not the primary any more: a write sent straight to it is refused,
        # and its old term is refused by the new primary
        r = node(paused).http("PUT", "/rep~1/_doc/stale", {"v": -1})
        eq(r.status, 503, "the resumed node refuses a write for the shard it no longer leads: %r"
           % r)
        new_primary = primary_of(1)
        r = node(new_primary).http("POST", "/_internal/replica/rep/1", {
            "term": old["primary_term"], "primary": paused,
            "ops": [{"seq": 1, "id": "stale", "v": 1, "src": "{\"v\": -1}"}]})
        eq(r.status, 409, "the old term is refused: %r" % r)
        wait_for("the paused node's copies recovered", lambda: health()["status"] == "green",
                 deadline_s=60)
        if CHAOS:
            chaos(load)
        load.wait_acks(20, "writes at the end")
    finally:
        load.finish()
    n = verify(load)
    print("# writes acknowledged %d, failed %d; %d ids; %d documents; searches %d, failed %d %r"
          % (load.writes_ok, load.writes_failed, len(load.acked), n, load.searches,
             load.search_failures, load.failures_by_phase))
    check(not load.failures_by_phase.get("data nodes"), "no failed search while data nodes "
          "failed (a copy was always there)", load.failures_by_phase)
    r = co().http("GET", "/rep/_doc/stale")
    eq(r.status, 404, "no stale-term write survived")
    logs = "".join(d.logtext() for d in C["data"])
    check("(operations above its checkpoint" in logs, "a returning copy (a deposed primary "
          "too) recovers from the operations above the point both agree on", logs[-3000:])



def chaos(load):
    """make chaos: more faults on a schedule."""
    rnd = random.Random(7)
    for rnd_i in range(int(os.environ.get("QD_CHAOS_ROUNDS", "4"))):
        d = rnd.choice(C["data"])
        d.kill()
        time.sleep(TTL + rnd.uniform(0.5, 3))  # its name is free once its lease expired
        d.start()
        wait_for("%s back" % d.name, lambda: d.name in [
            r["name"] for r in co().http("GET", "/_cat/nodes?format=json").json])
        wait_for("green after killing %s" % d.name, lambda: health()["status"] == "green",
                 deadline_s=90)
        load.wait_acks(10, "writes after round %d" % rnd_i)
    load.phase = "coordinator killed"
    C["coord"].kill()  # the only coordinator (and leader): restarted, it leads again
    time.sleep(TTL + 1)  # its name is free once its lease expired
    C["coord"].start()
    wait_for("the coordinator leads again", lambda: any(
        r["master"] == "*" for r in co().http("GET", "/_cat/nodes?format=json").json))
    load.phase = "etcd restarted"
    C["etcd"].stop()
    time.sleep(1)
    C["etcd"].start()
    wait_for("green after etcd restarted", lambda: health()["status"] == "green", deadline_s=90)
    load.wait_acks(10, "writes after etcd restarted")


def t_a_dead_nodes_copy_is_reallocated_after_the_delay():
    r = co().http("PUT", "/moved", {"settings": {
        "number_of_shards": 1, "number_of_replicas": 1,
        "index.unassigned.node_left.delayed_timeout": "1s"}})
    eq(r.status, 200, "create: %r" % r)
    r = co().http("PUT", "/moved/_doc/x?refresh=true", {"v": 7})
    eq((r.status, r.json["_shards"]["successful"]), (201, 2), "a write on both copies")
    m = meta("moved")["shards"][0]
    rep = m["copies"][1]["node"]
    spare = [d.name for d in C["data"] if d.name not in [c["node"] for c in m["copies"]]][0]
    node(rep).kill()
    wait_for("yellow while the replica is missing", lambda: health()["status"] == "yellow" and
             sorted(r["state"] for r in shards("moved")) == ["STARTED", "UNASSIGNED"],
             deadline_s=4 * TTL + 4)
    try:
        wait_for("the copy re-allocated to %s and recovered" % spare, lambda: meta("moved")[
            "shards"][0]["copies"][1]["node"] == spare and
            [r["state"] for r in shards("moved")] == ["STARTED", "STARTED"],
            deadline_s=30)
    except AssertionError as e:
        raise AssertionError("%s\nmeta %r\nhealth %r\ncoordinator log:\n%s" % (
            e, meta("moved"), health(), co().logtext()[-3000:]))
    docs = copy_docs_of("moved", node(spare))
    eq(docs, {"x": 7}, "the new copy has the document")
    check("[moved][0]: recovered the copy on [%s] (full copy" % spare in "".join(
        d.logtext() for d in C["data"]), "a new copy is recovered by a full copy")
    before = len(node(rep).logtext())
    node(rep).start()
    wait_for("green again", lambda: health()["status"] == "green", deadline_s=30)
    # the returning node's copy of [moved] is assigned to the spare now: an orphan, deleted
    log = node(rep).logtext()[before:]
    check("deleted orphaned shard copy [moved~0]: the shard map of [moved] assigns shard 0 to "
          "other nodes" in log, "the orphaned copy is deleted with an INFO line", log[-3000:])
    local = [r["index"] for r in node(rep).http("GET", "/_cat/indices?format=json").json]
    check("moved~0" not in local, "the orphan is gone", local)
    check(any(x.startswith("rep~") for x in local), "the copies still assigned stay", local)


def local_get(dn, index, shard, id):
    r = dn.http("GET", "/%s~%d/_doc/%s" % (index, shard, id))
    return (r.json["_source"]["v"], r.json["_version"]) if r.status == 200 else r.status


def t_a_promoted_primary_resyncs_its_copies():
    """Primary-replica resync: a primary that dies mid-replication leaves its last write on one
    replica only (the test hook: it skips the first replica and does not acknowledge); the first
    replica is promoted without it, and its resync rolls the write back on the other replica:
    an update returns to its acknowledged value and version, a new document is deleted. The
    deposed primary comes back, recovers from the operations above the point both agree on,
    and loses its unacknowledged write too."""
    r = co().http("PUT", "/rs3", {"settings": {
        "number_of_shards": 1, "number_of_replicas": 2,
        "index.unassigned.node_left.delayed_timeout": "60s"}})
    eq(r.status, 200, "create: %r" % r)
    for i in range(5):
        eq(co().http("PUT", "/rs3/_doc/k%d" % i, {"v": i}).status, 201, "a write")
    eq(co().http("PUT", "/rs3/_doc/keep", {"v": 1}).status, 201, "the acknowledged value")
    m = meta("rs3")["shards"][0]
    pri, first, last = [node(c["node"]) for c in m["copies"]]
    eq(sorted(m["in_sync"]), sorted(d.name for d in (pri, first, last)), "3 copies in sync")
    r = pri.bulk([{"index": {"_id": "keep"}}, {"v": 2}, {"index": {"_id": "qd-partial-new"}},
                  {"v": 9}], "/rs3~0/_bulk")
    eq(r.status, 503, "the hook's write is not acknowledged: %r" % r)
    eq(local_get(pri, "rs3", 0, "keep"), (2, 2), "the primary applied it")
    eq(local_get(last, "rs3", 0, "keep"), (2, 2), "the last replica got it")
    eq(local_get(last, "rs3", 0, "qd-partial-new"), (9, 1), "the last replica got it")
    eq(local_get(first, "rs3", 0, "keep"), (1, 1), "the first replica did not")
    eq(local_get(first, "rs3", 0, "qd-partial-new"), 404, "the first replica did not")
    pri.kill()
    wait_for("the first replica promoted", lambda: primary_of_index("rs3") == first.name,
             deadline_s=4 * TTL + 4)
    eq(meta("rs3")["shards"][0]["primary_term"], 2, "term 2")
    wait_for("the resync rolled the write back on the last replica", lambda: (
        local_get(last, "rs3", 0, "keep"), local_get(last, "rs3", 0, "qd-partial-new")) ==
        ((1, 1), 404), deadline_s=15)
    wait_for("the new primary logged its resync", lambda: "[rs3][0]: resynced 1 in-sync "
             "copies to primary term 2" in first.logtext(), deadline_s=10)
    eq(sorted(meta("rs3")["shards"][0]["in_sync"]), sorted([first.name, last.name]),
       "the resynced copy stays in sync")
    r = co().http("PUT", "/rs3/_doc/after", {"v": 5})
    eq((r.status, r.json["_shards"]["successful"]), (201, 2), "a write on term 2: %r" % r)
    before = len(first.logtext())
    pri.start()
    wait_for("the deposed primary recovered", lambda: sorted(meta("rs3")["shards"][0][
        "in_sync"]) == sorted(d.name for d in (pri, first, last)), deadline_s=30)
    check("[rs3][0]: recovered the copy on [%s] (operations above its checkpoint" % pri.name
          in first.logtext()[before:], "by operations", first.logtext()[before:][-2000:])
    eq(local_get(pri, "rs3", 0, "keep"), (1, 1), "its unacknowledged update is rolled back")
    eq(local_get(pri, "rs3", 0, "qd-partial-new"), 404, "its unacknowledged document is gone")
    co().http("POST", "/rs3/_refresh")
    docs = [copy_docs_of("rs3", d) for d in (pri, first, last)]
    eq(docs[0], docs[1], "copies agree")
    eq(docs[1], docs[2], "copies agree")
    eq(docs[0], dict([("k%d" % i, i) for i in range(5)] + [("keep", 1), ("after", 5)]),
       "exactly the acknowledged documents")
    wait_for("green", lambda: health()["status"] == "green", deadline_s=30)
    co().http("DELETE", "/rs3")


def t_operation_recovery_survives_a_restart_of_the_primary():
    """The primary's op log is kept in its store: a replica that was away while the primary
    restarted still recovers from the operations above its checkpoint, not by a full copy."""
    r = co().http("PUT", "/oplog", {"settings": {
        "number_of_shards": 1, "number_of_replicas": 1,
        "index.unassigned.node_left.delayed_timeout": "60s"}})
    eq(r.status, 200, "create: %r" % r)
    acked = {}
    for i in range(30):
        r = co().http("PUT", "/oplog/_doc/a%d" % i, {"v": i})
        eq((r.status, r.json["_shards"]["successful"]), (201, 2), "on both copies")
        acked["a%d" % i] = i
    m = meta("oplog")["shards"][0]
    pri, rep = node(m["copies"][0]["node"]), node(m["copies"][1]["node"])
    rep.kill()
    for i in range(20):
        r = co().http("PUT", "/oplog/_doc/b%d" % i, {"v": i})
        eq(r.status, 201, "acknowledged by the primary alone: %r" % r)
        acked["b%d" % i] = i
    check(rep.name not in meta("oplog")["shards"][0]["in_sync"], "the replica left the set")
    eq(pri.stop(), 0, "the primary stops")
    pri.start()
    before = len(pri.logtext())

    def put(k, v):
        r = co().http("PUT", "/oplog/_doc/" + k, {"v": v})
        return r.status == 201
    wait_for("the restarted primary takes writes", lambda: put("c0", 0), deadline_s=30)
    acked["c0"] = 0
    for i in range(1, 10):
        eq(put("c%d" % i, i), True, "a write after the restart")
        acked["c%d" % i] = i
    eq(meta("oplog")["shards"][0]["primary_term"], 1, "no promotion: the same term")
    wait_for("%s's lease expired" % rep.name, lambda: rep.name not in [
        r["name"] for r in co().http("GET", "/_cat/nodes?format=json").json], deadline_s=20)
    rep.start()
    wait_for("the replica recovered", lambda: rep.name in meta("oplog")["shards"][0]["in_sync"],
             deadline_s=30)
    log = pri.logtext()[before:]
    check("[oplog][0]: recovered the copy on [%s] (operations" % rep.name in log,
          "recovered from the operations kept across the restart", log[-3000:])
    co().http("POST", "/oplog/_refresh")
    docs = [copy_docs_of("oplog", d) for d in (pri, rep)]
    eq(docs[0], docs[1], "copies agree")
    eq(docs[0], acked, "every acknowledged document")
    wait_for("green", lambda: health()["status"] == "green", deadline_s=30)
    co().http("DELETE", "/oplog")


def primary_of_index(index):
    return meta(index)["shards"][0]["copies"][0]["node"]


def t_a_copy_on_a_full_disk_leaves_the_in_sync_set():
    """A data node whose data directory is a small tmpfs (root only, else skipped) holds a
    replica; its disk fills: writes are still acknowledged by the other copies, the full copy is
    out of the in-sync set (health yellow) and nothing acknowledged is lost; once space is back
    it recovers and the cluster is green. Then the same for a primary (primary_on_a_full_disk)."""
    import subprocess
    import tempfile
    mnt = tempfile.mkdtemp(prefix="qd-tmpfs-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", mnt],
                       capture_output=True, text=True)
    if r.returncode:
        os.rmdir(mnt)
        skip("cannot mount a tmpfs here (%s)" % r.stderr.strip())
    dn4 = None
    try:
        # 3 replicas on 3 nodes: the 4th copy is unassigned until dn4 joins and takes it
        r = co().http("PUT", "/full", {"settings": {"number_of_shards": 1,
                                                    "number_of_replicas": 3}})
        eq(r.status, 200, "create: %r" % r)
        for i in range(20):
            eq(co().http("PUT", "/full/_doc/a%d" % i, {"v": i}).status, 201, "a write")
        dn4 = Server(name="dn4", data=os.path.join(mnt, "data"), extra=[
            "--role", "data", "--etcd", C["etcd"].url, "--lease-ttl", str(TTL)]).start()
        wait_for("dn4's copy recovered", lambda: "dn4" in meta("full")["shards"][0]["in_sync"],
                 deadline_s=30)
        st = os.statvfs(mnt)
        with open(os.path.join(mnt, "filler"), "ab") as f:
            try:
                free = st.f_bavail * st.f_frsize
                while free > 0:
                    f.write(b"\0" * min(free, 1 << 20))
                    f.flush()
                    free -= 1 << 20
            except OSError:
                pass
        acked = {}
        for i in range(40):
            r = co().http("PUT", "/full/_doc/b%d" % i, {"v": i, "pad": "x" * 2000})
            if r.status in (200, 201):
                acked["b%d" % i] = i
        check(len(acked) >= 35, "writes go on while a replica's disk is full", len(acked))
        m = meta("full")["shards"][0]
        check("dn4" not in m["in_sync"], "the full copy left the in-sync set", m)
        eq(health()["status"], "yellow", "yellow while it is out")
        for k, v in acked.items():
            r = co().http("GET", "/full/_doc/" + k)
            eq((r.status, r.json["_source"]["v"]), (200, v), "acknowledged %s" % k)
        os.remove(os.path.join(mnt, "filler"))
        wait_for("dn4 recovered once space is back", lambda: "dn4" in meta(
            "full")["shards"][0]["in_sync"], deadline_s=40)
        wait_for("green", lambda: health()["status"] == "green", deadline_s=30)
        co().http("POST", "/full/_refresh")
        pri = node(meta("full")["shards"][0]["copies"][0]["node"])
        docs = [copy_docs_of("full", x) for x in (pri, dn4)]
        eq(docs[0], docs[1], "dn4's copy agrees with the primary's")
        check(all(docs[1].get(k) == v for k, v in acked.items()), "dn4 has every acked write")
        co().http("DELETE", "/full")
        primary_on_a_full_disk(mnt, dn4)
    finally:
        if dn4:
            rc = dn4.stop()
            log = dn4.logtext()
            dn4.close()
        subprocess.run(["umount", "-l", mnt], capture_output=True)
        try:
            os.rmdir(mnt)
        except OSError:
            pass
    check("ERROR: AddressSanitizer" not in log and "runtime error:" not in log,
          "sanitizer report in dn4's log", log[-4000:])
    eq(rc, 0, "dn4 exit status after SIGTERM")


def fill(mnt):
    st = os.statvfs(mnt)
    with open(os.path.join(mnt, "filler"), "ab") as f:
        try:
            free = st.f_bavail * st.f_frsize
            while free > 0:
                f.write(b"\0" * min(free, 1 << 20))
                f.flush()
                free -= 1 << 20
        except OSError:
            pass


def primary_on_a_full_disk(mnt, dn4):
    """The primary of a shard is on the full disk: its write fails with a clear error, it
    steps down, the leader promotes the in-sync copy, and nothing acknowledged is lost."""
    # 4 shards on 4 data nodes: each holds one primary, dn4 too
    r = co().http("PUT", "/fullp", {"settings": {"number_of_shards": 4, "number_of_replicas": 1,
                                                 "index.unassigned.node_left.delayed_timeout":
                                                 "60s"}})
    eq(r.status, 200, "create: %r" % r)
    m = meta("fullp")
    sh = [x for x in m["shards"] if x["copies"][0]["node"] == "dn4"]
    eq(len(sh), 1, "dn4 holds one primary: %r" % m)
    s, other = sh[0]["shard"], node(sh[0]["copies"][1]["node"])
    path = "/fullp~%d/_doc/" % s
    acked = {}
    for i in range(10):
        r = dn4.http("PUT", path + "p%d" % i, {"v": i})
        eq((r.status, r.json["_shards"]["successful"]), (201, 2), "a write on both: %r" % r)
        acked["p%d" % i] = i
    fill(mnt)
    failed = None
    for i in range(10, 60):
        r = dn4.http("PUT", path + "p%d" % i, {"v": i, "pad": "x" * 4000})
        if r.status in (200, 201):
            acked["p%d" % i] = i
        else:
            failed = failed or r
    check(failed is not None, "writes fail on a primary whose disk is full")
    # the store's error, or the flood-stage watermark's when its check saw the disk first
    reason = failed.json["error"]["reason"]
    check((failed.status == 500 and ("disk is full" in reason or "No space left" in reason)) or
          (failed.status == 429 and "flood-stage watermark" in reason), "a clear error", failed)
    print("# the primary on a full disk: first refused write HTTP %d (%s)" % (
        failed.status, "the store's error" if failed.status == 500 else "flood-stage watermark"))
    wait_for("the in-sync copy on %s promoted" % other.name, lambda: meta("fullp")["shards"][s][
        "copies"][0]["node"] == other.name, deadline_s=4 * TTL + 4)
    m = meta("fullp")["shards"][s]
    eq((m["primary_term"], m["in_sync"]), (2, [other.name]), "term 2, the full copy out")
    r = dn4.http("PUT", path + "late", {"v": -1})
    check(r.status in (429, 503), "the deposed primary refuses writes", r)
    for i in range(60, 70):
        r = other.http("PUT", path + "p%d" % i, {"v": i})
        eq(r.status, 201, "the promoted primary takes writes: %r" % r)
        acked["p%d" % i] = i
    for k, v in acked.items():
        eq(local_get(other, "fullp", s, k)[0], v, "acknowledged %s on the new primary" % k)
    check("stepped down" in co().logtext(), "the leader logged the promotion")
    os.remove(os.path.join(mnt, "filler"))
    wait_for("dn4 recovered once space is back", lambda: "dn4" in meta(
        "fullp")["shards"][s]["in_sync"], deadline_s=40)
    co().http("POST", "/fullp/_refresh")
    eq(copy_docs_of_shard("fullp", s, dn4), copy_docs_of_shard("fullp", s, other),
       "dn4's copy agrees with the new primary's")
    co().http("DELETE", "/fullp")


def copy_docs_of_shard(index, shard, dn):
    r = dn.http("POST", "/%s~%d/_search" % (index, shard), {"size": 200})
    return {h["_id"]: h["_source"]["v"] for h in r.json["hits"]["hits"]}


def t_every_process_stops_cleanly():
    """SIGTERM exits 0 and no log has a sanitizer report (the ASan build runs this too)."""
    for s in C["data"] + [C["coord"]]:
        rc = s.stop() if s.proc else 0
        log = s.logtext()
        check("ERROR: AddressSanitizer" not in log and "runtime error:" not in log,
              "sanitizer report in %s's log" % s.name, log[-4000:])
        eq(rc, 0, "%s exit status after SIGTERM" % s.name)


def copy_docs_of(index, dn):
    r = dn.http("POST", "/%s~0/_search" % index, {"size": 100})
    return {h["_id"]: h["_source"]["v"] for h in r.json["hits"]["hits"]}


def main():
    try:
        setup()
        tests = [
            ("copies on distinct nodes, writes acknowledged by both",
             t_copies_on_distinct_nodes_and_writes_acked_by_both),
            ("a copy refuses a stale term", t_a_copy_refuses_a_stale_term),
            ("faults lose no acknowledged write", t_faults_lose_no_acknowledged_write),
            ("a dead node's copy is re-allocated after the delay",
             t_a_dead_nodes_copy_is_reallocated_after_the_delay),
            ("a promoted primary resyncs its copies", t_a_promoted_primary_resyncs_its_copies),
            ("operation recovery survives a restart of the primary",
             t_operation_recovery_survives_a_restart_of_the_primary),
            ("a copy on a full disk leaves the in-sync set",
             t_a_copy_on_a_full_disk_leaves_the_in_sync_set),
            ("every process stops cleanly", t_every_process_stops_cleanly),
        ]
        only = os.environ.get("QD_ONLY")
        run_tests([t for i, t in enumerate(tests, 1) if not only or str(i) in only.split(",")])
    finally:
        teardown()


if __name__ == "__main__":
    main()
