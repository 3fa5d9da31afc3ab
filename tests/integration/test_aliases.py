"""test_aliases.py: aliases (actions, filters, is_write_index, search/count/get/bulk through them,
persisted), open/close, composable index templates, _cluster/stats and _nodes/stats against a
real quidditch; expected values are counted from the documents the test writes."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import Server, check, eq, run_tests  # noqa: E402

DOCS = [{"color": c, "n": i} for i, c in enumerate(["red", "blue", "red", "green", "red", "blue"])]


def load(s, index):
    eq(s.http("PUT", "/" + index, {"mappings": {"properties": {
        "color": {"type": "keyword"}, "n": {"type": "long"}}}}).status, 200, "create " + index)
    lines = []
    for i, d in enumerate(DOCS):
        lines += [{"index": {"_id": str(i)}}, d]
    s.bulk(lines, "/%s/_bulk?refresh=true" % index)


def t_aliases():
    with Server() as s:
        load(s, "a1")
        load(s, "a2")
        r = s.http("POST", "/_aliases", {"actions": [
            {"add": {"index": "a1", "alias": "both"}},
            {"add": {"index": "a2", "alias": "both", "is_write_index": True}},
            {"add": {"index": "a1", "alias": "reds", "filter": {"term": {"color": "red"}}}}]})
        eq((r.status, r.json.get("acknowledged")), (200, True), "_aliases add: %r" % r)
        reds = sum(1 for d in DOCS if d["color"] == "red")
        eq(s.http("POST", "/reds/_count").json["count"], reds, "filtered alias count")
        r = s.http("POST", "/reds/_search", {"query": {"range": {"n": {"gte": 2}}}, "size": 10})
        want = sorted(str(i) for i, d in enumerate(DOCS) if d["color"] == "red" and d["n"] >= 2)
        eq(sorted(h["_id"] for h in r.json["hits"]["hits"]), want, "filter ANDed with the query")
        eq(s.http("POST", "/both/_count").json["count"], 2 * len(DOCS), "alias of two indexes")
        eq(s.http("GET", "/reds/_doc/1").json["_index"], "a1", "GET through an alias")
        eq(s.http("GET", "/both/_doc/1").status, 400, "GET through a two-index alias")
        r = s.http("PUT", "/both/_doc/new?refresh=true", {"color": "pink", "n": 9})
        eq((r.status, r.json["_index"]), (201, "a2"), "write goes to the write index")
        r = s.bulk([{"index": {"_index": "both", "_id": "b1"}}, {"color": "x", "n": 1}])
        eq(r.json["items"][0]["index"]["_index"], "a2", "bulk through an alias")
        eq(s.http("GET", "/a2/_count").json["count"], len(DOCS) + 2, "both writes landed in a2")
        # a two-index alias without a write index refuses writes
        s.http("POST", "/_aliases", {"actions": [{"add": {"index": "a1", "alias": "nowrite"}},
                                                 {"add": {"index": "a2", "alias": "nowrite"}}]})
        r = s.http("PUT", "/nowrite/_doc/z", {"n": 1})
        eq(r.status, 400, "no write index")
        check("no write index" in r.json["error"]["reason"], "message", r.json)
        # atomic: a bad action changes nothing
        r = s.http("POST", "/_aliases", {"actions": [{"add": {"index": "a1", "alias": "tmp"}},
                                                     {"remove": {"index": "a1", "alias": "gone"}}]})
        eq(r.status, 404, "removing a missing alias fails the batch")
        eq(s.http("GET", "/_alias/tmp").status, 404, "the batch's add did not happen")
        r = s.http("GET", "/a1/_alias")
        eq(sorted(r.json["a1"]["aliases"]), ["both", "nowrite", "reds"], "GET /{index}/_alias")
        eq(r.json["a1"]["aliases"]["reds"]["filter"], {"term": {"color": "red"}}, "filter kept")
        eq(sorted(s.http("GET", "/_alias/both").json), ["a1", "a2"], "GET /_alias/{name}")
        eq(s.http("GET", "/a1").json["a1"]["aliases"]["reds"]["filter"]["term"]["color"], "red",
           "GET /{index} lists aliases")
        rows = s.http("GET", "/_cat/aliases?format=json").json
        eq(sorted((x["alias"], x["index"]) for x in rows),
           [("both", "a1"), ("both", "a2"), ("nowrite", "a1"), ("nowrite", "a2"), ("reds", "a1")],
           "_cat/aliases")
        eq(s.http("PUT", "/a1/_alias/single").status, 200, "PUT /{index}/_alias/{name}")
        eq(s.http("DELETE", "/a1/_alias/single").status, 200, "DELETE alias")
        eq(s.http("DELETE", "/a1/_alias/single").status, 404, "DELETE it again")
        eq(s.http("PUT", "/a1/_alias/bad", {"filter": {"nope": {}}}).status, 400, "bad filter")
        eq(s.http("PUT", "/both").status, 400, "an index may not take an alias's name")
        eq(s.http("PUT", "/a1/_alias/a2").status, 400, "an alias may not take an index's name")
        # _delete_by_query through a filtered alias deletes only what the filter lets through
        s.http("PUT", "/a3", {"mappings": {"properties": {"color": {"type": "keyword"}}}})
        s.bulk([{"index": {"_index": "a3", "_id": "1"}}, {"color": "red"},
                {"index": {"_index": "a3", "_id": "2"}}, {"color": "blue"}])
        s.http("PUT", "/a3/_alias/a3reds", {"filter": {"term": {"color": "red"}}})
        r = s.http("POST", "/a3reds/_delete_by_query?refresh=true", {"query": {"match_all": {}}})
        eq((r.status, r.json.get("deleted")), (200, 1), "dbq through a filtered alias: %r" % r)
        eq(s.http("GET", "/a3/_doc/2").status, 200, "the unfiltered document stays")
        # persisted
        s.restart()
        eq(s.http("POST", "/reds/_count").json["count"], reds, "aliases survive a restart")
        # remove_index, and deleting an index drops its aliases
        r = s.http("POST", "/_aliases", {"actions": [{"remove_index": {"index": "a2"}}]})
        eq(r.status, 200, "remove_index")
        eq(s.http("HEAD", "/a2").status, 404, "remove_index deleted it")
        eq(sorted(s.http("GET", "/_alias/both").json), ["a1"], "its aliases went with it")


def t_open_close():
    with Server() as s:
        load(s, "c1")
        load(s, "c2")
        r = s.http("POST", "/c1/_close")
        eq((r.status, r.json["indices"]["c1"]["closed"]), (200, True), "close")
        r = s.http("POST", "/c1/_search")
        eq((r.status, r.json["error"]["type"]), (400, "index_closed_exception"), "search closed")
        eq(s.http("GET", "/c1/_doc/1").json["error"]["type"], "index_closed_exception", "get")
        eq(s.http("PUT", "/c1/_doc/9", {"n": 1}).status, 400, "write closed")
        eq(s.http("POST", "/c*/_count").json["count"], len(DOCS), "patterns skip closed indexes")
        s.restart()
        eq(s.http("POST", "/c1/_count").status, 400, "closed survives a restart")
        eq(s.http("POST", "/c1/_open").status, 200, "open")
        eq(s.http("POST", "/c1/_count").json["count"], len(DOCS), "open again, documents kept")
        eq(s.http("POST", "/nope/_close").status, 404, "close a missing index")


def t_templates():
    with Server() as s:
        r = s.http("PUT", "/_component_template/ct_map", {"template": {"mappings": {"properties": {
            "n": {"type": "long"}, "tag": {"type": "keyword"}}}}})
        eq(r.status, 200, "component template: %r" % r)
        r = s.http("PUT", "/_index_template/logs", {
            "index_patterns": ["logs-*"], "priority": 10, "composed_of": ["ct_map"],
            "template": {"settings": {"number_of_shards": 1},
                         "aliases": {"all-logs": {}},
                         "mappings": {"properties": {"msg": {"type": "text"}}}}})
        eq(r.status, 200, "index template: %r" % r)
        eq(s.http("PUT", "/_index_template/low", {"index_patterns": ["logs-*"], "priority": 1,
                                                  "template": {"mappings": {"properties": {
                                                      "tag": {"type": "text"}}}}}).status, 200,
           "a lower-priority template")
        eq(s.http("PUT", "/_index_template/x", {"index_patterns": ["a*"],
                                                "composed_of": ["nope"]}).status, 400,
           "missing component")
        eq(s.http("PUT", "/_index_template/y", {"index_patterns": ["logs-*"], "priority": 10}).status,
           400, "same priority, same pattern")
        eq(s.http("PUT", "/_index_template/z", {"index_patterns": ["q*"],
                                                "template": {"settings": {"foo": 1}}}).status, 400,
           "unserved setting")
        # a first write creates the index from the template
        eq(s.http("PUT", "/logs-1/_doc/1?refresh=true", {"msg": "hello", "tag": "a", "n": 1}).status,
           201, "first write")
        props = s.http("GET", "/logs-1/_mapping").json["logs-1"]["mappings"]["properties"]
        eq((props["n"]["type"], props["tag"]["type"], props["msg"]["type"]),
           ("long", "keyword", "text"), "mapping from the highest-priority template")
        eq(s.http("POST", "/all-logs/_count").json["count"], 1, "the template's alias")
        # explicit creation: the body wins over the template
        eq(s.http("PUT", "/logs-2", {"mappings": {"properties": {"n": {"type": "double"}}}}).status,
           200, "explicit create")
        props = s.http("GET", "/logs-2/_mapping").json["logs-2"]["mappings"]["properties"]
        eq((props["n"]["type"], props["tag"]["type"]), ("double", "keyword"), "body over template")
        r = s.http("GET", "/_index_template/logs")
        eq(r.json["index_templates"][0]["index_template"]["composed_of"], ["ct_map"], "GET template")
        eq(len(s.http("GET", "/_component_template").json["component_templates"]), 1, "list")
        eq(s.http("DELETE", "/_component_template/ct_map").status, 400, "component in use")
        eq(s.http("DELETE", "/_index_template/logs").status, 200, "delete template")
        eq(s.http("DELETE", "/_index_template/logs").status, 404, "delete again")
        eq(s.http("PUT", "/_template/old", {"index_patterns": ["o*"]}).status, 400, "legacy")
        check("_index_template" in s.http("GET", "/_template").json["error"]["reason"],
              "legacy names the replacement")


def t_stats():
    with Server() as s:
        load(s, "s1")
        s.http("POST", "/s1/_search", {"query": {"match_all": {}}})
        r = s.http("GET", "/_cluster/stats")
        eq((r.json["indices"]["count"], r.json["indices"]["docs"]["count"]), (1, len(DOCS)),
           "_cluster/stats")
        check(r.json["indices"]["store"]["size_in_bytes"] > 0, "store size", r.json)
        r = s.http("GET", "/_nodes/stats")
        node = list(r.json["nodes"].values())[0]
        eq(node["indices"]["docs"]["count"], len(DOCS), "_nodes/stats docs")
        eq(node["indices"]["indexing"]["index_total"], len(DOCS), "indexing counter")
        check(node["indices"]["search"]["query_total"] >= 1, "search counter", node)
        rows = s.http("GET", "/_cat/shards?format=json").json
        eq([(x["index"], x["shard"], x["prirep"], x["state"], x["docs"]) for x in rows],
           [("s1", "0", "p", "STARTED", str(len(DOCS)))], "_cat/shards on one node")
        check(rows[0]["store"].endswith("b") and rows[0]["store"][0].isdigit(), "store size",
              rows[0])


if __name__ == "__main__":
    run_tests([("aliases_resolve_filter_and_persist", t_aliases),
               ("closed_indexes_refuse_reads_and_writes", t_open_close),
               ("composable_templates_apply_at_creation", t_templates),
               ("cluster_and_node_stats_count_what_was_written", t_stats)])
