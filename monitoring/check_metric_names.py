#!/usr/bin/env python3
"""Fails if the alert rules or the Grafana dashboard read a metric tallyd does not export.

Starts the tallyd binary on free loopback ports with a temporary data directory, scrapes its
/metrics, and checks every metric name in the rules' and the dashboard's PromQL: a name
must be on that page, or listed in external-metrics.txt with who exports it. An exact label
matcher (name{label="value"}) must match a sample of that name, except for the labels
Prometheus adds (job, instance). Prints each problem; exit status 1 if there is any.

usage: check_metric_names.py TALLYD RULES.yml DASHBOARD.json EXTERNAL.txt
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "bool", "offset", "inf", "nan",
            # aggregation operators, which may take "by (...)" before their parentheses
            "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
            "bottomk", "topk", "quantile"}
TARGET_LABELS = {"job", "instance"}


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
         socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u.bind(("127.0.0.1", port))
        return port


def scrape(tallyd):
    """Runs tallyd and returns {metric name: [set of (label, value)], ...} from /metrics."""
    with tempfile.TemporaryDirectory(prefix="tallyd-metric-names-") as tmp:
        http = free_port()
        udp = free_port()
        log = open(os.path.join(tmp, "log"), "w+")
        proc = subprocess.Popen(
            [tallyd, "--data-dir", os.path.join(tmp, "data"), "--udp-listen",
             f"127.0.0.1:{udp}", "--http-listen", f"127.0.0.1:{http}"],
            stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    sys.exit(f"tallyd exited with {proc.returncode}:\n{log.read()}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics",
                                                timeout=2) as r:
                        text = r.read().decode()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        sys.exit("tallyd's /metrics did not answer within 30 s")
                    time.sleep(0.05)  # polling an observable state, bounded by the deadline
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s", line)
        if not m:
            continue
        labels = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"', m.group(3) or ""))
        samples.setdefault(m.group(1), []).append(labels)
    return samples


def selectors(expr):
    """Yields (metric name, [(label, value) of exact matchers]) for each metric in expr."""
    expr = re.sub(r"\$\{?\w+\}?", "", expr.replace("$__rate_interval", "5m"))
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", expr)
    pos = 0
    token = re.compile(r'"(?:[^"\\]|\\.)*"|([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?\s*(\()?'
                       r"|[0-9.]+(?:e[+-]?[0-9]+)?")
    while pos < len(expr):
        m = token.search(expr, pos)
        if not m:
            break
        pos = m.end()
        name, matchers, call = m.group(1), m.group(2), m.group(3)
        if not name or name.lower() in KEYWORDS or (call and not matchers):
            continue
        exact = re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"([^"]*)"', matchers or "")
        yield name, exact


def exprs_in_rules(path):
    with open(path) as f:
        doc = yaml.safe_load(f)
    for group in doc["groups"]:
        for rule in group["rules"]:
            yield f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]


def exprs_in_dashboard(path):
    with open(path) as f:
        doc = json.load(f)
    for panel in doc.get("panels", []):
        for target in panel.get("targets", []):
            yield f"panel '{panel['title']}'", target["expr"]
    for var in doc.get("templating", {}).get("list", []):
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if var.get("type") == "query" and query:
            m = re.match(r"label_values\((.*),\s*\w+\)\s*$", query)
            yield f"variable ${var['name']}", m.group(1) if m else query


def main():
    tallyd, rules, dashboard, external_path = sys.argv[1:5]
    with open(external_path) as f:
        external = {line.split("#")[0].strip() for line in f} - {""}
    exported = scrape(tallyd)
    problems = []
    checked = set()
    sources = list(exprs_in_rules(rules)) + list(exprs_in_dashboard(dashboard))
    for where, expr in sources:
        for name, exact in selectors(expr):
            checked.add(name)
            if name in exported:
                for label, value in exact:
                    if label in TARGET_LABELS:
                        continue
                    if not any((label, value) in s for s in exported[name]):
                        problems.append(f"{where}: {name}{{{label}=\"{value}\"}} matches no "
                                        "sample tallyd exports")
            elif name not in external:
                problems.append(f"{where}: {name} is not exported by tallyd (nor listed in "
                                f"{os.path.basename(external_path)})")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(f"{len(sources)} expressions, {len(checked)} metric names: each exported by tallyd "
          f"or listed as external ({', '.join(sorted(checked & external))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
