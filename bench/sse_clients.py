#!/usr/bin/python3
"""N Server-Sent Events clients on one thread: for the live view's cost (bench/live_cost.sh).

    sse_clients.py --port P --clients 50 --out FILE

Waits for 127.0.0.1:P to accept, opens N GET /events connections and reads them as fast as
they come (bytes are counted, not parsed) until the daemon ends them. Writes one line to FILE:
`connected=N bytes=B closes=C gaps=G ends=E` (C, G, E summed over the clients).
"""
import argparse
import selectors
import socket
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args()
    deadline = time.monotonic() + args.timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", args.port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("sse_clients.py: the daemon never listened")
            time.sleep(0.02)
    sel = selectors.DefaultSelector()
    tails = {}
    counts = {"bytes": 0, "closes": 0, "gaps": 0, "ends": 0}
    for _ in range(args.clients):
        s = socket.create_connection(("127.0.0.1", args.port), timeout=5)
        s.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        tails[s] = b""
    connected = len(tails)
    while tails and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            try:
                data = s.recv(1 << 20)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(s)
                s.close()
                del tails[s]
                continue
            counts["bytes"] += len(data)
            # Count event lines, including one split across two reads.
            chunk = tails[s] + data
            counts["closes"] += chunk.count(b"\nevent: close\n")
            counts["gaps"] += chunk.count(b"\nevent: gap\n") + chunk.startswith(b"event: gap\n")
            counts["ends"] += chunk.count(b"event: end\n")
            tails[s] = chunk[-16:]
            if len(chunk) > 16:
                # Do not count what the tail keeps twice.
                t = tails[s]
                counts["closes"] -= t.count(b"\nevent: close\n")
                counts["gaps"] -= t.count(b"\nevent: gap\n")
                counts["ends"] -= t.count(b"event: end\n")
    with open(args.out, "w") as f:
        f.write(f"connected={connected} bytes={counts['bytes']} closes={counts['closes']} "
                f"gaps={counts['gaps']} ends={counts['ends']}\n")


if __name__ == "__main__":
    main()
