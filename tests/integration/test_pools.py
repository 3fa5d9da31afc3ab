"""test_pools.py: slow work must not starve cheap work (issue 13 #3), against a real quidditch.
Four searches with a UDF that never returns (examples/udfs/infinite_loop, ended by its budget)
run on the search pool; while all four are still running, plain _counts, plain searches,
document gets, writes and GET / are answered (they used to wait behind them: 4 slow searches
held a _count for 26 s on 2 HTTP threads). A full search queue answers 429
es_rejected_execution_exception. The check is ordering, not timing: the cheap requests finish
before the slow searches do."""
import glob
import json
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import BUILD, SOURCE, Server, check, eq, multipart, run_tests, skip  # noqa: E402

# one matching document: one block, ended by the UDF's budget (about a second)
SLOW_Q = {"query": {"function_score": {"query": {"ids": {"values": ["1"]}}, "script_score": {
    "script": {"source": "infinite_loop"}}}}}


def deploy_loop(s):
    paths = glob.glob(os.path.join(BUILD, "examples", "udfs", "infinite_loop.*.wasm"))
    if not paths:
        skip("the infinite_loop example is not built")
    with open(os.path.join(SOURCE, "examples", "udfs", "infinite_loop", "infinite_loop.json"),
              "rb") as f:
        man = f.read()
    with open(paths[0], "rb") as f:
        body, ctype = multipart([("manifest", None, "application/json", man),
                                 ("wasm", "loop.wasm", "application/wasm", f.read())])
    r = s.http("PUT", "/_udf/infinite_loop", body, ctype)
    check(r.status == 200, "deploy infinite_loop", r)


def t_cheap_requests_do_not_wait_for_slow_searches():
    """One search worker and eight searches stuck in the UDF (each ends at its budget or its
    1 s block deadline): seven wait in the search queue. Cheap requests are answered while
    that queue still holds work: they never wait behind it. Ordering, not timing."""
    with Server(extra=["--search-threads", "1"]) as s:
        lines = []
        for i in range(300):
            lines += [{"index": {"_index": "p", "_id": str(i)}}, {"n": i}]
        eq(s.bulk(lines).status, 200, "bulk")
        deploy_loop(s)
        done, results = [], []

        def slow():
            try:
                r = s.http("POST", "/p/_search", SLOW_Q, timeout=300)
                results.append(r.status)
            finally:
                done.append(time.monotonic())
        th = [threading.Thread(target=slow) for _ in range(8)]
        for t in th:
            t.start()

        def queued():
            m = re.search(r'quidditch_thread_pool_queue\{pool="search",node="node-1"\} (\d+)',
                          s.http("GET", "/metrics").text)
            return int(m.group(1)) if m else -1
        end = time.monotonic() + 60
        while time.monotonic() < end and queued() < 5:
            time.sleep(0.01)
        check(queued() >= 5, "the search pool's queue fills up")
        for i in range(2):
            eq(s.http("GET", "/p/_count").status, 200, "a plain count")
            eq(s.http("GET", "/p/_doc/%d" % i).status, 200, "a get")
            eq(s.http("PUT", "/p/_doc/w%d" % i, {"n": -i}).status, 201, "a write")
            eq(s.http("GET", "/").status, 200, "the banner")
            # a plain search (no script, a page of at most 100) runs where a plain count does
            r = s.http("POST", "/p/_search", {"query": {"term": {"n": 7 + i}}})
            eq((r.status, [h["_id"] for h in r.json["hits"]["hits"]]), (200, [str(7 + i)]),
               "a plain search")
        left = queued()
        check(left >= 1, "10 cheap requests were answered while %d searches still waited" % left)
        # a script spelled with an escape is no plain search: it waits in the pool's queue too
        escaped = json.dumps(SLOW_Q).replace('"script', '"\\u0073cript')
        check("script" not in escaped, "the escaped body hides the word", escaped)
        th.append(threading.Thread(target=lambda: results.append(
            s.http("POST", "/p/_search", escaped, timeout=300).status)))
        th[-1].start()
        for t in th:
            t.join()
        eq(sorted(results), [400] * 9, "the slow searches end with their budget's error")
        m = re.search(r'quidditch_thread_pool_completed_total\{pool="search",node="node-1"\} (\d+)',
                      s.http("GET", "/metrics").text)
        eq(int(m.group(1)) if m else -1, 9, "the search pool ran the 9 scripted searches, "
           "the escaped one too (the plain ones ran on the HTTP threads)")


def t_a_full_search_queue_answers_429():
    with Server(extra=["--search-threads", "1", "--search-queue", "1"]) as s:
        eq(s.bulk([{"index": {"_index": "p", "_id": "1"}}, {"n": 1}]).status, 200, "bulk")
        deploy_loop(s)
        results = []

        def slow():
            results.append(s.http("POST", "/p/_search", SLOW_Q, timeout=300))
        th = [threading.Thread(target=slow) for _ in range(4)]
        for t in th:
            t.start()
        for t in th:
            t.join()
        rejected = [r for r in results if r.status == 429]
        check(rejected, "with one worker and a queue of one, 4 searches see a 429",
              [r.status for r in results])
        eq(rejected[0].json["error"]["type"], "es_rejected_execution_exception", "type")
        m = s.http("GET", "/metrics").text
        check('quidditch_thread_pool_rejected_total{pool="search",node="node-1"} 0' not in m,
              "counted in the metrics")


SPIN_WAT = """(module
  (func (export "spin") (param f64 i32) (result f64) (local i32)
    (loop $l (local.set 2 (i32.add (local.get 2) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get 2) (local.get 1))))
    local.get 0))"""


def t_timeout_returns_partial_results():
    """The search `timeout` (body or ?timeout=): a shard past it stops collecting and answers
    what it has, with timed_out: true, as Elasticsearch does. A slow but finite UDF (20,000
    loop turns per document) makes the first block of 256 documents far longer than 1 ms, and far
    shorter than the block deadline (raised to 60 s here: an ASan build on a loaded machine can
    take over a second for that block)."""
    from qdtest import wat2wasm
    wasm = wat2wasm(SPIN_WAT)
    if wasm is None:
        skip("wat2wasm missing")
    with Server(extra=("--udf-block-timeout-ms", "60000")) as s:
        lines = []
        for i in range(1000):
            lines += [{"index": {"_index": "t", "_id": str(i)}}, {"n": i}]
        eq(s.bulk(lines).status, 200, "bulk")
        man = {"name": "spin", "export": "spin", "kind": "score", "returns": "f64",
               "params": [{"name": "s", "type": "f64", "default": "_score"},
                          {"name": "turns", "type": "i32"}]}
        body, ctype = multipart([("manifest", None, "application/json", json.dumps(man).encode()),
                                 ("wasm", "spin.wasm", "application/wasm", wasm)])
        check(s.http("PUT", "/_udf/spin", body, ctype).status == 200, "deploy spin")
        q = {"size": 3, "track_total_hits": True, "query": {"function_score": {
            "query": {"match_all": {}}, "script_score": {"script": {
                "source": "spin", "params": {"turns": 20000}}}}}}
        r = s.http("POST", "/t/_search", dict(q, timeout="1ms"), timeout=600)
        check(r.status == 200, "a timed-out search still answers", r)
        eq(r.json["timed_out"], True, "timed_out")
        total = r.json["hits"]["total"]["value"]
        check(0 < total < 1000, "partial results: %d of 1000" % total)
        r = s.http("POST", "/t/_search?timeout=1ms", q, timeout=600)
        eq((r.status, r.json.get("timed_out")), (200, True), "?timeout= in the URL")
        q["query"]["function_score"]["script_score"]["script"]["params"]["turns"] = 10
        r = s.http("POST", "/t/_search", dict(q, timeout="10m"))
        eq((r.json["timed_out"], r.json["hits"]["total"]["value"]), (False, 1000), "in time")
        r = s.http("POST", "/t/_search", dict(q, timeout="soon"))
        check(r.status == 400 and "timeout" in r.text, "a bad time value is a 400", r)


if __name__ == "__main__":
    run_tests([
        ("cheap_requests_do_not_wait_for_slow_searches", t_cheap_requests_do_not_wait_for_slow_searches),
        ("a_full_search_queue_answers_429", t_a_full_search_queue_answers_429),
        ("timeout_returns_partial_results_with_timed_out", t_timeout_returns_partial_results),
    ])
