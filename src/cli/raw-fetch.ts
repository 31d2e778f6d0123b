/**
 * The notes' first two fetchers (section 11.3), written straight on
 * `iomux/sys`: a non-blocking socket polled in a busy loop, and many
 * non-blocking sockets multiplexed by select, poll or epoll with a callback
 * per readiness event — the "select + callback + event loop" pattern before
 * any selector or loop abstraction exists.
 */
import {
  AF_INET,
  BlockingIOError,
  EPOLLIN,
  EPOLLOUT,
  Epoll,
  POLLIN,
  POLLOUT,
  Poll,
  SO_ERROR,
  SOCK_STREAM,
  SOL_SOCKET,
  Socket,
  select,
} from '../sys/index.js';

/** One fetched page. */
export interface RawPage {
  path: string;
  status: number;
  bytes: number;
}

export type RawBackend = 'select' | 'poll' | 'epoll';

function request(path: string, port: number): Buffer {
  return Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`, 'latin1');
}

function parse(path: string, data: Buffer): RawPage {
  const end = data.indexOf('\r\n\r\n');
  const head = data.subarray(0, end < 0 ? data.length : end).toString('latin1');
  const status = Number.parseInt(head.split(' ', 2)[1] ?? '', 10);
  if (end < 0 || !Number.isInteger(status)) throw new Error(`${path}: malformed response`);
  return { path, status, bytes: data.length - end - 4 };
}

/**
 * The notes' `get_url`: connect without blocking, then ask again and again
 * (a busy loop: 100 % CPU while waiting) until the send and each recv succeed.
 */
export function fetchBusyPollRaw(port: number, path: string): RawPage {
  const client = new Socket(AF_INET, SOCK_STREAM);
  try {
    client.setBlocking(false);
    try {
      client.connect(['127.0.0.1', port]);
    } catch (e) {
      if (!(e instanceof BlockingIOError)) throw e;
    }
    const req = request(path, port);
    for (;;) {
      try {
        client.sendAll(req);
        break;
      } catch (e) {
        // Not connected yet (ENOTCONN/EAGAIN): ask again, as the notes do.
        if (!(e instanceof Error) || !('code' in e)) throw e;
        if (e.code !== 'ENOTCONN' && e.code !== 'EAGAIN') throw e;
      }
    }
    const chunks: Buffer[] = [];
    for (;;) {
      let d: Buffer;
      try {
        d = client.recv(65536);
      } catch (e) {
        if (e instanceof BlockingIOError) continue;
        throw e;
      }
      if (d.length === 0) break;
      chunks.push(d);
    }
    return parse(path, Buffer.concat(chunks));
  } finally {
    client.close();
  }
}

type Callback = (fd: number, writable: boolean) => void;

/** The three multiplexers behind one tiny register/wait interface. */
interface Mux {
  watch(fd: number, write: boolean, cb: Callback): void;
  unwatch(fd: number): void;
  /** Waits once and calls the callbacks of the ready fds. */
  turn(timeoutMs: number): number;
  close(): void;
}

function makeMux(backend: RawBackend): Mux {
  const callbacks = new Map<number, { write: boolean; cb: Callback }>();
  if (backend === 'select') {
    return {
      watch: (fd, write, cb) => void callbacks.set(fd, { write, cb }),
      unwatch: (fd) => void callbacks.delete(fd),
      turn(timeoutMs) {
        const r: number[] = [];
        const w: number[] = [];
        for (const [fd, { write }] of callbacks) (write ? w : r).push(fd);
        const [rr, ww] = select(r, w, [], timeoutMs);
        for (const fd of [...rr, ...ww]) callbacks.get(fd)?.cb(fd, ww.includes(fd));
        return rr.length + ww.length;
      },
      close: () => callbacks.clear(),
    };
  }
  if (backend === 'poll') {
    const p = new Poll();
    return {
      watch(fd, write, cb) {
        callbacks.set(fd, { write, cb });
        p.register(fd, write ? POLLOUT : POLLIN);
      },
      unwatch(fd) {
        callbacks.delete(fd);
        p.unregister(fd);
      },
      turn(timeoutMs) {
        const ready = p.poll(timeoutMs);
        for (const [fd, ev] of ready) callbacks.get(fd)?.cb(fd, (ev & POLLOUT) !== 0);
        return ready.length;
      },
      close: () => p.close(),
    };
  }
  const ep = new Epoll();
  return {
    watch(fd, write, cb) {
      const known = callbacks.has(fd);
      callbacks.set(fd, { write, cb });
      if (known) ep.modify(fd, write ? EPOLLOUT : EPOLLIN);
      else ep.register(fd, write ? EPOLLOUT : EPOLLIN);
    },
    unwatch(fd) {
      callbacks.delete(fd);
      ep.unregister(fd);
    },
    turn(timeoutMs) {
      const ready = ep.poll(timeoutMs);
      for (const [fd, ev] of ready) callbacks.get(fd)?.cb(fd, (ev & EPOLLOUT) !== 0);
      return ready.length;
    },
    close: () => ep.close(),
  };
}

/**
 * The notes' `Fetcher` + `loop()`: every connection is started at once, and
 * one thread waits in select/poll/epoll and runs the callback of whichever
 * socket is ready: `connected` (send the request), then `readable` (collect
 * the response until EOF).
 *
 * @param timeoutMs - give up on the whole batch after this long
 */
export function fetchAllMultiplexed(
  backend: RawBackend,
  port: number,
  paths: readonly string[],
  timeoutMs = 10_000,
): RawPage[] {
  const mux = makeMux(backend);
  const pages: RawPage[] = [];
  const open = new Set<Socket>();
  let pending = paths.length;
  try {
    for (const path of paths) {
      const client = new Socket(AF_INET, SOCK_STREAM);
      open.add(client);
      client.setBlocking(false);
      client.connectEx(['127.0.0.1', port]);
      const chunks: Buffer[] = [];
      const finish = (): void => {
        mux.unwatch(client.fileno());
        pages.push(parse(path, Buffer.concat(chunks)));
        client.close();
        open.delete(client);
        pending--;
      };
      const readable = (): void => {
        const d = client.recv(65536);
        if (d.length === 0) finish();
        else chunks.push(d);
      };
      const connected = (): void => {
        const err = client.getsockopt(SOL_SOCKET, SO_ERROR);
        if (err !== 0) throw new Error(`${path}: connect failed (errno ${err})`);
        client.sendAll(request(path, port));
        mux.watch(client.fileno(), false, readable);
      };
      mux.watch(client.fileno(), true, connected);
    }
    const deadline = performance.now() + timeoutMs;
    while (pending > 0) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`${backend}: ${pending} pages still pending after ${timeoutMs} ms`);
      mux.turn(left);
    }
    return pages;
  } finally {
    for (const s of open) s.close();
    mux.close();
  }
}
