"""test_pools.py: slow work must not starve cheap work (issue 13 #3), against a real quidditch.
Four searches with a UDF that never returns (examples/udfs/infinite_loop, ended by its budget)
run on the search pool; while all four are still running, plain _counts, document gets, writes
and GET / are answered (they used to wait behind them: 4 slow searches held a _count for 26 s on
2 HTTP threads). A full search queue answers 429 es_rejected_execution_exception. The check is
ordering, not timing: the cheap requests finish before the slow searches do."""
import glob
import json
import os
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
    with Server(extra=["--search-threads", "2"]) as s:
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
        th = [threading.Thread(target=slow) for _ in range(4)]
        for t in th:
            t.start()
        # wait until the search pool is busy with them (its queue holds the other two)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            m = s.http("GET", "/metrics").text
            if 'quidditch_thread_pool_queue{pool="search",node="node-1"} 2' in m:
                break
            time.sleep(0.02)
        check(not done, "the slow searches are still running")
        cheap = 0
        for i in range(10):
            eq(s.http("GET", "/p/_count").status, 200, "a plain count")
            eq(s.http("GET", "/p/_doc/%d" % i).status, 200, "a get")
            eq(s.http("PUT", "/p/_doc/w%d" % i, {"n": -i}).status, 201, "a write")
            eq(s.http("GET", "/").status, 200, "the banner")
            cheap += 4
        check(not done, "%d cheap requests were answered before any slow search ended" % cheap)
        for t in th:
            t.join()
        eq(sorted(results), [400] * 4, "the slow searches end with their budget's error")


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


if __name__ == "__main__":
    run_tests([
        ("cheap_requests_do_not_wait_for_slow_searches", t_cheap_requests_do_not_wait_for_slow_searches),
        ("a_full_search_queue_answers_429", t_a_full_search_queue_answers_429),
    ])
