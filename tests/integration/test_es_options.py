"""test_es_options.py: no option is silently ignored (issue 12 §1). Against a real quidditch:
every query and aggregation type takes a documented option (200, with its effect checked where
it has one) and refuses an unknown one with a 400 naming it; the options Elasticsearch users
reach for that this node does not serve (explain of a range, profile, version_type, filter_path, a second
shard, a non-UTC time zone, another analyzer...) answer 400 naming them; the ones it serves
(_source on GET and _mget items, stored_fields, sort with unmapped_type, date_histogram format)
do what they say."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import Server, check, eq, run_tests  # noqa: E402

DOCS = [("a", {"title": "red laptop", "n": 1, "d": "2020-01-01", "tag": "x"}),
        ("b", {"title": "blue laptop bag", "n": 5, "d": "2021-06-01", "tag": "y"}),
        ("c", {"title": "green phone", "n": 9, "d": "2021-07-09", "tag": "x"})]

# query type -> (a body with a documented option, the same query with an unknown option)
QUERIES = {
    "match": ({"match": {"title": {"query": "laptop", "operator": "and"}}},
              {"match": {"title": {"query": "laptop", "fuzzyness": 1}}}),
    "term": ({"term": {"tag": {"value": "x", "boost": 2}}},
             {"term": {"tag": {"value": "x", "boots": 2}}}),
    "terms": ({"terms": {"tag": ["x", "y"], "boost": 1}}, {"terms": {"tag": ["x"], "boots": 1}}),
    "range": ({"range": {"d": {"gte": "2021-01-01", "format": "yyyy-MM-dd"}}},
              {"range": {"d": {"gte": "2021-01-01", "inclusive": True}}}),
    "bool": ({"bool": {"should": [{"term": {"tag": "x"}}], "minimum_should_match": 1}},
             {"bool": {"shoud": [{"term": {"tag": "x"}}]}}),
    "match_all": ({"match_all": {"boost": 1.5}}, {"match_all": {"boots": 1}}),
    "exists": ({"exists": {"field": "n"}}, {"exists": {"field": "n", "nul_value": 1}}),
    "prefix": ({"prefix": {"tag": {"value": "x", "rewrite": "constant_score"}}},
               {"prefix": {"tag": {"value": "x", "fuzzy": 1}}}),
    "wildcard": ({"wildcard": {"tag": {"value": "x*"}}}, {"wildcard": {"tag": {"valu": "x*"}}}),
    "ids": ({"ids": {"values": ["a", "b"]}}, {"ids": {"values": ["a"], "type": "_doc"}}),
    "multi_match": ({"multi_match": {"query": "laptop", "fields": ["title"], "operator": "or"}},
                    {"multi_match": {"query": "laptop", "fields": ["title"], "slops": 1}}),
    "function_score": ({"function_score": {"query": {"match_all": {}}, "boost_mode": "sum"}},
                       {"function_score": {"query": {"match_all": {}}, "boost_mod": "sum"}}),
    "constant_score": ({"constant_score": {"filter": {"term": {"tag": "x"}}, "boost": 2}},
                       {"constant_score": {"filter": {"term": {"tag": "x"}}, "score": 2}}),
    "match fuzziness": ({"match": {"title": {"query": "laptp", "fuzziness": "AUTO",
                                             "prefix_length": 1, "max_expansions": 10,
                                             "fuzzy_transpositions": True}}},
                        {"match": {"title": {"query": "laptp", "fuzziness": 1, "fuzzy_prefix": 1}}}),
    "fuzzy": ({"fuzzy": {"title": {"value": "laptp", "fuzziness": 1, "prefix_length": 0,
                                   "max_expansions": 5, "transpositions": False}}},
              {"fuzzy": {"title": {"value": "laptp", "edits": 1}}}),
    "regexp": ({"regexp": {"tag": {"value": "[xy]", "flags": "ALL", "max_determinized_states": 100}}},
               {"regexp": {"tag": {"value": "x", "flag": "ALL"}}}),
    "boosting": ({"boosting": {"positive": {"match_all": {}}, "negative": {"term": {"tag": "x"}},
                               "negative_boost": 0.5}},
                 {"boosting": {"positive": {"match_all": {}}, "negative": {"term": {"tag": "x"}},
                               "negative_boost": 0.5, "positive_boost": 2}}),
    "query_string": ({"query_string": {"query": "laptop", "default_field": "title",
                                       "default_operator": "AND", "fuzziness": 1}},
                     {"query_string": {"query": "laptop", "default_fields": ["title"]}}),
    "simple_query_string": ({"simple_query_string": {"query": "laptop", "fields": ["title^2"],
                                                     "default_operator": "or", "flags": "ALL"}},
                            {"simple_query_string": {"query": "laptop", "field": ["title"]}}),
}

AGGS = {
    "terms": ({"terms": {"field": "tag", "size": 2, "shard_size": 10}},
              {"terms": {"field": "tag", "sizes": 2}}),
    "avg": ({"avg": {"field": "n", "missing": 0}}, {"avg": {"field": "n", "format": "0.0"}}),
    "histogram": ({"histogram": {"field": "n", "interval": 5, "min_doc_count": 1}},
                  {"histogram": {"field": "n", "interval": 5, "keyed": True}}),
    "date_histogram": ({"date_histogram": {"field": "d", "calendar_interval": "year",
                                           "format": "yyyy"}},
                       {"date_histogram": {"field": "d", "calendar_interval": "year",
                                           "extended_bound": {}}}),
    # issue 12 §4
    "cardinality": ({"cardinality": {"field": "tag", "precision_threshold": 100}},
                    {"cardinality": {"field": "tag", "execution_hint": "direct"}}),
    "percentiles": ({"percentiles": {"field": "n", "percents": [50], "keyed": False,
                                     "tdigest": {"compression": 200}}},
                    {"percentiles": {"field": "n", "hdr": {"number_of_significant_value_digits": 3}}}),
    "percentile_ranks": ({"percentile_ranks": {"field": "n", "values": [5]}},
                         {"percentile_ranks": {"field": "n", "values": [5], "method": "hdr"}}),
    "extended_stats": ({"extended_stats": {"field": "n", "sigma": 3}},
                       {"extended_stats": {"field": "n", "sigmas": 3}}),
    "weighted_avg": ({"weighted_avg": {"value": {"field": "n"}, "weight": {"field": "n", "missing": 1}}},
                     {"weighted_avg": {"value": {"field": "n"}, "weight": {"field": "n"}, "value_type": "long"}}),
    "range": ({"range": {"field": "n", "ranges": [{"to": 5}], "keyed": True}},
              {"range": {"field": "n", "ranges": [{"to": 5}], "rangez": 1}}),
    "date_range": ({"date_range": {"field": "d", "format": "yyyy", "ranges": [{"from": "2021"}]}},
                   {"date_range": {"field": "d", "ranges": [{"from": "2021"}], "time_zon": "UTC"}}),
    "filters": ({"filters": {"filters": {"x": {"term": {"tag": "x"}}}, "other_bucket": True}},
                {"filters": {"filters": {"x": {"term": {"tag": "x"}}}, "other_bucke": True}}),
    "missing": ({"missing": {"field": "tag"}}, {"missing": {"field": "tag", "missin": 1}}),
    "top_hits": ({"top_hits": {"size": 1, "sort": [{"n": "desc"}], "_source": ["n"]}},
                 {"top_hits": {"size": 1, "highlight": {}}}),
    "composite": ({"composite": {"size": 2, "sources": [{"t": {"terms": {"field": "tag"}}}]}},
                  {"composite": {"size": 2, "sources": [{"t": {"terms": {"field": "tag"}}}], "sise": 1}}),
    "terms options": ({"terms": {"field": "tag", "missing": "none", "include": "x|y", "exclude": ["y"],
                                 "min_doc_count": 0, "order": {"_key": "asc"}}},
                      {"terms": {"field": "tag", "collect_mode": "breadth_first"}}),
    "date_histogram options": ({"date_histogram": {"field": "d", "calendar_interval": "year", "offset": "+1d",
                                                   "time_zone": "Europe/Paris",
                                                   "extended_bounds": {"min": "2019", "max": "2022"}}},
                               {"date_histogram": {"field": "d", "calendar_interval": "year",
                                                   "hard_bounds": {"min": "2019"}}}),
}


# the option each "unknown" body above adds
UNKNOWN = {"match": "fuzzyness", "term": "boots", "terms": "boots", "range": "inclusive",
           "bool": "shoud", "match_all": "boots", "exists": "nul_value", "prefix": "fuzzy",
           "wildcard": "valu", "ids": "type", "multi_match": "slops",
           "function_score": "boost_mod", "constant_score": "score",
           "match fuzziness": "fuzzy_prefix", "fuzzy": "edits", "regexp": "flag",
           "boosting": "positive_boost", "query_string": "default_fields",
           "simple_query_string": "field",
           "terms agg": "sizes", "avg agg": "format", "histogram agg": "keyed",
           "date_histogram agg": "extended_bound", "cardinality agg": "execution_hint",
           "percentiles agg": "hdr", "percentile_ranks agg": "method", "extended_stats agg": "sigmas",
           "weighted_avg agg": "value_type", "range agg": "rangez", "date_range agg": "time_zon",
           "filters agg": "other_bucke", "missing agg": "missin", "top_hits agg": "highlight",
           "composite agg": "sise", "terms options agg": "collect_mode",
           "date_histogram options agg": "hard_bounds"}


def search(s, body, path="/shop/_search"):
    return s.http("POST", path, body)


def refused(r, name, what):
    eq(r.status, 400, "%s: %r" % (what, r))
    reason = r.json["error"]["reason"]
    check(name in reason, "%s: the reason names [%s]" % (what, name), reason)


def setup(s):
    eq(s.http("PUT", "/shop", {"mappings": {"properties": {
        "title": {"type": "text"}, "n": {"type": "long"}, "d": {"type": "date"},
        "tag": {"type": "keyword"}}}}).status, 200, "create")
    lines = []
    for i, d in DOCS:
        lines += [{"index": {"_id": i}}, d]
    eq(s.bulk(lines, "/shop/_bulk?refresh=true").json["errors"], False, "bulk")


def t_every_query_and_aggregation_type():
    with Server() as s:
        setup(s)
        for name, (good, bad) in QUERIES.items():
            r = search(s, {"query": good})
            eq(r.status, 200, "%s with a documented option: %r" % (name, r))
            unknown = UNKNOWN[name]
            refused(search(s, {"query": bad}), unknown, "%s with [%s]" % (name, unknown))
        for name, (good, bad) in AGGS.items():
            r = search(s, {"size": 0, "aggs": {"a": good}})
            eq(r.status, 200, "%s aggregation with a documented option: %r" % (name, r))
            unknown = UNKNOWN[name + " agg"]
            refused(search(s, {"size": 0, "aggs": {"a": bad}}), unknown,
                    "%s aggregation with [%s]" % (name, unknown))
        r = search(s, {"size": 0, "aggs": {"a": AGGS["date_histogram"][0]}})
        eq([b["key_as_string"] for b in r.json["aggregations"]["a"]["buckets"]], ["2020", "2021"],
           "date_histogram format")
        r = search(s, {"query": QUERIES["range"][0]})
        eq(sorted(h["_id"] for h in r.json["hits"]["hits"]), ["b", "c"], "range with a format")


def t_options_not_served_are_refused():
    with Server() as s:
        setup(s)
        refused(search(s, {"sort": [{"nope": "asc"}]}), "nope", "sort on an unmapped field")
        refused(search(s, {"query": QUERIES["range"][0], "explain": True}), "range",
                "explain of a query type it does not explain (match, term, bool are explained)")
        refused(search(s, {"profile": True}), "profile", "profile")
        refused(search(s, {"query": {"term": {"tag": {"value": "X", "case_insensitive": True}}}}),
                "case_insensitive", "case_insensitive")
        refused(search(s, {"query": {"match": {"title": {"query": "x", "analyzer": "klingon"}}}}),
                "klingon", "an analyzer that does not exist")
        refused(search(s, {"query": {"range": {"d": {"gte": "2021-01-01",
                                                     "time_zone": "+01:00"}}}}),
                "time_zone", "a non-UTC time zone")
        refused(search(s, {"query": {"match_all": {"_name": "q1"}}}), "_name", "named queries")
        refused(s.http("PUT", "/shop/_doc/z?version=3&version_type=external", {"n": 1}),
                "version", "external versioning")
        refused(s.http("GET", "/shop/_search?filter_path=hits.hits._id"), "filter_path",
                "filter_path")
        refused(s.http("PUT", "/sharded", {"settings": {"number_of_shards": 3}}),
                "number_of_shards", "3 shards on one node")
        refused(s.http("PUT", "/slow", {"settings": {"index": {"codec": "best_compression"}}}),
                "index.codec", "a setting this node does not serve")
        refused(s.http("PUT", "/aliased", {"aliases": {"a1": {"routing": "x"}}}), "routing",
                "alias routing (aliases are served, routing is not)")
        for name in ("sharded", "slow", "aliased"):
            eq(s.http("HEAD", "/" + name).status, 404, "a refused create leaves no index " + name)
        eq(s.http("PUT", "/one", {"settings": {"index": {"number_of_shards": "1",
                                                         "number_of_replicas": 0}}}).status,
           200, "the settings a node serves")
        refused(s.http("POST", "/shop/_mget", {"docs": [{"_id": "a", "stored_fields": ["n"]}]}),
                "stored_fields", "an _mget item field not served")


def t_options_served_do_what_they_say():
    with Server() as s:
        setup(s)
        r = search(s, {"sort": [{"nope": {"order": "asc", "unmapped_type": "long"}}]})
        eq(r.status, 200, "sort with unmapped_type: %r" % r)
        r = search(s, {"stored_fields": "_none_"})
        check(all("_source" not in h for h in r.json["hits"]["hits"]), "stored_fields _none_",
              r.json)
        r = search(s, {"stored_fields": ["_source"]})
        check(all("_source" in h for h in r.json["hits"]["hits"]), "stored_fields _source", r.json)
        r = s.http("GET", "/shop/_doc/a?_source_includes=n,d&_source_excludes=d")
        eq(r.json["_source"], {"n": 1}, "GET _source_includes/_excludes")
        r = s.http("GET", "/shop/_doc/a?_source=false")
        check("_source" not in r.json and r.json["found"], "GET _source=false", r.json)
        r = s.http("GET", "/shop/_doc/a?_source=title")
        eq(r.json["_source"], {"title": "red laptop"}, "GET _source=title")
        r = s.http("POST", "/shop/_mget", {"docs": [{"_id": "a", "_source": ["n"]},
                                                    {"_id": "b", "_source": False},
                                                    {"_id": "c"}]})
        docs = r.json["docs"]
        eq(docs[0]["_source"], {"n": 1}, "_mget item _source list")
        check("_source" not in docs[1], "_mget item _source false", docs[1])
        eq(docs[2]["_source"], DOCS[2][1], "_mget item without _source")
        r = s.http("POST", "/shop/_mget?_source_includes=tag", {"ids": ["a", "c"]})
        eq([d["_source"] for d in r.json["docs"]], [{"tag": "x"}, {"tag": "x"}], "_mget URL _source")
        r = s.http("GET", "/shop/_search?sort=n:desc&size=2")
        eq([h["_id"] for h in r.json["hits"]["hits"]], ["c", "b"], "the client's sort=n:desc")
        r = s.http("GET", "/shop/_search?pretty")
        eq(r.status, 200, "?pretty is served everywhere")


if __name__ == "__main__":
    run_tests([("every_query_and_aggregation_type_takes_documented_options_only",
                t_every_query_and_aggregation_type),
               ("options_not_served_answer_400_naming_them", t_options_not_served_are_refused),
               ("options_served_do_what_they_say", t_options_served_do_what_they_say)])
