#!/usr/bin/env python3
"""A Carbon plaintext listener that sums what a statsd daemon flushes (bench/compare.sh).

usage: carbon_sink.py CARBON_PORT CONTROL_PORT [NAME_REGEX]
Listens on 127.0.0.1:CARBON_PORT for Graphite plaintext lines ("name value timestamp") and
adds up the values of the names matching NAME_REGEX (default: the benchmark's counter names,
apikey.<id>.success|failure). Every TCP connection to 127.0.0.1:CONTROL_PORT gets one JSON
line and is closed: {"total": N, "lines": N, "last_data": unix seconds of the last byte}.
Standard library only; one thread, selectors.
"""
import json, re, selectors, socket, sys, time

carbon_port, control_port = int(sys.argv[1]), int(sys.argv[2])
wanted = re.compile((sys.argv[3] if len(sys.argv) > 3 else r"apikey\.\d+\.(?:success|failure)").encode())
state = {"total": 0, "lines": 0, "last_data": 0.0}
sel = selectors.DefaultSelector()


def listener(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    s.setblocking(False)
    return s


def consume(conn, pending):
    data = conn.recv(1 << 20)
    if not data:
        sel.unregister(conn)
        conn.close()
        return
    state["last_data"] = time.time()
    buf = pending[conn] + data
    lines = buf.split(b"\n")
    pending[conn] = lines.pop()
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and wanted.fullmatch(parts[0]):
            state["total"] += int(float(parts[1]))
            state["lines"] += 1


carbon, control = listener(carbon_port), listener(control_port)
sel.register(carbon, selectors.EVENT_READ, "carbon")
sel.register(control, selectors.EVENT_READ, "control")
pending = {}
while True:
    for key, _ in sel.select():
        if key.data == "carbon":
            conn, _ = carbon.accept()
            conn.setblocking(False)
            pending[conn] = b""
            sel.register(conn, selectors.EVENT_READ, "data")
        elif key.data == "control":
            conn, _ = control.accept()
            conn.sendall((json.dumps(state) + "\n").encode())
            conn.close()
        else:
            consume(key.fileobj, pending)
