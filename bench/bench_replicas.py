"""bench_replicas.py: replication costs and failover times on this machine (issue 11).

Cases (one line each):
  replicas/bulk_docs_per_s   _bulk indexing through a coordinator into 3 shards, 0 replicas vs
                             1 replica (500 documents per request, 20k documents, median of 3)
  replicas/write_p50         p50 of single-document PUTs, 0 vs 1 replica
  replicas/failover_write    SIGKILL of a primary's data node to the first acknowledged write
                             on the promoted copy (lease TTL 2 s; goal < 2 x TTL)
  replicas/recover_ops       a replica's node killed, one write, restarted: time until its copy
                             of a 100k-document shard is in sync again (operations above its
                             checkpoint)
  replicas/recover_100k      the same with the copy's checkpoint file removed: a full copy
etcd, 3 data nodes and a coordinator share this 2-core machine.
Usage: python3 bench/bench_replicas.py [BUILD_DIR]. Needs /usr/bin/etcd."""
import base64
import http.client
import json
import os
import statistics
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "support"))
import qdtest  # noqa: E402

if len(sys.argv) > 1:
    qdtest.BUILD = sys.argv[1]
from qdtest import ETCD, Etcd, Server, wait_for  # noqa: E402

TTL = 2
N_BULK, BULK, N_BIG = 20000, 500, 100000


def conn(s):
    return http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)


def req(c, method, path, body, ctype="application/json"):
    c.request(method, path, body, {"Content-Type": ctype})
    r = c.getresponse()
    return r.status, r.read()


def bulk_rate(co, index):
    c = conn(co)
    t0 = time.perf_counter()
    for b in range(0, N_BULK, BULK):
        lines = "".join('{"index":{"_id":"d%d"}}\n{"v":%d,"t":"word%d text"}\n' % (i, i, i % 97)
                        for i in range(b, b + BULK))
        st, body = req(c, "POST", "/%s/_bulk" % index, lines.encode(), "application/x-ndjson")
        assert st == 200 and b'"errors":false' in body, body[:300]
    dt = time.perf_counter() - t0
    c.close()
    return N_BULK / dt


def write_p50(co, index):
    c = conn(co)
    t = []
    for i in range(400):
        t0 = time.perf_counter()
        st, _ = req(c, "PUT", "/%s/_doc/s%d" % (index, i), b'{"v":1}')
        t.append((time.perf_counter() - t0) * 1e3)
        assert st in (200, 201)
    c.close()
    return statistics.median(t)


def meta(etcd, index):
    key = base64.b64encode(("/quidditch/v1/indexes/" + index).encode()).decode()
    r = urllib.request.Request(etcd.url + "/v3/kv/range", data=json.dumps({"key": key}).encode(),
                               method="POST")
    with urllib.request.urlopen(r, timeout=5) as resp:
        return json.loads(base64.b64decode(json.loads(resp.read())["kvs"][0]["value"]))


def green(co):
    c = conn(co)
    st, body = req(c, "GET", "/_cluster/health", None)
    c.close()
    return json.loads(body)["status"] == "green"


def main():
    if not os.path.exists(ETCD):
        print("bench_replicas: no %s" % ETCD)
        return 0
    etcd = Etcd().start()
    data = [Server(name="dn%d" % i, extra=["--role", "data", "--etcd", etcd.url, "--lease-ttl",
                                           str(TTL)]).start() for i in (1, 2, 3)]
    co = Server(name="co1", extra=["--role", "coord", "--etcd", etcd.url, "--lease-ttl",
                                   str(TTL)]).start()
    try:
        wait_for("3 data nodes and a leader", lambda: len(json.loads(co.http(
            "GET", "/_cat/nodes?format=json").text)) == 4 and green(co))
        rates, p50 = {}, {}
        for rep in (0, 1):
            runs = []
            for k in range(3):
                ix = "b%d_%d" % (rep, k)
                r = co.http("PUT", "/" + ix, {"settings": {"number_of_shards": 3,
                                                           "number_of_replicas": rep}})
                assert r.status == 200, "create %s: %r\n%s" % (ix, r, co.logtext()[-2000:])
                runs.append(bulk_rate(co, ix))
            rates[rep] = statistics.median(runs)
            p50[rep] = write_p50(co, "b%d_0" % rep)
        print("replicas/bulk_docs_per_s   1 replica %8.0f docs/s   0 replicas %8.0f docs/s   "
              "ratio %.2f" % (rates[1], rates[0], rates[1] / rates[0]))
        print("replicas/write_p50         1 replica %8.2f ms       0 replicas %8.2f ms       "
              "ratio %.2f" % (p50[1], p50[0], p50[1] / p50[0]))
        # failover: kill the node of fo's primary, write until one is acknowledged
        assert co.http("PUT", "/fo", {"settings": {"number_of_shards": 1,
                                                   "number_of_replicas": 1}}).status == 200
        assert co.http("PUT", "/fo/_doc/x", {"v": 0}).status in (200, 201)
        victim = meta(etcd, "fo")["shards"][0]["copies"][0]["node"]
        dn = [d for d in data if d.name == victim][0]
        c = conn(co)
        t0 = time.perf_counter()
        dn.kill()
        tries = 0
        while True:
            tries += 1
            try:
                st, _ = req(c, "PUT", "/fo/_doc/x", b'{"v":1}')
            except OSError:
                c.close()
                c = conn(co)
                st = 0
            if st in (200, 201):
                break
            time.sleep(0.02)
        dt = time.perf_counter() - t0
        c.close()
        print("replicas/failover_write    %.2f s from SIGKILL to the first acknowledged write "
              "(%d tries; lease %d s, goal < %d s)" % (dt, tries, TTL, 2 * TTL))
        dn.start()
        wait_for("green after the failover", lambda: green(co), deadline_s=60)
        # recovery of 100k documents
        assert co.http("PUT", "/big", {"settings": {"number_of_shards": 1,
                                                    "number_of_replicas": 1}}).status == 200
        c = conn(co)
        for b in range(0, N_BIG, 2000):
            lines = "".join('{"index":{"_id":"d%d"}}\n{"v":%d,"t":"word%d"}\n' % (i, i, i % 97)
                            for i in range(b, b + 2000))
            st, body = req(c, "POST", "/big/_bulk", lines.encode(), "application/x-ndjson")
            assert st == 200 and b'"errors":false' in body
        c.close()
        rep = meta(etcd, "big")["shards"][0]["copies"][1]["node"]
        dn = [d for d in data if d.name == rep][0]
        dn.kill()
        wait_for("the replica out of the in-sync set", lambda: rep not in meta(
            etcd, "big")["shards"][0]["in_sync"], deadline_s=30)
        assert co.http("PUT", "/big/_doc/extra", {"v": 1}).status in (200, 201)
        t0 = time.perf_counter()
        dn.start()
        wait_for("the copy recovered", lambda: rep in meta(etcd, "big")["shards"][0]["in_sync"],
                 deadline_s=300, every_s=0.02)
        dt = time.perf_counter() - t0
        print("replicas/recover_ops       %.2f s from the restart to the copy in sync (%d "
              "documents, 1 written while it was down: operations above its checkpoint; "
              "includes the node's start)" % (dt, N_BIG + 1))
        # the same with its checkpoint gone: a full copy of the 100k documents
        dn.kill()
        wait_for("the replica out of the in-sync set again", lambda: rep not in meta(
            etcd, "big")["shards"][0]["in_sync"], deadline_s=30)
        os.remove(os.path.join(dn.data, "replication", "big~0.ckpt"))
        time.sleep(TTL + 1)
        t0 = time.perf_counter()
        dn.start()
        wait_for("the copy recovered", lambda: rep in meta(etcd, "big")["shards"][0]["in_sync"],
                 deadline_s=300, every_s=0.02)
        dt = time.perf_counter() - t0
        print("replicas/recover_100k      %.2f s from the restart to the copy in sync (%d "
              "documents, full copy; includes the node's start)" % (dt, N_BIG + 1))
    finally:
        co.close()
        for d in data:
            d.close()
        etcd.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
