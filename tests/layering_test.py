#!/usr/bin/env python3
"""layering_test.py: proves tests/layering.py fails on violations (CTest layering/planted).

1. On the fixture tree tests/data/layering/ (a bad include of every kind) the checker exits 1
   and prints exactly tests/data/layering/expected.txt: every violation, each named.
2. On a temporary copy of the real src/ with two includes planted (src/index/index.c takes
   "../udf/udf.h", the `..` the old layering.sh let through; src/server/h_doc.c takes
   <expr_int.h>, a private header of src/query; src/query/CMakeLists.txt links qudf) it exits
   1 naming exactly those three.
Standard library only.
"""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CHECKER = os.path.join(HERE, "layering.py")


def run(root):
    p = subprocess.run([sys.executable, CHECKER, root], capture_output=True, text=True)
    return p.returncode, p.stdout


def fail(msg, out):
    print(f"FAIL: {msg}\n--- checker output:\n{out}", end="")
    sys.exit(1)


fixture = os.path.join(HERE, "data", "layering")
rc, out = run(fixture)
with open(os.path.join(fixture, "expected.txt"), encoding="utf-8") as f:
    want = f.read()
if rc != 1:
    fail(f"fixture: exit {rc}, want 1", out)
if out != want:
    fail("fixture: output differs from expected.txt", out)
print(f"ok: fixture tree: exit 1, {out.count(chr(10)) - 1} violations as expected.txt")

plants = [("index/index.c", '#include "../udf/udf.h"',
           '"../udf/udf.h" (src/udf/udf.h): index knows nothing of udf'),
          ("server/h_doc.c", "#include <expr_int.h>",
           "<expr_int.h> (src/query/expr_int.h): not a public header of query"),
          ("query/CMakeLists.txt", "target_link_libraries(qquery PUBLIC qudf)",
           "links qudf (src/udf): query knows nothing of udf")]
with tempfile.TemporaryDirectory(prefix="qd-layering-") as tmp:
    shutil.copytree(os.path.join(ROOT, "src"), os.path.join(tmp, "src"))
    rc, out = run(tmp)
    if rc != 0:
        fail(f"unmodified copy of src/: exit {rc}, want 0", out)
    want_lines = []
    for rel, inc, msg in plants:
        path = os.path.join(tmp, "src", rel)
        with open(path, encoding="utf-8") as f:
            n = len(f.read().splitlines()) + 1
        with open(path, "a", encoding="utf-8") as f:
            f.write(inc + "\n")
        want_lines.append(f"layering: src/{rel}:{n}: {msg}")
    rc, out = run(tmp)
    print(out, end="")
    if rc != 1:
        fail(f"planted copy: exit {rc}, want 1", out)
    got = out.splitlines()
    for w in want_lines:
        if not any(g.startswith(w) for g in got):
            fail(f"planted copy: no line starting {w!r}", out)
    if got[-1] != f"layering: {len(plants)} violations" or len(got) != len(plants) + 1:
        fail("planted copy: want exactly the planted violations", out)
print("ok: planted violations in a copy of src/ are named")
