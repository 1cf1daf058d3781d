"""A Server-Sent Events client for the live view's tests (docs/LIVE.md): reads /events on a
thread, as a browser's EventSource would, and keeps every event."""
import json
import socket
import threading

from conftest import SLOW


class Client:
    """Reads /events on a thread; `events` collects (event, id, data) as they arrive."""

    def __init__(self, port, last_event_id=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60 * SLOW)
        request = "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        if last_event_id is not None:
            request += f"Last-Event-ID: {last_event_id}\r\n"
        self.sock.sendall((request + "\r\n").encode())
        self.file = self.sock.makefile("rb")
        self.status = int(self.file.readline().split()[1])
        self.headers = {}
        for raw in iter(self.file.readline, b"\r\n"):
            if not raw:
                break
            name, _, value = raw.decode().partition(":")
            self.headers[name.strip()] = value.strip()
        self.events = []
        self.done = threading.Event()
        if self.status == 200:
            threading.Thread(target=self._read, daemon=True).start()
        else:
            self.body = self.file.read()
            self.file.close()
            self.sock.close()
            self.done.set()

    def _read(self):
        event, eid, data = "message", None, []
        try:
            for raw in self.file:
                line = raw.decode().rstrip("\r\n")
                if line == "":
                    if data:
                        self.events.append((event, eid, json.loads("\n".join(data))))
                    event, eid, data = "message", None, []
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("id: "):
                    eid = int(line[4:])
                elif line.startswith("data: "):
                    data.append(line[6:])
        except (OSError, ValueError):
            pass
        finally:
            self.file.close()
            self.sock.close()
            self.done.set()

    def of(self, kind):
        """(event, id, data) of every event of `kind` so far."""
        return [e for e in list(self.events) if e[0] == kind]

    def data(self, kind):
        """The data of every event of `kind` so far."""
        return [d for e, _, d in list(self.events) if e == kind]

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.done.wait(10)
