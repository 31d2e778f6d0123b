import { describe, expect, it } from 'vitest';
import type { EchoResult } from '../../bench/src/echo.js';
import { formatReport } from '../../bench/src/report.js';
import {
  c10kTargets,
  echoTargets,
  fetchTargets,
  formatTargets,
  hostTaxTargets,
  met,
  pingPongTargets,
  switchTargets,
  syscallTargets,
} from '../../bench/src/targets.js';
import type { C10kResult } from '../../src/cli/bench/c10k.js';

const echo = (server: EchoResult['server'], size: number, perSecond: number, conns = 100): EchoResult => ({
  server,
  size,
  conns,
  perSecond,
  serverCpuUs: 10,
  p50us: 1,
  p99us: 2,
  runs: [perSecond],
});

describe('speed targets, checked against the figures they are given (no timing)', () => {
  it('echo: the notes\u2019 program on iomux vs CPython, the coroutine server vs uvloop, the C floor, node:net', () => {
    const checks = echoTargets([
      echo('c', 64, 100_000),
      echo('iomux', 64, 85_000),
      echo('iomux-coop', 64, 80_000),
      echo('selectors-iomux', 64, 66_000),
      echo('selectors-py', 64, 60_000),
      echo('uvloop-protocol', 64, 86_000),
      echo('net', 64, 60_000),
      echo('c', 64, 80_000, 1000),
      echo('iomux', 64, 64_000, 1000),
      echo('selectors-iomux', 64, 50_000, 1000),
      echo('selectors-py', 64, 50_000, 1000),
      echo('iomux', 16384, 50_000),
      echo('net', 16384, 30_000),
      echo('c-uring', 64, 100_000),
      echo('iomux-uring', 64, 92_000),
      echo('c-uring', 64, 80_000, 1000),
      echo('iomux-uring', 64, 60_000, 1000),
      // Another point's figures never stand in for the one a target names.
      echo('uvloop-protocol', 64, 1, 1000),
    ]);
    expect(checks.map((c) => [c.what.slice(0, 17), c.measured?.toFixed(3), met(c)])).toEqual([
      ['echo 64 B x 100: ', '1.100', true],
      ['echo 64 B x 1,000', '1.000', false],
      ['echo 64 B x 100: ', '0.988', false],
      ['echo 64 B x 100: ', '0.850', true],
      ['echo 64 B x 1,000', '0.800', true],
      ['echo 64 B x 100: ', '1.417', true],
      ['echo 16 KiB x 100', '1.667', false],
      ['echo 64 B x 100: ', '0.920', true],
      ['echo 64 B x 1,000', '0.750', false],
      ['echo 64 B x 100: ', '1.082', true],
      ['echo 64 B x 1,000', '0.938', false],
      ['echo 64 B x 100: ', '0.941', true],
      // No iomux TLS row: not measured, never met.
      ['echo 16 KiB x 100', undefined, false],
      // Nor the issue-19 rows (Protocol and BufferedProtocol servers x 3 each, streams, UDP).
      ['echo 64 B x 100: ', undefined, false],
      ['echo 64 B x 100: ', undefined, false],
      ['echo 16 KiB x 100', undefined, false],
      ['echo 64 B x 100: ', undefined, false],
      ['echo 64 B x 100: ', undefined, false],
      ['echo 16 KiB x 100', undefined, false],
      ['echo 64 B x 100: ', undefined, false],
      ['UDP echo 64 B x 1', undefined, false],
    ]);
    expect(checks.at(-9)?.note).toBe('not measured: no iomux TLS echo server row');
    expect(checks.at(-8)?.note).toBe('not measured: no iomux Protocol server row');
    expect(checks.at(-5)?.note).toBe('not measured: no iomux BufferedProtocol server row');
    expect(checks.at(-2)?.note).toBe('not measured: no iomux streams server row');
    expect(checks.at(-1)?.note).toBe('not measured: no iomux UDP row');
    const [tls] = echoTargets([echo('iomux-tls', 16384, 8_000), echo('c-tls', 16384, 10_000)]).slice(-9);
    expect([tls?.measured, met(tls as NonNullable<typeof tls>)]).toEqual([0.8, true]);
  });

  it('echo, issue 19: the Protocol server vs uvloop and the C floor, streams vs uvloop\u2019s, UDP vs the C loop', () => {
    const checks = echoTargets([
      echo('c', 64, 100_000),
      echo('uvloop-protocol', 64, 80_000),
      echo('iomux-protocol', 64, 90_000),
      echo('c', 16384, 50_000),
      echo('iomux-protocol', 16384, 40_000),
      echo('uvloop-streams', 64, 40_000),
      echo('iomux-streams', 64, 60_000),
      echo('c-udp', 64, 400_000),
      echo('iomux-udp', 64, 320_000),
      echo('iomux-buffered', 64, 88_000),
      echo('iomux-buffered', 16384, 45_000),
      // Another point's figures never stand in for the one a target names.
      echo('iomux-protocol', 64, 1, 1000),
    ]).slice(-8);
    expect(checks.map((c) => [c.what, c.measured?.toFixed(3), c.bound, met(c)])).toEqual([
      ['echo 64 B x 100: iomux Protocol server (createServer) vs uvloop\u2019s Protocol server', '1.125', 1.1, true],
      ['echo 64 B x 100: iomux Protocol server (createServer) vs the C floor', '0.900', 0.9, true],
      ['echo 16 KiB x 100: iomux Protocol server (createServer) vs the C floor', '0.800', 0.85, false],
      ['echo 64 B x 100: iomux BufferedProtocol server vs uvloop\u2019s Protocol server', '1.100', 1.1, true],
      ['echo 64 B x 100: iomux BufferedProtocol server vs the C floor', '0.880', 0.9, false],
      ['echo 16 KiB x 100: iomux BufferedProtocol server vs the C floor', '0.900', 0.85, true],
      [
        'echo 64 B x 100: iomux streams server (startServer) vs asyncio\u2019s streams server on uvloop',
        '1.500',
        1.5,
        true,
      ],
      ['UDP echo 64 B x 100 clients: iomux datagram endpoint vs the C recvfrom/sendto loop', '0.800', 0.85, false],
    ]);
    // A peer missing: not measured, and says so.
    const [udp] = echoTargets([echo('iomux-udp', 64, 1)]).slice(-1);
    expect(udp?.note).toBe('not measured: no peer row');
  });

  it('a missing figure is reported as missing and never counts as met', () => {
    const [check] = echoTargets([echo('iomux', 64, 1)]);
    expect(check?.measured).toBeNull();
    expect(met(check as NonNullable<typeof check>)).toBe(false);
    expect(formatTargets(pingPongTargets([{ name: 'iomux cooperative, epoll', eventsPerSecond: 1 }]))).toContain(
      'npm epoll not installed',
    );
  });

  it('selectors: the worst cell at N >= 1,000 and at N = 10, per backend', () => {
    const cell = (variant: 'EpollSelector' | 'PollSelector', n: number, k: number, ratio: number) => ({
      variant,
      n,
      k,
      tsNs: ratio * 100,
      floorNs: 100,
      floorMtNs: 100,
      ratio,
      ratioMt: ratio,
    });
    const checks = syscallTargets([
      cell('EpollSelector', 10, 1, 1.5),
      cell('EpollSelector', 1000, 1, 1.1),
      cell('EpollSelector', 10000, 100, 1.3),
      cell('PollSelector', 10, 10, 2.5),
    ]);
    const epoll = checks.filter((c) => c.what.startsWith('EpollSelector'));
    expect(epoll.map((c) => [c.measured, met(c)])).toEqual([
      [1.3, false],
      [1.5, true],
    ]);
    expect(epoll[0]?.what).toContain('N = 10,000, K = 100');
    expect(checks.find((c) => c.what.startsWith('SelectSelector'))?.note).toBe('not measured');
  });

  it('fetch, C10K, switches and ping-pong', () => {
    const fetch = fetchTargets([
      { policy: 'close', name: 'iomux fetchCoroutine (epoll)', perSecond: 12_000, cpuUsPerRequest: 60, runs: [] },
      {
        policy: 'close',
        name: 'Python selectors Fetcher (the notes)',
        perSecond: 9_000,
        cpuUsPerRequest: 90,
        runs: [],
      },
      { policy: 'close', name: 'Node fetch (undici), no keep-alive', perSecond: 2_000, cpuUsPerRequest: 300, runs: [] },
      // Keep-alive: requests/s alike (the server's bound), CPU per request apart.
      { policy: 'keep-alive', name: 'iomux HttpPool (epoll)', perSecond: 9_000, cpuUsPerRequest: 30, runs: [] },
      { policy: 'keep-alive', name: 'node:http, keep-alive Agent', perSecond: 9_000, cpuUsPerRequest: 56, runs: [] },
      { policy: 'keep-alive', name: 'undici.request', perSecond: 9_000, cpuUsPerRequest: 40, runs: [] },
    ]);
    expect(fetch.map((c) => [c.measured?.toFixed(3), met(c)])).toEqual([
      ['1.333', true],
      ['6.000', true],
      ['0.536', true],
      ['0.750', false],
      // The https targets: no iomux https rows yet.
      [undefined, false],
      [undefined, false],
    ]);
    expect(fetch[2]?.kind).toBe('max');
    expect(fetch[4]?.note).toBe('not measured: no iomux https row');
    const https = fetchTargets([
      { policy: 'https keep-alive', name: 'iomux https', perSecond: 9_000, cpuUsPerRequest: 20, runs: [] },
      { policy: 'https keep-alive', name: 'undici.request (https)', perSecond: 9_000, cpuUsPerRequest: 40, runs: [] },
      {
        policy: 'https new connection',
        name: 'iomux https, full handshakes',
        perSecond: 900,
        cpuUsPerRequest: 500,
        handshakesPerCpuSecond: 2_000,
        runs: [],
      },
      {
        policy: 'https new connection',
        name: 'node:https, agent: false, full handshakes',
        perSecond: 500,
        cpuUsPerRequest: 2_000,
        handshakesPerCpuSecond: 500,
        runs: [],
      },
    ]).slice(-2);
    expect(https.map((c) => [c.measured, c.kind, met(c)])).toEqual([
      [0.5, 'max', true],
      [4, 'min', true],
    ]);
    const c10k = (conns: number, tripUs: number): C10kResult => ({
      backend: 'epoll',
      conns,
      active: conns / 100,
      perSecond: 1,
      p50us: 1,
      p99us: 1,
      iterationUs: tripUs * (conns / 100),
      tripUs,
      bytesPerConnection: 1,
    });
    const [flat] = c10kTargets([c10k(100, 20), c10k(10_000, 25)]);
    expect(flat?.measured).toBe(1.25);
    expect(met(flat as NonNullable<typeof flat>)).toBe(true);
    const [resume] = switchTargets([
      { name: 'generator Task, yield* on a ready Future', ns: 40 },
      { name: 'async function, await on a resolved promise', ns: 80 },
    ]);
    expect(resume?.measured).toBe(0.5);
  });

  // describeMachine() runs cc, each Python it can find and nginx for their
  // versions: under the sanitizers' preloaded runtime those take ~30 s
  // together. The test is about the report's shape, not the time.
  it('no tax on the host app: its promise code beside iomux within 10 % of without', () => {
    const checks = hostTaxTargets([
      { mode: 'plain', name: 'without iomux', ms: 10 },
      { mode: 'alive', name: 'alive', ms: 28 },
      { mode: 'ended', name: 'ended', ms: 10.5 },
    ]);
    expect(checks.map((c) => [c.measured, met(c)])).toEqual([
      [2.8, false],
      [1.05, true],
    ]);
  });

  it('the report: the machine, the targets met, then each section', () => {
    const section = {
      title: '# echo ping-pong',
      body: '| a table |',
      figures: {},
      targets: echoTargets([echo('iomux', 64, 2), echo('net', 64, 1)]),
    };
    const md = formatReport([section], { started: new Date('2026-11-27T08:00:00Z'), quick: false, svgName: 's.svg' });
    expect(md).toMatch(/^# iomux benchmark report\n/);
    expect(md).toContain('on 2026-11-27, from 08:00 UTC');
    expect(md).toContain(`- Node ${process.version}`);
    expect(md).toContain('## Targets: 1 of 21 met in this run');
    expect(md).toContain('## echo ping-pong\n\n| a table |');
  }, 180_000);
});
