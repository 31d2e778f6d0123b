"""The notes' select + callback + event loop Fetcher (section 11.3), in
Python, as the peer of iomux's fetchers: the notes' structure, corrected to
count its pages and stop by itself.

    python3 selectors_fetcher.py <host> <port> <count>
    -> {"requests": N, "ok": N, "seconds": S, "cpuUs": U}

cpuUs: the process's CPU time (user + system) while it fetched, as the
benchmark's other clients report theirs.
"""
import json
import resource
import socket
import sys
import time
from selectors import DefaultSelector, EVENT_READ, EVENT_WRITE

host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
selector = DefaultSelector()
pending = 0
ok = 0


class Fetcher:
    def get_url(self, path):
        self.path = path
        self.data = b""
        self.client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.client.setblocking(False)
        try:
            self.client.connect((host, port))
        except BlockingIOError:
            pass
        selector.register(self.client.fileno(), EVENT_WRITE, self.connected)

    def connected(self, key):
        selector.unregister(key.fd)
        request = "GET {} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\n\r\n".format(self.path, host, port)
        self.client.send(request.encode("utf8"))
        selector.register(self.client.fileno(), EVENT_READ, self.readable)

    def readable(self, key):
        global pending, ok
        d = self.client.recv(65536)
        if d:
            self.data += d
            return
        selector.unregister(key.fd)
        self.client.close()
        pending -= 1
        if self.data.startswith(b"HTTP/1.1 200"):
            ok += 1


def cpu_us():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return round((r.ru_utime + r.ru_stime) * 1e6)


cpu0 = cpu_us()
start = time.perf_counter()
for i in range(count):
    pending += 1
    Fetcher().get_url("/goods/{}/".format(i))
while pending:
    for key, mask in selector.select():
        key.data(key)
seconds = time.perf_counter() - start
print(json.dumps({"requests": count, "ok": ok, "seconds": seconds, "cpuUs": cpu_us() - cpu0}))
