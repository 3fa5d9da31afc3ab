"""test_settings.py: GET/PUT /{index}/_settings against a real quidditch: refresh_interval
(-1 turns periodic refresh off, a short one refreshes on its own), number_of_replicas,
max_result_window (search, scroll, several indexes), refused keys and values that change nothing,
and settings that survive a restart."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import Server, check, eq, run_tests, wait_for  # noqa: E402


def settings(s, index):
    r = s.http("GET", "/%s/_settings" % index)
    eq(r.status, 200, "GET _settings: %r" % r)
    return r.json[index]["settings"]["index"]


def count(s, index):
    r = s.http("POST", "/%s/_count" % index, {"query": {"match_all": {}}})
    eq(r.status, 200, "_count: %r" % r)
    return r.json["count"]


def refused(r, key, what):
    eq(r.status, 400, "%s: %r" % (what, r))
    eq(r.json["error"]["type"], "illegal_argument_exception", what)
    check(key in r.json["error"]["reason"], "%s: the reason names %s" % (what, key), r.json)


def clean_stop(s):
    """Stop S and fail on a bad exit or a sanitizer report in its log (the ASan build)."""
    rc = s.stop()
    log = s.logtext()
    check(rc == 0 and "AddressSanitizer" not in log and "runtime error:" not in log,
          "quidditch stopped cleanly (exit %s)" % rc, log[-3000:])


def restart(s):
    clean_stop(s)
    s.start()


def ticks(s, n=2):
    """Let the server's periodic refresher run N times: each time a write to the control index
    (default refresh) becomes visible without a refresh, one refresher pass has run after it."""
    for _ in range(n):
        before = count(s, "control")
        eq(s.http("POST", "/control/_doc", {"k": 1}).status, 201, "control write")
        wait_for("the periodic refresh of control", lambda: count(s, "control") == before + 1)


def t_refresh_interval():
    with Server() as s:
        for ix in ("logs", "control"):
            eq(s.http("PUT", "/" + ix).status, 200, "create " + ix)
        r = s.http("PUT", "/logs/_settings", {"index": {"refresh_interval": "-1"}})
        eq((r.status, r.json), (200, {"acknowledged": True}), "PUT refresh_interval -1")
        eq(settings(s, "logs")["refresh_interval"], "-1", "GET shows -1")
        eq(s.http("PUT", "/logs/_doc/1", {"msg": "one"}).status, 201, "write")
        ticks(s)
        eq(count(s, "logs"), 0, "refresh_interval -1: no periodic refresh made the doc visible")
        eq(s.http("GET", "/logs/_doc/1").status, 200, "GET by id is real time all the same")
        eq(s.http("POST", "/logs/_refresh").status, 200, "_refresh")
        eq(count(s, "logs"), 1, "an explicit _refresh still works")
        eq(s.http("PUT", "/logs/_doc/2?refresh=true", {"msg": "two"}).status, 201, "write")
        eq(count(s, "logs"), 2, "?refresh=true still works")
        eq(s.http("PUT", "/logs/_doc/3", {"msg": "three"}).status, 201, "write")
        ticks(s, 1)
        eq(count(s, "logs"), 2, "still off")
        # a short interval (flat form): the pending doc and the next become visible on their own
        r = s.http("PUT", "/logs/_settings", {"refresh_interval": "100ms"})
        eq(r.status, 200, "PUT refresh_interval 100ms: %r" % r)
        eq(settings(s, "logs")["refresh_interval"], "100ms", "GET shows 100ms")
        wait_for("the pending doc under a 100ms interval", lambda: count(s, "logs") == 3)
        eq(s.http("PUT", "/logs/_doc/4", {"msg": "four"}).status, 201, "write")
        wait_for("a new doc under a 100ms interval", lambda: count(s, "logs") == 4)
        # null: back to the server's default, which refreshes too
        r = s.http("PUT", "/logs/_settings", {"index": {"refresh_interval": None}})
        eq(r.status, 200, "PUT refresh_interval null: %r" % r)
        check("refresh_interval" not in settings(s, "logs"), "null removed it", settings(s, "logs"))
        eq(s.http("PUT", "/logs/_doc/5", {"msg": "five"}).status, 201, "write")
        wait_for("a new doc under the default interval", lambda: count(s, "logs") == 5)
        # set at creation, and kept over a restart
        r = s.http("PUT", "/frozen", {"settings": {"index": {"refresh_interval": "-1"}}})
        eq(r.status, 200, "create with refresh_interval: %r" % r)
        restart(s)
        eq(settings(s, "frozen")["refresh_interval"], "-1", "creation's interval after restart")
        eq(s.http("PUT", "/frozen/_doc/1", {"msg": "x"}).status, 201, "write after restart")
        ticks(s)
        eq(count(s, "frozen"), 0, "-1 still honoured after a restart")
        clean_stop(s)


def t_max_result_window():
    with Server() as s:
        for ix in ("shop", "other"):
            eq(s.http("PUT", "/" + ix).status, 200, "create " + ix)
            s.bulk(sum(([{"index": {"_id": str(i)}}, {"n": i}] for i in range(60)), []),
                   "/%s/_bulk?refresh=true" % ix)
        r = s.http("PUT", "/shop/_settings", {"index": {"max_result_window": 50}})
        eq(r.status, 200, "PUT max_result_window: %r" % r)
        eq(settings(s, "shop")["max_result_window"], "50", "GET shows a string")
        eq(len(s.http("POST", "/shop/_search", {"size": 50}).json["hits"]["hits"]), 50, "size 50")
        eq(len(s.http("POST", "/shop/_search", {"from": 40, "size": 10}).json["hits"]["hits"]),
           10, "from 40 + size 10")
        refused(s.http("POST", "/shop/_search", {"size": 51}), "index.max_result_window",
                "size 51")
        refused(s.http("POST", "/shop/_search", {"from": 41, "size": 10}),
                "index.max_result_window", "from 41 + size 10")
        refused(s.http("GET", "/shop/_search?size=51"), "index.max_result_window", "?size=51")
        refused(s.http("POST", "/shop,other/_search", {"size": 51}), "index.max_result_window",
                "two indexes: the smaller window")
        eq(s.http("POST", "/other/_search", {"size": 60}).status, 200, "the other keeps 10000")
        # scroll: a page is bounded by the window, and pages on past it
        refused(s.http("POST", "/shop/_search?scroll=1m", {"size": 51}), "index.max_result_window",
                "a scroll page of 51")
        r = s.http("POST", "/shop/_search?scroll=1m", {"size": 40, "sort": ["_doc"]})
        eq(r.status, 200, "scroll of 40: %r" % r)
        ids = [h["_id"] for h in r.json["hits"]["hits"]]
        r = s.http("POST", "/_search/scroll", {"scroll_id": r.json["_scroll_id"], "scroll": "1m"})
        eq(r.status, 200, "second page: %r" % r)
        ids += [h["_id"] for h in r.json["hits"]["hits"]]
        eq(sorted(ids, key=int), [str(i) for i in range(60)], "the scroll reads past the window")
        # survives a restart
        restart(s)
        eq(settings(s, "shop")["max_result_window"], "50", "after restart")
        refused(s.http("POST", "/shop/_search", {"size": 51}), "index.max_result_window",
                "after restart")
        # null: back to 10000
        eq(s.http("PUT", "/shop/_settings", {"max_result_window": None}).status, 200, "reset")
        eq(len(s.http("POST", "/shop/_search", {"size": 60}).json["hits"]["hits"]), 60,
           "size 60 after the reset")
        refused(s.http("POST", "/shop/_search", {"size": 10001}), "index.max_result_window",
                "the default 10000")
        # at creation
        r = s.http("PUT", "/tiny", {"settings": {"index.max_result_window": "5"}})
        eq(r.status, 200, "create with a window: %r" % r)
        eq(settings(s, "tiny")["max_result_window"], "5", "creation's window")
        refused(s.http("POST", "/tiny/_search", {"size": 6}), "index.max_result_window",
                "creation's window applies")
        eq(s.http("POST", "/tiny/_count", {}).status, 200, "_count fetches no hits: no window")
        refused(s.http("POST", "/tiny/_search", {}), "index.max_result_window",
                "the default size 10 is over a window of 5, as in Elasticsearch")
        refused(s.http("PUT", "/bad", {"settings": {"max_result_window": 0}}),
                "index.max_result_window", "create with a bad window")
        eq(s.http("HEAD", "/bad").status, 404, "the refused creation made nothing")
        clean_stop(s)


def t_refused_changes_nothing():
    with Server() as s:
        eq(s.http("PUT", "/shop", {"settings": {"number_of_shards": 1}}).status, 200, "create")
        eq(s.http("PUT", "/shop/_settings", {"refresh_interval": "2s"}).status, 200, "set 2s")
        before = settings(s, "shop")
        eq(before["refresh_interval"], "2s", "set")
        bad = [
            ({"index": {"refresh_interval": "abc"}}, "index.refresh_interval"),
            ({"refresh_interval": "5"}, "index.refresh_interval"),
            ({"refresh_interval": 5}, "index.refresh_interval"),
            ({"refresh_interval": "0s"}, "index.refresh_interval"),
            ({"max_result_window": -1}, "index.max_result_window"),
            ({"max_result_window": "many"}, "index.max_result_window"),
            ({"max_result_window": 1.5}, "index.max_result_window"),
            ({"number_of_replicas": -1}, "index.number_of_replicas"),
            ({"number_of_replicas": 1}, "index.number_of_replicas"),
            ({"index": {"number_of_shards": 2}}, "index.number_of_shards"),
            ({"index.number_of_shards": 1}, "index.number_of_shards"),
            ({"index": {"foo": 1}}, "index.foo"),
            ({"index": {"analysis": {"analyzer": {}}}}, "index.analysis"),
            # a good value next to a bad one: nothing of the request is applied
            ({"index": {"max_result_window": 7, "refresh_interval": "x"}},
             "index.refresh_interval"),
            ({"index": {"refresh_interval": "1s", "nope": True}}, "index.nope"),
        ]
        for body, key in bad:
            refused(s.http("PUT", "/shop/_settings", body), key, "PUT %r" % body)
        eq(s.http("PUT", "/shop/_settings", {}).status, 400, "an empty body")
        eq(s.http("PUT", "/shop/_settings?bogus=1", {"refresh_interval": "1s"}).status, 400,
           "an unknown parameter")
        eq(s.http("PUT", "/nope/_settings", {"refresh_interval": "1s"}).status, 404, "no index")
        eq(settings(s, "shop"), before, "every refused PUT left the settings as they were")
        restart(s)
        eq(settings(s, "shop"), before, "and so did the store")
        # number_of_replicas 0 is what a single node serves: stored and reported
        r = s.http("PUT", "/shop/_settings", {"settings": {"index": {"number_of_replicas": "0"}}})
        eq(r.status, 200, "replicas 0: %r" % r)
        eq(settings(s, "shop")["number_of_replicas"], "0", "replicas reported")
        # PUT /_settings: every index
        eq(s.http("PUT", "/two").status, 200, "create two")
        eq(s.http("PUT", "/_settings", {"index": {"max_result_window": 9}}).status, 200, "all")
        eq((settings(s, "shop")["max_result_window"], settings(s, "two")["max_result_window"]),
           ("9", "9"), "PUT /_settings reached both")
        eq(settings(s, "shop")["refresh_interval"], "2s", "the other settings stay")
        clean_stop(s)


def t_get_filtered_flat_defaults():
    """GET _settings/{name} with wildcards, ?flat_settings and ?include_defaults, each answer
    written out by hand from Elasticsearch's documented shapes."""
    with Server() as s:
        eq(s.http("PUT", "/shop", {"settings": {"index": {"refresh_interval": "5s"}}}).status, 200,
           "create shop")
        eq(s.http("PUT", "/logs").status, 200, "create logs")
        r = s.http("GET", "/shop/_settings/index.refresh_interval")
        eq((r.status, r.json), (200, {"shop": {"settings": {"index": {"refresh_interval": "5s"}}}}),
           "one name")
        r = s.http("GET", "/_settings/*.number_of_*,index.refresh_interval?flat_settings=true")
        eq((r.status, r.json), (200, {
            "shop": {"settings": {"index.number_of_shards": "1", "index.number_of_replicas": "0",
                                  "index.refresh_interval": "5s"}},
            "logs": {"settings": {"index.number_of_shards": "1",
                                  "index.number_of_replicas": "0"}}}), "wildcards, a list, flat")
        r = s.http("GET", "/shop,logs/_settings/index.refresh_*")
        eq((r.status, r.json), (200, {"shop": {"settings": {"index": {"refresh_interval": "5s"}}}}),
           "an index the filter leaves empty is left out")
        r = s.http("GET", "/logs/_settings?include_defaults=true&flat_settings=true")
        eq(r.status, 200, "include_defaults: %r" % r)
        eq(r.json["logs"]["defaults"], {"index.refresh_interval": "1s",
                                        "index.max_result_window": "10000"}, "defaults")
        r = s.http("GET", "/shop/_settings/index.refresh_interval?include_defaults")
        eq(r.json, {"shop": {"settings": {"index": {"refresh_interval": "5s"}}, "defaults": {}}},
           "a setting the index sets is no default")
        eq(s.http("GET", "/shop/_settings/nothing*").json, {}, "nothing matches")
        r = s.http("GET", "/shop/_settings?flat_settings=yes")
        eq(r.status, 400, "a flag that is not a boolean: %r" % r)
        check("[yes]" in r.json["error"]["reason"], "the reason names the value", r.json)
        eq(s.http("GET", "/nope/_settings/index.*").status, 404, "no such index")
        clean_stop(s)


if __name__ == "__main__":
    run_tests([("refresh_interval_minus_one_and_short", t_refresh_interval),
               ("max_result_window_search_scroll_restart", t_max_result_window),
               ("refused_settings_change_nothing", t_refused_changes_nothing),
               ("get_filtered_flat_defaults", t_get_filtered_flat_defaults)])
