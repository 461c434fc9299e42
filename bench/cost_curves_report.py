#!/usr/bin/env python3
"""Turns bench/cost_curves.sh's points into a table and charts (standard library + gnuplot).

usage: cost_curves_report.py CURVES_JSONL DOC|- IMAGE_DIR
Merges the new points (one JSON line per key count) with those already kept in DOC (a JSON
comment between the curves markers; the newest point per key count wins, so any subset of
key counts can be re-run), writes IMAGE_DIR/cost_curves.png (gnuplot, log-log, one panel per
cost) and regenerates the block between the curves markers in DOC's "## Cost curves"
section ("-": print it). A point measured with the 1-minute load average above the number of
vCPUs is marked provisional in the table.
"""
import json, os, re, subprocess, sys, tempfile

points_path, doc_path, image_dir = sys.argv[1], sys.argv[2], sys.argv[3]
new = [json.loads(l) for l in open(points_path) if l.strip()]
old_text, points = "", {}
if doc_path != "-":
    old_text = open(doc_path).read()
    m = re.search(r"<!-- curves:data (.*?) -->", old_text)
    if m:
        points = {int(p["keys"]): p for p in json.loads(m.group(1))}
for p in new:
    points[int(p["keys"])] = p
rows = [points[k] for k in sorted(points)]


def load1(text):
    try:
        return float(str(text).split()[0])
    except (ValueError, IndexError):
        return 0.0


def busy(p):
    return max(load1(p.get("load_before")), load1(p.get("load_after"))) > float(p.get("nproc", 2))


def num(v, digits=0, scale=1.0, suffix=""):
    return "n/a" if v is None else f"{v / scale:,.{digits}f}{suffix}"


# ---------------------------------------------------------------- the chart
os.makedirs(image_dir, exist_ok=True)
png = os.path.join(image_dir, "cost_curves.png")
with tempfile.NamedTemporaryFile("w", suffix=".dat", delete=False) as dat:
    for p in rows:
        f = lambda k, s=1.0: p.get(k) / s if p.get(k) else "NaN"
        dat.write(" ".join(str(x) for x in (
            p["keys"], f("capacity_eps", 1e6), f("zero_loss_eps", 1e6), f("first_flush_s"),
            f("flush_s"), f("rss_bytes", 2**20), f("disk_bytes", 2**20), f("startup_clean_s"),
            f("startup_crash_s"), f("sst_bytes", 2**20),
            p["rss_bytes"] / p["keys"] if p.get("rss_bytes") else "NaN",
            p["sst_bytes"] / p["keys"] if p.get("sst_bytes") else "NaN")) + "\n")
panels = [
    ("UDP ingest, 50 lines/datagram (M events/s)", [(2, "capacity"), (3, "zero-loss")]),
    ("flush (s)", [(4, "first (N new keys)"), (5, "N changed keys")]),
    ("resident memory (MiB)", [(6, "RSS after the runs")]),
    ("disk (MiB)", [(7, "data dir after a clean stop"), (10, ".sst files")]),
    ("start-up (s)", [(8, "after a clean stop"), (9, "after a crash")]),
    ("bytes per key (flat = linear growth)", [(11, "RSS / keys"), (12, ".sst bytes / keys")]),
]
script = [f"set terminal pngcairo size 1500,900 font 'sans,10'" if "cairo" in subprocess.run(
              ["gnuplot", "-e", "set terminal"], capture_output=True, text=True).stderr
          else "set terminal png size 1500,900",
          f"set output '{png}'",
          "set multiplot layout 2,3 title 'tallyd: cost against the number of keys (bench/cost\\_curves.sh)"
          + ("; provisional points, measured under load: see the table" if any(busy(p) for p in rows) else "") + "'",
          "set logscale xy", "set grid", "set key top left Left reverse", "set xlabel 'keys'",
          "set format x '10^{%L}'"]
for title, series in panels:
    plots = ", ".join(f"'{dat.name}' using 1:{c} with linespoints title '{t}'" for c, t in series)
    script += [f"set title '{title}'", f"plot {plots}"]
script.append("unset multiplot")
drawn = subprocess.run(["gnuplot"], input="\n".join(script), capture_output=True, text=True)
os.unlink(dat.name)
if drawn.returncode != 0:
    print(f"gnuplot failed: {drawn.stderr.strip()}", file=sys.stderr)

# ---------------------------------------------------------------- the table
out = ["| keys | `--max-keys` | UDP x50 capacity (events/s) | UDP x50 zero-loss (events/s) | first flush (N new keys) | flush of N changed keys | RSS | peak RSS | disk (.sst) | .sst bytes per key | start-up, clean stop | start-up, after a crash | measured (load average) |",
       "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
for p in rows:
    when = f"{p['date']}, {p['commit']}, load {p['load_before']}"
    if busy(p):
        when += " **provisional (loaded machine)**"
    if p.get("quick"):
        when += ", quick (1 run)"
    zero = num(p.get("zero_loss_eps")) + (f" ({p['zero_loss_note']})" if p.get("zero_loss_note") else "")
    per_key = p["sst_bytes"] / p["keys"] if p.get("sst_bytes") else None
    out.append(
        f"| {p['keys']:,} | {p['max_keys']:,} | {num(p.get('capacity_eps'))} | {zero} "
        f"| {num(p.get('first_flush_s'), 3, suffix=' s')} | {num(p.get('flush_s'), 3, suffix=' s')} "
        f"| {num(p.get('rss_bytes'), 1, 2**20, ' MiB')} | {num(p.get('peak_rss_kib'), 1, 1024, ' MiB')} "
        f"| {num(p.get('disk_bytes'), 1, 2**20, ' MiB')} ({num(p.get('sst_bytes'), 1, 2**20, ' MiB')}) | {num(per_key, 1, suffix=' B')} "
        f"| {num(p.get('startup_clean_s'), 3, suffix=' s')} | {num(p.get('startup_crash_s'), 3, suffix=' s')} | {when} |")
# Growth between neighbouring points: cost ratio over key ratio (1 = linear).
growth = []
for a, b in zip(rows, rows[1:]):
    k = b["keys"] / a["keys"]
    parts = []
    for key, name in (("flush_s", "flush"), ("rss_bytes", "RSS"), ("sst_bytes", ".sst bytes"),
                      ("startup_clean_s", "clean start"), ("startup_crash_s", "crash start")):
        if a.get(key) and b.get(key):
            parts.append(f"{name} x{b[key] / a[key]:.2f}")
    growth.append(f"- {a['keys']:,} -> {b['keys']:,} keys (x{k:g}): " + ", ".join(parts))
block = ["<!-- curves:begin (generated by bench/cost_curves.sh; edits here are overwritten) -->",
         "![tallyd's costs against the number of keys](images/cost_curves.png)", ""] + out + [
         "", "Growth between neighbouring points (x10 keys is linear at x10):", ""] + growth + [
         "", "<!-- curves:data " + json.dumps(rows) + " -->", "<!-- curves:end -->"]
block = "\n".join(block)

if doc_path == "-":
    print(block)
    print(f"chart: {png}")
    sys.exit(0)
if "<!-- curves:begin" in old_text:
    text = re.sub(r"<!-- curves:begin.*?<!-- curves:end -->", lambda _: block, old_text, flags=re.S)
else:
    at = old_text.find("## Cost curves\n")
    if at >= 0:
        nxt = old_text.find("\n## ", at + 1)
        nxt = len(old_text) if nxt < 0 else nxt + 1
        text = old_text[:nxt].rstrip("\n") + "\n\n" + block + "\n\n" + old_text[nxt:].lstrip("\n")
    else:
        text = old_text.rstrip("\n") + "\n\n## Cost curves\n\n" + block + "\n"
open(doc_path, "w").write(text)
print(block)
