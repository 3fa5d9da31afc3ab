"""test_manage.py: the index-management reads and chores against a real quidditch: _source,
_settings, _stats, _flush, _forcemerge, _validate/query, _field_caps, _cat/health|count|aliases,
with values checked against what was written."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import Server, check, eq, run_tests  # noqa: E402


def t_management_endpoints():
    with Server() as s:
        eq(s.http("PUT", "/shop", {"mappings": {"properties": {
            "title": {"type": "text", "fields": {"keyword": {"type": "keyword"}}},
            "n": {"type": "long"}}}}).status, 200, "create")
        for batch in range(3):  # three refreshes: three segments for forcemerge to join
            lines = []
            for i in range(10):
                lines += [{"index": {"_id": "%d-%d" % (batch, i)}}, {"title": "t %d" % i, "n": i}]
            s.bulk(lines, "/shop/_bulk?refresh=true")
        eq(s.http("DELETE", "/shop/_doc/0-0?refresh=true").status, 200, "delete one")
        r = s.http("GET", "/shop/_source/1-3")
        eq(r.json, {"title": "t 3", "n": 3}, "_source")
        eq(s.http("GET", "/shop/_source/1-3?_source_includes=n").json, {"n": 3}, "_source filtered")
        eq(s.http("GET", "/shop/_source/nope").status, 404, "_source of a missing doc")
        eq(s.http("HEAD", "/shop/_source/1-3").status, 200, "HEAD _source")
        r = s.http("GET", "/shop/_settings")
        eq(r.json["shop"]["settings"]["index"]["number_of_shards"], "1", "_settings")
        r = s.http("GET", "/shop/_stats")
        prim = r.json["indices"]["shop"]["primaries"]
        eq(prim["docs"]["count"], 29, "_stats docs.count")
        check(prim["store"]["size_in_bytes"] > 0, "store size", prim)
        check(prim["segments"]["count"] >= 2, "segments before forcemerge", prim)
        eq(s.http("POST", "/shop/_flush").json["_shards"]["failed"], 0, "_flush")
        r = s.http("POST", "/shop/_forcemerge?max_num_segments=1")
        eq(r.status, 200, "_forcemerge: %r" % r)
        prim = s.http("GET", "/_stats").json["indices"]["shop"]["primaries"]
        eq((prim["segments"]["count"], prim["docs"]["count"], prim["docs"]["deleted"]), (1, 29, 0),
           "one segment after forcemerge, deletes merged away")
        eq(s.http("POST", "/shop/_count", {"query": {"match": {"title": "t"}}}).json["count"], 29,
           "the merged index answers")
        eq(s.http("POST", "/shop/_forcemerge?max_num_segments=0").status, 400, "bad max")
        r = s.http("POST", "/shop/_validate/query", {"query": {"match": {"title": "t"}}})
        eq(r.json["valid"], True, "valid query")
        r = s.http("POST", "/shop/_validate/query?explain=true", {"query": {"nope": {}}})
        eq((r.json["valid"], "nope" in r.json.get("error", "")), (False, True), "invalid query")
        r = s.http("GET", "/shop/_field_caps?fields=title*,n")
        eq(sorted(r.json["fields"]), ["n", "title", "title.keyword"], "_field_caps fields")
        eq(r.json["fields"]["title"]["text"]["aggregatable"], False, "text is not aggregatable")
        eq(r.json["fields"]["n"]["long"]["aggregatable"], True, "long is")
        eq(s.http("GET", "/_field_caps").status, 400, "_field_caps needs fields")
        r = s.http("GET", "/_cat/health?format=json")
        eq(r.json[0]["status"], "green", "_cat/health")
        r = s.http("GET", "/_cat/count/shop?format=json")
        eq(r.json[0]["count"], "29", "_cat/count")
        eq(s.http("GET", "/_cat/aliases?format=json").json, [], "_cat/aliases")
        eq(s.http("GET", "/nope/_stats").status, 404, "_stats of a missing index")


if __name__ == "__main__":
    run_tests([("management_endpoints_answer_what_was_written", t_management_endpoints)])
