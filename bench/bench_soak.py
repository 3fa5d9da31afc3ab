#!/usr/bin/env python3
"""bench_soak.py BUILD [SECONDS]: a mixed soak against a real node (issue 13, "Checks that
stay"). Starts BUILD/quidditch (Release), loads 20,000 documents, deploys custom_score, then for
SECONDS (default 60) runs Debian's wrk at 48 connections with a mix of searches (match, a
function_score with the UDF, an expression script_score, a terms aggregation) and small bulks
(1 request in 10), while a side loop deploys a new version of the UDF and rolls it back every
0.5 s. Prints throughput, wrk's p50/p99, errors, and the server's RSS at the start, every 10 s
and at the end, so growth can be seen to level off or not. Reports; never fails.

    soak/mixed_60s  ours 1850 req/s  p50 21.0ms p99 68.0ms  non-2xx 0  rss 47 -> 52 MiB ..."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)

LUA = r"""
local n = 0
local bodies = {
  '{"query":{"match":{"title":"laptop bag"}},"size":10}',
  '{"query":{"function_score":{"query":{"match":{"title":"laptop"}},"script_score":{"script":{"source":"custom_score","params":{"boost_factor":1.2,"recency_days":"doc[\'days\']"}}},"boost_mode":"replace"}},"size":10}',
  '{"query":{"script_score":{"query":{"match":{"title":"red"}},"script":{"source":"_score * log(2 + doc[\'price\'].value)"}}},"size":10}',
  '{"size":0,"aggs":{"t":{"terms":{"field":"tag.keyword"},"aggs":{"p":{"avg":{"field":"price"}}}}}}',
}
request = function()
  n = n + 1
  if n % 10 == 0 then
    local id = math.random(1, 40000)
    local b = '{"index":{"_id":"' .. id .. '"}}\n{"title":"soak laptop ' .. id .. '","tag":"t' .. (id % 50) .. '","price":' .. (id % 900) .. ',"days":' .. (id % 400) .. '}\n'
    return wrk.format("POST", "/soak/_bulk", {["Content-Type"] = "application/x-ndjson"}, b)
  end
  return wrk.format("POST", "/soak/_search", {["Content-Type"] = "application/json"}, bodies[(n % 4) + 1])
end
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url, method="GET", body=None, ctype="application/json"):
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"Content-Type": ctype} if body is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def rss_mib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def multipart(manifest, wasm):
    bnd = "soakboundary4471"
    out = b""
    for name, ctype, data in (("manifest", "application/json", manifest), ("wasm", "application/wasm", wasm)):
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                "Content-Type: %s\r\n\r\n" % (bnd, name, name, ctype)).encode() + data + b"\r\n"
    return out + ("--%s--\r\n" % bnd).encode(), "multipart/form-data; boundary=" + bnd


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    binary = os.path.join(build, "quidditch")
    wasm_path = os.path.join(build, "examples", "udfs", "custom_score.wat.wasm")
    man_path = os.path.join(SRC, "examples", "udfs", "custom_score", "custom_score.json")
    if not shutil.which("wrk"):
        print("bench_soak: wrk not installed (scripts/deps.sh installs it)")
        return
    for p in (binary, wasm_path, man_path):
        if not os.path.exists(p):
            print("bench_soak: %s missing (make build first)" % p)
            return
    d = tempfile.mkdtemp(prefix="qd-soak-")
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    log = open(os.path.join(d, "server.log"), "w")
    p = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:%d" % port, "--data",
                          os.path.join(d, "data")], stderr=log)
    try:
        for _ in range(200):
            try:
                if http(url + "/")[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        words = ["laptop", "bag", "red", "fast", "blue", "cable", "phone", "case", "light", "desk"]
        for chunk in range(0, 20000, 2000):
            lines = []
            for i in range(chunk, chunk + 2000):
                lines.append(json.dumps({"index": {"_id": str(i)}}))
                lines.append(json.dumps({"title": "%s %s %s" % (words[i % 10], words[(i * 7) % 10],
                                                                   words[(i * 3) % 10]),
                                         "tag": "t%d" % (i % 50), "price": i % 900, "days": i % 400}))
            st, _ = http(url + "/soak/_bulk", "POST", ("\n".join(lines) + "\n").encode(),
                         "application/x-ndjson")
            if st != 200:
                print("bench_soak: bulk load failed: HTTP %d" % st)
                return
        http(url + "/soak/_refresh", "POST", b"")
        wasm = open(wasm_path, "rb").read()
        manifest = json.loads(open(man_path).read())
        manifest["name"] = "custom_score"
        body, ctype = multipart(json.dumps(manifest).encode(), wasm)
        st, out = http(url + "/_udf/custom_score", "PUT", body, ctype)
        if st not in (200, 201):
            print("bench_soak: deploy failed: HTTP %d %s" % (st, out[:300]))
            return
        lua = os.path.join(d, "mix.lua")
        with open(lua, "w") as f:
            f.write(LUA)
        stop = threading.Event()
        deploys = [0, 0]  # done, failed

        def churn():
            k = 0
            while not stop.wait(0.5):
                manifest["description"] = "soak %d" % k
                b, c = multipart(json.dumps(manifest).encode(), wasm)
                st1, out = http(url + "/_udf/custom_score", "PUT", b, c)
                try:
                    prev = json.loads(out)["version"] - 1
                except (ValueError, KeyError, TypeError):
                    prev = 1
                st2, _ = http(url + "/_udf/custom_score/_rollback", "POST",
                              json.dumps({"to": "v%d" % prev}).encode())
                deploys[0] += 1
                deploys[1] += (st1 not in (200, 201)) + (st2 != 200)
                k += 1
        rss = [("start", rss_mib(p.pid))]
        samples = []

        def sampler():
            t0 = time.monotonic()
            while not stop.wait(10):
                samples.append((int(time.monotonic() - t0), rss_mib(p.pid)))
        th = [threading.Thread(target=churn), threading.Thread(target=sampler)]
        for t in th:
            t.start()
        w = subprocess.run(["wrk", "-t2", "-c48", "-d%ds" % seconds, "--latency", "-s", lua, url],
                           capture_output=True, text=True)
        stop.set()
        for t in th:
            t.join()
        rss.append(("end", rss_mib(p.pid)))
        out = w.stdout
        rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
        lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
        non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        errs = re.search(r"Socket errors:.*", out)
        print("soak/mixed_%ds  ours %s req/s  p50 %s p99 %s  non-2xx %s%s  deploy+rollback %d (%d "
              "failed)  rss %.0f -> %.0f MiB  (issue's run before: 1,732-1,882 searches/s at 48 "
              "connections, p99 64-74 ms, rss 47 -> 347 MiB)"
              % (seconds, rps.group(1) if rps else "?", lat.get("50", "?"), lat.get("99", "?"),
                 non2xx.group(1) if non2xx else "0", ("  " + errs.group(0)) if errs else "",
                 deploys[0], deploys[1], rss[0][1], rss[1][1]))
        print("soak/rss_every_10s  " + "  ".join("%ds %.0f" % s for s in samples) + " MiB")
        if w.returncode != 0:
            print("bench_soak: wrk exited %d: %s" % (w.returncode, w.stderr[:300]))
    finally:
        p.terminate()
        p.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
