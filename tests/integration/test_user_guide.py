"""test_user_guide.py: docs/user-guide.md is run as written, against a real quidditch.

The convention (stated in the guide's last section, keep both in step):
- Every ```sh block is run, in the order of the guide, by /bin/sh -e in one temp working dir
  where build/ (the build under test) and examples/ (the source tree's) are reachable as in a
  checkout, with build/ on PATH (qctl, quidditch).
- Lines that start with "# " (or are just "#") right after commands show their expected stdout.
  A block is cut into steps there: the commands above such lines are one step and must print what
  the lines show. Commands with no such lines after them only have to succeed (exit 0). Each
  step runs in a shell of its own: files carry over to later steps, a cd or a variable does not.
- `make serve` is not run: this test starts build/quidditch on a free port first, sets
  QUIDDITCH_URL to it (qctl reads it), rewrites `localhost:9200` in commands to that port, and
  makes curl fail on HTTP errors (--fail-with-body).
- Shown output matches when it is the same text up to whitespace (a run of blanks or newlines
  in the guide matches any, or none), `...` stands for any text, and a number right before
  `ms` (a duration) or after `"took":` matches any number. Everything else (ids, counts, scores, ranking order,
  versions, sizes) must be exactly as shown.
"""
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import BUILD, ETCD, SOURCE, Server, check, eq, run_tests  # noqa: E402

GUIDE = os.path.join(SOURCE, "docs", "user-guide.md")


class Step:
    def __init__(self, line, commands, expected):
        self.line = line            # line number in the guide of the first command
        self.commands = commands    # [str], shell text
        self.expected = expected    # [str] of shown output (without "# "), or [] (just succeed)

    def script(self):
        return "\n".join(self.commands) + "\n"


def parse(text):
    """The guide's ```sh blocks -> [Step]. Raises when a block breaks the convention."""
    steps = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```sh":
            i += 1
            continue
        start, i = i + 1, i + 1
        block = []
        while i < len(lines) and lines[i].strip() != "```":
            block.append((i + 1, lines[i]))
            i += 1
        check(i < len(lines), "```sh block at line %d is not closed" % start)
        i += 1
        cmds, exp, first, before = [], [], None, len(steps)
        for no, l in block:
            if l == "#" or l.startswith("# "):
                check(cmds, "guide line %d: shown output with no command above it in its block"
                      " (make it prose, or a command)" % no, l)
                exp.append(l[2:])
                continue
            if exp:  # output ended: the next command starts a new step
                steps.append(Step(first, cmds, exp))
                cmds, exp, first = [], [], None
            if first is None and l.strip():
                first = no
            if l.strip() or cmds:
                cmds.append(l)
        while cmds and not cmds[-1].strip():
            cmds.pop()
        check(cmds or len(steps) > before, "```sh block at line %d is empty" % start)
        if cmds:
            steps.append(Step(first, cmds, exp))
    return steps


def is_make_serve(cmd):
    return re.match(r"^\s*make\s+serve\s*(#.*)?$", cmd) is not None


def pattern(expected):
    """Shown output -> a regex for the whole stdout (see the module comment)."""
    out = []
    text = "\n".join(expected).strip()
    tok = re.compile(r"(?P<any>\.\.\.)|(?P<ws>\s+)|(?P<ms>\d+(?:\.\d+)?(?=\s?ms\b))"
                     r"|(?P<took>(?<=\"took\":)\d+)")
    pos = 0
    for m in tok.finditer(text):
        out.append(re.escape(text[pos:m.start()]))
        out.append(".*?" if m.group("any") else r"\s*" if m.group("ws") else r"\d+(?:\.\d+)?")
        pos = m.end()
    out.append(re.escape(text[pos:]))
    return re.compile(r"\s*" + "".join(out) + r"\s*", re.S)


def matches(expected, got):
    return pattern(expected).fullmatch(got) is not None


def first_difference(expected, got):
    """The first shown line that no longer matches (in order): a pointer for the reader."""
    text = got
    for n in range(1, len(expected) + 1):
        p = pattern(expected[:n] + ["..."])
        if not p.fullmatch(text):
            return expected[n - 1]
    return "(the output has more than is shown; end the shown lines with ...)"


def curl_has_fail_with_body():
    p = subprocess.run(["curl", "--help", "all"], capture_output=True, text=True)
    return "--fail-with-body" in p.stdout


def run_guide(text, server, workdir):
    """Run every step of TEXT against SERVER in WORKDIR. Returns (steps run, steps checked)."""
    steps = parse(text)
    check(any(is_make_serve(c) for s in steps for c in s.commands),
          "the guide no longer starts the server with `make serve` (this test stands in for it)")
    os.symlink(os.path.abspath(BUILD), os.path.join(workdir, "build"))
    os.symlink(os.path.abspath(os.path.join(SOURCE, "examples")), os.path.join(workdir, "examples"))
    env = dict(os.environ, QUIDDITCH_URL=server.url,
               PATH=os.path.abspath(BUILD) + os.pathsep + os.environ.get("PATH", ""))
    fail = "--fail-with-body" if curl_has_fail_with_body() else "--fail"
    prelude = "curl() { command curl %s \"$@\"; }\n" % fail
    ran = checked = 0
    os.symlink(os.path.abspath(os.path.join(SOURCE, "scripts")), os.path.join(workdir, "scripts"))
    etcd_port, data_base, coord = free_ports(2), free_ports(4), free_ports(1)
    cluster_ports = {"localhost:9201": "127.0.0.1:%d" % coord, "COORD_PORT=9201":
                     "COORD_PORT=%d" % coord, "DATA_PORT_BASE=9300": "DATA_PORT_BASE=%d" %
                     data_base, "ETCD_PORT=2379": "ETCD_PORT=%d" % etcd_port}
    for st in steps:
        cmds = [c for c in st.commands if not is_make_serve(c)]
        if not any(c.strip() for c in cmds):
            continue
        body = "\n".join(cmds).replace("localhost:9200", "127.0.0.1:%d" % server.port)
        for k, v in cluster_ports.items():  # the cluster section's ports: free ones
            body = body.replace(k, v)
        p = subprocess.run(["/bin/sh", "-e", "-c", prelude + body], cwd=workdir, env=env,
                           capture_output=True, text=True, timeout=120)
        ran += 1
        where = "docs/user-guide.md line %d:\n%s" % (st.line, st.script().rstrip())
        out = p.stdout if p.stdout.endswith("\n") or not p.stdout else p.stdout + "\n"
        err = p.stderr if p.stderr.endswith("\n") or not p.stderr else p.stderr + "\n"
        if p.returncode != 0:
            raise AssertionError("%s\nexited %d\n-- stdout:\n%s-- stderr:\n%s" % (
                where, p.returncode, out, err))
        if st.expected:
            checked += 1
            if not matches(st.expected, p.stdout):
                raise AssertionError(
                    "%s\nprinted something else than the guide shows.\n-- shown:\n%s\n"
                    "-- printed:\n%s-- stderr:\n%s-- first shown line that differs: %s" % (
                        where, "\n".join(st.expected), out, err,
                        first_difference(st.expected, p.stdout)))
    return ran, checked


def free_ports(n):
    """The first of N consecutive free loopback ports (the cluster section's etcd takes its
    port + 1, data node k takes base + k)."""
    for _ in range(200):
        base = random.randrange(20000, 60000)
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no %d consecutive free ports" % n)


def stop_cluster(workdir):
    """The cluster section's scripts/cluster.sh, if a failed step left it running."""
    pidfile = os.path.join(workdir, "cluster", "pid")
    if os.path.exists(pidfile):
        try:
            pid = int(open(pidfile).read().strip())
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.1)
        except (ValueError, OSError):
            pass


def read_guide():
    with open(GUIDE, encoding="utf-8") as f:
        return f.read()


def t_parse():
    steps = parse(read_guide())
    check(len(steps) >= 10, "the guide has too few commands to be a walk-through", len(steps))
    check(sum(1 for s in steps if s.expected) >= 6, "too few commands show their output")
    shows_ranking = [s for s in steps if "script_score" in s.script() and "custom_score" in
                     s.script() and s.expected]
    check(shows_ranking, "no step shows a search ranked by the custom_score UDF with its output")
    # the convention itself, on a small made-up guide
    toy = parse("x\n```sh\nmake serve   # start\n```\n```sh\necho a\necho b\n# a\n# b\n"
                "cat > f <<'EOF'\nz\nEOF\ntrue\n```\n")
    eq([(s.commands, s.expected) for s in toy],
       [(["make serve   # start"], []), (["echo a", "echo b"], ["a", "b"]),
        (["cat > f <<'EOF'", "z", "EOF", "true"], [])], "toy guide steps")
    try:
        parse("```sh\n# orphan\n```\n")
        raise AssertionError("shown output without a command was accepted")
    except AssertionError as e:
        check("no command above it" in str(e), "orphan output", str(e))


def t_matcher():
    shown = ["3 hits (took 0 ms)",
             "    0.241507  1                    {\"title\":\"Fast laptop\",...}",
             "    0.189755  3                    {...}",
             "    0.151804  2                    {...}"]
    good = ('3 hits (took 12 ms)\n    0.241507  1                    {"title":"Fast laptop","a":1}'
            '\n    0.189755  3                    {"b":2}\n    0.151804  2                    {}\n')
    check(matches(shown, good), "the real output must match", good)
    swapped = good.replace("  3  ", "  X  ").replace("  2  ", "  3  ").replace("  X  ", "  2  ")
    check(not matches(shown, swapped), "a different ranking must not match", swapped)
    check(not matches(shown, good.replace("3 hits", "2 hits")), "a different hit count")
    check(not matches(shown, good.replace("0.189755", "0.189756")), "a different score")
    check(not matches(shown, good + "extra line\n"), "output beyond what is shown")
    check(matches(['{"a":1,', ' "b":2}'], '{"a":1,"b":2}'), "a wrapped JSON line")
    check(not matches(["v1 ready"], "v2 ready"), "a different version")


def t_guide():
    text = read_guide()
    work = tempfile.mkdtemp(prefix="qd-guide-")
    try:
        with Server() as s:
            try:
                ran, checked = run_guide(text, s, work)
            finally:
                stop_cluster(work)
        print("# %d steps of docs/user-guide.md ran, %d of them checked against shown output"
              % (ran, checked))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if not os.access(ETCD, os.X_OK):
        print("# SKIP %s is not installed: the guide's cluster section starts it "
              "(scripts/deps.sh installs etcd-server)" % ETCD)
        sys.exit(77)
    if not shutil.which("curl"):
        print("# SKIP curl not installed: docs/user-guide.md uses it")
        sys.exit(77)
    missing = sorted(m for m in set(re.findall(r"build/(examples/udfs/[\w.-]+\.wasm)", "".join(
        st.script() for st in parse(read_guide())))) if not os.path.exists(os.path.join(BUILD, m)))
    if missing:  # the build skipped their language (it warned which toolchain is missing)
        print("# SKIP the guide uses example modules this build lacks: %s" % ", ".join(missing))
        sys.exit(77)
    run_tests([
        ("guide_commands_parse_into_steps_by_the_convention", t_parse),
        ("shown_output_matcher_accepts_real_and_rejects_wrong_output", t_matcher),
        ("every_command_in_the_guide_runs_and_prints_what_the_guide_shows", t_guide),
    ])
