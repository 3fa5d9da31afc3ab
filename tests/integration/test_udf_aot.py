"""test_udf_aot.py: the AOT workflow end to end, as the user guide gives it. `qctl keys
generate` makes a key pair, `qctl udf compile --target x86_64-linux --target aarch64-linux
--sign` writes one signed artifact per target (`qwasm compile` writes the same container
offline), and `qctl udf deploy --native-x86_64 F --signature S` uploads one to a real node
started with `--trusted-keys DIR`: GET /_udf/{name} (and `qctl udf status`) then shows tier
native-aot, and the searches' scores are the interpreter's bytes. An unsigned artifact, one
signed by a key the node does not trust, a tampered one and one for the wrong target
(aarch64 uploaded as x86_64) are never loaded: the node compiles the WASM itself (native-jit)
and says why in `artifact`; its compile's peak memory shows in GET /_udf/{name}
(compile_memory_bytes) and the quidditch_udf_compile_memory_bytes metric. Each deploy uses its own module (the example plus a custom
section), so no cache entry of an earlier deploy can stand in for the artifact."""
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import BUILD, SOURCE, Server, check, eq, run_tests  # noqa: E402
import test_udf_native as un  # noqa: E402

DEADLINE_S = 60


def tool(name, *args, env=None):
    return subprocess.run([os.path.join(BUILD, name)] + list(args), capture_output=True,
                          text=True, timeout=300, env=env)


def variant(wasm, tag, d):
    """WASM plus a custom section named TAG: the same code, another module hash."""
    name = tag.encode()
    payload = bytes([len(name)]) + name
    out = os.path.join(d, "custom_score_%s.wasm" % tag)
    with open(out, "wb") as f:
        f.write(wasm + bytes([0, len(payload)]) + payload)
    return out


def node_of(s, name):
    r = s.http("GET", "/_udf/" + name)
    eq(r.status, 200, "GET /_udf/%s: %r" % (name, r))
    return list(r.json["nodes"].values())[0]


def scores(s, name):
    """custom_score's search (test_udf_native.QUERY) with the UDF NAME: (id, score bytes)."""
    q = json.loads(json.dumps(un.QUERY))
    q["query"]["function_score"]["script_score"]["script"]["source"] = name
    r = s.http("POST", "/shop/_search", q)
    eq(r.status, 200, "search with %s: %r" % (name, r))
    out = un.SCORE.findall(r.text[r.text.index('"hits"'):])
    eq(len(out), len(r.json["hits"]["hits"]), "every hit's score read")
    return out


def until_native(s, name, base):
    """Search with NAME (each search's blocks count for the verified swap) until its native
    code serves; every search's scores must be BASE."""
    end = time.time() + DEADLINE_S
    while True:
        eq(scores(s, name), base, "%s: scores while waiting for native code" % name)
        n = node_of(s, name)
        if n["native"] == "ready":
            return n
        check(n["native"] != "failed", "native tier failed", n, s.logtext()[-3000:])
        check(time.time() < end, "%s not native within %d s" % (name, DEADLINE_S), n,
              s.logtext()[-3000:])
        time.sleep(0.05)


def deploy(s, name, wasm, *native):
    env = dict(os.environ, QUIDDITCH_URL="http://127.0.0.1:%d" % s.port)
    p = tool("qctl", "udf", "deploy", "--name", name, "--manifest", MANIFEST, "--wasm", wasm,
             *native, env=env)
    eq(p.returncode, 0, "qctl udf deploy %s: %s %s" % (name, p.stdout, p.stderr))
    return p.stdout


MANIFEST = os.path.join(SOURCE, "examples", "udfs", "custom_score", "custom_score.json")


def t_aot():
    if platform.machine() not in ("x86_64", "AMD64"):
        print("# SKIP the node under test must be x86_64 (the wrong-target case is aarch64)")
        sys.exit(77)
    path = un.udf_wasm()
    if path is None:
        print("# SKIP no built custom_score example")
        sys.exit(77)
    with open(path, "rb") as f:
        wasm = f.read()
    d = tempfile.mkdtemp(prefix="qd-aot-")
    keys, other = os.path.join(d, "keys"), os.path.join(d, "other")
    for k, n in ((keys, "release"), (other, "stranger")):
        p = tool("qctl", "keys", "generate", "--out", k, "--name", n)
        eq(p.returncode, 0, "keys generate: " + p.stderr)
    os.unlink(os.path.join(other, "stranger.pub"))  # the node must not trust it
    key = os.path.join(keys, "release.key")

    good = variant(wasm, "good", d)
    out = os.path.join(d, "aot")
    p = tool("qctl", "udf", "compile", "--wasm", good, "--target", "x86_64-linux",
             "--target", "aarch64-linux", "--out", out, "--sign", key)
    eq(p.returncode, 0, "qctl udf compile: " + p.stderr)
    x86 = os.path.join(out, "custom_score_good.x86_64-linux.qdn")
    arm = os.path.join(out, "custom_score_good.aarch64-linux.qdn")
    for f in (x86, arm, x86 + ".sig", arm + ".sig"):
        check(os.path.exists(f), "compile wrote " + f, p.stdout)
    with open(arm, "rb") as f:
        head = f.read(192 + 20)
    eq(head[:8], b"QDNATIV1", "the container's magic")
    check(b"aarch64-linux" in head[56:88], "the aarch64 artifact names its triple", head[56:88])
    eq(head[192:196], b"\x7fELF", "an ELF object inside")
    eq(head[192 + 18:192 + 20], (183).to_bytes(2, "little"), "e_machine EM_AARCH64")
    # qwasm compile writes the same container offline (same bytes: the compile is deterministic)
    qa = os.path.join(d, "qwasm.qdn")
    p = tool("qwasm", "compile", good, "--target", "x86_64-linux", "--out", qa)
    eq(p.returncode, 0, "qwasm compile: " + p.stderr)
    with open(qa, "rb") as f1, open(x86, "rb") as f2:
        eq(f1.read(), f2.read(), "qwasm compile and qctl udf compile give the same artifact")
    p = tool("qctl", "udf", "compile", "--wasm", good, "--target", "riscv64-linux", "--out", out)
    check(p.returncode != 0 and "unknown target" in p.stderr, "a bad target is refused",
          p.stderr)

    # the wrong-target, unsigned, untrusted and tampered artifacts, each for its own module
    cases = {}
    for tag in ("arm", "unsigned", "stranger", "tampered"):
        w = variant(wasm, tag, d)
        p = tool("qctl", "udf", "compile", "--wasm", w, "--target",
                 "aarch64-linux" if tag == "arm" else "x86_64-linux", "--out", out,
                 *(["--sign", os.path.join(other, "stranger.key")] if tag == "stranger" else
                   [] if tag == "unsigned" else ["--sign", key]))
        eq(p.returncode, 0, "compile %s: %s" % (tag, p.stderr))
        art = os.path.join(out, "custom_score_%s.%s.qdn" % (
            tag, "aarch64-linux" if tag == "arm" else "x86_64-linux"))
        if tag == "tampered":
            with open(art, "r+b") as f:  # one byte of the object, after signing
                f.seek(300)
                b = f.read(1)
                f.seek(300)
                f.write(bytes([b[0] ^ 1]))
        native = ["--native-x86_64", art]
        if tag != "unsigned":
            native += ["--signature", art + ".sig"]
        cases[tag] = (w, native)

    with Server(extra=["--trusted-keys", keys]) as s:
        docs = []
        for i in range(20):
            docs.append({"index": {"_index": "shop", "_id": str(i)}})
            docs.append({"title": "laptop %d" % i, "price": 10.0 + i, "days_since_created": i})
        r = s.bulk(docs)
        eq(r.status, 200, "bulk")
        text = deploy(s, "custom_score", good, "--native-x86_64", x86, "--signature", x86 + ".sig")
        check("artifact: uploaded artifact accepted" in text, "deploy shows the artifact", text)
        base = scores(s, "custom_score")
        n = until_native(s, "custom_score", base)
        eq(n["tier"], "native-aot", "a signed artifact for this target serves")
        check("accepted" in n.get("artifact", ""), "artifact accepted", n)
        eq(scores(s, "custom_score"), base, "scores on the AOT code are the interpreter's")
        env = dict(os.environ, QUIDDITCH_URL="http://127.0.0.1:%d" % s.port)
        p = tool("qctl", "udf", "status", "custom_score", env=env)
        check("native-aot" in p.stdout, "qctl udf status shows native-aot", p.stdout, p.stderr)

        # both targets in one deploy, each with its own signature part: the node takes its own
        both = variant(wasm, "both", d)
        p = tool("qctl", "udf", "compile", "--wasm", both, "--target", "aarch64-linux",
                 "--target", "x86_64-linux", "--out", out, "--sign", key)
        eq(p.returncode, 0, "compile both: " + p.stderr)
        bx = os.path.join(out, "custom_score_both.x86_64-linux.qdn")
        ba = os.path.join(out, "custom_score_both.aarch64-linux.qdn")
        text = deploy(s, "score_both", both, "--native-aarch64", ba, "--signature-aarch64",
                      ba + ".sig", "--native-x86_64", bx, "--signature-x86_64", bx + ".sig")
        check("artifact: uploaded artifact accepted" in text, "both: x86_64's taken", text)
        n = until_native(s, "score_both", base)
        eq(n["tier"], "native-aot", "both: the x86_64 artifact serves")

        want = {"arm": "built for aarch64-linux, this node is x86_64-linux",
                "unsigned": "the artifact is not signed",
                "stranger": "not signed by a trusted key",
                "tampered": "not signed by a trusted key (or altered after signing)"}
        for tag, (w, native) in cases.items():
            name = "score_" + tag
            deploy(s, name, w, *native)
            n = until_native(s, name, base)
            eq(n["tier"], "native-jit", "%s: the node compiled the WASM itself" % tag)
            note = n.get("artifact", "")
            check(note.startswith("uploaded artifact not used") and want[tag] in note,
                  "%s: the reason is shown" % tag, n)
            check(want[tag] in s.logtext(), "%s: the reason is logged" % tag)
            check(n["compile_memory_bytes"] > 0, "%s: the compile's peak memory shown" % tag, n)
        r = s.http("GET", "/metrics")
        m = re.search(r'^quidditch_udf_compile_memory_bytes\{udf="score_arm",[^}]*\} (\d+)$',
                      r.text, re.M)
        check(m and int(m.group(1)) > 0, "the compile memory metric", r.text[-3000:])
        print("# compile peak memory of custom_score: %.1f MiB"
              % (node_of(s, "score_arm")["compile_memory_bytes"] / 1048576.0))


if __name__ == "__main__":
    run_tests([("udf_aot", t_aot)])
