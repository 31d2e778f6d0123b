import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

function iomux(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('iomux demo', () => {
  it('fetches the pages in every style on every backend and prints the table', () => {
    const r = iomux('demo', '--count', '5');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/busy\s+-\s+[\d.]+\s+[\d.]+\s+5\s+0\s+\d+/);
    for (const style of ['callback', 'coroutine', 'async']) {
      for (const backend of ['select', 'poll', 'epoll']) {
        expect(r.stdout).toMatch(new RegExp(`${style}\\s+${backend}\\s+[\\d.]+\\s+[\\d.]+\\s+5\\s+0\\s+\\d+`));
      }
    }
    // The network the notes have: each page held 50 ms by default, and the lesson in this run's numbers.
    expect(r.stdout).toContain('each page held 50 ms');
    expect(r.stdout).toMatch(
      /busy waited 5 x 50 ms one after another \([\d.]+ m?s\) and burned [\d.]+ m?s of CPU; select, poll and epoll waited once/,
    );
    // Busy-polling waited for the pages in turn: at least 5 x 50 ms.
    const busyMs = Number(/^busy\s+-\s+([\d.]+)/m.exec(r.stdout)?.[1]);
    expect(busyMs).toBeGreaterThanOrEqual(250);
    expect(r.stdout).toContain("Run 'iomux demo --models'");
  });

  it('--latency 0 fetches at loopback speed and says so', () => {
    const r = iomux('demo', '--count', '3', '--latency', '0');
    expect(r.status).toBe(0);
    expect(r.stdout).not.toContain('held');
    expect(r.stdout).toMatch(/busy fetched 3 pages one after another/);
    expect(iomux('demo', '--latency', '-1')).toMatchObject({ status: 2, stderr: expect.stringContaining('--latency') });
    expect(iomux('serve', '--latency', 'x')).toMatchObject({ status: 2, stderr: expect.stringContaining('--latency') });
  });
});

describe('iomux serve and iomux fetch', () => {
  const server = spawn(process.execPath, [CLI, 'serve', '--backend', 'poll'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let base = '';
  const dir = mkdtempSync(join(tmpdir(), 'iomux-cli-'));

  beforeAll(async () => {
    for await (const line of createInterface({ input: server.stdout })) {
      base = line.replace('listening ', '');
      break;
    }
  });

  afterAll(() => {
    server.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serve prints its address; fetch of one URL writes the body to stdout', () => {
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const r = iomux('fetch', `${base}/goods/3/`);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('<h1>goods 3</h1>');
  });

  it('--include prints the status and headers first', () => {
    const r = iomux('fetch', '--include', '--style', 'busy', `${base}/bytes/5`);
    expect(r.stdout).toMatch(/^HTTP 200\n[\s\S]*content-length: 5\n\n/);
  });

  it('several URLs: one line each; failures are one line on stderr and exit 1', () => {
    const r = iomux(
      'fetch',
      '--style',
      'callback',
      '--backend',
      'select',
      `${base}/chunked/20`,
      'http://127.0.0.1:1/',
      `${base}/nope`,
    );
    expect(r.status).toBe(1);
    expect(r.stdout).toBe(`200 20 ${base}/chunked/20\n404 10 ${base}/nope\n`);
    expect(r.stderr).toBe('iomux: http://127.0.0.1:1/: connect ECONNREFUSED 127.0.0.1:1 (ECONNREFUSED)\n');
  });

  it('--output writes each body to a file', () => {
    const r = iomux(
      'fetch',
      '--style',
      'async',
      '--output',
      dir,
      '--concurrency',
      '2',
      `${base}/bytes/3`,
      `${base}/goods/1/`,
    );
    expect(r.status).toBe(0);
    expect(readFileSync(join(dir, '0.body'), 'utf8')).toBe('iom');
    expect(readFileSync(join(dir, '1.body'), 'utf8')).toContain('goods 1');
  });
});

describe('usage', () => {
  // 17 runs of the CLI, each a Node start-up: ~50 s under the sanitizers'
  // preloaded runtime. The test is about exit codes and messages, not time.
  it('--help on each command; unknown commands and options are errors (exit 2)', () => {
    expect(iomux('--help')).toMatchObject({ status: 0, stdout: expect.stringContaining('commands:') });
    const helps: [string, string][] = [
      ['demo', '--count'],
      ['fetch', '--style'],
      ['serve', '--port'],
      ['bench', 'c10k'],
    ];
    for (const [cmd, word] of helps) {
      expect(iomux(cmd, '--help')).toMatchObject({ status: 0, stdout: expect.stringContaining(word) });
    }
    expect(iomux('bench', 'sys', '--help')).toMatchObject({ status: 0, stdout: expect.stringContaining('--quick') });
    expect(iomux('bench', 'c10k', '--help')).toMatchObject({
      status: 0,
      stdout: expect.stringContaining('--measure-ms'),
    });
    // The comparisons with peers are the project's (bench/), not the package's: the error says where they are.
    expect(iomux('bench', 'echo', '--help')).toMatchObject({
      status: 2,
      stderr: expect.stringContaining("'npm run bench -- echo'"),
    });
    expect(iomux('frobnicate')).toMatchObject({
      status: 2,
      stderr: expect.stringContaining("unknown command 'frobnicate'"),
    });
    expect(iomux('demo', '--bogus')).toMatchObject({ status: 2, stderr: expect.stringContaining("'--bogus'") });
    expect(iomux('demo', '--count', '0')).toMatchObject({ status: 2, stderr: expect.stringContaining('--count') });
    expect(iomux('fetch')).toMatchObject({ status: 2, stderr: 'iomux: fetch needs at least one URL\n' });
    expect(iomux('fetch', '--style', 'telepathy', 'http://x/')).toMatchObject({ status: 2 });
    expect(iomux('fetch', '--backend', 'kqueue', 'http://x/')).toMatchObject({ status: 2 });
    expect(iomux('serve', '--port', '70000')).toMatchObject({ status: 2 });
    expect(iomux('bench', 'nope')).toMatchObject({ status: 2 });
    expect(iomux('bench', 'c10k', '--measure-ms', 'x')).toMatchObject({
      status: 2,
      stderr: 'iomux: --measure-ms must be an integer from 1 to 100000\n',
    });
    expect(iomux()).toMatchObject({ status: 2, stdout: expect.stringContaining('usage') });
  }, 180_000);
});
