"""test_qctl.py: the qctl client against a real quidditch process: index create, bulk, search,
udf deploy/list/status/versions/rollback/test/delete, --json output, and one-line failures
with a non-zero exit."""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import BUILD, Server, check, eq, run_tests, skip, wat2wasm  # noqa: E402

WAT = """(module
  (func (export "lin") (param $s f64) (param $k f64) (result f64)
    (f64.mul (local.get $s) (local.get $k))))"""
WAT2 = """(module
  (func (export "lin") (param $s f64) (param $k f64) (result f64)
    (f64.add (local.get $s) (local.get $k))))"""


def qctl(s, *args, ok=True):
    env = dict(os.environ, QUIDDITCH_URL=s.url)
    p = subprocess.run([os.path.join(BUILD, "qctl")] + list(args), capture_output=True,
                       text=True, env=env, timeout=60)
    if ok and p.returncode != 0:
        raise AssertionError("qctl %s failed (%d): %s%s" % (" ".join(args), p.returncode,
                                                            p.stdout, p.stderr))
    return p


def t_qctl():
    w1, w2 = wat2wasm(WAT), wat2wasm(WAT2)
    if w1 is None:
        skip("wat2wasm not installed")
    d = tempfile.mkdtemp(prefix="qd-qctl-")
    with Server() as s:
        p = qctl(s, "index", "create", "items", "--mappings",
                 '{"properties":{"title":{"type":"text"},"n":{"type":"double"}}}')
        check("created index items" in p.stdout, "index create output", p.stdout)
        nd = os.path.join(d, "docs.ndjson")
        with open(nd, "w") as f:
            for i, t in enumerate(["red laptop", "blue laptop bag", "green phone"]):
                f.write('{"index":{"_id":"%d"}}\n%s\n' % (i + 1, json.dumps({"title": t, "n": i})))
        p = qctl(s, "bulk", "items", nd)
        check("3 items" in p.stdout and "0 errors" in p.stdout, "bulk output", p.stdout)
        p = qctl(s, "search", "items", '{"query":{"match":{"title":"laptop"}}}')
        check(p.stdout.startswith("2 hits"), "search output", p.stdout)
        m = os.path.join(d, "lin.json")
        with open(m, "w") as f:
            json.dump({"name": "lin", "params": [{"name": "s", "type": "f64", "default": "_score"},
                                  {"name": "k", "type": "f64", "default": 2}], "returns": "f64"}, f)
        for i, w in enumerate((w1, w2)):
            path = os.path.join(d, "lin%d.wasm" % i)
            with open(path, "wb") as f:
                f.write(w)
            # the second deploy takes its name from the manifest
            name = ["--name", "lin"] if i == 0 else []
            p = qctl(s, "udf", "deploy", *name, "--wasm", path, "--manifest", m,
                     "--description", "linear")
            check("uploading" in p.stdout and "v%d ready" % (i + 1) in p.stdout, "deploy", p.stdout)
        p = qctl(s, "udf", "list")
        check("lin" in p.stdout and "v2" in p.stdout, "list", p.stdout)
        p = qctl(s, "udf", "status", "lin")
        check(p.stdout.startswith("lin v2") and "linear" in p.stdout, "status", p.stdout)
        p = qctl(s, "udf", "versions", "lin")
        check("v1" in p.stdout and "v2" in p.stdout, "versions", p.stdout)
        p = qctl(s, "udf", "test", "lin", "--args", '{"_score": 3, "k": 4}')
        check("-> 7" in p.stdout, "test on v2 (3 + 4)", p.stdout)
        p = qctl(s, "udf", "rollback", "lin", "--to", "v1")
        check("v2 -> v1" in p.stdout, "rollback", p.stdout)
        p = qctl(s, "--json", "udf", "test", "lin", "--args", '{"_score": 3, "k": 4}')
        eq(json.loads(p.stdout)["result"], 12, "--json test on v1 (3 * 4)")
        p = qctl(s, "search", "nope", "{}", ok=False)
        eq(p.returncode, 1, "exit status on failure")
        eq(p.stderr.strip(), "qctl: index_not_found_exception: no such index [nope]", "one line")
        p = qctl(s, "udf", "deploy", "--name", "bad", "--wasm", m, ok=False)
        check(p.returncode != 0 and p.stderr.startswith("qctl: illegal_argument_exception"),
              "bad module rejected", p.stdout, p.stderr)
        r = s.http("POST", "/items/_search", {"query": {"function_score": {
            "query": {"match": {"title": "laptop"}},
            "script_score": {"script": {"source": "lin"}}}}})
        eq(r.status, 200, "a search with lin: %r" % r)
        metrics = s.http("GET", "/metrics").text
        check('udf="lin"' in metrics, "lin's series in /metrics", metrics[:2000])
        p = qctl(s, "udf", "delete", "lin")
        check("deleted lin" in p.stdout, "delete", p.stdout)
        metrics = s.http("GET", "/metrics").text
        check('udf="lin"' not in metrics, "a deleted UDF's series leave /metrics",
              [ln for ln in metrics.splitlines() if 'udf="lin"' in ln][:5])
        deleted = [ln for ln in s.logtext().splitlines() if "UDF deleted: lin" in ln]
        eq(len(deleted), 1, "one log line per delete: %r" % deleted)
        p = qctl(s, "udf", "status", "lin", ok=False)
        check(p.returncode == 1 and "resource_not_found_exception" in p.stderr, "gone", p.stderr)
        p = qctl(s, "index", "delete", "items")
        check("deleted index items" in p.stdout, "index delete", p.stdout)
        s.stop()
        p = qctl(s, "health", ok=False)
        check(p.returncode == 1 and "cannot reach" in p.stderr, "server down", p.stderr)


def t_help_and_params():
    p = subprocess.run([os.path.join(BUILD, "qctl"), "udf", "deploy", "--help"],
                       capture_output=True, text=True, timeout=30)
    eq(p.returncode, 0, "udf deploy --help exits 0: %s" % p.stderr)
    check("udf deploy" in p.stdout and "--param NAME:TYPE" in p.stdout
          and "keys sign" not in p.stdout, "only udf deploy's usage", p.stdout)
    p = subprocess.run([os.path.join(BUILD, "qctl"), "keys", "sign", "--help"],
                       capture_output=True, text=True, timeout=30)
    check(p.returncode == 0 and "keys sign --key" in p.stdout and "generate" not in p.stdout,
          "keys sign --help", p.stdout, p.stderr)
    w = wat2wasm(WAT)
    if w is None:
        skip("wat2wasm not installed")
    d = tempfile.mkdtemp(prefix="qd-qctl-")
    path = os.path.join(d, "lin.wasm")
    with open(path, "wb") as f:
        f.write(w)
    with Server() as s:
        p = qctl(s, "udf", "deploy", "--name", "lin", "--wasm", path, "--param", "s:f64",
                 "--param", "k:f64")
        check("v1 ready" in p.stdout, "deploy with --param", p.stdout)
        p = qctl(s, "--json", "udf", "test", "lin", "--args", '{"s": 3, "k": 4}')
        eq(json.loads(p.stdout)["result"], 12, "the parameters have the names --param gave")
        p = qctl(s, "udf", "deploy", "--name", "lin", "--wasm", path, "--param", "s:f64",
                 "--param", "k:double", ok=False)
        check(p.returncode == 1 and "type 'double' is not one of" in p.stderr, "bad --param type",
              p.stderr)


if __name__ == "__main__":
    run_tests([("qctl_commands_end_to_end", t_qctl), ("help_and_params", t_help_and_params)])
