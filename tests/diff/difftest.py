#!/usr/bin/env python3
"""difftest.py: the differential test (issue 9). Random valid modules from binaryen's
`wasm-opt -ttf` (random bytes in, a module out) run on the interpreter and the JIT (diff_run,
tests/diff/diff_run.c) and on node's V8 (run_v8.js); every log value, result, trap and the
memory checksum must agree.

  difftest.py --runner build/tests/diff_run [--count N] [--seed S] [--regress DIR]
              [--keep DIR] [--jobs J] [--size MIN:MAX]

Module I of a run comes from seed S+I. Even I: wasm-opt also runs --denan (no NaN can appear,
so V8 must agree bit for bit too: three-way). Odd I: NaNs allowed; the interpreter and the JIT
must still agree bit for bit, V8 is not asked (the spec lets a NaN's sign and payload vary).
Modules in --regress DIR (ttf-*-v8.wasm three-way, ttf-*-jit.wasm interpreter vs JIT) run
first. A mismatch is printed with the first differing line and, with --keep, the module is
copied there under that name (scripts/fuzz.sh keeps them in tests/data/diff/). DIR/KNOWN lists
regression files (one `NAME reason` a line) that still mismatch and whose fix belongs to
someone else: they are reported, not failed. Exit 0 all agree, 1 a mismatch, 77 a tool is
missing."""
import argparse
import concurrent.futures
import os
import random
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
FEATURES = ["-mvp", "--enable-sign-ext", "--enable-mutable-globals",
            "--enable-nontrapping-float-to-int", "--enable-bulk-memory",
            "--enable-multivalue"]
# not --enable-reference-types: binaryen 108 then types funcref values as anyref (a subtype
# relation that standard reference types lacks), and both V8 and we refuse such modules
CHUNK = 25


SIZE = (200, 2500)  # random input bytes per module (--size MIN:MAX); more makes bigger modules


def generate(path, seed, denan):
    rnd = random.Random(seed)
    data = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(*SIZE)))
    raw = path + ".dat"
    with open(raw, "wb") as f:
        f.write(data)
    cmd = ["wasm-opt", raw, "-ttf"] + FEATURES + (["--denan"] if denan else []) + ["-o", path]
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    os.unlink(raw)
    return r.returncode == 0


def split(text):
    """runner output -> {file: [lines]}"""
    out, cur = {}, None
    for line in text.splitlines():
        if line.startswith("module "):
            cur = line[7:]
            out[cur] = []
        elif cur is not None:
            out[cur].append(line)
    return out


def run_chunk(cmd, chunk):
    r = subprocess.run(cmd + chunk, capture_output=True, text=True, timeout=600)
    got = split(r.stdout)
    if r.returncode == 0 and all(f in got for f in chunk):
        return got
    res = {}
    for f in chunk:  # find the one that killed it
        r1 = subprocess.run(cmd + [f], capture_output=True, text=True, timeout=120)
        g = split(r1.stdout).get(f, [])
        if r1.returncode != 0:
            g.append("crash status %d: %s" % (r1.returncode, r1.stderr.strip()[-200:]))
        res[f] = g
    return res


def run_batch(ex, cmd, files):
    """Run CMD over FILES in chunks on EX's threads; a runner that dies on a module reports
    `crash` for it. Returns a future-like list to collect with collect()."""
    return [ex.submit(run_chunk, cmd, files[i:i + CHUNK]) for i in range(0, len(files), CHUNK)]


def collect(futs):
    res = {}
    for f in futs:
        res.update(f.result())
    return res


def nan_free(line):
    """LINE with every NaN's bits as `nan`: --denan cannot reach a global's initial value, and a
    NaN that reaches JS as a number may come back with another payload (an f32 becomes a
    quiet double), which the spec allows; our two tiers are compared without this."""
    t = line.split(" ")
    for i in range(len(t) - 1):
        if t[i] in ("f32", "f64") and t[i + 1].isdigit():
            b = int(t[i + 1])
            if (t[i] == "f32" and (b >> 23) & 0xff == 0xff and b & 0x7fffff) or \
               (t[i] == "f64" and (b >> 52) & 0x7ff == 0x7ff and b & ((1 << 52) - 1)):
                t[i + 1] = "nan"
    return " ".join(t)


def for_v8(lines):
    """Our lines as V8 can match them: trap wording dropped, NaNs as `nan`, nothing after a
    `skip`."""
    out = []
    for line in lines:
        if line.startswith("skip"):
            return out, True
        out.append(nan_free(line.split("|", 1)[0] if line.startswith("trap ") else line))
    return out, False


def first_diff(a, b):
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else "<end>"
        y = b[i] if i < len(b) else "<end>"
        if x != y:
            return i, x, y
    return None


def main():
    global SIZE
    ap = argparse.ArgumentParser()
    ap.add_argument("--runner", required=True)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--regress")
    ap.add_argument("--keep")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--size", default="%d:%d" % SIZE)
    a = ap.parse_args()
    SIZE = tuple(int(x) for x in a.size.split(":"))
    for tool in ("wasm-opt", "node"):
        if not shutil.which(tool):
            print("difftest: %s not installed; skipped" % tool)
            return 77
    if not os.access(a.runner, os.X_OK):
        print("difftest: runner %s not built" % a.runner)
        return 77

    tmp = tempfile.mkdtemp(prefix="qd-difftest-")
    try:
        cases = []  # (path, three_way, name to keep it as)
        known = {}
        if a.regress and os.path.isdir(a.regress):
            kf = os.path.join(a.regress, "KNOWN")
            if os.path.exists(kf):
                for line in open(kf):
                    line = line.strip()
                    if line and not line.startswith("#"):
                        name, _, why = line.partition(" ")
                        known[name] = why
            for n in sorted(os.listdir(a.regress)):
                if n.endswith(".wasm"):
                    cases.append((os.path.join(a.regress, n), n.endswith("-v8.wasm"), n))
        jobs = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as ex:
            for i in range(a.count):
                seed = a.seed + i
                three = i % 2 == 0
                name = "ttf-%d-%s.wasm" % (seed, "v8" if three else "jit")
                path = os.path.join(tmp, name)
                jobs.append((ex.submit(generate, path, seed, three), path, three, name))
            made = 0
            for fut, path, three, name in jobs:
                if fut.result():
                    cases.append((path, three, name))
                    made += 1
        files = [c[0] for c in cases]
        v8files = [c[0] for c in cases if c[1]]
        with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as ex:
            fj = run_batch(ex, [a.runner, "--tier", "jit"], files)
            fi = run_batch(ex, [a.runner, "--tier", "interp"], files)
            fv = run_batch(ex, ["node", os.path.join(HERE, "run_v8.js")], v8files)
            interp, jit, v8 = collect(fi), collect(fj), collect(fv)

        bad = known_bad = skipped = calls = 0
        for path, three, name in cases:
            li, lj = interp.get(path, ["<no output>"]), jit.get(path, ["<no output>"])
            calls += sum(1 for x in li if x.startswith("call "))
            problems = []
            d = first_diff(li, lj)
            if d:
                problems.append("interp vs jit at line %d: %r vs %r" % d)
            if any(x.startswith("invalid") for x in li):
                problems.append("refused a module binaryen made: %s" % li[-1])
            if three:
                ours, cut = for_v8(li)
                theirs = for_v8(v8.get(path, ["<no output>"]))[0]
                if cut:
                    skipped += 1
                    theirs = theirs[:len(ours)]
                d = first_diff(ours, theirs)
                if d:
                    problems.append("interp vs v8 at line %d: %r vs %r" % d)
            if not problems:
                if name in known:
                    print("difftest: %s agrees now: remove it from KNOWN" % name)
                continue
            if name in known:
                known_bad += 1
                print("difftest: known %s (%s): %s" % (name, known[name], problems[0]))
                continue
            bad += 1
            print("difftest: MISMATCH %s: %s" % (name, "; ".join(problems)))
            if a.keep and not path.startswith(a.keep):
                os.makedirs(a.keep, exist_ok=True)
                shutil.copy(path, os.path.join(a.keep, name))
                print("difftest: kept as %s" % os.path.join(a.keep, name))
        print("difftest: %d modules (%d generated, %d three-way with V8), %d export calls, "
              "%d cut at a limit, %d known, %d mismatched"
              % (len(cases), made, len(v8files), calls, skipped, known_bad, bad))
        print("%d passed, %d failed, %d skipped" % (len(cases) - bad - known_bad, bad, known_bad))
        return 1 if bad else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
