"""test_aggs.py: the aggregations of issue 12 §4 against a real quidditch, each checked against
the answer computed here from the same documents: cardinality (exact under
precision_threshold, HyperLogLog within 3 standard errors above it), percentiles (exact by
Hazen's rule while every value is its own centroid; within 1.5% of rank on 3000 values),
percentile_ranks, extended_stats, weighted_avg, range, date_range, filter, filters, missing,
global, top_hits, composite (paged to the end through after_key), the terms options missing,
include/exclude, min_doc_count 0 and order, the pipelines avg/sum/max/min_bucket and
bucket_sort, and date_histogram time_zone (IANA, via Python's zoneinfo on the same tzdata),
offset and extended_bounds."""
import datetime
import math
import os
import random
import sys
import zoneinfo

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import Server, check, close, eq, run_tests  # noqa: E402

N = 3000
R = random.Random(12)
T0 = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


def make_docs():
    docs = []
    for i in range(N):
        d = {"n": R.randrange(1000), "u": i * 7919, "p": round(R.uniform(0, 100), 6),
             "title": "doc %d" % i}
        if i % 100 == 0:
            d["tag"] = "rare"
        elif R.random() < 0.9:
            d["tag"] = "t%02d" % R.randrange(50)
        if R.random() < 0.8:
            d["w"] = R.randrange(1, 6)
        d["d"] = (T0 + datetime.timedelta(minutes=R.randrange(90 * 24 * 60))).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        docs.append(("d%d" % i, d))
    return docs


DOCS = make_docs()
SRC = [d for _, d in DOCS]
C = {}


def search(body):
    r = C["s"].http("POST", "/shop/_search", body)
    eq(r.status, 200, "search %r: %r" % (body, r))
    return r.json["aggregations"]


def aggs(a, query=None):
    body = {"size": 0, "aggs": a}
    if query:
        body["query"] = query
    return search(body)


def refused(body, name):
    r = C["s"].http("POST", "/shop/_search", body)
    eq(r.status, 400, "refused %r: %r" % (body, r))
    check(name in r.json["error"]["reason"], "the reason names [%s]" % name, r.json)


def hazen(xs, q):
    """The documented exact percentile: rank h = q*n - 1/2 between sorted values."""
    xs = sorted(xs)
    h = q * len(xs) - 0.5
    if h <= 0:
        return xs[0]
    if h >= len(xs) - 1:
        return xs[-1]
    i = int(math.floor(h))
    return xs[i] + (h - i) * (xs[i + 1] - xs[i])


def mid_rank(xs, v):
    """The documented exact percentile rank (distinct values): interpolated mid-ranks."""
    xs = sorted(xs)
    n = len(xs)
    if v < xs[0]:
        return 0.0
    if v > xs[-1]:
        return 100.0
    if v in xs:
        return (sum(1 for x in xs if x < v) + xs.count(v) / 2) / n * 100
    i = max(k for k in range(n) if xs[k] < v)
    return (i + 0.5 + (v - xs[i]) / (xs[i + 1] - xs[i])) / n * 100


def t_cardinality():
    a = aggs({"tags": {"cardinality": {"field": "tag"}}, "n": {"cardinality": {"field": "n"}},
              "u": {"cardinality": {"field": "u"}},
              "tm": {"cardinality": {"field": "tag", "missing": "none"}},
              "u100": {"cardinality": {"field": "u", "precision_threshold": 100}},
              "u1000": {"cardinality": {"field": "u", "precision_threshold": 1000}},
              "p": {"cardinality": {"field": "p"}}})
    tags = {d["tag"] for d in SRC if "tag" in d}
    eq(a["tags"]["value"], len(tags), "exact distinct tags")
    eq(a["tm"]["value"], len(tags) + 1, "missing counts as one more value")
    eq(a["n"]["value"], len({d["n"] for d in SRC}), "exact distinct longs")
    eq(a["u"]["value"], N, "exact at the default threshold (3000)")
    eq(a["p"]["value"], len({d["p"] for d in SRC}), "exact distinct doubles")
    # HyperLogLog past the threshold: p = ceil(log2 t) + 2, standard error 1.04/sqrt(2^p)
    for name, p in (("u100", 9), ("u1000", 12)):
        err = abs(a[name]["value"] - N) / N
        check(err < 3 * 1.04 / math.sqrt(2 ** p), "%s within 3 standard errors" % name,
              a[name], err)
        check(a[name]["value"] != N or name == "u1000", "%s is an estimate" % name, a[name])
    # per bucket, against Python
    a = aggs({"t": {"terms": {"field": "tag", "size": 100},
                    "aggs": {"c": {"cardinality": {"field": "n"}}}}})
    for b in a["t"]["buckets"]:
        eq(b["c"]["value"], len({d["n"] for d in SRC if d.get("tag") == b["key"]}),
           "cardinality in bucket " + b["key"])


def t_percentiles():
    rare = [d["p"] for d in SRC if d.get("tag") == "rare"]
    q = {"term": {"tag": "rare"}}
    a = aggs({"pc": {"percentiles": {"field": "p"}},
              "pk": {"percentiles": {"field": "p", "percents": [10, 50, 99.9], "keyed": False}},
              "pr": {"percentile_ranks": {"field": "p", "values": [rare[3], 50.5, -1, 1000]}}}, q)
    eq(sorted(a["pc"]["values"]), sorted(["1.0", "5.0", "25.0", "50.0", "75.0", "95.0", "99.0"]),
       "default percents, keyed as Elasticsearch prints them")
    for k, v in a["pc"]["values"].items():
        close(v, hazen(rare, float(k) / 100), 1e-9, "exact percentile " + k)
    eq([x["key"] for x in a["pk"]["values"]], [10.0, 50.0, 99.9], "keyed false")
    for x in a["pk"]["values"]:
        close(x["value"], hazen(rare, x["key"] / 100), 1e-9, "percentile %s" % x["key"])
    for k, v in a["pr"]["values"].items():
        close(v, mid_rank(rare, float(k)), 1e-9, "percentile rank of " + k)
    # 3000 values: an estimate within 1.5% of rank (compression 100), better with 400
    allp = sorted(d["p"] for d in SRC)
    for comp, tol in ((100, 0.015), (400, 0.005)):
        a = aggs({"pc": {"percentiles": {"field": "p", "percents": [1, 10, 50, 90, 99],
                                         "tdigest": {"compression": comp}}}})
        for k, v in a["pc"]["values"].items():
            rank = sum(1 for x in allp if x <= v) / N
            check(abs(rank - float(k) / 100) <= tol, "rank error of p%s at compression %d" % (k, comp),
                  v, rank)
    a = aggs({"pc": {"percentiles": {"field": "p"}}}, {"term": {"tag": "nope"}})
    eq(a["pc"]["values"]["50.0"], None, "no values: null")


def t_extended_stats_and_weighted_avg():
    a = aggs({"es": {"extended_stats": {"field": "p", "sigma": 3}},
              "wa": {"weighted_avg": {"value": {"field": "p"}, "weight": {"field": "w"}}},
              "wm": {"weighted_avg": {"value": {"field": "p"}, "weight": {"field": "w", "missing": 1}}}})
    ps = [d["p"] for d in SRC]
    n = len(ps)
    avg = sum(ps) / n
    var = sum(x * x for x in ps) / n - avg * avg
    vs = var * n / (n - 1)
    es = a["es"]
    eq(es["count"], n, "count")
    close(es["sum"], sum(ps), 1e-9, "sum")
    close(es["min"], min(ps), 1e-12, "min")
    close(es["max"], max(ps), 1e-12, "max")
    close(es["avg"], avg, 1e-9, "avg")
    close(es["sum_of_squares"], sum(x * x for x in ps), 1e-9, "sum_of_squares")
    close(es["variance"], var, 1e-6, "variance")
    close(es["variance_population"], var, 1e-6, "variance_population")
    close(es["variance_sampling"], vs, 1e-6, "variance_sampling")
    close(es["std_deviation"], math.sqrt(var), 1e-6, "std_deviation")
    close(es["std_deviation_sampling"], math.sqrt(vs), 1e-6, "std_deviation_sampling")
    close(es["std_deviation_bounds"]["upper"], avg + 3 * math.sqrt(var), 1e-6, "upper bound")
    close(es["std_deviation_bounds"]["lower_sampling"], avg - 3 * math.sqrt(vs), 1e-6, "lower_sampling")
    both = [(d["p"], d["w"]) for d in SRC if "w" in d]
    close(a["wa"]["value"], sum(p * w for p, w in both) / sum(w for _, w in both), 1e-9, "weighted_avg")
    allw = [(d["p"], d.get("w", 1)) for d in SRC]
    close(a["wm"]["value"], sum(p * w for p, w in allw) / sum(w for _, w in allw), 1e-9,
          "weighted_avg with weight.missing")


def t_range_date_range_filter_filters_missing_global():
    a = aggs({"r": {"range": {"field": "p", "ranges": [{"from": 50}, {"to": 10}, {"from": 10, "to": 50}]},
                    "aggs": {"m": {"max": {"field": "p"}}}},
              "rk": {"range": {"field": "p", "keyed": True, "ranges": [{"to": 10, "key": "low"}]}},
              "dr": {"date_range": {"field": "d", "format": "yyyy-MM-dd",
                                    "ranges": [{"to": "2024-02-01"}, {"from": "2024-02-01", "to": "2024-03-01"},
                                               {"from": "2024-03-01||+1d"}]}},
              "f": {"filter": {"term": {"tag": "t01"}}, "aggs": {"a": {"avg": {"field": "p"}}}},
              "fs": {"filters": {"filters": {"one": {"term": {"tag": "t01"}}, "low": {"range": {"p": {"lt": 5}}}},
                                 "other_bucket_key": "rest"}},
              "fa": {"filters": {"filters": [{"term": {"tag": "t02"}}, {"match_all": {}}]}},
              "mi": {"missing": {"field": "tag"}, "aggs": {"c": {"value_count": {"field": "n"}}}},
              "mw": {"missing": {"field": "w"}}})
    eq([b["key"] for b in a["r"]["buckets"]], ["*-10.0", "10.0-50.0", "50.0-*"], "range keys, sorted by from")
    for b, (lo, hi) in zip(a["r"]["buckets"], ((None, 10), (10, 50), (50, None))):
        sel = [d["p"] for d in SRC if (lo is None or d["p"] >= lo) and (hi is None or d["p"] < hi)]
        eq(b["doc_count"], len(sel), "range %s" % b["key"])
        close(b["m"]["value"], max(sel), 1e-12, "max in range %s" % b["key"])
    eq(list(a["rk"]["buckets"]), ["low"], "keyed range")
    eq(a["rk"]["buckets"]["low"]["doc_count"], sum(1 for d in SRC if d["p"] < 10), "keyed range count")
    eq([b["key"] for b in a["dr"]["buckets"]], ["*-2024-02-01", "2024-02-01-2024-03-01", "2024-03-02-*"],
       "date_range keys in the format")
    months = [d["d"][:10] for d in SRC]
    eq([b["doc_count"] for b in a["dr"]["buckets"]],
       [sum(1 for m in months if m < "2024-02-01"), sum(1 for m in months if "2024-02-01" <= m < "2024-03-01"),
        sum(1 for m in months if m >= "2024-03-02")], "date_range counts")
    eq(a["dr"]["buckets"][1]["from_as_string"], "2024-02-01", "from_as_string")
    t01 = [d["p"] for d in SRC if d.get("tag") == "t01"]
    eq(a["f"]["doc_count"], len(t01), "filter")
    close(a["f"]["a"]["value"], sum(t01) / len(t01), 1e-9, "avg under filter")
    fs = a["fs"]["buckets"]
    eq(list(fs), ["one", "low", "rest"], "named filters keyed, then the other bucket")
    eq(fs["low"]["doc_count"], sum(1 for d in SRC if d["p"] < 5), "filter low")
    eq(fs["rest"]["doc_count"], sum(1 for d in SRC if d.get("tag") != "t01" and d["p"] >= 5), "other bucket")
    eq([b["doc_count"] for b in a["fa"]["buckets"]], [sum(1 for d in SRC if d.get("tag") == "t02"), N],
       "anonymous filters")
    eq(a["mi"]["doc_count"], sum(1 for d in SRC if "tag" not in d), "missing")
    eq(a["mi"]["c"]["value"], a["mi"]["doc_count"], "sub-aggregation under missing")
    eq(a["mw"]["doc_count"], sum(1 for d in SRC if "w" not in d), "missing numeric")
    g = aggs({"all": {"global": {}, "aggs": {"a": {"avg": {"field": "p"}}}}, "here": {"avg": {"field": "p"}}},
             {"term": {"tag": "t01"}})
    eq(g["all"]["doc_count"], N, "global sees every document")
    close(g["all"]["a"]["value"], sum(d["p"] for d in SRC) / N, 1e-9, "avg under global")
    close(g["here"]["value"], sum(t01) / len(t01), 1e-9, "the query still applies beside global")


def t_top_hits():
    a = aggs({"t": {"terms": {"field": "tag", "size": 3, "order": {"_key": "asc"}},
                    "aggs": {"top": {"top_hits": {"size": 2, "sort": [{"p": {"order": "desc"}}],
                                                  "_source": ["p"]}}}},
              "first": {"top_hits": {"size": 1, "from": 1, "sort": [{"u": "asc"}], "_source": False}}})
    for b in a["t"]["buckets"]:
        want = sorted(((d["p"], i) for i, d in DOCS if d.get("tag") == b["key"]), reverse=True)[:2]
        hits = b["top"]["hits"]
        eq(hits["total"]["value"], b["doc_count"], "top_hits total")
        eq([h["_id"] for h in hits["hits"]], [i for _, i in want], "top_hits by p desc in " + b["key"])
        eq([h["_source"] for h in hits["hits"]], [{"p": p} for p, _ in want], "_source filtered")
        eq([h["sort"] for h in hits["hits"]], [[p] for p, _ in want], "sort values")
    eq([h["_id"] for h in a["first"]["hits"]["hits"]], ["d1"], "from 1, size 1, by u asc")
    check("_source" not in a["first"]["hits"]["hits"][0], "_source false", a["first"])


def t_composite_pages_through_after_key():
    body = {"c": {"composite": {"size": 7, "sources": [
        {"tag": {"terms": {"field": "tag"}}}, {"h": {"histogram": {"field": "n", "interval": 250}}},
        {"m": {"date_histogram": {"field": "d", "calendar_interval": "month", "format": "yyyy-MM"}}}]},
        "aggs": {"s": {"sum": {"field": "p"}}}}}
    want = {}
    for d in SRC:
        if "tag" not in d:
            continue
        k = (d["tag"], float(d["n"] // 250 * 250), d["d"][:7])
        c, s = want.get(k, (0, 0.0))
        want[k] = (c + 1, s + d["p"])
    got, pages, after = [], 0, None
    while True:
        if after:
            body["c"]["composite"]["after"] = after
        a = aggs(body)["c"]
        if not a["buckets"]:
            check("after_key" not in a, "no after_key past the end", a)
            break
        pages += 1
        check(len(a["buckets"]) <= 7, "page size", a)
        for b in a["buckets"]:
            got.append(((b["key"]["tag"], b["key"]["h"], b["key"]["m"]), b["doc_count"], b["s"]["value"]))
        eq(a["after_key"], a["buckets"][-1]["key"], "after_key is the last key")
        after = a["after_key"]
        check(pages < 200, "pagination ends")
    eq([k for k, _, _ in got], sorted(want), "every bucket once, in composite order")
    for k, c, s in got:
        eq(c, want[k][0], "doc_count of %r" % (k,))
        close(s, want[k][1], 1e-9, "sum of %r" % (k,))
    a = aggs({"c": {"composite": {"size": 3, "sources": [{"n": {"terms": {"field": "n", "order": "desc"}}}]}}})
    eq([b["key"]["n"] for b in a["c"]["buckets"]], sorted({d["n"] for d in SRC}, reverse=True)[:3], "desc source")


def t_terms_options():
    tags = {}
    for d in SRC:
        t = d.get("tag", "NA")
        tags[t] = tags.get(t, 0) + 1
    a = aggs({"m": {"terms": {"field": "tag", "missing": "NA", "size": 100}},
              "re": {"terms": {"field": "tag", "include": "t0.*", "exclude": ["t05"], "size": 100}},
              "arr": {"terms": {"field": "tag", "include": ["t10", "t11", "zz"]}},
              "key": {"terms": {"field": "tag", "order": {"_key": "desc"}, "size": 3}},
              "sub": {"terms": {"field": "tag", "order": {"ap": "desc"}, "size": 3},
                      "aggs": {"ap": {"avg": {"field": "p"}}}}})
    eq({b["key"]: b["doc_count"] for b in a["m"]["buckets"]}, tags, "missing bucket")
    eq(sorted(b["key"] for b in a["re"]["buckets"]),
       sorted(t for t in tags if t.startswith("t0") and t != "t05"), "include regex, exclude array")
    eq(sorted(b["key"] for b in a["arr"]["buckets"]), ["t10", "t11"], "include array")
    eq([b["key"] for b in a["key"]["buckets"]], sorted((t for t in tags if t != "NA"), reverse=True)[:3],
       "order by _key desc")
    avgp = {}
    for t in tags:
        ps = [d["p"] for d in SRC if d.get("tag") == t]
        if ps and t != "NA":
            avgp[t] = sum(ps) / len(ps)
    eq([b["key"] for b in a["sub"]["buckets"]], sorted(avgp, key=lambda t: -avgp[t])[:3], "order by a sub-metric")
    a = aggs({"z": {"terms": {"field": "tag", "min_doc_count": 0, "size": 100}}}, {"term": {"tag": "t01"}})
    z = {b["key"]: b["doc_count"] for b in a["z"]["buckets"]}
    eq(sorted(z), sorted(t for t in tags if t != "NA"), "min_doc_count 0 lists every term")
    eq(sum(z.values()), tags["t01"], "only the query's matches count")


def t_pipelines():
    a = aggs({"m": {"date_histogram": {"field": "d", "calendar_interval": "month"},
                    "aggs": {"s": {"sum": {"field": "p"}}}},
              "avg": {"avg_bucket": {"buckets_path": "m>s"}},
              "sum": {"sum_bucket": {"buckets_path": "m>s"}},
              "max": {"max_bucket": {"buckets_path": "m>s"}},
              "min": {"min_bucket": {"buckets_path": "m>_count"}},
              "t": {"terms": {"field": "tag", "size": 100},
                    "aggs": {"ap": {"avg": {"field": "p"}},
                             "bs": {"bucket_sort": {"sort": [{"ap": {"order": "desc"}}], "from": 1, "size": 2}}}}})
    sums = {}
    for d in SRC:
        sums[d["d"][:7]] = sums.get(d["d"][:7], 0) + d["p"]
    counts = {}
    for d in SRC:
        counts[d["d"][:7]] = counts.get(d["d"][:7], 0) + 1
    close(a["avg"]["value"], sum(sums.values()) / len(sums), 1e-9, "avg_bucket")
    close(a["sum"]["value"], sum(sums.values()), 1e-9, "sum_bucket")
    close(a["max"]["value"], max(sums.values()), 1e-9, "max_bucket")
    best = max(sums, key=sums.get)
    eq(a["max"]["keys"], [best + "-01T00:00:00.000Z"], "max_bucket keys")
    eq(a["min"]["value"], min(counts.values()), "min_bucket over _count")
    avgp = {}
    for t in {d["tag"] for d in SRC if "tag" in d}:
        ps = [d["p"] for d in SRC if d.get("tag") == t]
        avgp[t] = sum(ps) / len(ps)
    eq([b["key"] for b in a["t"]["buckets"]], sorted(avgp, key=lambda t: -avgp[t])[1:3], "bucket_sort from/size")


def t_date_histogram_time_zone_offset_bounds():
    tz = zoneinfo.ZoneInfo("America/New_York")
    a = aggs({"d": {"date_histogram": {"field": "d", "calendar_interval": "day", "time_zone": "America/New_York",
                                       "min_doc_count": 1}},
              "f": {"date_histogram": {"field": "d", "fixed_interval": "1d", "time_zone": "+05:30",
                                       "min_doc_count": 1}},
              "o": {"date_histogram": {"field": "d", "calendar_interval": "day", "offset": "+6h",
                                       "min_doc_count": 1}},
              "e": {"date_histogram": {"field": "d", "calendar_interval": "month",
                                       "extended_bounds": {"min": "2023-11-01", "max": "2024-06-30"}}}})
    want = {}
    for d in SRC:
        t = datetime.datetime.strptime(d["d"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
        local = t.astimezone(tz)
        start = datetime.datetime(local.year, local.month, local.day, tzinfo=tz)
        k = int(start.timestamp() * 1000)
        want[k] = want.get(k, 0) + 1
    eq({b["key"]: b["doc_count"] for b in a["d"]["buckets"]}, want, "days in America/New_York (DST in March)")
    b0 = a["d"]["buckets"][0]
    eq(b0["key_as_string"], "2023-12-31T00:00:00.000-05:00", "key_as_string in the zone, with its offset")
    check(any(b["key_as_string"].endswith("-04:00") for b in a["d"]["buckets"]), "summer time after DST",
          a["d"]["buckets"][-1])
    want = {}
    for d in SRC:
        ms = int(datetime.datetime.strptime(d["d"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp() * 1000)
        off = 5.5 * 3600 * 1000
        k = int((ms + off) // 86400000 * 86400000 - off)
        want[k] = want.get(k, 0) + 1
    eq({b["key"]: b["doc_count"] for b in a["f"]["buckets"]}, want, "fixed offset +05:30")
    want = {}
    for d in SRC:
        ms = int(datetime.datetime.strptime(d["d"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp() * 1000)
        k = (ms - 6 * 3600000) // 86400000 * 86400000 + 6 * 3600000
        want[k] = want.get(k, 0) + 1
    eq({b["key"]: b["doc_count"] for b in a["o"]["buckets"]}, want, "offset +6h")
    eq([b["key_as_string"][:7] for b in a["e"]["buckets"]],
       ["2023-11", "2023-12", "2024-01", "2024-02", "2024-03", "2024-04", "2024-05", "2024-06"],
       "extended_bounds add empty months on both sides")
    eq(a["e"]["buckets"][0]["doc_count"], 0, "an empty bound bucket")


def t_bad_options_are_400():
    refused({"aggs": {"c": {"cardinality": {"field": "tag", "precision": 3}}}}, "precision")
    refused({"aggs": {"c": {"percentiles": {"field": "p", "hdr": {}}}}}, "hdr")
    refused({"aggs": {"c": {"percentiles": {"field": "p", "percents": [101]}}}}, "percent")
    refused({"aggs": {"c": {"percentiles": {"field": "p", "tdigest": {"compresion": 1}}}}}, "compresion")
    refused({"aggs": {"c": {"composite": {"sources": [{"a": {"geotile_grid": {"field": "p"}}}]}}}}, "geotile_grid")
    refused({"aggs": {"c": {"composite": {"sources": [{"a": {"terms": {"field": "tag", "missing_bucket": True}}}]}}}},
            "missing_bucket")
    refused({"aggs": {"c": {"terms": {"field": "tag", "include": {"partition": 0, "num_partitions": 2}}}}},
            "partitions")
    refused({"aggs": {"c": {"date_histogram": {"field": "d", "calendar_interval": "day",
                                               "time_zone": "Mars/Olympus"}}}}, "Mars/Olympus")
    refused({"aggs": {"t": {"terms": {"field": "tag"}, "aggs": {"g": {"global": {}}}}}}, "global")
    refused({"aggs": {"b": {"bucket_sort": {"size": 1}}}}, "bucket_sort")
    refused({"aggs": {"a": {"avg_bucket": {"buckets_path": "nope>x"}}}}, "nope")
    refused({"aggs": {"t": {"top_hits": {"size": 1000}}}}, "size")
    refused({"aggs": {"t": {"terms": {"field": "tag", "include": "(a)\\1"}}}}, "back-references")


def main():
    with Server() as s:
        C["s"] = s
        eq(s.http("PUT", "/shop", {"mappings": {"properties": {
            "n": {"type": "long"}, "u": {"type": "long"}, "p": {"type": "double"}, "tag": {"type": "keyword"},
            "w": {"type": "double"}, "d": {"type": "date"}, "title": {"type": "text"}}}}).status, 200, "create")
        for k in range(0, N, 1000):  # three segments
            lines = []
            for i, d in DOCS[k:k + 1000]:
                lines += [{"index": {"_id": i}}, d]
            r = s.bulk(lines, "/shop/_bulk?refresh=true")
            eq(r.json["errors"], False, "bulk")
        run_tests([("cardinality", t_cardinality), ("percentiles_and_ranks", t_percentiles),
                   ("extended_stats_and_weighted_avg", t_extended_stats_and_weighted_avg),
                   ("range_date_range_filter_filters_missing_global", t_range_date_range_filter_filters_missing_global),
                   ("top_hits", t_top_hits), ("composite_pages_through_after_key", t_composite_pages_through_after_key),
                   ("terms_options", t_terms_options), ("pipelines", t_pipelines),
                   ("date_histogram_time_zone_offset_bounds", t_date_histogram_time_zone_offset_bounds),
                   ("bad_options_are_400", t_bad_options_are_400)])


if __name__ == "__main__":
    main()
