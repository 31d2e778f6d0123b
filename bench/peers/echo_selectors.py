"""The notes' select + callback + event loop program (section 11.3) as an
echo server: a DefaultSelector, each fd registered with the callback that
serves it as its data, and a loop calling key.data(key) for every ready key.
The peer of bench/src/echo-selectors.ts, which is this program line for line
on iomux/selectors.

    python3 echo_selectors.py   -> prints "listening <port>", serves until killed

recv(65536) reads what is there in one call, as the C floor does; a send the
kernel takes only in part keeps the rest and waits for EVENT_WRITE (the notes
ignore send's count, which is safe for their one small request only).
"""
import socket
from selectors import DefaultSelector, EVENT_READ, EVENT_WRITE

selector = DefaultSelector()


class Connection:
    def __init__(self, conn):
        self.conn = conn
        self.pending = b""
        selector.register(conn.fileno(), EVENT_READ, self.readable)

    def readable(self, key):
        try:
            d = self.conn.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            d = b""  # reset by the client at the end of a run: as EOF
        if not d:
            self.close(key)
            return
        self.send(key, d)

    def writable(self, key):
        self.send(key, self.pending)

    def send(self, key, d):
        try:
            n = self.conn.send(d)
        except BlockingIOError:
            n = 0
        except OSError:
            self.close(key)
            return
        if n == len(d):
            if self.pending:
                self.pending = b""
                selector.modify(key.fd, EVENT_READ, self.readable)
            return
        if not self.pending:
            selector.modify(key.fd, EVENT_WRITE, self.writable)
        self.pending = d[n:]

    def close(self, key):
        selector.unregister(key.fd)
        self.conn.close()


def accept(key):
    conn, _ = server.accept()
    conn.setblocking(False)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    Connection(conn)


server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 0))
server.listen(4096)
server.setblocking(False)
selector.register(server.fileno(), EVENT_READ, accept)
print("listening {}".format(server.getsockname()[1]), flush=True)

while True:
    for key, mask in selector.select():
        key.data(key)
