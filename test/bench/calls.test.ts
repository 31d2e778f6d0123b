import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

import { type BaselineAddon, buildBaseline, buildMarks, loadBaseline, loadMarks } from '../../bench/src/baseline.js';
import {
  CALLS,
  type CallResult,
  formatCallsTable,
  MESSAGE_BYTES,
  readDumps,
  runBatch,
  runCallsBench,
  selectRows,
} from '../../bench/src/calls.js';
import { nodeIncludeDir } from '../../bench/src/peers.js';
import { callsTargets, formatTargets, met } from '../../bench/src/targets.js';
import {
  AF_INET,
  EPOLL_CTL_ADD,
  EPOLLIN,
  type IPv4Address,
  O_NONBLOCK,
  POLLIN,
  pipe,
  SOCK_STREAM,
  Socket,
} from '../../src/sys/index.js';
import {
  openFdCount,
  signalEventfd,
  testEventfd,
  testPipe,
  testSocketpair,
  track,
  trackClosable,
} from '../helpers/fds.js';

const EAGAIN = 11;
const EBADF = 9;
const EINVAL = 22;

function baseline(): BaselineAddon {
  const built = buildBaseline();
  if ('error' in built) throw new Error(built.error);
  return loadBaseline(built.path);
}

describe('the baseline addon of bench calls (plain C N-API, compiled on the fly)', () => {
  it('finds the running Node headers', () => {
    const dir = nodeIncludeDir();
    expect(dir).not.toBeNull();
    expect(readFileSync(join(dir as string, 'node_api.h'), 'utf8')).toContain('napi_module_register');
  });

  it('sends and receives on a socketpair: byte counts, -EAGAIN when empty, -EINVAL for bad arguments', () => {
    const base = baseline();
    const [a, b] = testSocketpair();
    const msg = Buffer.alloc(MESSAGE_BYTES, 1);
    const buf = Buffer.alloc(MESSAGE_BYTES * 2);
    expect(base.send(a.fileno(), msg, MESSAGE_BYTES)).toBe(MESSAGE_BYTES);
    // n beyond the buffer is cut to it.
    expect(base.send(a.fileno(), msg, 1000)).toBe(MESSAGE_BYTES);
    expect(base.send(a.fileno(), msg, 5)).toBe(5);
    expect(base.recv(b.fileno(), buf)).toBe(2 * MESSAGE_BYTES);
    expect(base.recv(b.fileno(), buf)).toBe(5);
    expect(base.recv(b.fileno(), buf)).toBe(-EAGAIN);
    const untyped = base as unknown as Record<string, (...args: unknown[]) => number>;
    expect(untyped['send']?.(a.fileno(), 'text', 4)).toBe(-EINVAL);
    expect(untyped['send']?.(a.fileno(), msg, -1)).toBe(-EINVAL);
    expect(untyped['recv']?.(b.fileno(), new Int32Array(4))).toBe(-EINVAL);
    expect(untyped['recv']?.()).toBe(-EINVAL);
    expect(base.recv(-1, buf)).toBe(-EBADF);
  });

  it('reads and writes a pipe, and closes fds', () => {
    const base = baseline();
    const [r, w] = testPipe(O_NONBLOCK);
    expect(base.write(w, Buffer.from('hello'), 5)).toBe(5);
    const buf = Buffer.alloc(16);
    expect(base.read(r, buf)).toBe(5);
    expect(buf.subarray(0, 5).toString()).toBe('hello');
    expect(base.read(r, buf)).toBe(-EAGAIN);
    // Not tracked: closed here, and its numbers may be reused at once.
    const [r2, w2] = pipe();
    expect(base.close(r2)).toBe(0);
    expect(base.close(w2)).toBe(0);
    expect(base.close(r2)).toBe(-EBADF);
  });

  it('accepts a pending loopback connection', () => {
    const base = baseline();
    const server = trackClosable(new Socket(AF_INET, SOCK_STREAM));
    server.bind(['127.0.0.1', 0]);
    server.listen(8);
    server.setBlocking(false);
    expect(base.accept(server.fileno())).toBe(-EAGAIN);
    const client = trackClosable(new Socket(AF_INET, SOCK_STREAM));
    client.connect(['127.0.0.1', (server.getsockname() as IPv4Address)[1]]);
    const fd = track(base.accept(server.fileno()));
    expect(fd).toBeGreaterThan(2);
  });

  it('the callgrind marks build where valgrind is installed, and do nothing outside it', () => {
    const built = buildMarks();
    if ('error' in built) {
      expect(built.error).toContain('callgrind.h');
      return;
    }
    const marks = loadMarks(built.path);
    expect(marks.onValgrind()).toBe(false);
    marks.toggle();
    marks.toggle();
    marks.dump('nothing');
  });

  it('epoll, poll and select report the one ready fd of three', () => {
    const base = baseline();
    const fds = [testEventfd(), testEventfd(), testEventfd()];
    const ready = fds[1] as number;
    signalEventfd(ready);
    const epfd = track(base.epollCreate());
    for (const fd of fds) expect(base.epollCtl(epfd, EPOLL_CTL_ADD, fd, EPOLLIN)).toBe(0);
    const out = new Int32Array(8);
    expect(base.epollWait(epfd, out, 0)).toBe(1);
    expect([out[0], out[1]]).toEqual([ready, EPOLLIN]);
    expect(base.epollWait(epfd, new Int32Array(1), 0)).toBe(-EINVAL);

    const pfds = new Int32Array(fds.flatMap((fd) => [fd, POLLIN]));
    expect(base.poll(pfds, 0)).toBe(1);
    expect(fds.map((_, i) => (pfds[2 * i + 1] as number) >>> 16)).toEqual([0, POLLIN, 0]);

    const selected = new Int32Array(3);
    expect(base.select(new Int32Array(fds), selected, 0)).toBe(1);
    expect(selected[0]).toBe(ready);
    // FD_SET beyond FD_SETSIZE would write past the set.
    expect(base.select(new Int32Array([1024]), selected, 0)).toBe(-EINVAL);
    expect(base.select(new Int32Array([-1]), selected, 0)).toBe(-EINVAL);
  });
});

describe('bench calls (real kernel objects, no timing assertions)', () => {
  it('times every function through both sides: one row each, every row with figures, no fd left open', () => {
    const before = openFdCount();
    const { results, instrNote } = runCallsBench({ rounds: 2, batch: 8, warmupCalls: 16, countedBatches: 0 });
    expect(instrNote).toBe('not asked for');
    expect(results.map((r) => r.name)).toEqual(CALLS.map((c) => c.name));
    for (const r of results) {
      expect(r.baselineNs, r.name).toBeGreaterThan(0);
      expect(r.iomuxNs, r.name).toBeGreaterThan(0);
      expect(Number.isFinite(r.overheadNs), r.name).toBe(true);
      expect(r.baselineRoundsNs).toHaveLength(2);
      expect(r.iomuxRoundsNs).toHaveLength(2);
    }
    const lines = formatCallsTable(results).split('\n');
    expect(lines).toHaveLength(2 + CALLS.length);
    for (const line of lines.slice(2)) {
      expect(line).toMatch(/^\| [\w.]+ \| [^|]+ \| [\d,]+ \| [\d,]+ \| [+-]?[\d,]+ \| n\/a \| n\/a \| n\/a \|$/);
    }
    expect(openFdCount()).toBe(before);
  });

  it('a batch off its valid path is an error, not a figure', () => {
    const [spec] = selectRows(['Socket.tryRecvInto']);
    if (spec === undefined) throw new Error('no row');
    const r = spec.open(baseline());
    try {
      expect(runBatch(r, spec, 'iomux', 4, (run) => run())).toBe(4 * MESSAGE_BYTES);
      // Claiming each receive takes one byte more than it does.
      expect(() => runBatch(r, { ...spec, each: MESSAGE_BYTES + 1 }, 'baseline', 4, (run) => run())).toThrow(
        'Socket.tryRecvInto through the baseline was off its valid path: 4 calls returned 256 in all, not 260',
      );
    } finally {
      r.close();
    }
    expect(() => selectRows(['Socket.frob'])).toThrow(RangeError);
    expect(() => runCallsBench({ rounds: 1, batch: 1000, warmupCalls: 0, countedBatches: 0 })).toThrow(RangeError);
  });

  it("reads the main thread's count of each labelled callgrind dump", () => {
    const dir = mkdtempSync(join(tmpdir(), 'iomux-calls-test-'));
    try {
      const dump = (label: string, ir: number): string =>
        `version: 1\ncreator: callgrind-3.19.0\ndesc: Trigger: Client Request: ${label}\n\nevents: Ir\nsummary: ${ir}\n`;
      writeFileSync(join(dir, 'calls.out.1-01'), dump('calibration', 100));
      writeFileSync(join(dir, 'calls.out.2-01'), dump('Socket.send|baseline', 5000));
      writeFileSync(join(dir, 'calls.out.2-02'), dump('Socket.send|baseline', 99_999));
      writeFileSync(join(dir, 'calls.out-01'), 'desc: Trigger: Program termination\n\nevents: Ir\nsummary: 7\n');
      expect(readDumps(dir, 'calls.out')).toEqual(
        new Map([
          ['calibration', 100],
          ['Socket.send|baseline', 5000],
        ]),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('targets: the worst overhead in ns and the worst instruction ratio, with how many are within', () => {
    const result = (name: string, overheadNs: number, instrRatio: number | null): CallResult => ({
      name,
      on: '',
      baselineNs: 1000,
      iomuxNs: 1000 + overheadNs,
      overheadNs,
      baselineRoundsNs: [],
      iomuxRoundsNs: [],
      baselineInstr: instrRatio === null ? null : 500,
      iomuxInstr: instrRatio === null ? null : 500 * instrRatio,
      instrRatio,
    });
    const [time, instr] = callsTargets([
      result('read', 20, 1.5),
      result('Socket.accept', 90, 3),
      result('write', 5, 1),
    ]);
    expect(time?.measured).toBe(90);
    expect(time?.what).toContain('worst: Socket.accept; 2 of 3 within');
    expect(instr?.measured).toBe(3);
    expect([time, instr].map((c) => met(c as NonNullable<typeof c>))).toEqual([false, false]);
    expect(formatTargets([time as NonNullable<typeof time>])).toContain('| 90 ns | <= 60 ns | **no** |');
    const uncounted = callsTargets([result('read', 20, null)], 'valgrind not found');
    expect(uncounted.map((c) => [c.measured, met(c)])).toEqual([
      [20, true],
      [null, false],
    ]);
    expect(uncounted[1]?.note).toBe('not counted: valgrind not found');
  });
});

describe('npm run bench -- calls (the command)', () => {
  const MAIN = fileURLToPath(new URL('../../bench/.build/main.js', import.meta.url));
  const bench = (...args: string[]) =>
    spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 60_000 });

  it('--help, and an unknown function is a usage error', () => {
    expect(bench('calls', '--help')).toMatchObject({
      status: 0,
      stdout: expect.stringContaining('--no-instr'),
    });
    expect(bench('calls', '--only', 'Socket.frob')).toMatchObject({
      status: 2,
      stderr: expect.stringContaining('no function Socket.frob'),
    });
  });

  it('prints the table and the targets, and writes the figures as JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'iomux-calls-cli-'));
    try {
      const json = join(dir, 'calls.json');
      const r = bench(
        'calls',
        '--quick',
        '--no-instr',
        '--rounds',
        '2',
        '--only',
        'read,Epoll.pollInto',
        '--json',
        json,
      );
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('| read | pipe, 64 B |');
      expect(r.stdout).toContain("calls: iomux's overhead per call over the baseline addon");
      const figures = JSON.parse(readFileSync(json, 'utf8')) as { results: CallResult[]; instrNote: string };
      expect(figures.results.map((x) => x.name)).toEqual(['read', 'Epoll.pollInto']);
      expect(figures.instrNote).toBe('not asked for');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
