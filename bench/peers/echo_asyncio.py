"""The echo servers of iomux's echo benchmark in Python's asyncio, on
asyncio's own selector loop or, with `uvloop`, on uvloop, in one of three
styles:

    python3 echo_asyncio.py [asyncio|uvloop] [protocol|sock|streams]
    -> prints "listening <port>", serves until killed

`protocol` (the fastest API of both loops): an asyncio.Protocol whose
data_received hands the bytes to transport.write. `sock` (the default): the
coroutine style of the iomux server, sock_accept / sock_recv_into /
sock_sendall on non-blocking sockets. `streams`: asyncio's streams as their
docs write an echo server, asyncio.start_server with a coroutine per client
that awaits reader.read(65536), then writer.write and await writer.drain().
TCP_NODELAY in all three, as in the C floor.
"""
import asyncio
import socket
import sys


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        # Both loops set TCP_NODELAY on TCP transports already; say it anyway.
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data):
        self.transport.write(data)


async def serve_protocol(loop):
    server = await loop.create_server(EchoProtocol, "127.0.0.1", 0, backlog=4096, reuse_address=True)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


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


async def serve_sock(loop):
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


async def echo_stream(reader, writer):
    # Both loops set TCP_NODELAY on TCP transports already; say it anyway.
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except OSError:
        pass  # a client reset at the end of a run
    finally:
        writer.close()


async def serve_streams(loop):
    server = await asyncio.start_server(echo_stream, "127.0.0.1", 0, backlog=4096, reuse_address=True)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


async def main(style):
    loop = asyncio.get_running_loop()
    serve = {"protocol": serve_protocol, "streams": serve_streams}.get(style, serve_sock)
    await serve(loop)


if len(sys.argv) > 1 and sys.argv[1] == "uvloop":
    import uvloop

    uvloop.install()
asyncio.run(main(sys.argv[2] if len(sys.argv) > 2 else "sock"))
