import { describe, expect, it } from 'vitest';

import { makeCertificates } from '../../bench/src/tls-certs.js';
import { CancelledError, type Coroutine, gather, sleep } from '../../src/coro/index.js';
import { type ChromeTraceEvent, LoopTrace, type TraceOperation } from '../../src/loop/index.js';
import { type Socket, TlsContext, type TlsSocket, write } from '../../src/sys/index.js';
import { testSocketpair } from '../helpers/fds.js';
import { BACKENDS, testLoop } from '../helpers/loops.js';
import { closedPort, listenLoopback, tcpSocket } from '../helpers/net.js';

function ops(trace: LoopTrace): TraceOperation[] {
  return trace.events().filter((e): e is TraceOperation => e.kind === 'op');
}

describe('LoopTrace', () => {
  it.each([
    [0, RangeError, 'ERR_OUT_OF_RANGE'],
    [15, RangeError, 'ERR_OUT_OF_RANGE'],
    [1.5, RangeError, 'ERR_OUT_OF_RANGE'],
    [2 ** 24 + 1, RangeError, 'ERR_OUT_OF_RANGE'],
    [Number.NaN, RangeError, 'ERR_OUT_OF_RANGE'],
    ['64', TypeError, 'ERR_INVALID_ARG_TYPE'],
  ])('refuses capacity %s with a %s', (capacity, type, code) => {
    expect(() => new LoopTrace({ capacity: capacity as number })).toThrow(type);
    expect(() => new LoopTrace({ capacity: capacity as number })).toThrow(expect.objectContaining({ code }));
  });

  it('keeps the newest events when full, and counts the ones it dropped', () => {
    const trace = new LoopTrace({ capacity: 16 });
    for (let i = 0; i < 100; i++) trace.span(`s${i}`, i, i + 0.5);
    expect(trace.size).toBe(16);
    expect(trace.dropped).toBe(84);
    const names = trace.events().map((e) => (e.kind === 'span' ? e.name : ''));
    expect(names).toEqual(Array.from({ length: 16 }, (_, k) => `s${84 + k}`));
    trace.clear();
    expect(trace.size).toBe(0);
    expect(trace.dropped).toBe(0);
    expect(trace.events()).toEqual([]);
  });

  it('refuses a span that ends before it starts, or has no finite times, and records nothing', () => {
    const trace = new LoopTrace();
    for (const [a, b] of [
      [5, 4],
      [Number.NaN, 1],
      [0, Number.POSITIVE_INFINITY],
    ] as const) {
      expect(() => trace.span('x', a, b)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    }
    expect(trace.size).toBe(0);
  });

  it('nests spans of one group in one async track of the Chrome trace', () => {
    const trace = new LoopTrace();
    const lane = trace.addLane('pages');
    const group = trace.span('GET /a', 10, 20, { category: 'fetch', lane });
    trace.span('connect', 10, 12, { category: 'fetch', group, lane });
    trace.span('wait', 12, 19, { category: 'fetch', group, lane });
    const { traceEvents } = trace.toChromeTrace();
    const fetch = traceEvents.filter((e) => e.cat === 'fetch');
    // In time order, the page opening before its first phase and closing after its last.
    expect(fetch.map((e) => [e.name, e.ph, e.ts, e.id, e.tid])).toEqual([
      ['GET /a', 'b', 10_000, `g${group}`, lane],
      ['connect', 'b', 10_000, `g${group}`, lane],
      ['connect', 'e', 12_000, `g${group}`, lane],
      ['wait', 'b', 12_000, `g${group}`, lane],
      ['wait', 'e', 19_000, `g${group}`, lane],
      ['GET /a', 'e', 20_000, `g${group}`, lane],
    ]);
    expect(traceEvents.find((e) => e.ph === 'M' && e.tid === lane)?.args).toEqual({ name: 'pages' });
  });

  it('records other names once it holds as many as its capacity (4,096 at least), as <other>', () => {
    const trace = new LoopTrace({ capacity: 4096 });
    for (let i = 0; i < 5000; i++) trace.span(`n${i}`, 0, 1, { category: 'c' });
    const names = trace.events().map((e) => (e.kind === 'span' ? e.name : ''));
    expect(names[0]).toBe('n904');
    expect(names.at(-1)).toBe('<other>');
    expect(new Set(names).size).toBeLessThanOrEqual(4096);
  });
});

describe.each(BACKENDS)('a traced loop on %s', (backend) => {
  it('refuses a trace that is not one, and keeps the one it had', () => {
    const loop = testLoop(backend);
    const trace = new LoopTrace();
    loop.setTrace(trace);
    for (const bad of [{}, 'trace', 42, undefined]) {
      expect(() => loop.setTrace(bad as unknown as LoopTrace)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
      );
    }
    expect(loop.trace).toBe(trace);
  });

  it('records each wait with its timeout and events, and each callback by name', () => {
    const loop = testLoop(backend);
    const trace = new LoopTrace();
    loop.setTrace(trace, 'the loop');
    function tick(): void {}
    function* main(): Coroutine<void> {
      yield* sleep(20);
      loop.callSoon(tick);
      yield* sleep(0);
    }
    loop.runUntilComplete(loop.createTask(main(), 'main-task'));
    const events = trace.events();
    expect(trace.lanes).toEqual(['main', 'the loop']);
    expect(events.every((e) => e.lane === 1)).toBe(true);
    const waits = events.filter((e) => e.kind === 'wait');
    expect(waits.length).toBe(loop.iterations);
    // The sleep: one wait with a timeout of about 20 ms that blocked about that long.
    const long = waits.find((w) => w.kind === 'wait' && (w.timeoutMs ?? 0) > 10);
    expect(long?.kind === 'wait' && long.dur).toBeGreaterThanOrEqual(15);
    const names = events.flatMap((e) => (e.kind === 'call' ? [e.name] : []));
    expect(names).toContain('Task main-task');
    expect(names).toContain('tick');
    // Time moves forward through the record.
    const ts = events.map((e) => e.ts);
    expect([...ts].sort((a, b) => a - b)).toEqual(ts);
    expect(loop.stats().slowCallbacks).toBe(0);
  });

  /** A traced loop and a non-blocking socketpair. */
  function tracedPair(): { loop: ReturnType<typeof testLoop>; trace: LoopTrace; a: Socket; b: Socket } {
    const loop = testLoop(backend);
    const trace = new LoopTrace();
    loop.setTrace(trace);
    const [a, b] = testSocketpair();
    a.setBlocking(false);
    b.setBlocking(false);
    return { loop, trace, a, b };
  }

  it('records socket operations: issued, completed, bytes, outcome', () => {
    const { loop, trace, a, b } = tracedPair();
    const { sock: server, port } = listenLoopback();
    function* main(): Coroutine<void> {
      const received = loop.sockRecv(b, 100);
      yield* sleep(5);
      yield* loop.sockSendAll(a, 'hello');
      expect((yield* received).toString()).toBe('hello');
      const buf = Buffer.alloc(10);
      const into = loop.sockRecvInto(b, buf);
      yield* loop.sockSendAll(a, Buffer.from('0123456789'), 2, 3);
      expect(yield* into).toBe(3);
      const client = tcpSocket();
      const accepted = loop.sockAccept(server);
      yield* loop.sockConnect(client, ['127.0.0.1', port]);
      const [conn] = yield* accepted;
      conn.close();
      const refused = tcpSocket();
      try {
        yield* loop.sockConnect(refused, ['127.0.0.1', closedPort()]);
      } catch (e) {
        expect(e).toMatchObject({ code: 'ECONNREFUSED' });
      }
    }
    function* run(): Coroutine<void> {
      yield* main();
      const cancelled = loop.sockRecv(b, 10);
      cancelled.cancel();
      yield* sleep(0);
      expect(cancelled.cancelled()).toBe(true);
      yield* sleep(0);
    }
    loop.runUntilComplete(run());
    const got = ops(trace).map((o) => [o.op, o.fd, o.bytes, o.outcome]);
    expect(got).toContainEqual(['recv', b.fileno(), 5, 'ok']);
    expect(got).toContainEqual(['sendAll', a.fileno(), 5, 'ok']);
    expect(got).toContainEqual(['recvInto', b.fileno(), 3, 'ok']);
    expect(got).toContainEqual(['sendAll', a.fileno(), 3, 'ok']);
    expect(got.filter((o) => o[0] === 'accept' && o[1] === server.fileno() && o[3] === 'ok')).toHaveLength(1);
    expect(got.filter((o) => o[0] === 'connect' && o[3] === 'ok')).toHaveLength(1);
    expect(got.filter((o) => o[0] === 'connect' && o[3] === 'error')).toHaveLength(1);
    expect(got).toContainEqual(['recv', b.fileno(), 0, 'cancelled']);
    for (const o of ops(trace)) expect(o.dur).toBeGreaterThanOrEqual(0);
  });

  it('leaves a failed operation nobody awaited to the loop to report', () => {
    const reports: unknown[] = [];
    const loop = testLoop(backend);
    loop.setExceptionHandler((_, context) => reports.push(context.exception));
    loop.setTrace(new LoopTrace());
    const refused = tcpSocket();
    const pending = loop.sockConnect(refused, ['127.0.0.1', closedPort()]);
    function* main(): Coroutine<void> {
      while (!pending.done()) yield* sleep(1);
      yield* sleep(1);
    }
    loop.runUntilComplete(main());
    loop.close();
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('gives each loop of a shared trace its own lane, and stops with setTrace(null)', () => {
    const trace = new LoopTrace();
    const first = testLoop(backend);
    const second = testLoop(backend);
    first.setTrace(trace);
    second.setTrace(trace, 'second');
    first.runUntilComplete(sleepy());
    second.runUntilComplete(sleepy());
    expect(trace.lanes).toEqual(['main', `EventLoop (${backend})`, 'second']);
    const lanes = new Set(trace.events().map((e) => e.lane));
    expect(lanes).toEqual(new Set([1, 2]));
    first.setTrace(null);
    expect(first.trace).toBeNull();
    const size = trace.size;
    first.runUntilComplete(sleepy());
    expect(trace.size).toBe(size);
    expect(first.stats().slowCallbacks).toBeNull();
  });

  it('exports a Chrome trace: complete events in microseconds, each operation begun and ended', () => {
    const { loop, trace, a, b } = tracedPair();
    function* main(): Coroutine<void> {
      for (let i = 0; i < 5; i++) {
        yield* loop.sockSendAll(a, 'ping');
        yield* loop.sockRecv(b, 4);
      }
    }
    loop.runUntilComplete(main());
    const chrome = JSON.parse(JSON.stringify(trace.toChromeTrace())) as { traceEvents: ChromeTraceEvent[] };
    const events = chrome.traceEvents;
    expect(events.filter((e) => e.ph === 'X').every((e) => (e.ts ?? -1) >= 0 && (e.dur ?? -1) >= 0)).toBe(true);
    const waits = events.filter((e) => e.name === 'wait');
    expect(waits.length).toBe(loop.iterations);
    const begun = events.filter((e) => e.cat === 'socket' && e.ph === 'b');
    const ended = events.filter((e) => e.cat === 'socket' && e.ph === 'e');
    expect(begun).toHaveLength(10);
    expect(new Set(ended.map((e) => e.id))).toEqual(new Set(begun.map((e) => e.id)));
    // Each operation ends after it begins, in the file's order too.
    for (const e of ended) {
      expect(chrome.traceEvents.indexOf(e)).toBeGreaterThan(chrome.traceEvents.findIndex((b) => b.id === e.id));
    }
    const send = begun.find((e) => e.name === `sendAll fd ${a.fileno()}`);
    expect(send).toBeDefined();
    expect(ended.find((e) => e.id === send?.id)?.args).toEqual({ bytes: 4, outcome: 'ok' });
    expect(begun.filter((e) => e.name === `recv fd ${b.fileno()}`)).toHaveLength(5);
  });

  it('times each callback: a slow one is counted', () => {
    const loop = testLoop(backend, { slowCallbackMs: 10 });
    loop.setTrace(new LoopTrace());
    loop.callSoon(function slowOne() {
      const end = performance.now() + 15;
      while (performance.now() < end) {
        // busy
      }
    });
    loop.callSoon(() => loop.callSoon(() => loop.stop()));
    loop.runForever();
    expect(loop.stats().slowCallbacks).toBeGreaterThanOrEqual(1);
    const slow = loop.trace?.events().find((e) => e.kind === 'call' && e.name === 'slowOne');
    expect(slow?.dur).toBeGreaterThanOrEqual(15);
  });

  it("records a cooperative loop asleep in Node's event loop as idle", async () => {
    const loop = testLoop(backend);
    const trace = new LoopTrace();
    loop.setTrace(trace);
    await loop.run(async () => {
      await loop.createTask(sleepy());
      await new Promise((resolve) => setTimeout(resolve, 1));
      await loop.createTask(
        (function* (): Coroutine<void> {
          yield* sleep(15);
        })(),
      );
    });
    const idle = trace.events().filter((e) => e.kind === 'idle');
    expect(idle.some((e) => e.dur >= 10)).toBe(true);
    expect(trace.toChromeTrace().traceEvents.some((e) => e.name === "idle in Node's event loop")).toBe(true);
    expect(loop.stats().idleMs).toBeGreaterThanOrEqual(10);
  });

  it('records startTls and the operations on the TLS sockets it gives, with their plaintext bytes', () => {
    const { loop, trace, a, b } = tracedPair();
    const certs = makeCertificates();
    const serverContext = new TlsContext({ server: true, cert: certs.server.cert, key: certs.server.key });
    const clientContext = new TlsContext({ ca: certs.ca.cert });
    function* main(): Coroutine<string> {
      const [client, srv] = (yield* gather(
        loop.startTls(a, { context: clientContext, serverName: 'localhost' }),
        loop.startTls(b, { serverSide: true, context: serverContext }),
      )) as [TlsSocket, TlsSocket];
      const got = loop.sockRecv(srv, 100);
      yield* loop.sockSendAll(client, 'secret');
      const text = (yield* got).toString();
      client.close();
      srv.close();
      return text;
    }
    expect(loop.runUntilComplete(main())).toBe('secret');
    const got = ops(trace).map((o) => [o.op, o.bytes, o.outcome]);
    expect(got.filter((o) => o[0] === 'startTls' && o[2] === 'ok')).toHaveLength(2);
    expect(got).toContainEqual(['sendAll', 6, 'ok']);
    expect(got).toContainEqual(['recv', 6, 'ok']);
  });

  it('does not change what the program gets: a cancelled traced receive is still cancelled', () => {
    const loop = testLoop(backend);
    loop.setTrace(new LoopTrace());
    const [, b] = testSocketpair();
    b.setBlocking(false);
    function* main(): Coroutine<string> {
      const f = loop.sockRecv(b, 1);
      loop.callSoon(() => f.cancel());
      try {
        yield* f;
        return 'received';
      } catch (e) {
        return e instanceof CancelledError ? 'cancelled' : String(e);
      }
    }
    expect(loop.runUntilComplete(main())).toBe('cancelled');
  });
});

function* sleepy(): Coroutine<void> {
  yield* sleep(1);
}

describe('a trace, as a review attacked it', () => {
  it('keeps a loop on its lane when tracing is switched off and on again', () => {
    const loop = testLoop('epoll');
    const trace = new LoopTrace({ capacity: 64 });
    loop.setTrace(trace);
    loop.setTrace(null);
    loop.setTrace(trace);
    loop.setTrace(null);
    loop.setTrace(trace);
    expect(trace.lanes).toEqual(['main', 'EventLoop (epoll)']);
  });

  it('records nothing more after setTrace(null): an operation issued before ends unrecorded (pending in the export)', () => {
    const loop = testLoop('epoll');
    const trace = new LoopTrace({ capacity: 256 });
    loop.setTrace(trace);
    const [a, b] = testSocketpair();
    const received = loop.sockRecv(a, 10);
    loop.setTrace(null);
    const size = trace.size;
    write(b.fileno(), Buffer.from('x'));
    loop.runUntilComplete(received);
    expect(trace.size).toBe(size);
    const ends = trace.toChromeTrace().traceEvents.filter((e) => e.cat === 'socket' && e.ph === 'e');
    expect(ends.map((e) => e.args)).toEqual([{ outcome: 'pending' }]);
  });

  it("names a Task's step and its done callbacks, and survives tracing switched on or off inside a callback", () => {
    const loop = testLoop('epoll');
    const trace = new LoopTrace({ capacity: 256 });
    loop.setTrace(trace);
    function* finishes(): Coroutine<number> {
      yield* sleep(1);
      return 1;
    }
    expect(loop.runUntilComplete(loop.createTask(finishes(), 'finisher'))).toBe(1);
    const names = trace.events().flatMap((e) => (e.kind === 'call' ? [e.name] : []));
    // Its first step ran as its own callback; later ones inside the done callbacks of what it awaited.
    expect(names[0]).toBe('Task finisher');
    expect(names.at(-1)).toBe('done callbacks of Task finisher');
    loop.setTrace(null);
    function* toggles(): Coroutine<void> {
      loop.setTrace(trace);
      yield* sleep(0);
      loop.setTrace(null);
      yield* sleep(0);
      loop.setTrace(trace);
    }
    loop.runUntilComplete(toggles());
    expect(loop.trace).toBe(trace);
  });

  it('records one sockConnect(sock, [hostname, port]) as one connect', () => {
    const loop = testLoop('epoll');
    const trace = new LoopTrace({ capacity: 256 });
    loop.setTrace(trace);
    const { port } = listenLoopback();
    const sock = tcpSocket();
    loop.runUntilComplete(loop.sockConnect(sock, ['localhost', port]));
    expect(ops(trace).filter((e) => e.op === 'connect')).toHaveLength(1);
  });

  it('refuses a span on a lane the trace does not have, and records nothing', () => {
    const trace = new LoopTrace({ capacity: 16 });
    for (const lane of [-1, 2 ** 29, 1.5, 7]) {
      expect(() => trace.span('x', 0, 1, { lane })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    }
    expect(trace.size).toBe(0);
  });

  it('exports an end for every begin, an operation still in flight ending with the last event', () => {
    const trace = new LoopTrace({ capacity: 16 });
    trace.opBegin(0, 1, 3, 5); // an accept still waiting, as serve --trace always has one
    trace.span('page', 0, 2);
    const events = trace.toChromeTrace().traceEvents;
    const open = new Map<string, number>();
    for (const e of events) {
      if (e.ph !== 'b' && e.ph !== 'e') continue;
      const k = `${e.cat}/${e.id}`;
      open.set(k, (open.get(k) ?? 0) + (e.ph === 'b' ? 1 : -1));
    }
    expect([...open.entries()].filter(([, n]) => n !== 0)).toEqual([]);
    expect(events.find((e) => e.cat === 'socket' && e.ph === 'e')).toMatchObject({
      ts: 2000,
      args: { outcome: 'pending' },
    });
  });

  it("exports a group's spans in time order, each end closing the innermost open span of its id", () => {
    const trace = new LoopTrace({ capacity: 64 });
    const group = trace.span('http://h/', 100, 104, { category: 'fetch' });
    for (const [name, a, b] of [
      ['connect', 100, 101],
      ['send', 101, 102],
      ['wait', 102, 103],
      ['receive', 103, 104],
    ] as const) {
      trace.span(name, a, b, { category: 'fetch', group });
    }
    const stack: string[] = [];
    const problems: string[] = [];
    let last = -1;
    for (const e of trace.toChromeTrace().traceEvents) {
      if (e.ph !== 'b' && e.ph !== 'e') continue;
      expect(e.ts as number).toBeGreaterThanOrEqual(last);
      last = e.ts as number;
      if (e.ph === 'b') stack.push(e.name);
      else if (stack.pop() !== e.name) problems.push(`'e' of ${e.name} at ${e.ts}`);
    }
    expect(problems).toEqual([]);
  });
});
