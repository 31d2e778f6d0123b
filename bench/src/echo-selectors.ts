/**
 * The notes' select + callback + event loop program (section 11.3) as an
 * echo server, on iomux/selectors and iomux/sys: bench/peers/echo_selectors.py
 * line for line (the CPython peer of the echo benchmark), Python's names in
 * camelCase. A DefaultSelector, each fd registered with the callback that
 * serves it as its data, and a loop calling `key.data(key)` for every ready
 * key; `conn.recv(65536)` returns fresh bytes and `conn.send(d)` says how many
 * the kernel took, as in Python.
 *
 * @module
 */
import { DefaultSelector, EVENT_READ, EVENT_WRITE, type SelectorKey } from '#iomux/selectors/index.js';
import {
  AF_INET,
  BlockingIOError,
  IPPROTO_TCP,
  OSError,
  SO_REUSEADDR,
  SOCK_STREAM,
  SOL_SOCKET,
  Socket,
  TCP_NODELAY,
} from '#iomux/sys/index.js';

/** What a key carries: the callback that serves its fd (the notes' `key.data`). */
type Callback = (key: SelectorKey<Callback>) => void;

const EMPTY = Buffer.alloc(0);

/**
 * Serves until killed; prints "listening <port>" first.
 *
 * @example
 * ```ts
 * serveNotesSelectors(); // node echo-server.js selectors-iomux
 * ```
 */
export function serveNotesSelectors(): void {
  const selector = new DefaultSelector<Callback>();

  class Connection {
    readonly conn: Socket;
    pending: Buffer = EMPTY;

    constructor(conn: Socket) {
      this.conn = conn;
      selector.register(conn.fileno(), EVENT_READ, this.readable);
    }

    // Arrow functions: Python's bound methods, created once per connection.
    readonly readable = (key: SelectorKey<Callback>): void => {
      let d: Buffer;
      try {
        d = this.conn.recv(65536);
      } catch (e) {
        if (e instanceof BlockingIOError) return;
        if (!(e instanceof OSError)) throw e;
        d = EMPTY; // reset by the client at the end of a run: as EOF
      }
      if (d.length === 0) {
        this.close(key);
        return;
      }
      this.send(key, d);
    };

    readonly writable = (key: SelectorKey<Callback>): void => {
      this.send(key, this.pending);
    };

    send(key: SelectorKey<Callback>, d: Buffer): void {
      let n: number;
      try {
        n = this.conn.send(d);
      } catch (e) {
        if (e instanceof BlockingIOError) n = 0;
        else if (e instanceof OSError) {
          this.close(key);
          return;
        } else throw e;
      }
      if (n === d.length) {
        if (this.pending.length > 0) {
          this.pending = EMPTY;
          selector.modify(key.fd, EVENT_READ, this.readable);
        }
        return;
      }
      if (this.pending.length === 0) selector.modify(key.fd, EVENT_WRITE, this.writable);
      this.pending = d.subarray(n);
    }

    close(key: SelectorKey<Callback>): void {
      selector.unregister(key.fd);
      this.conn.close();
    }
  }

  function accept(_key: SelectorKey<Callback>): void {
    const [conn] = server.accept();
    conn.setBlocking(false);
    conn.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
    new Connection(conn);
  }

  const server = new Socket(AF_INET, SOCK_STREAM);
  server.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
  server.bind(['127.0.0.1', 0]);
  server.listen(4096);
  server.setBlocking(false);
  selector.register(server.fileno(), EVENT_READ, accept);
  process.stdout.write(`listening ${(server.getsockname() as [string, number])[1]}\n`);

  for (;;) {
    for (const [key] of selector.select()) {
      key.data(key);
    }
  }
}
