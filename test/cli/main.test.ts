import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

function iomux(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the iomux command', () => {
  it('demo fetches the pages with every style and prints the table', () => {
    const r = iomux('demo', '--count', '5');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    for (const [style, backend] of [
      ['busy-poll', 'none'],
      ['callbacks', 'select'],
      ['callbacks', 'poll'],
      ['callbacks', 'epoll'],
    ]) {
      expect(r.stdout).toMatch(new RegExp(`${style}\\s+${backend}\\s+[\\d.]+\\s+[\\d.]+\\s+5\\s+\\d+`));
    }
  });

  it('--help on each command; unknown commands and options are errors (exit 2)', () => {
    expect(iomux('--help')).toMatchObject({ status: 0, stdout: expect.stringContaining('commands:') });
    expect(iomux('demo', '--help')).toMatchObject({ status: 0, stdout: expect.stringContaining('--count') });
    expect(iomux('bench', '--help')).toMatchObject({ status: 0, stdout: expect.stringContaining('echo') });
    expect(iomux('bench', 'sys', '--help')).toMatchObject({ status: 0, stdout: expect.stringContaining('--quick') });
    expect(iomux('bench', 'echo', '--help')).toMatchObject({ status: 0, stdout: expect.stringContaining('--conns') });
    expect(iomux('bench', 'echo', '--runs', 'x')).toMatchObject({
      status: 2,
      stderr: 'iomux: --runs must be an integer from 1 to 100000\n',
    });
    expect(iomux('frobnicate')).toMatchObject({
      status: 2,
      stderr: expect.stringContaining("unknown command 'frobnicate'"),
    });
    expect(iomux('demo', '--bogus')).toMatchObject({ status: 2, stderr: expect.stringContaining("'--bogus'") });
    expect(iomux('demo', '--count', '0')).toMatchObject({ status: 2, stderr: expect.stringContaining('--count') });
    expect(iomux('bench', 'nope')).toMatchObject({ status: 2 });
    expect(iomux()).toMatchObject({ status: 2, stdout: expect.stringContaining('usage') });
  });
});
