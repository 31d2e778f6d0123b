/**
 * asyncio's streams on iomux, modelled on CPython's test_asyncio/test_streams.py:
 * the StreamReader fed by hand, then StreamReader / StreamWriter over real
 * loopback TCP and Unix sockets on every backend.
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { type CertificateSet, makeCertificates } from '../../bench/src/tls-certs.js';
import {
  CancelledError,
  type Coroutine,
  currentTask,
  type ExceptionContext,
  type Future,
  gather,
  InvalidStateError,
  type Task,
  TimeoutError,
  waitFor,
} from '../../src/coro/index.js';
import {
  ConcurrentReadError,
  type EventLoop,
  IncompleteReadError,
  LimitOverrunError,
  LineTooLongError,
  openConnection,
  openUnixConnection,
  type Server,
  StreamReader,
  StreamReaderProtocol,
  StreamWriter,
  startServer,
  startUnixServer,
} from '../../src/loop/index.js';
import { type Socket, TlsContext } from '../../src/sys/index.js';
import { BACKENDS, testLoop } from '../helpers/loops.js';
import { closedPort } from '../helpers/net.js';
import { watchdog } from '../helpers/watchdog.js';

const DATA = Buffer.from('line1\nline2\nline3\n');

function readerLoop(): EventLoop {
  return testLoop(BACKENDS[0] ?? 'epoll');
}

// What a read's Future failed with, once the loop has run it.
function failure(loop: EventLoop, future: Future<unknown>): unknown {
  try {
    loop.runUntilComplete(future);
  } catch (e) {
    return e;
  }
  throw new Error('the read did not fail');
}

// Feeds each chunk in a later loop iteration, then EOF if asked.
function feedLater(loop: EventLoop, reader: StreamReader, chunks: (string | Buffer)[], eof = false): void {
  loop.callSoon(() => {
    for (const chunk of chunks) reader.feedData(Buffer.from(chunk));
    if (eof) reader.feedEof();
  });
}

// A transport's read side that records the reader's flow control.
function flowRecorder(): { calls: string[]; pauseReading(): void; resumeReading(): void } {
  const calls: string[] = [];
  return {
    calls,
    pauseReading: () => calls.push('pause'),
    resumeReading: () => calls.push('resume'),
  };
}

describe('StreamReader fed by hand', () => {
  it('feeds: empty data changes nothing, bytes are kept in order', () => {
    const reader = new StreamReader();
    reader.feedData(Buffer.alloc(0));
    expect(reader.bufferSize).toBe(0);
    reader.feedData(DATA);
    reader.feedData(new Uint8Array([0x61]));
    expect(reader.bufferSize).toBe(DATA.length + 1);
  });

  it('read(0) is empty at once, read(n) waits for bytes and returns at most n', () => {
    const loop = readerLoop();
    const reader = new StreamReader({ loop });
    reader.feedData(DATA);
    expect(loop.runUntilComplete(reader.read(0))).toEqual(Buffer.alloc(0));
    expect(reader.bufferSize).toBe(DATA.length);
    const empty = new StreamReader({ loop });
    const pending = empty.read(30);
    feedLater(loop, empty, [DATA]);
    expect(loop.runUntilComplete(pending)).toEqual(DATA);
    expect(empty.bufferSize).toBe(0);
    reader.feedData(Buffer.from('more'));
    expect(loop.runUntilComplete(reader.read(5)).toString()).toBe('line1');
    expect(loop.runUntilComplete(reader.read(1000)).toString()).toBe('\nline2\nline3\nmore');
  });

  it('read(n) returns what arrived, not waiting for n: line breaks in separate chunks', () => {
    const loop = readerLoop();
    const reader = new StreamReader({ loop });
    reader.feedData(Buffer.from('line1'));
    reader.feedData(Buffer.from('line2'));
    expect(loop.runUntilComplete(reader.read(5)).toString()).toBe('line1');
    expect(reader.bufferSize).toBe(5);
  });

  it('feedOwned hands a waiting read(n) the bytes themselves (no copy); the part past n stays buffered', () => {
    const loop = readerLoop();
    const reader = new StreamReader({ loop });
    const first = reader.read(100);
    const chunk = Buffer.from('owned bytes');
    reader.feedOwned(chunk);
    const got = loop.runUntilComplete(first);
    expect(got).toBe(chunk); // the same Buffer
    const second = reader.read(4);
    reader.feedOwned(Buffer.from('abcdefgh'));
    expect(loop.runUntilComplete(second).toString()).toBe('abcd');
    expect(reader.bufferSize).toBe(4);
    // Bytes already buffered go first: no hand-over then.
    const third = reader.read(100);
    expect(loop.runUntilComplete(third).toString()).toBe('efgh');
    reader.feedOwned(Buffer.from('later'));
    expect(loop.runUntilComplete(reader.read(100)).toString()).toBe('later');
    // A cancelled read takes nothing: the bytes wait for the next one.
    const cancelled = reader.read(10);
    cancelled.cancel();
    reader.feedOwned(Buffer.from('kept'));
    expect(loop.runUntilComplete(reader.read(10)).toString()).toBe('kept');
  });

  it('read(n) at EOF returns empty, and so does every later read', () => {
    const loop = readerLoop();
    const reader = new StreamReader({ loop });
    const pending = reader.read(1024);
    loop.callSoon(() => reader.feedEof());
    expect(loop.runUntilComplete(pending).length).toBe(0);
    expect(reader.atEof()).toBe(true);
    expect(loop.runUntilComplete(reader.read(1024)).length).toBe(0);
  });

  it('read() and read(-1) read until EOF', () => {
    const loop = readerLoop();
    const reader = new StreamReader({ loop });
    const pending = reader.read();
    feedLater(loop, reader, ['chunk1\n', 'chunk2'], true);
    expect(loop.runUntilComplete(pending).toString()).toBe('chunk1\nchunk2');
    const other = new StreamReader({ loop });
    other.feedData(DATA);
    other.feedEof();
    expect(loop.runUntilComplete(other.read(-1))).toEqual(DATA);
    expect(other.atEof()).toBe(true);
  });

  it('read() until EOF of more than twice the limit keeps reading (no pause while it waits)', () => {
    const loop = readerLoop();
    const transport = flowRecorder();
    const reader = new StreamReader({ loop, limit: 3 });
    reader.setTransport(transport);
    const pending = reader.read();
    feedLater(loop, reader, ['chunk1', 'chunk2', 'chunk3'], true);
    expect(loop.runUntilComplete(pending).toString()).toBe('chunk1chunk2chunk3');
    expect(transport.calls).toEqual([]);
  });

  it('a read fails with the exception set, before or while it waits; bytes stay', () => {
    const loop = readerLoop();
    const reader = new StreamReader({ loop });
    reader.feedData(DATA);
    const boom = new Error('boom');
    reader.setException(boom);
    expect(reader.exception()).toBe(boom);
    expect(failure(loop, reader.read(2))).toBe(boom);
    expect(failure(loop, reader.readLine())).toBe(boom);
    expect(reader.bufferSize).toBe(DATA.length);

    const waiting = new StreamReader({ loop });
    const pending = waiting.readExactly(10);
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    loop.callSoon(() => waiting.setException(reset));
    expect(failure(loop, pending)).toBe(reset);
  });

  it('readExactly(n) waits for exactly n bytes across chunks; 0 is empty', () => {
    const loop = readerLoop();
    const reader = new StreamReader({ loop });
    expect(loop.runUntilComplete(reader.readExactly(0)).length).toBe(0);
    const pending = reader.readExactly(2 * DATA.length);
    feedLater(loop, reader, [DATA, DATA, DATA]);
    expect(loop.runUntilComplete(pending)).toEqual(Buffer.concat([DATA, DATA]));
    expect(reader.bufferSize).toBe(DATA.length);
  });

  it('readExactly may read more than the limit', () => {
    const loop = readerLoop();
    const reader = new StreamReader({ loop, limit: 3 });
    reader.setTransport(flowRecorder());
    const pending = reader.readExactly(2 * DATA.length);
    feedLater(loop, reader, [DATA, DATA, DATA]);
    expect(loop.runUntilComplete(pending)).toEqual(Buffer.concat([DATA, DATA]));
  });

  it('readExactly fails at EOF with IncompleteReadError holding partial and expected; the buffer is emptied', () => {
    const loop = readerLoop();
    const reader = new StreamReader({ loop });
    const pending = reader.readExactly(2 * DATA.length);
    feedLater(loop, reader, [DATA], true);
    const error = failure(loop, pending) as IncompleteReadError;
    expect(error).toBeInstanceOf(IncompleteReadError);
    expect(error.code).toBe('ERR_INCOMPLETE_READ');
    expect(error.partial).toEqual(DATA);
    expect(error.expected).toBe(2 * DATA.length);
    expect(error.message).toBe(`18 bytes read on a total of 36 expected bytes`);
    expect(reader.bufferSize).toBe(0);
  });

  it('readLine waits for a line across chunks and leaves the rest', () => {
    const loop = readerLoop();
    const reader = new StreamReader({ loop });
    reader.feedData(Buffer.from('chunk1 '));
    const pending = reader.readLine();
    feedLater(loop, reader, ['chunk2 ', 'chunk3 ', '\n chunk4']);
    expect(loop.runUntilComplete(pending).toString()).toBe('chunk1 chunk2 chunk3 \n');
    expect(reader.bufferSize).toBe(' chunk4'.length);
  });

  it('readLine of a line longer than the limit drops it and fails with LineTooLongError', () => {
    const loop = readerLoop();
    // All in one feed: the newline is found past the limit; the bytes through it go.
    const reader = new StreamReader({ loop, limit: 7 });
    reader.feedData(Buffer.from('chunk1chunk2\nchunk3\n'));
    const error = failure(loop, reader.readLine()) as LineTooLongError;
    expect(error).toBeInstanceOf(LineTooLongError);
    expect(error).toBeInstanceOf(RangeError);
    expect(error.code).toBe('ERR_LINE_TOO_LONG');
    expect(error.cause).toBeInstanceOf(LimitOverrunError);
    expect(error.message).toBe('Separator is found, but chunk is longer than limit');
    expect(loop.runUntilComplete(reader.readLine()).toString()).toBe('chunk3\n');

    // Fed while it waits: the buffer passes the limit with no newline; all of it goes.
    const waiting = new StreamReader({ loop, limit: 7 });
    const pending = waiting.readLine();
    feedLater(loop, waiting, ['chunk1', 'chunk2']);
    const notFound = failure(loop, pending) as LineTooLongError;
    expect(notFound.message).toBe('Separator is not found, and chunk exceed the limit');
    expect(waiting.bufferSize).toBe(0);
  });

  it('readLine: the limit is strict (a line of limit bytes plus the newline passes, one more does not)', () => {
    const loop = readerLoop();
    const reader = new StreamReader({ loop, limit: 7 });
    reader.feedData(Buffer.from('1234567\n'));
    expect(loop.runUntilComplete(reader.readLine()).toString()).toBe('1234567\n');
    expect(reader.bufferSize).toBe(0);
    reader.feedData(Buffer.from('12345678\n'));
    expect(failure(loop, reader.readLine())).toBeInstanceOf(LineTooLongError);
    expect(reader.bufferSize).toBe(0);
    reader.feedData(Buffer.from('12345678'));
    expect(failure(loop, reader.readLine())).toBeInstanceOf(LineTooLongError);
    expect(reader.bufferSize).toBe(0);
  });

  it('readLine keeps data already in the buffer beyond the line when the limit is hit', () => {
    const loop = readerLoop();
    const reader = new StreamReader({ loop, limit: 3 });
    reader.feedData(Buffer.from('li'));
    reader.feedData(Buffer.from('ne1\nline2\n'));
    expect(failure(loop, reader.readLine())).toBeInstanceOf(LineTooLongError);
    expect(loop.runUntilComplete(reader.read(100)).toString()).toBe('line2\n');
  });

  it('readLine at EOF returns the partial line, then empty lines', () => {
    const loop = readerLoop();
    const reader = new StreamReader({ loop });
    reader.feedData(Buffer.from('some data'));
    reader.feedEof();
    expect(loop.runUntilComplete(reader.readLine()).toString()).toBe('some data');
    expect(loop.runUntilComplete(reader.readLine()).length).toBe(0);
    expect(reader.atEof()).toBe(true);
  });

  it('readLine then read(n) count bytes from where the line ended', () => {
    const loop = readerLoop();
    const reader = new StreamReader({ loop });
    reader.feedData(DATA);
    loop.runUntilComplete(reader.readLine());
    expect(loop.runUntilComplete(reader.read(7)).toString()).toBe('line2\nl');
    expect(reader.bufferSize).toBe(DATA.length - 13);
  });

  it('readUntil: multi-byte separators split across chunks', () => {
    const loop = readerLoop();
    const reader = new StreamReader({ loop });
    const cases: [string[], string][] = [
      [['QWEaa', 'XYaa', 'a'], 'QWEaaXYaaa'],
      [['QWEaa', 'XYa', 'aa'], 'QWEaaXYaaa'],
      [['aaa'], 'aaa'],
      [['Xaaa'], 'Xaaa'],
      [['XXX', 'a', 'a', 'a'], 'XXXaaa'],
    ];
    for (const [chunks, expected] of cases) {
      // Fed before the read, and fed while it waits: the same line.
      for (const chunk of chunks) reader.feedData(Buffer.from(chunk));
      expect(loop.runUntilComplete(reader.readUntil('aaa')).toString()).toBe(expected);
      expect(reader.bufferSize).toBe(0);
      const pending = reader.readUntil(Buffer.from('aaa'));
      feedLater(loop, reader, chunks);
      expect(loop.runUntilComplete(pending).toString()).toBe(expected);
      expect(reader.bufferSize).toBe(0);
    }
  });

  it('readUntil with several separators ends at the one that ends first', () => {
    const loop = readerLoop();
    const reader = new StreamReader({ loop });
    reader.feedData(Buffer.from('a\r\nb\nc'));
    expect(loop.runUntilComplete(reader.readUntil(['\n', '\r\n'])).toString()).toBe('a\r\n');
    expect(loop.runUntilComplete(reader.readUntil(['\r\n', '\n'])).toString()).toBe('b\n');
    const pending = reader.readUntil(['XYZ', 'Z']);
    feedLater(loop, reader, ['X', 'YZ']);
    expect(loop.runUntilComplete(pending).toString()).toBe('cXYZ');
  });

  it('readUntil fails at EOF with IncompleteReadError (expected null) and empties the buffer', () => {
    const loop = readerLoop();
    const reader = new StreamReader({ loop });
    reader.feedData(Buffer.from('some dataAA'));
    reader.feedEof();
    const error = failure(loop, reader.readUntil('AAA')) as IncompleteReadError;
    expect(error).toBeInstanceOf(IncompleteReadError);
    expect(error.partial.toString()).toBe('some dataAA');
    expect(error.expected).toBeNull();
    expect(error.message).toBe('11 bytes read on a total of undefined expected bytes');
    expect(reader.bufferSize).toBe(0);
  });

  it('readUntil past the limit: LimitOverrunError with consumed, and the bytes stay', () => {
    const loop = readerLoop();
    const reader = new StreamReader({ loop, limit: 3 });
    reader.feedData(Buffer.from('some dataAA'));
    const notFound = failure(loop, reader.readUntil('AAA')) as LimitOverrunError;
    expect(notFound).toBeInstanceOf(LimitOverrunError);
    expect(notFound.code).toBe('ERR_LIMIT_OVERRUN');
    expect(notFound.message).toMatch(/not found/);
    expect(notFound.consumed).toBe(9);
    expect(reader.bufferSize).toBe(11);
    reader.feedData(Buffer.from('A'));
    const found = failure(loop, reader.readUntil('AAA')) as LimitOverrunError;
    expect(found.message).toMatch(/is found/);
    expect(found.consumed).toBe(9);
    // The caller decides: here it reads past the overrun.
    expect(loop.runUntilComplete(reader.read(found.consumed)).toString()).toBe('some data');
    expect(loop.runUntilComplete(reader.readUntil('AAA')).toString()).toBe('AAA');
  });

  it('a second read while one waits fails with ConcurrentReadError; the first is unharmed', () => {
    const loop = readerLoop();
    const reader = new StreamReader({ loop });
    const first = reader.readLine();
    const second = reader.read(10);
    const error = failure(loop, second) as ConcurrentReadError;
    expect(error).toBeInstanceOf(ConcurrentReadError);
    expect(error.code).toBe('ERR_CONCURRENT_READ');
    expect(error.message).toBe('read() called while another read is already waiting for incoming data');
    feedLater(loop, reader, ['ok\n']);
    expect(loop.runUntilComplete(first).toString()).toBe('ok\n');
  });

  it('cancelling a waiting read loses no bytes, and the next read may start', () => {
    const loop = readerLoop();
    const reader = new StreamReader({ loop });
    reader.feedData(Buffer.from('12345'));
    const exact = reader.readExactly(10);
    expect(exact.cancel()).toBe(true);
    const until = reader.readUntil('!');
    reader.feedData(Buffer.from('678'));
    until.cancel();
    function* main(): Coroutine<string> {
      const line = reader.readLine();
      loop.callSoon(() => line.cancel());
      try {
        yield* line;
      } catch (e) {
        expect(e).toBeInstanceOf(CancelledError);
      }
      return (yield* reader.read(100)).toString();
    }
    expect(loop.runUntilComplete(main())).toBe('12345678');
  });

  it('read() until EOF, cancelled, keeps every byte fed while it waited', () => {
    const loop = readerLoop();
    const reader = new StreamReader({ loop, limit: 2 });
    const all = reader.read();
    reader.feedData(Buffer.from('abc'));
    reader.feedData(Buffer.from('def'));
    all.cancel();
    reader.feedEof();
    expect(loop.runUntilComplete(reader.read()).toString()).toBe('abcdef');
  });

  it('waitFor on a read times out, and the bytes that came stay for the next read', () => {
    const loop = readerLoop();
    const reader = new StreamReader({ loop });
    function* main(): Coroutine<string> {
      reader.feedData(Buffer.from('no newline yet'));
      try {
        yield* waitFor(reader.readLine(), 20);
      } catch (e) {
        expect(e).toBeInstanceOf(TimeoutError);
      }
      reader.feedData(Buffer.from('\n'));
      return (yield* reader.readLine()).toString();
    }
    expect(loop.runUntilComplete(main())).toBe('no newline yet\n');
  });

  it("readUntil copies its separator: changing the caller's bytes while it waits changes nothing", () => {
    const loop = readerLoop();
    const reader = new StreamReader({ loop });
    const sep = Buffer.from('##');
    const pending = reader.readUntil(sep);
    sep.fill(0x21);
    feedLater(loop, reader, ['a!!b##c']);
    expect(loop.runUntilComplete(pending).toString()).toBe('a!!b##');
  });

  it('a read in a coroutine uses the running loop when none was given', () => {
    const loop = readerLoop();
    const reader = new StreamReader();
    function* main(): Coroutine<string> {
      const pending = reader.readLine();
      expect(pending.loop).toBe(loop);
      feedLater(loop, reader, ['hello\n']);
      return (yield* pending).toString();
    }
    expect(loop.runUntilComplete(main())).toBe('hello\n');
  });

  it('async iteration gives the lines until EOF (cooperative run)', async () => {
    const loop = readerLoop();
    const reader = new StreamReader({ loop });
    reader.feedData(Buffer.from('line1\nline2\n'));
    const lines = await loop.run(async () => {
      feedLater(loop, reader, ['line3\nlast'], true);
      const got: string[] = [];
      for await (const line of reader) got.push(line.toString());
      return got;
    });
    expect(lines).toEqual(['line1\n', 'line2\n', 'line3\n', 'last']);
  });

  it('flow control: pauses past twice the limit when no read waits, resumes at the limit', () => {
    const loop = readerLoop();
    const transport = flowRecorder();
    const reader = new StreamReader({ loop, limit: 4 });
    reader.setTransport(transport);
    reader.feedData(Buffer.from('12345678'));
    expect(transport.calls).toEqual([]);
    reader.feedData(Buffer.from('9'));
    expect(transport.calls).toEqual(['pause']);
    expect(reader.paused).toBe(true);
    reader.feedData(Buffer.from('abc'));
    expect(transport.calls).toEqual(['pause']);
    expect(loop.runUntilComplete(reader.read(7)).toString()).toBe('1234567');
    expect(transport.calls).toEqual(['pause']);
    expect(loop.runUntilComplete(reader.read(1)).toString()).toBe('8');
    expect(transport.calls).toEqual(['pause', 'resume']);
    expect(reader.paused).toBe(false);
  });

  it('flow control: a read that must wait for more resumes a paused transport', () => {
    const loop = readerLoop();
    const transport = flowRecorder();
    const reader = new StreamReader({ loop, limit: 2 });
    reader.setTransport(transport);
    reader.feedData(Buffer.from('12345'));
    expect(transport.calls).toEqual(['pause']);
    const pending = reader.readExactly(8);
    expect(transport.calls).toEqual(['pause', 'resume']);
    feedLater(loop, reader, ['678']);
    expect(loop.runUntilComplete(pending).toString()).toBe('12345678');
    expect(transport.calls).toEqual(['pause', 'resume']);
  });

  it('feedData after feedEof, and a second transport, are state errors', () => {
    const reader = new StreamReader();
    reader.setTransport(flowRecorder());
    expect(() => reader.setTransport(flowRecorder())).toThrow(InvalidStateError);
    reader.feedEof();
    expect(() => reader.feedData(Buffer.from('x'))).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_STATE', message: 'feedData after feedEof' }),
    );
  });

  it('bad arguments are refused at once with a code', () => {
    for (const limit of [0, -1, 1.5, Number.NaN]) {
      expect(() => new StreamReader({ limit })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    }
    expect(() => new StreamReader({ limit: '10' as unknown as number })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
    const reader = new StreamReader({ loop: readerLoop() });
    expect(() => reader.readExactly(-1)).toThrow(RangeError);
    expect(() => reader.readExactly(-1)).toThrow(
      expect.objectContaining({
        code: 'ERR_OUT_OF_RANGE',
        message: 'The "n" argument must be >= 0. Received -1',
      }),
    );
    expect(() => reader.read(1.5)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => reader.readUntil('')).toThrow(
      expect.objectContaining({
        code: 'ERR_INVALID_ARG_VALUE',
        message: 'The "separator" argument must be at least one byte long',
      }),
    );
    expect(() => reader.readUntil([])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => reader.readUntil(['ab', Buffer.alloc(0)])).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
    expect(() => reader.readUntil(7 as unknown as string)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
    expect(() => reader.feedData('text' as unknown as Buffer)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
    // Nothing of that started a read.
    reader.feedData(Buffer.from('x'));
    expect(String(reader)).toBe('StreamReader <1 bytes>');
  });

  it('a large stream passes through in order (the buffer grows, slides and hands out its memory)', () => {
    const loop = readerLoop();
    const reader = new StreamReader({ loop });
    const all = Buffer.alloc(300_000);
    for (let i = 0; i < all.length; i++) all[i] = (i * 7) % 251;
    const got: Buffer[] = [];
    for (let off = 0; off < all.length; ) {
      const n = Math.min(1 + ((off * 13) % 40_000), all.length - off);
      reader.feedData(all.subarray(off, off + n));
      off += n;
      if (reader.bufferSize > 50_000) got.push(loop.runUntilComplete(reader.read(30_000 + (off % 7))));
    }
    reader.feedEof();
    got.push(loop.runUntilComplete(reader.read()));
    expect(Buffer.concat(got).equals(all)).toBe(true);
  });
});

// Runs `main` to its end; a test that would hang is cancelled by a watchdog
// (another thread) after 15 s instead, and fails.
function runBounded<T>(loop: EventLoop, main: Coroutine<T>): T {
  const task = loop.createTask(main);
  const dog = watchdog(15_000);
  loop.addReader(dog, () => {
    loop.removeReader(dog);
    task.cancel('watchdog: the test hung');
  });
  try {
    return loop.runUntilComplete(task);
  } finally {
    loop.removeReader(dog);
  }
}

function portOf(server: Server): number {
  const [, port] = (server.sockets[0] as Socket).getsockname() as [string, number];
  return port;
}

let socketCount = 0;
function socketPath(): string {
  const path = join(tmpdir(), `iomux-streams-${process.pid}-${++socketCount}.sock`);
  onTestFinished(() => rmSync(path, { force: true }));
  return path;
}

// The echo of CPython's tests: each line back until EOF, then close.
function* echoLines(reader: StreamReader, writer: StreamWriter): Coroutine<void> {
  for (;;) {
    const line = yield* reader.readLine();
    if (line.length === 0) break;
    writer.write(line);
    yield* writer.drain();
  }
  writer.close();
  yield* writer.waitClosed();
}

function* talk(reader: StreamReader, writer: StreamWriter): Coroutine<string[]> {
  const got: string[] = [];
  for (let i = 0; i < 50; i++) {
    writer.write(`line ${i}\n`);
    yield* writer.drain();
    got.push((yield* reader.readLine()).toString());
  }
  writer.writelines(['gathered ', Buffer.from('in one\n'), new Uint8Array([0x21, 0x0a])]);
  got.push((yield* reader.readLine()).toString(), (yield* reader.readLine()).toString());
  writer.close();
  yield* writer.waitClosed();
  return got;
}

const TALK = [...Array.from({ length: 50 }, (_, i) => `line ${i}\n`), 'gathered in one\n', '!\n'];

describe.each(BACKENDS)('streams over loopback on %s', (backend) => {
  it('echo over TCP: startServer + openConnection, generator coroutines', () => {
    const loop = testLoop(backend);
    function* main(): Coroutine<[string[], unknown]> {
      const server = yield* startServer(echoLines, '127.0.0.1', 0);
      const port = portOf(server);
      const [reader, writer] = yield* openConnection('127.0.0.1', port);
      const peer = writer.getExtraInfo('peername');
      const got = yield* talk(reader, writer);
      server.close();
      yield* server.waitClosed();
      return [got, peer];
    }
    const [got, peer] = runBounded(loop, main());
    expect(got).toEqual(TALK);
    expect(peer).toEqual(['127.0.0.1', expect.any(Number)]);
  });

  it('echo over TCP in cooperative mode: async functions, for await over the lines', async () => {
    const loop = testLoop(backend);
    const got = await loop.run(async () => {
      const server = await startServer(
        async (reader, writer) => {
          for await (const line of reader) {
            writer.write(line.toString().toUpperCase());
            await writer.drain();
          }
          writer.close();
          await writer.waitClosed();
        },
        '127.0.0.1',
        0,
      );
      const [reader, writer] = await openConnection('127.0.0.1', portOf(server), { loop });
      const lines: string[] = [];
      for (const word of ['one', 'two', 'three']) {
        writer.write(`${word}\n`);
        await writer.drain();
        lines.push((await reader.readLine()).toString());
      }
      writer.writeEof();
      lines.push(`eof: ${(await reader.read()).length}`);
      writer.close();
      await writer.waitClosed();
      server.close();
      await server.waitClosed();
      return lines;
    });
    expect(got).toEqual(['ONE\n', 'TWO\n', 'THREE\n', 'eof: 0']);
  });

  it('StreamReaderProtocol and StreamWriter over loop.createConnection directly (the running loop by default)', () => {
    const loop = testLoop(backend);
    function* main(): Coroutine<string> {
      const server = yield* startServer(echoLines, '127.0.0.1', 0);
      const reader = new StreamReader({ limit: 1024 });
      const [transport, protocol] = yield* loop.createConnection(
        () => new StreamReaderProtocol(reader),
        '127.0.0.1',
        portOf(server),
      );
      expect(protocol.transport).toBe(transport);
      const writer = new StreamWriter(transport, protocol, reader, loop);
      writer.write('by hand\n');
      const line = (yield* reader.readLine()).toString();
      writer.close();
      yield* writer.waitClosed();
      expect(protocol.transport).toBeNull();
      server.close();
      yield* server.waitClosed();
      return line;
    }
    expect(runBounded(loop, main())).toBe('by hand\n');
  });

  it('echo over a Unix socket: startUnixServer + openUnixConnection', () => {
    const loop = testLoop(backend);
    const path = socketPath();
    function* main(): Coroutine<string[]> {
      const server = yield* startUnixServer(echoLines, path, { limit: 1024 });
      const [reader, writer] = yield* openUnixConnection(path, { limit: 1024 });
      const got = yield* talk(reader, writer);
      server.close();
      yield* server.waitClosed();
      return got;
    }
    expect(runBounded(loop, main())).toEqual(TALK);
  });

  it('20 clients at once, each 200 KB each way through small limits: every byte back, in order', () => {
    const loop = testLoop(backend);
    // Each connection: a length line, then that many bytes; the server answers them reversed in blocks.
    function* serve(reader: StreamReader, writer: StreamWriter): Coroutine<void> {
      const size = Number((yield* reader.readLine()).toString());
      const data = yield* reader.readExactly(size);
      for (let off = 0; off < size; off += 8192) {
        writer.write(Buffer.from(data.subarray(off, off + 8192)).reverse());
        yield* writer.drain();
      }
      writer.close();
    }
    function* client(port: number, i: number): Coroutine<boolean> {
      const [reader, writer] = yield* openConnection('127.0.0.1', port, { limit: 1024 });
      const data = Buffer.alloc(200_000 + i);
      for (let j = 0; j < data.length; j++) data[j] = (j * (i + 3)) % 256;
      writer.write(`${data.length}\n`);
      for (let off = 0; off < data.length; off += 30_000) {
        writer.write(data.subarray(off, off + 30_000));
        yield* writer.drain();
      }
      const back = yield* reader.read();
      writer.close();
      const expected = Buffer.concat(
        Array.from({ length: Math.ceil(data.length / 8192) }, (_, k) =>
          Buffer.from(data.subarray(k * 8192, (k + 1) * 8192)).reverse(),
        ),
      );
      return back.equals(expected);
    }
    function* main(): Coroutine<boolean[]> {
      const server = yield* startServer(serve, '127.0.0.1', 0, { limit: 2048 });
      const results = yield* gather(...Array.from({ length: 20 }, (_, i) => client(portOf(server), i)));
      server.close();
      yield* server.waitClosed();
      return results;
    }
    expect(runBounded(loop, main())).toEqual(Array(20).fill(true));
  });

  it('writeEof half-closes: the server reads to EOF, then still answers', () => {
    const loop = testLoop(backend);
    function* main(): Coroutine<[boolean, string, boolean]> {
      const server = yield* startServer(
        function* (reader, writer): Coroutine<void> {
          const all = yield* reader.read();
          writer.write(`got ${all.length} bytes: ${all.toString()}`);
          yield* writer.drain();
          writer.close();
        },
        '127.0.0.1',
        0,
      );
      const [reader, writer] = yield* openConnection('127.0.0.1', portOf(server));
      const canWriteEof = writer.canWriteEof();
      writer.write('hello ');
      writer.write('world');
      writer.writeEof();
      const reply = (yield* reader.read()).toString();
      const atEof = reader.atEof();
      writer.close();
      yield* writer.waitClosed();
      server.close();
      yield* server.waitClosed();
      return [canWriteEof, reply, atEof];
    }
    expect(runBounded(loop, main())).toEqual([true, 'got 11 bytes: hello world', true]);
  });

  it('drain waits while a slow peer does not read, and the slow reader pauses its transport past 2 * limit', () => {
    const loop = testLoop(backend);
    const LIMIT = 4096;
    const chunk = Buffer.alloc(65536);
    for (let i = 0; i < chunk.length; i++) chunk[i] = i % 253;
    function* main(): Coroutine<Record<string, unknown>> {
      const accepted = loop.createFuture<[StreamReader, StreamWriter]>();
      const server = yield* startServer((r, w) => accepted.setResult([r, w]), '127.0.0.1', 0, { limit: LIMIT });
      const [, writer] = yield* openConnection('127.0.0.1', portOf(server));
      const [slowReader, slowWriter] = yield* accepted;
      // Write until drain has to wait: the server reads nothing, so the
      // kernel's buffers fill, then the transport's (past its high-water mark).
      let written = 0;
      let drain = writer.drain();
      while (drain.done() && written < 256 * 1024 * 1024) {
        writer.write(chunk);
        written += chunk.length;
        drain = writer.drain();
        if (drain.done()) yield* drain;
      }
      // Let the server's transport take what it will.
      for (let i = 0; i < 5; i++) yield;
      const blocked = {
        drainWaiting: !drain.done(),
        writeBuffer: writer.transport.getWriteBufferSize() > 0,
        readerPaused: slowReader.paused,
        transportReading: slowWriter.transport.isReading(),
        buffered: slowReader.bufferSize > 2 * LIMIT,
      };
      // Now the slow peer reads it all; the writer's drain returns.
      let received = 0;
      let intact = true;
      while (received < written) {
        const data = yield* slowReader.read(100_000);
        for (let i = 0; i < data.length; i += 997) if (data[i] !== ((received + i) % 65536) % 253) intact = false;
        received += data.length;
      }
      yield* drain;
      writer.close();
      yield* writer.waitClosed();
      const eof = (yield* slowReader.read()).length;
      slowWriter.close();
      server.close();
      yield* server.waitClosed();
      return { ...blocked, received: received === written, intact, eof, resumed: !slowReader.paused };
    }
    expect(runBounded(loop, main())).toEqual({
      drainWaiting: true,
      writeBuffer: true,
      readerPaused: true,
      transportReading: false,
      buffered: true,
      received: true,
      intact: true,
      eof: 0,
      resumed: true,
    });
  });

  it('waitClosed resolves after connectionLost on both sides; drain after it fails with ECONNRESET', () => {
    const loop = testLoop(backend);
    function* main(): Coroutine<[string[], string[]]> {
      const events: string[] = [];
      const serverEvents: string[] = [];
      const serverSide = loop.createFuture<void>();
      const server = yield* startServer(
        function* (reader, writer): Coroutine<void> {
          const waiting = writer.waitClosed();
          const rest = yield* reader.read();
          serverEvents.push(`server read ${rest.length} at EOF`);
          writer.close();
          yield* waiting;
          serverEvents.push('server closed');
          serverSide.setResult(undefined);
        },
        '127.0.0.1',
        0,
      );
      const [, writer] = yield* openConnection('127.0.0.1', portOf(server));
      const closed = writer.waitClosed();
      writer.write('bye');
      writer.close();
      events.push(`closing: ${writer.isClosing()}, closed yet: ${closed.done()}`);
      yield* closed;
      events.push('client closed');
      try {
        yield* writer.drain();
      } catch (e) {
        events.push(`drain: ${(e as { code: string }).code}`);
      }
      yield* serverSide;
      server.close();
      yield* server.waitClosed();
      return [events, serverEvents];
    }
    expect(runBounded(loop, main())).toEqual([
      ['closing: true, closed yet: false', 'client closed', 'drain: ECONNRESET'],
      ['server read 3 at EOF', 'server closed'],
    ]);
  });

  it('abortClients ends the handlers at EOF; a handler Task cancelled closes its connection', () => {
    const loop = testLoop(backend);
    function* main(): Coroutine<string[]> {
      const log: string[] = [];
      const handlers: Task<unknown>[] = [];
      const server = yield* startServer(
        function* (reader): Coroutine<void> {
          handlers.push(currentTask() as Task<unknown>);
          try {
            log.push(`handler read ${(yield* reader.readLine()).length} bytes`);
          } catch (e) {
            log.push(`handler: ${(e as Error).name}`);
            throw e;
          }
        },
        '127.0.0.1',
        0,
      );
      const [firstReader, first] = yield* openConnection('127.0.0.1', portOf(server));
      const [secondReader, second] = yield* openConnection('127.0.0.1', portOf(server));
      while (handlers.length < 2) yield;
      // The first handler's Task is cancelled: its connection closes.
      handlers[0]?.cancel();
      log.push(`first client read ${(yield* firstReader.read()).length} bytes`);
      // Then the server goes, taking its clients: the second handler sees EOF.
      server.close();
      server.abortClients();
      yield* server.waitClosed();
      log.push(`second client read ${(yield* secondReader.read()).length} bytes`);
      first.close();
      second.close();
      return log;
    }
    expect(runBounded(loop, main())).toEqual([
      'handler: CancelledError',
      'first client read 0 bytes',
      'handler read 0 bytes',
      'second client read 0 bytes',
    ]);
  });

  it('a clientConnected coroutine that fails reaches the exception handler, and the connection is closed', () => {
    const loop = testLoop(backend);
    const reported: ExceptionContext[] = [];
    loop.setExceptionHandler((_, context) => reported.push(context));
    const boom = new Error('handler failed');
    function* main(): Coroutine<string[]> {
      const server = yield* startServer(
        function* (reader): Coroutine<void> {
          yield* reader.readLine();
          throw boom;
        },
        '127.0.0.1',
        0,
      );
      const throwsAtOnce = yield* startServer(
        () => {
          throw boom;
        },
        '127.0.0.1',
        0,
      );
      const replies: string[] = [];
      for (const s of [server, throwsAtOnce]) {
        const [reader, writer] = yield* openConnection('127.0.0.1', portOf(s));
        // (Only to the one that reads it: bytes left unread at close would make it a reset.)
        if (s === server) writer.write('go\n');
        replies.push(`eof after ${(yield* reader.read()).length} bytes`);
        writer.close();
        s.close();
        yield* s.waitClosed();
      }
      return replies;
    }
    expect(runBounded(loop, main())).toEqual(['eof after 0 bytes', 'eof after 0 bytes']);
    expect(reported).toEqual([
      expect.objectContaining({ message: 'Unhandled exception in clientConnected', exception: boom }),
      expect.objectContaining({ message: 'Unhandled exception in clientConnected', exception: boom }),
    ]);
  });

  it('an async clientConnected that rejects reaches the exception handler (cooperative mode)', async () => {
    const loop = testLoop(backend);
    const reported: ExceptionContext[] = [];
    loop.setExceptionHandler((_, context) => reported.push(context));
    const reply = await loop.run(async () => {
      const server = await startServer(
        async (reader) => {
          await reader.readLine();
          throw new Error('async handler failed');
        },
        '127.0.0.1',
        0,
      );
      const [reader, writer] = await openConnection('127.0.0.1', portOf(server));
      writer.write('go\n');
      const rest = await reader.read();
      writer.close();
      server.close();
      await server.waitClosed();
      return rest.length;
    });
    expect(reply).toBe(0);
    expect(reported).toEqual([
      expect.objectContaining({
        message: 'Unhandled exception in clientConnected',
        exception: expect.objectContaining({ message: 'async handler failed' }),
      }),
    ]);
  });

  it('an async clientConnected runs as a Task of its own: cancelling the main Task leaves its awaits alone', async () => {
    const loop = testLoop(backend);
    const log: string[] = [];
    let handlerRead: Future<Buffer> | null = null;
    const run = loop.run(async () => {
      const main = currentTask();
      const server = await startServer(
        async (reader) => {
          log.push(`handler task is its own: ${currentTask() !== null && currentTask() !== main}`);
          handlerRead = reader.readLine();
          await handlerRead;
        },
        '127.0.0.1',
        0,
      );
      onTestFinished(() => server.close());
      await openConnection('127.0.0.1', portOf(server));
      // While the handler waits for its line, main waits on a plain
      // promise (not a Future) and is cancelled: only main may hear of it.
      await new Promise<void>((resolve) => {
        loop.callLater(20, () => {
          log.push(`main cancelled: ${main?.cancel()}`);
          log.push(`handler's read cancelled: ${handlerRead?.cancelled()}`);
          resolve();
        });
      });
    });
    await expect(run).rejects.toBeInstanceOf(CancelledError);
    expect(log).toEqual(['handler task is its own: true', 'main cancelled: true', "handler's read cancelled: false"]);
  });

  it("a refused openConnection fails with ECONNREFUSED; drain raises the reader's exception", () => {
    const loop = testLoop(backend);
    const port = closedPort();
    function* main(): Coroutine<string[]> {
      const out: string[] = [];
      try {
        yield* openConnection('127.0.0.1', port);
      } catch (e) {
        out.push((e as { code: string }).code);
      }
      const server = yield* startServer(echoLines, '127.0.0.1', 0);
      const [reader, writer] = yield* openConnection('127.0.0.1', portOf(server));
      const broken = new Error('the reader broke');
      reader.setException(broken);
      try {
        yield* writer.drain();
      } catch (e) {
        out.push((e as Error).message);
      }
      writer.close();
      server.close();
      yield* server.waitClosed();
      return out;
    }
    expect(runBounded(loop, main())).toEqual(['ECONNREFUSED', 'the reader broke']);
  });
});

let certs: CertificateSet | null = null;
function tlsCerts(): CertificateSet {
  certs ??= makeCertificates();
  return certs;
}

describe.each(BACKENDS)('streams over TLS on %s', (backend) => {
  it('echo over TLS: the TLS details through getExtraInfo, no half-close (canWriteEof false)', () => {
    const loop = testLoop(backend);
    const { ca, server: pair } = tlsCerts();
    const context = new TlsContext({ server: true, cert: pair.cert, key: pair.key });
    function* main(): Coroutine<[string[], unknown, boolean]> {
      const server = yield* startServer(echoLines, '127.0.0.1', 0, { ssl: context });
      const [reader, writer] = yield* openConnection('127.0.0.1', portOf(server), {
        ssl: { ca: ca.cert },
        serverHostname: 'localhost',
      });
      const protocol = writer.getExtraInfo('protocol');
      const canWriteEof = writer.canWriteEof();
      const got = yield* talk(reader, writer);
      server.close();
      yield* server.waitClosed();
      return [got, protocol, canWriteEof];
    }
    expect(runBounded(loop, main())).toEqual([TALK, expect.stringMatching(/^TLSv1\.[23]$/), false]);
  });
});

describe('stream functions refuse bad arguments at once', () => {
  it('with codes, before any socket is made', () => {
    const loop = readerLoop();
    expect(() => startServer('no' as unknown as () => void, '127.0.0.1', 0, { loop })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
    expect(() => startServer(() => undefined, '127.0.0.1', 0, { loop, limit: 0 })).toThrow(
      expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }),
    );
    expect(() => openConnection('127.0.0.1', 1, { loop, limit: -5 })).toThrow(
      expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }),
    );
    expect(() => openUnixConnection('/nonexistent', null as unknown as object)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
    // Without a loop option, outside a running loop.
    expect(() => openConnection('127.0.0.1', 1)).toThrow(expect.objectContaining({ code: 'ERR_NO_RUNNING_LOOP' }));
  });
});
