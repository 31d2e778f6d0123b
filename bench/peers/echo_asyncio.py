"""The echo server of iomux's echo benchmark, in Python's asyncio: the same
coroutine style as the iomux server (sock_accept, sock_recv_into,
sock_sendall on non-blocking sockets, TCP_NODELAY), on asyncio's own
selector loop or, with the argument `uvloop`, on uvloop.

    python3 echo_asyncio.py [asyncio|uvloop]   -> prints "listening <port>", serves until killed
"""
import asyncio
import socket
import sys


async def echo(loop, conn):
    buf = bytearray(65536)
    view = memoryview(buf)
    try:
        while True:
            n = await loop.sock_recv_into(conn, buf)
            if n == 0:
                break
            await loop.sock_sendall(conn, view[:n])
    except OSError:
        pass  # a client reset at the end of a run
    finally:
        conn.close()


async def main():
    loop = asyncio.get_running_loop()
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(4096)
    server.setblocking(False)
    print(f"listening {server.getsockname()[1]}", flush=True)
    tasks = set()
    while True:
        conn, _ = await loop.sock_accept(server)
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = loop.create_task(echo(loop, conn))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


if len(sys.argv) > 1 and sys.argv[1] == "uvloop":
    import uvloop

    uvloop.install()
asyncio.run(main())
