/**
 * The published declarations, as a user's project sees them: a program
 * that uses the public API compiles against dist/*.d.ts with the library's
 * declarations checked too (skipLibCheck off), and nothing marked @internal
 * reaches them.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

const USER_PROGRAM = `
import { DefaultSelector, EVENT_READ, EventLoop, type Coroutine, Future, getRunningLoop, sleep } from 'iomux';
import { fetchCoroutine } from 'iomux/fetch';
import { Epoll, EPOLLIN, Poll, SIGRTMIN, SignalWatch, Socket, socketpair, tryRead } from 'iomux/sys';

const loop = new EventLoop({ selector: 'epoll' });
const [a, b] = socketpair();
function* main(): Coroutine<Buffer> {
  yield* sleep(1);
  // The running loop is typed as the EventLoop: no cast for its socket operations.
  return yield* getRunningLoop().sockRecv(b, 10);
}
const task = loop.createTask(main());
const fut: Future<number> = loop.createFuture<number>();
// Every try* form says "would block" with null.
const n: number | null = a.tryRecvInto(Buffer.alloc(1));
const m: number | null = a.trySend('x');
const r: number | null = tryRead(0, Buffer.alloc(1));
const conn: Socket | null = a.tryAccept();
const ep = new Epoll();
ep.register(b, EPOLLIN);
const count: number = ep.pollInto(0) + new Poll().pollInto(0, new Int32Array(2));
const removed: boolean = ep.discard(b);
const sel = new DefaultSelector<string>();
sel.register(a, EVENT_READ, 'data');
// Signal handlers: by name or number, the arguments typed against the callback.
const onSignal = loop.addSignalHandler('SIGINT', (code: number) => loop.stop(), 130);
// @ts-expect-error -- the argument does not fit the callback
loop.addSignalHandler('SIGTERM', (code: number) => loop.stop(), 'x');
const hadOne: boolean = loop.removeSignalHandler(2);
using watch = new SignalWatch({ capacity: 64 });
watch.setSignalDriven(b, SIGRTMIN);
const records: number = watch.read();
export { task, fut, n, m, r, conn, count, removed, sel, fetchCoroutine, onSignal, hadOne, records };
`;

describe('the published declarations', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iomux-dts-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // A whole tsc run over the declarations and @types/node: on a loaded
  // 2-core machine, or under the sanitizers' runtime, it takes longer than
  // the 20 s default. The test is about the output, not the time.
  it('compile a user program that uses the public API, library declarations checked', () => {
    mkdirSync(join(dir, 'node_modules', '@types'), { recursive: true });
    symlinkSync(root, join(dir, 'node_modules', 'iomux'));
    symlinkSync(join(root, 'node_modules', '@types', 'node'), join(dir, 'node_modules', '@types', 'node'));
    writeFileSync(join(dir, 'main.ts'), USER_PROGRAM);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          lib: ['ES2023', 'ESNext.Disposable'],
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          exactOptionalPropertyTypes: true,
          skipLibCheck: false,
          noEmit: true,
          types: ['node'],
        },
        files: ['main.ts'],
      }),
    );
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    let output = '';
    try {
      execFileSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' });
    } catch (error) {
      output = String((error as { stdout?: string }).stdout);
    }
    expect(output).toBe('');
  }, 180_000);

  it('hold none of the loop and coroutine internals', () => {
    const files: string[] = [];
    const walk = (d: string): void => {
      for (const entry of readdirSync(d, { withFileTypes: true })) {
        const path = join(d, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (entry.name.endsWith('.d.ts')) files.push(path);
      }
    };
    walk(join(root, 'dist'));
    const eventLoop = readFileSync(join(root, 'dist', 'loop', 'event-loop.d.ts'), 'utf8');
    for (const name of [
      'IoEntry',
      'markDrained',
      'recvDrained',
      'resolvedVoid',
      'trackUnretrieved',
      'timerCancelled',
    ]) {
      expect(eventLoop, name).not.toContain(name);
    }
    expect(eventLoop).not.toMatch(/^\s+(schedule|watch|unwatch)\(/m);
    const rootIndex = readFileSync(join(root, 'dist', 'index.d.ts'), 'utf8');
    expect(rootIndex).toContain("export * from './loop/index.js'");
    const sysIndex = readFileSync(join(root, 'dist', 'sys', 'index.d.ts'), 'utf8');
    for (const name of ['FdWatcher', 'WaitThread', 'SelectSet']) expect(sysIndex, name).not.toContain(name);
    expect(files.length).toBeGreaterThan(20);
  });
});
