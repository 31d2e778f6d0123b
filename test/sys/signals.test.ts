/**
 * SignalWatch on real signals (process.kill to this process) and real
 * signal-driven sockets. Runs in the forks pool (vitest.config.ts): each
 * file is its own process and main thread, as signal dispositions need.
 * A handler that went missing shows as this process dying by the signal.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { describe, expect, it, onTestFinished } from 'vitest';

import {
  close,
  POLLIN,
  SIGRTMAX,
  SIGRTMIN,
  SignalWatch,
  type SignalWatchOptions,
  select,
  signalDisposition,
  verifySignals,
} from '../../src/sys/index.js';
import { fdFlags, testSocketpair } from '../helpers/fds.js';

const O_ASYNC = 0o20000;
const O_NONBLOCK = 0o4000;

function testWatch(options?: SignalWatchOptions): SignalWatch {
  const watch = new SignalWatch(options);
  onTestFinished(() => watch.close());
  return watch;
}

/** Whether the watch's eventfd is readable now (no waiting). */
function readable(watch: SignalWatch): boolean {
  return select([watch.fileno()], [], [], 0)[0].length === 1;
}

/** Waits (bounded by the test's own timeout, never by a clock here) until fd is readable. */
function waitReadable(watch: SignalWatch): void {
  expect(select([watch.fileno()], [], [], 10_000)[0]).toEqual([watch.fileno()]);
}

describe('SignalWatch: handlers', () => {
  it('records a signal and makes its eventfd readable; remove restores SIG_DFL', () => {
    expect(signalDisposition('SIGUSR2').kind).toBe('default');
    const watch = testWatch();
    watch.add('SIGUSR2');
    expect(signalDisposition('SIGUSR2').kind).toBe('iomux');
    expect(readable(watch)).toBe(false);
    process.kill(process.pid, 'SIGUSR2');
    process.kill(process.pid, 'SIGUSR2');
    waitReadable(watch);
    expect(watch.read()).toBe(0);
    expect(watch.pending('SIGUSR2')).toBe(true);
    expect(watch.pending('SIGUSR1')).toBe(false);
    expect(watch.overflow).toBe(false);
    // Drained: two arrivals, one report.
    expect(readable(watch)).toBe(false);
    watch.read();
    expect(watch.pending('SIGUSR2')).toBe(false);
    expect(watch.remove('SIGUSR2')).toBe(true);
    expect(watch.remove('SIGUSR2')).toBe(false);
    expect(signalDisposition('SIGUSR2').kind).toBe('default');
  });

  it('numbers and names are the same signal; adding twice is a no-op; signals above 32 work', () => {
    const watch = testWatch();
    watch.add(12);
    watch.add('SIGUSR2');
    watch.add(SIGRTMAX);
    process.kill(process.pid, SIGRTMAX);
    waitReadable(watch);
    watch.read();
    expect(watch.pending(SIGRTMAX)).toBe(true);
    expect(watch.pending(12)).toBe(false);
    watch.close();
    expect(signalDisposition(12).kind).toBe('default');
    expect(signalDisposition(SIGRTMAX).kind).toBe('default');
  });

  it('close restores every action; a closed watch refuses work, remove says false', () => {
    const watch = testWatch();
    watch.add('SIGUSR2');
    watch.add('SIGHUP');
    watch.close();
    watch.close();
    expect(watch.closed).toBe(true);
    expect(signalDisposition('SIGUSR2').kind).toBe('default');
    expect(signalDisposition('SIGHUP').kind).toBe('default');
    expect(watch.remove('SIGUSR2')).toBe(false);
    expect(() => watch.add('SIGUSR2')).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(() => watch.read()).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(signalDisposition('SIGUSR2').kind).toBe('default');
  });

  it('bad signals: each a typed error, and nothing changes', () => {
    const watch = testWatch();
    const before = [signalDisposition('SIGINT'), signalDisposition('SIGSEGV'), signalDisposition('SIGKILL')];
    const cases: [unknown, string, ErrorConstructor | RangeErrorConstructor, RegExp][] = [
      ['SIGFOO', 'ERR_UNKNOWN_SIGNAL', TypeError, /^Unknown signal: SIGFOO$/],
      ['sigint', 'ERR_UNKNOWN_SIGNAL', TypeError, /Unknown signal/],
      ['SIGKILL', 'ERR_INVALID_ARG_VALUE', TypeError, /Received 9 \(SIGKILL\), which cannot be caught/],
      [19, 'ERR_INVALID_ARG_VALUE', TypeError, /Received 19 \(SIGSTOP\), which cannot be caught/],
      ['SIGSEGV', 'ERR_INVALID_ARG_VALUE', TypeError, /synchronous fault/],
      [32, 'ERR_INVALID_ARG_VALUE', TypeError, /reserved by the C library/],
      [0, 'ERR_OUT_OF_RANGE', RangeError, /^The "signal" argument must be >= 1 and <= 64\. Received 0$/],
      [65, 'ERR_OUT_OF_RANGE', RangeError, /Received 65$/],
      [1.5, 'ERR_OUT_OF_RANGE', RangeError, /must be an integer\. Received 1\.5$/],
      [{}, 'ERR_INVALID_ARG_TYPE', TypeError, /must be a signal name or number\. Received an instance of Object/],
      [null, 'ERR_INVALID_ARG_TYPE', TypeError, /Received null/],
    ];
    for (const [signal, code, type, message] of cases) {
      let error: unknown;
      try {
        watch.add(signal as number);
      } catch (e) {
        error = e;
      }
      expect(error, String(signal)).toBeInstanceOf(type);
      expect(error).toMatchObject({ code });
      expect((error as Error).message).toMatch(message);
    }
    expect([signalDisposition('SIGINT'), signalDisposition('SIGSEGV'), signalDisposition('SIGKILL')]).toEqual(before);
    expect(readable(watch)).toBe(false);
  });

  it('the addon checks too, with the same wording (called past the TypeScript checks)', async () => {
    const { native } = await import('../../src/sys/native.js');
    const raw = new native.SignalWatch(4);
    onTestFinished(() => raw.close());
    expect(() => raw.add(9)).toThrow(
      expect.objectContaining({
        code: 'ERR_INVALID_ARG_VALUE',
        message: 'The "signal" argument must be a signal that can be handled. Received 9, which cannot be caught',
      }),
    );
    expect(() => raw.add(0)).toThrow(
      expect.objectContaining({
        code: 'ERR_OUT_OF_RANGE',
        message: 'The "signal" argument must be >= 1 and <= 64. Received 0',
      }),
    );
    expect(() => raw.add('2' as unknown as number)).toThrow(
      expect.objectContaining({
        code: 'ERR_INVALID_ARG_TYPE',
        message: expect.stringMatching(/must be of type number/),
      }),
    );
    expect(() => new native.SignalWatch(0)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(signalDisposition(9).kind).toBe('default');
  });

  it('one watch per signal: a second watch is refused and the first keeps it', () => {
    const first = testWatch();
    const second = testWatch();
    first.add('SIGUSR2');
    expect(() => second.add('SIGUSR2')).toThrow(
      expect.objectContaining({
        code: 'ERR_INVALID_ARG_VALUE',
        message: expect.stringMatching(/another watch handles/),
      }),
    );
    expect(second.remove('SIGUSR2')).toBe(false);
    process.kill(process.pid, 'SIGUSR2');
    waitReadable(first);
    first.read();
    expect(first.pending('SIGUSR2')).toBe(true);
    expect(readable(second)).toBe(false);
  });
});

describe('SignalWatch: coexistence with process.on', () => {
  /** A process.on listener, removed when the test ends; resolves on each call. */
  function nodeListener(signal: NodeJS.Signals): { calls: () => number; next: () => Promise<void>; off: () => void } {
    let calls = 0;
    let wake: (() => void) | null = null;
    const listener = (): void => {
      calls++;
      wake?.();
    };
    process.on(signal, listener);
    const off = (): void => {
      process.off(signal, listener);
    };
    onTestFinished(off);
    return {
      calls: () => calls,
      next: () =>
        new Promise<void>((resolve) => {
          wake = resolve;
        }),
      off,
    };
  }

  it('process.on first, then the watch: both get the signal; the watch removed, Node keeps it', async () => {
    const node = nodeListener('SIGUSR2');
    expect(signalDisposition('SIGUSR2').kind).toBe('handler');
    const watch = testWatch();
    watch.add('SIGUSR2');
    const arrived = node.next();
    process.kill(process.pid, 'SIGUSR2');
    await arrived;
    waitReadable(watch);
    watch.read();
    expect(watch.pending('SIGUSR2')).toBe(true);
    expect(watch.remove('SIGUSR2')).toBe(true);
    // libuv's handler is back, not SIG_DFL.
    expect(signalDisposition('SIGUSR2').kind).toBe('handler');
    const again = node.next();
    process.kill(process.pid, 'SIGUSR2');
    await again;
    expect(node.calls()).toBe(2);
  });

  it('the watch first, then process.on: both get it; process.off leaves the watch working', async () => {
    const watch = testWatch();
    watch.add('SIGUSR2');
    // libuv installs its handler over ours here; ours goes back on top, chaining to it.
    const node = nodeListener('SIGUSR2');
    expect(signalDisposition('SIGUSR2').kind).toBe('iomux');
    const arrived = node.next();
    process.kill(process.pid, 'SIGUSR2');
    await arrived;
    waitReadable(watch);
    watch.read();
    expect(watch.pending('SIGUSR2')).toBe(true);
    // libuv resets the signal to SIG_DFL when its last listener goes; ours comes back.
    node.off();
    expect(signalDisposition('SIGUSR2').kind).toBe('iomux');
    process.kill(process.pid, 'SIGUSR2');
    waitReadable(watch);
    watch.read();
    expect(watch.pending('SIGUSR2')).toBe(true);
    expect(node.calls()).toBe(1);
    watch.close();
    // What ours replaced last was libuv's reset: SIG_DFL.
    expect(signalDisposition('SIGUSR2').kind).toBe('default');
  });

  it('the watch first, then process.on, then the watch removed: Node keeps the signal', async () => {
    const watch = testWatch();
    watch.add('SIGUSR2');
    const node = nodeListener('SIGUSR2');
    expect(watch.remove('SIGUSR2')).toBe(true);
    expect(signalDisposition('SIGUSR2').kind).toBe('handler');
    const arrived = node.next();
    process.kill(process.pid, 'SIGUSR2');
    await arrived;
    expect(node.calls()).toBe(1);
    expect(readable(watch)).toBe(false);
  });

  it('verifySignals puts ours back over a handler installed behind its back', async () => {
    const watch = testWatch();
    watch.add('SIGUSR2');
    expect(verifySignals()).toBe(0);
    const node = nodeListener('SIGUSR2');
    // The process.on hook already re-asserted it: nothing left to do.
    expect(verifySignals()).toBe(0);
    const arrived = node.next();
    process.kill(process.pid, 'SIGUSR2');
    await arrived;
    waitReadable(watch);
  });

  it("Node's own SIGINT action (one-shot, SA_RESETHAND) is replaced, not chained to: the process lives", () => {
    const before = signalDisposition('SIGINT');
    const watch = testWatch();
    watch.add('SIGINT');
    process.kill(process.pid, 'SIGINT');
    waitReadable(watch);
    watch.read();
    expect(watch.pending('SIGINT')).toBe(true);
    watch.close();
    expect(signalDisposition('SIGINT')).toEqual(before);
  });
});

describe('SignalWatch: the default action comes back', () => {
  it('a child that removes its SIGINT watch is killed by the next SIGINT', async () => {
    const dist = new URL('../../dist/sys/index.js', import.meta.url);
    expect(existsSync(dist), 'dist/ is built by the global setup: run through vitest').toBe(true);
    const script = `
      import(${JSON.stringify(dist.href)}).then((sys) => {
        const watch = new sys.SignalWatch();
        watch.add('SIGINT');
        process.kill(process.pid, 'SIGINT');
        sys.select([watch.fileno()], [], [], 10000);
        watch.read();
        console.log('caught ' + watch.pending('SIGINT'));
        watch.remove('SIGINT');
        process.kill(process.pid, 'SIGINT');
        setTimeout(() => console.log('survived'), 10000);
      });`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    expect(out).toBe('caught true\n');
    expect([code, signal]).toEqual([null, 'SIGINT']);
  });
});

describe('SignalWatch: the environment ends', () => {
  it('a process that exits with watches open (handlers, signal-driven fds) exits cleanly', async () => {
    const dist = new URL('../../dist/sys/index.js', import.meta.url);
    expect(existsSync(dist), 'dist/ is built by the global setup: run through vitest').toBe(true);
    // The cleanup hook restores every action as the main environment ends; nothing may crash there.
    const script = `
      import(${JSON.stringify(dist.href)}).then((sys) => {
        const watch = new sys.SignalWatch();
        watch.add('SIGINT');
        watch.add('SIGUSR2');
        const [a, b] = sys.socketpair();
        watch.setSignalDriven(b);
        a.send('x');
        console.log('open');
      });`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    expect([out, err, code, signal]).toEqual(['open\n', '', 0, null]);
  });
});

describe('SignalWatch: worker threads', () => {
  it('a worker gets ERR_WORKER_UNSUPPORTED_OPERATION, and the process goes on', async () => {
    const dist = new URL('../../dist/sys/index.js', import.meta.url);
    expect(existsSync(dist), 'dist/ is built by the global setup: run through vitest').toBe(true);
    const code = `
      const { parentPort } = require('node:worker_threads');
      import(${JSON.stringify(dist.href)}).then((sys) => {
        let result = 'no error';
        try { new sys.SignalWatch(); } catch (e) { result = e.name + ':' + e.code; }
        parentPort.postMessage(result + ':' + sys.signalDisposition('SIGUSR2').kind);
      });`;
    const worker = new Worker(code, { eval: true });
    onTestFinished(() => worker.terminate().then(() => undefined));
    const [message] = (await once(worker, 'message')) as [string];
    expect(message).toBe('TypeError:ERR_WORKER_UNSUPPORTED_OPERATION:default');
    expect(signalDisposition('SIGUSR2').kind).toBe('default');
  });
});

describe('SignalWatch: signal-driven I/O', () => {
  it('a write to the peer queues a record (fd, POLL_IN band) and wakes the eventfd', () => {
    const watch = testWatch();
    const [a, b] = testSocketpair();
    b.setBlocking(true);
    watch.setSignalDriven(b);
    expect(fdFlags(b.fileno()) & (O_ASYNC | O_NONBLOCK)).toBe(O_ASYNC | O_NONBLOCK);
    expect(signalDisposition(SIGRTMIN).kind).toBe('iomux');
    expect(signalDisposition('SIGIO').kind).toBe('iomux');
    expect(readable(watch)).toBe(false);
    a.send('x');
    waitReadable(watch);
    expect(watch.read()).toBe(1);
    expect(watch.recordFd(0)).toBe(b.fileno());
    expect(watch.recordBand(0) & POLLIN).toBe(POLLIN);
    expect(watch.overflow).toBe(false);
    expect(readable(watch)).toBe(false);
    expect(b.recv(10).toString()).toBe('x');

    expect(watch.clearSignalDriven(b)).toBe(true);
    expect(watch.clearSignalDriven(b)).toBe(false);
    expect(fdFlags(b.fileno()) & O_ASYNC).toBe(0);
    expect(signalDisposition(SIGRTMIN).kind).toBe('default');
    expect(signalDisposition('SIGIO').kind).toBe('default');
    a.send('y');
    expect(readable(watch)).toBe(false);
    expect(watch.read()).toBe(0);
  });

  it('records from several fds on one signal, in arrival order', () => {
    const watch = testWatch();
    const [a1, b1] = testSocketpair();
    const [a2, b2] = testSocketpair();
    watch.setSignalDriven(b1, SIGRTMIN + 1);
    watch.setSignalDriven(b2.fileno(), SIGRTMIN + 1);
    a2.send('2');
    a1.send('1');
    waitReadable(watch);
    expect(watch.read()).toBe(2);
    expect([watch.recordFd(0), watch.recordFd(1)]).toEqual([b2.fileno(), b1.fileno()]);
  });

  it('setting an fd again with another signal moves it: the first signal is released', () => {
    const watch = testWatch();
    const [a, b] = testSocketpair();
    watch.setSignalDriven(b, SIGRTMIN + 4);
    watch.setSignalDriven(b, SIGRTMIN + 5);
    expect(signalDisposition(SIGRTMIN + 4).kind).toBe('default');
    expect(signalDisposition(SIGRTMIN + 5).kind).toBe('iomux');
    a.send('x');
    waitReadable(watch);
    expect(watch.read()).toBe(1);
    expect(watch.clearSignalDriven(b)).toBe(true);
    expect(signalDisposition(SIGRTMIN + 5).kind).toBe('default');
    expect(signalDisposition('SIGIO').kind).toBe('default');
  });

  it('a full ring sets the overflow flag ("rescan everything") and keeps what fit', () => {
    const watch = testWatch({ capacity: 2 });
    const pairs = [testSocketpair(), testSocketpair(), testSocketpair()];
    for (const [, b] of pairs) watch.setSignalDriven(b);
    for (const [a] of pairs) a.send('x');
    waitReadable(watch);
    expect(watch.read()).toBe(2);
    expect(watch.overflow).toBe(true);
    watch.read();
    expect(watch.overflow).toBe(false);
  });

  it("SIGIO (the kernel's fallback when its real-time queue is full) sets the overflow flag", () => {
    const watch = testWatch();
    const [, b] = testSocketpair();
    watch.setSignalDriven(b);
    process.kill(process.pid, 'SIGIO');
    waitReadable(watch);
    expect(watch.read()).toBe(0);
    expect(watch.overflow).toBe(true);
  });

  it("the kernel's own fallback: with no room to queue a real-time signal it sends SIGIO (a child, RLIMIT_SIGPENDING 0)", async () => {
    const dist = new URL('../../dist/sys/index.js', import.meta.url);
    expect(existsSync(dist), 'dist/ is built by the global setup: run through vitest').toBe(true);
    const script = `
      import(${JSON.stringify(dist.href)}).then((sys) => {
        const watch = new sys.SignalWatch();
        const [a, b] = sys.socketpair();
        watch.setSignalDriven(b);
        a.send('x');
        sys.select([watch.fileno()], [], [], 10000);
        console.log(watch.read() + ' ' + watch.overflow);
      });`;
    // Every real-time signal the kernel tries to queue fails (fcntl(2): it sends SIGIO instead).
    const child = spawn('bash', ['-c', 'ulimit -i 0 && exec "$0" -e "$1"', process.execPath, script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const [code] = (await once(child, 'exit')) as [number | null];
    expect([out, code]).toEqual(['0 true\n', 0]);
  });

  it('a real-time signal sent by kill carries no fd: no record', () => {
    const watch = testWatch();
    const [, b] = testSocketpair();
    watch.setSignalDriven(b);
    process.kill(process.pid, SIGRTMIN);
    expect(watch.read()).toBe(0);
    expect(watch.overflow).toBe(false);
  });

  it('close clears O_ASYNC and restores the dispositions', () => {
    const watch = testWatch();
    const [a, b] = testSocketpair();
    watch.setSignalDriven(b);
    watch.close();
    expect(fdFlags(b.fileno()) & O_ASYNC).toBe(0);
    expect(signalDisposition(SIGRTMIN).kind).toBe('default');
    expect(signalDisposition('SIGIO').kind).toBe('default');
    a.send('x');
  });

  it('bad arguments: each a typed error before any syscall, and nothing changes', () => {
    const watch = testWatch();
    const [, b] = testSocketpair();
    const flags = fdFlags(b.fileno());
    expect(() => watch.setSignalDriven(-1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => watch.setSignalDriven(1.5)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => watch.setSignalDriven('3' as unknown as number)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
    expect(() => watch.setSignalDriven(b, 'SIGUSR2')).toThrow(
      expect.objectContaining({
        code: 'ERR_OUT_OF_RANGE',
        message: `The "signal" argument must be >= ${SIGRTMIN} and <= ${SIGRTMAX}. Received 12`,
      }),
    );
    expect(() => watch.setSignalDriven(b, 'SIGKILL')).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => watch.setSignalDriven(b, 'SIGNOPE' as NodeJS.Signals)).toThrow(
      expect.objectContaining({ code: 'ERR_UNKNOWN_SIGNAL' }),
    );
    // A real failure from the kernel: an fd that is not open.
    const [c, d] = testSocketpair();
    const closedFd = d.fileno();
    d.close();
    expect(() => watch.setSignalDriven(closedFd)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'fcntl' }));
    c.close();
    // A signal with a loop handler cannot carry I/O, and the other way round.
    watch.add(SIGRTMIN + 2);
    expect(() => watch.setSignalDriven(b, SIGRTMIN + 2)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
    expect(fdFlags(b.fileno())).toBe(flags);
    expect(signalDisposition(SIGRTMIN).kind).toBe('default');
    expect(signalDisposition('SIGIO').kind).toBe('default');
    watch.setSignalDriven(b, SIGRTMIN + 3);
    expect(() => watch.add(SIGRTMIN + 3)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    const other = testWatch();
    expect(() => other.setSignalDriven(b, SIGRTMIN + 3)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
  });

  it("the eventfd is an ordinary fd: closing it behind the watch is the caller's bug, reported as EBADF", () => {
    const watch = testWatch();
    const fd = watch.fileno();
    expect(fd).toBeGreaterThan(2);
    watch.close();
    expect(() => close(fd)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });
});
