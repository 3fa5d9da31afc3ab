"""test_deploy.py: the operator's kit in deploy/ (DESIGN.md §8) is valid and tested: promtool
accepts deploy/prometheus.yml and deploy/alerts.yml, runs the unit tests of
deploy/tests/alerts_test.yml, every alert there has a firing and a non-firing case, and every
metric the rules and the dashboard use is one src/server/metrics.c exports or one of the few
that issue 13 adds elsewhere (PENDING). Exits 77 when promtool (Debian's prometheus) is missing."""
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import SOURCE, check, run_tests  # noqa: E402

DEPLOY = os.path.join(SOURCE, "deploy")
# Series the rules and the dashboard use before the server exports them (issue 13; see
# docs/monitoring.md; test_dashboard.py imports this). Remove a name here when
# src/server/metrics.c starts exporting it.
PENDING = {"quidditch_breaker_tripped_total", "quidditch_udf_compilation_duration_seconds"}
PROMTOOL = shutil.which("promtool")


def promtool(*args):
    p = subprocess.run([PROMTOOL] + list(args), cwd=DEPLOY, capture_output=True, text=True,
                       timeout=120)
    check(p.returncode == 0, "promtool %s failed (%d):\n%s%s"
          % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p.stdout + p.stderr


def read(*path):
    with open(os.path.join(DEPLOY, *path)) as f:
        return f.read()


def t_check_config():
    out = promtool("check", "config", "prometheus.yml")
    check("1 rule files found" in out, "the config loads alerts.yml", out)


def t_check_rules():
    out = promtool("check", "rules", "alerts.yml")
    n = len(re.findall(r"^\s*- alert: ", read("alerts.yml"), re.M))
    check("SUCCESS: %d rules found" % n in out, "promtool sees all %d rules" % n, out)


def t_test_rules():
    out = promtool("test", "rules", os.path.join("tests", "alerts_test.yml"))
    check("SUCCESS" in out and "FAILED" not in out, "promtool test rules", out)


def t_every_alert_fires_and_stays_quiet():
    alerts = re.findall(r"^\s*- alert: (\w+)", read("alerts.yml"), re.M)
    check(len(alerts) >= 10, "the rules the issue asks for", alerts)
    firing, quiet = set(), set()
    for case in re.split(r"\n      - eval_time:", read("tests", "alerts_test.yml"))[1:]:
        m = re.search(r"alertname: (\w+)\s*\n\s*exp_alerts:(.*)", case)
        check(m is not None, "an alert_rule_test without alertname/exp_alerts", case[:300])
        (quiet if m.group(2).strip() == "[]" else firing).add(m.group(1))
    for a in alerts:
        check(a in firing, "no firing case for " + a)
        check(a in quiet, "no non-firing case for " + a)
    check(firing <= set(alerts) and quiet <= set(alerts), "tests of unknown alerts",
          sorted((firing | quiet) - set(alerts)))


def exported():
    with open(os.path.join(SOURCE, "src", "server", "metrics.c")) as f:
        return set(re.findall(r"\bquidditch_[a-z0-9_]+", f.read()))


def used_names(text):
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in re.findall(r"\bquidditch_[a-z0-9_]+",
                                                                      text)}


def t_metric_names_exist():
    have = exported() | PENDING
    rules = used_names(read("alerts.yml"))
    dash = json.loads(read("grafana", "quidditch.json"))
    exprs = " ".join(t.get("expr", "") for p in dash["panels"] for t in p.get("targets", []))
    exprs += " ".join(v.get("query", {}).get("query", "") if isinstance(v.get("query"), dict)
                      else str(v.get("query", "")) for v in dash["templating"]["list"])
    for where, names in (("alerts.yml", rules), ("grafana/quidditch.json", used_names(exprs))):
        unknown = sorted(n for n in names if n not in have)
        check(not unknown, "%s uses metrics no node exports: %s" % (where, unknown))
    for n in sorted(PENDING & exported()):  # a note, not a failure: merges stay green
        print("# note: metrics.c exports %s now: take it out of PENDING here and out of "
              "docs/monitoring.md's list of metrics still to come" % n)


if __name__ == "__main__":
    if not PROMTOOL:
        print("# SKIP promtool not installed (apt-get install prometheus)")
        sys.exit(77)
    run_tests([("promtool check config", t_check_config),
               ("promtool check rules", t_check_rules),
               ("promtool test rules", t_test_rules),
               ("every alert has a firing and a non-firing case", t_every_alert_fires_and_stays_quiet),
               ("every metric used exists or is listed as pending", t_metric_names_exist)])
