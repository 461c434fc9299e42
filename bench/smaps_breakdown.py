#!/usr/bin/env python3
"""Where a process's resident memory is, by kind of mapping (/proc/PID/smaps; stdlib only).

usage: smaps_breakdown.py PID [--json]
Classes (the Rss and Anonymous kB of each mapping, summed):
  counter table     standalone anonymous MAP_NORESERVE mappings ("nr" in VmFlags): tallyd's
                    CounterTable maps its buckets (with MADV_HUGEPAGE, "hg") and wide counts so
  malloc: main heap [heap]
  malloc: arenas    glibc's thread arenas: MAP_NORESERVE reservations whose read-write part is
                    followed by the no-access rest (64 MiB in all): the memtables, RocksDB's
                    block cache, the store's maps, parse buffers: whatever the threads malloc
  thread stacks     read-write anonymous mappings right after a 4 KiB no-access guard page
  malloc: large     other read-write anonymous mappings (malloc's mmap'd chunks: receive
                    buffers, big vectors, RocksDB arena blocks above the mmap threshold)
  code and data     file-backed mappings, by file (the binary, librocksdb, libstdc++, ...)
  other             the rest ([stack], [vdso], no-access regions)
Prints a markdown table (KiB) or, with --json, one JSON object; the total is VmRSS's sum.
"""
import json, os, re, sys

pid = sys.argv[1]
maps = []
cur = None
for line in open(f"/proc/{pid}/smaps"):
    m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$", line)
    if m:
        cur = {"start": int(m.group(1), 16), "end": int(m.group(2), 16), "perms": m.group(3),
               "path": m.group(4).strip(), "rss": 0, "anon": 0, "flags": ""}
        maps.append(cur)
    elif line.startswith("Rss:"):
        cur["rss"] = int(line.split()[1])
    elif line.startswith("Anonymous:"):
        cur["anon"] = int(line.split()[1])
    elif line.startswith("VmFlags:"):
        cur["flags"] = line.split(":", 1)[1].split()

ARENA_ALIGN = 64 << 20
classes, files = {}, {}
prev = None
for i, m in enumerate(maps):
    size = m["end"] - m["start"]
    anon_map = m["path"] == "" or m["path"].startswith("[anon")
    nxt = maps[i + 1] if i + 1 < len(maps) else None
    # A glibc arena heap: a MAP_NORESERVE reservation, its used part read-write, the rest
    # no-access right after it (and it starts on a 64 MiB boundary unless it was trimmed).
    # (The kernel may merge the used part with an adjacent MAP_NORESERVE mapping below it.)
    arena = anon_map and m["perms"].startswith("rw") and "nr" in m["flags"] and (
        m["start"] % ARENA_ALIGN == 0 or (nxt is not None and nxt["start"] == m["end"]
                                          and nxt["perms"].startswith("---") and "nr" in nxt["flags"]
                                          and nxt["end"] % ARENA_ALIGN == 0))
    if arena:
        c = "malloc: thread arenas"
    elif anon_map and "nr" in m["flags"] and m["perms"].startswith("rw"):
        c = ("counter table: buckets (MAP_NORESERVE, huge pages)" if "hg" in m["flags"]
             else "counter table: wide counts (MAP_NORESERVE)")
    elif m["path"] == "[heap]":
        c = "malloc: main heap ([heap])"
    elif (anon_map and m["perms"].startswith("rw") and prev is not None and prev["end"] == m["start"]
          and prev["perms"].startswith("---") and prev["end"] - prev["start"] == 4096):
        c = "thread stacks (after a guard page)"
    elif anon_map and m["perms"].startswith("rw"):
        c = "malloc: other anonymous mappings (large chunks)"
    elif m["path"].startswith("/"):
        c = "code and data of files"
        files[os.path.basename(m["path"])] = files.get(os.path.basename(m["path"]), 0) + m["rss"]
    else:
        c = "other ([stack], [vdso], guard pages)"
    e = classes.setdefault(c, {"rss_kib": 0, "mappings": 0, "size_kib": 0})
    e["rss_kib"] += m["rss"]
    e["mappings"] += 1
    e["size_kib"] += size // 1024
    prev = m
total = sum(e["rss_kib"] for e in classes.values())
status = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status") if ":" in l)
threads = int(status["Threads"].strip())
if "--json" in sys.argv:
    print(json.dumps({"total_kib": total, "vmrss_kib": int(status["VmRSS"].split()[0]), "threads": threads,
                      "classes": classes, "files_kib": files}))
    sys.exit(0)
print(f"| where | resident KiB | share | mappings | mapped KiB |")
print("|---|---|---|---|---|")
for c, e in sorted(classes.items(), key=lambda kv: -kv[1]["rss_kib"]):
    print(f"| {c} | {e['rss_kib']:,} | {100.0 * e['rss_kib'] / max(total, 1):.1f}% | {e['mappings']} | {e['size_kib']:,} |")
print(f"| **total** (VmRSS {status['VmRSS'].strip()}, {threads} threads) | {total:,} | 100% | | |")
top = sorted(files.items(), key=lambda kv: -kv[1])[:6]
print("\nfile-backed, largest: " + ", ".join(f"{n} {k:,} KiB" for n, k in top))
