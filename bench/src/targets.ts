/**
 * The project's speed targets, checked against the figures of one run: each
 * a sentence, the measured ratio, the bound, and whether it holds. The
 * report prints them; nothing here times anything.
 */
import type { C10kResult } from '#iomux/cli/bench/c10k.js';
import type { Cell, Variant } from '#iomux/cli/bench/syscalls.js';
import type { CallResult } from './calls.js';
import type { EchoResult } from './echo.js';
import type { FetchBenchResult } from './fetch.js';
import type { TaxResult } from './host-tax.js';
import type { PingPongResult } from './pingpong.js';
import type { SwitchResult } from './switch.js';

export interface TargetCheck {
  /** What is compared, e.g. "echo 64 B: iomux vs node:net". */
  what: string;
  /** The measured ratio, or null when a figure is missing. */
  measured: number | null;
  /** The bound the ratio must meet. */
  bound: number;
  /** 'min': measured >= bound; 'max': measured <= bound. */
  kind: 'min' | 'max';
  /** Why a figure is missing. */
  note?: string;
  /** What `measured` and `bound` are in: a ratio (the default) or nanoseconds. */
  unit?: 'ratio' | 'ns';
}

/** True when the check has a figure and it meets its bound. */
export function met(check: TargetCheck): boolean {
  if (check.measured === null) return false;
  return check.kind === 'min' ? check.measured >= check.bound : check.measured <= check.bound;
}

/** A check that the measured ratio is at least (`min`) or at most (`max`) the bound. */
function check(
  what: string,
  measured: number | null,
  kind: TargetCheck['kind'],
  bound: number,
  note?: string,
  unit?: TargetCheck['unit'],
): TargetCheck {
  const out: TargetCheck = note === undefined ? { what, measured, bound, kind } : { what, measured, bound, kind, note };
  if (unit !== undefined) out.unit = unit;
  return out;
}

function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  return a === null || a === undefined || b === null || b === undefined || b === 0 ? null : a / b;
}

/** Selectors vs the C floor: within 1.25x at N >= 1,000 (worst cell), within 2x at N = 10. */
export function syscallTargets(cells: readonly Cell[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  const selectors: Variant[] = ['SelectSelector', 'PollSelector', 'EpollSelector'];
  for (const variant of selectors) {
    for (const [label, pick, bound] of [
      ['N >= 1,000', (n: number) => n >= 1000, 1.25],
      ['N = 10', (n: number) => n === 10, 2],
    ] as const) {
      const worst = cells
        .filter((c) => c.variant === variant && pick(c.n) && c.ratio !== null)
        .sort((a, b) => (b.ratio as number) - (a.ratio as number))[0];
      const where =
        worst === undefined ? '' : `: N = ${worst.n.toLocaleString('en-US')}, K = ${worst.k.toLocaleString('en-US')}`;
      out.push(
        check(
          `${variant} vs the C floor, ${label} (worst K${where})`,
          worst?.ratio ?? null,
          'max',
          bound,
          worst === undefined ? 'not measured' : undefined,
        ),
      );
    }
  }
  return out;
}

/**
 * Echo (issue 13): the notes' selectors program on iomux >= 1.1x the same
 * program on CPython at 64 B over 100 and 1,000 connections; the coroutine
 * server (owning) >= 1.0x uvloop's Protocol server and >= 0.85x the C floor
 * at 64 B x 100, >= 0.8x the C floor at 64 B x 1,000. From before: >= 1.3x
 * node:net at 64 B and >= 2x at 16 KiB, cooperative mode >= 0.8x owning.
 * Over TLS: bytes through iomux's TLS echo server ('iomux-tls') at 16 KiB x
 * 100 >= 0.8x the C OpenSSL floor's in the same run -- "not measured" until
 * the suite has an iomux TLS row.
 *
 * Issue 19 (asyncio's Transports/Protocols, streams and UDP): the Protocol
 * server on loop.createServer >= 1.1x uvloop's Protocol server and >= 0.9x
 * the C floor at 64 B x 100, >= 0.85x the C floor at 16 KiB x 100; the
 * streams server (startServer) >= 1.5x asyncio's streams server on uvloop at
 * 64 B x 100; the UDP datagram endpoint >= 0.85x the C recvfrom/sendto loop
 * at 64 B x 100 clients. Each "not measured" while its iomux row is missing
 * (a run without it).
 */
export function echoTargets(results: readonly EchoResult[]): TargetCheck[] {
  const at = (server: EchoResult['server'], size: number, conns: number): number | undefined =>
    results.find((r) => r.server === server && r.size === size && r.conns === conns)?.perSecond;
  const notes = (conns: number): number | null =>
    ratio(at('selectors-iomux', 64, conns), at('selectors-py', 64, conns));
  // A Protocol server (x 100: dataReceived, or the buffered form) vs a peer at the same point.
  const protocol = (
    what: string,
    size: number,
    peer: EchoResult['server'],
    bound: number,
    kind: 'iomux-protocol' | 'iomux-buffered' = 'iomux-protocol',
  ): TargetCheck => {
    const iomux = at(kind, size, 100);
    const other = at(peer, size, 100);
    const missing = kind === 'iomux-protocol' ? 'no iomux Protocol server row' : 'no iomux BufferedProtocol server row';
    return check(what, ratio(iomux, other), 'min', bound, notMeasured(iomux, missing, other));
  };
  return [
    check('echo 64 B x 100: the notes\u2019 selectors program, iomux vs CPython', notes(100), 'min', 1.1),
    check('echo 64 B x 1,000: the notes\u2019 selectors program, iomux vs CPython', notes(1000), 'min', 1.1),
    check(
      'echo 64 B x 100: iomux coroutines (owning) vs uvloop\u2019s Protocol server',
      ratio(at('iomux', 64, 100), at('uvloop-protocol', 64, 100)),
      'min',
      1,
    ),
    check(
      'echo 64 B x 100: iomux coroutines (owning) vs the C floor',
      ratio(at('iomux', 64, 100), at('c', 64, 100)),
      'min',
      0.85,
    ),
    check(
      'echo 64 B x 1,000: iomux coroutines (owning) vs the C floor',
      ratio(at('iomux', 64, 1000), at('c', 64, 1000)),
      'min',
      0.8,
    ),
    check(
      'echo 64 B x 100: iomux coroutines (owning) vs node:net',
      ratio(at('iomux', 64, 100), at('net', 64, 100)),
      'min',
      1.3,
    ),
    check(
      'echo 16 KiB x 100: iomux coroutines (owning) vs node:net',
      ratio(at('iomux', 16384, 100), at('net', 16384, 100)),
      'min',
      2,
    ),
    check(
      'echo 64 B x 100: the iomux io_uring loop vs the C io_uring floor',
      ratio(at('iomux-uring', 64, 100), at('c-uring', 64, 100)),
      'min',
      0.9,
    ),
    check(
      'echo 64 B x 1,000: the iomux io_uring loop vs the C io_uring floor',
      ratio(at('iomux-uring', 64, 1000), at('c-uring', 64, 1000)),
      'min',
      0.9,
    ),
    check(
      'echo 64 B x 100: the iomux io_uring loop vs the iomux epoll loop',
      ratio(at('iomux-uring', 64, 100), at('iomux', 64, 100)),
      'min',
      1,
    ),
    check(
      'echo 64 B x 1,000: the iomux io_uring loop vs the iomux epoll loop',
      ratio(at('iomux-uring', 64, 1000), at('iomux', 64, 1000)),
      'min',
      1,
    ),
    check(
      'echo 64 B x 100: iomux coroutines, cooperative vs owning',
      ratio(at('iomux-coop', 64, 100), at('iomux', 64, 100)),
      'min',
      0.8,
    ),
    // Same message size, so round trips/s is bytes/s.
    check(
      'echo 16 KiB x 100 over TLS: iomux vs the C OpenSSL floor (bytes/s)',
      ratio(at('iomux-tls', 16384, 100), at('c-tls', 16384, 100)),
      'min',
      0.8,
      notMeasured(at('iomux-tls', 16384, 100), 'no iomux TLS echo server row', at('c-tls', 16384, 100)),
    ),
    protocol(
      'echo 64 B x 100: iomux Protocol server (createServer) vs uvloop\u2019s Protocol server',
      64,
      'uvloop-protocol',
      1.1,
    ),
    protocol('echo 64 B x 100: iomux Protocol server (createServer) vs the C floor', 64, 'c', 0.9),
    protocol('echo 16 KiB x 100: iomux Protocol server (createServer) vs the C floor', 16384, 'c', 0.85),
    // The same targets for the buffered protocol (getBuffer/bufferUpdated: no Buffer per receive).
    protocol(
      'echo 64 B x 100: iomux BufferedProtocol server vs uvloop\u2019s Protocol server',
      64,
      'uvloop-protocol',
      1.1,
      'iomux-buffered',
    ),
    protocol('echo 64 B x 100: iomux BufferedProtocol server vs the C floor', 64, 'c', 0.9, 'iomux-buffered'),
    protocol('echo 16 KiB x 100: iomux BufferedProtocol server vs the C floor', 16384, 'c', 0.85, 'iomux-buffered'),
    check(
      'echo 64 B x 100: iomux streams server (startServer) vs asyncio\u2019s streams server on uvloop',
      ratio(at('iomux-streams', 64, 100), at('uvloop-streams', 64, 100)),
      'min',
      1.5,
      notMeasured(at('iomux-streams', 64, 100), 'no iomux streams server row', at('uvloop-streams', 64, 100)),
    ),
    check(
      'UDP echo 64 B x 100 clients: iomux datagram endpoint vs the C recvfrom/sendto loop',
      ratio(at('iomux-udp', 64, 100), at('c-udp', 64, 100)),
      'min',
      0.85,
      notMeasured(at('iomux-udp', 64, 100), 'no iomux UDP row', at('c-udp', 64, 100)),
    ),
  ];
}

/**
 * Why a TLS target has no figure: `iomux` (its iomux row) is missing, with
 * `why`, or the peer's row is; undefined when both are there.
 */
function notMeasured(iomux: unknown, why: string, peer: unknown): string | undefined {
  if (iomux === undefined) return `not measured: ${why}`;
  return peer === undefined ? 'not measured: no peer row' : undefined;
}

/**
 * Fetch: with Connection: close, fetchCoroutine >= 1.2x the notes' Python
 * fetcher and >= 5x Node fetch (requests/s). With keep-alive one nginx worker
 * bounds every client's requests/s on 2 cores, so the targets there are the
 * client's CPU per request (user + system): HttpPool's <= 0.6x node:http's
 * and <= 0.7x undici's (issue 13). Over https: with keep-alive, iomux's
 * client CPU per request <= 0.7x undici's; with a new connection per
 * request, its handshakes per second of client CPU >= 1.2x node:https's
 * (`agent: false`) -- "not measured" until the suite has iomux https rows
 * (named "iomux ..." in their policy).
 */
export function fetchTargets(results: readonly FetchBenchResult[]): TargetCheck[] {
  const find = (prefix: string): FetchBenchResult | undefined => results.find((r) => r.name.startsWith(prefix));
  const https = (policy: FetchBenchResult['policy'], prefix: string): FetchBenchResult | undefined =>
    results.find((r) => r.policy === policy && r.name.startsWith(prefix));
  const keepAlive = https('https keep-alive', 'iomux');
  const undici = https('https keep-alive', 'undici');
  const fresh = https('https new connection', 'iomux');
  const nodeHttps = https('https new connection', 'node:https');
  const rate = (prefix: string): number | undefined => find(prefix)?.perSecond;
  const cpu = (prefix: string): number | undefined => find(prefix)?.cpuUsPerRequest;
  const close = rate('iomux fetchCoroutine');
  const pool = cpu('iomux HttpPool');
  return [
    check(
      'fetch, close: fetchCoroutine vs the notes\u2019 Python fetcher',
      ratio(close, rate('Python selectors')),
      'min',
      1.2,
    ),
    check('fetch, close: fetchCoroutine vs Node fetch', ratio(close, rate('Node fetch')), 'min', 5),
    check(
      'fetch, keep-alive: client CPU per request, HttpPool vs node:http',
      ratio(pool, cpu('node:http, keep-alive')),
      'max',
      0.6,
    ),
    check(
      'fetch, keep-alive: client CPU per request, HttpPool vs undici.request',
      ratio(pool, cpu('undici.request')),
      'max',
      0.7,
    ),
    check(
      'fetch, https keep-alive: client CPU per request, iomux vs undici',
      ratio(keepAlive?.cpuUsPerRequest, undici?.cpuUsPerRequest),
      'max',
      0.7,
      notMeasured(keepAlive, 'no iomux https row', undici),
    ),
    check(
      'fetch, https, a new connection per request: handshakes per second of client CPU, iomux vs node:https',
      ratio(fresh?.handshakesPerCpuSecond, nodeHttps?.handshakesPerCpuSecond),
      'min',
      1.2,
      notMeasured(fresh, 'no iomux https row', nodeHttps),
    ),
  ];
}

/**
 * C10K: epoll's loop cost at 10,000 connections within 1.5x of its cost at
 * 100. With 1 % active, an iteration at 10,000 handles ~100 events and one at
 * 100 handles ~1, so the cost compared is per ready event: the server's CPU
 * per round trip (what an iteration costs, divided by the events it served).
 */
export function c10kTargets(results: readonly C10kResult[]): TargetCheck[] {
  const epoll = results.filter((r) => r.backend === 'epoll' && r.tripUs !== null).sort((a, b) => a.conns - b.conns);
  const small = epoll[0];
  const large = epoll.at(-1);
  return [
    check(
      `C10K: epoll loop cost per ready event at ${large?.conns.toLocaleString('en-US') ?? '?'} vs ${small?.conns.toLocaleString('en-US') ?? '?'} connections`,
      small === large ? null : ratio(large?.tripUs, small?.tripUs),
      'max',
      1.5,
    ),
  ];
}

/** Coroutines: a generator Task's resume costs no more than an async function's. */
export function switchTargets(results: readonly SwitchResult[]): TargetCheck[] {
  const ns = (prefix: string): number | undefined => results.find((r) => r.name.startsWith(prefix))?.ns;
  return [
    check(
      'resume: generator Task (yield* on a ready Future) vs async/await',
      ratio(ns('generator Task, yield*'), ns('async function')),
      'max',
      1,
    ),
  ];
}

/** Cooperative mode inside a Node app: >= 5x npm epoll. */
export function pingPongTargets(results: readonly PingPongResult[]): TargetCheck[] {
  const rate = (prefix: string): number | undefined => results.find((r) => r.name.startsWith(prefix))?.eventsPerSecond;
  const npm = rate('npm epoll');
  return [
    check(
      'pipe ping-pong in a Node app: iomux cooperative epoll vs npm epoll',
      ratio(rate('iomux cooperative, epoll'), npm),
      'min',
      5,
      npm === undefined ? 'npm epoll not installed' : undefined,
    ),
  ];
}

/**
 * Calls (`bench calls`): for every function, iomux's overhead per call over
 * the baseline addon at most 60 ns, and its user-mode instructions per call
 * at most 2x the baseline's. Each check is on the worst function, and says
 * which it is and how many are within the bound. `uncounted` says why there
 * are no instruction counts, when there are none.
 */
export function callsTargets(results: readonly CallResult[], uncounted?: string): TargetCheck[] {
  const worst = (figure: (r: CallResult) => number | null, bound: number): { value: number | null; where: string } => {
    const measured = results.filter((r) => figure(r) !== null);
    const top = [...measured].sort((a, b) => (figure(b) as number) - (figure(a) as number))[0];
    if (top === undefined) return { value: null, where: '' };
    const within = measured.filter((r) => (figure(r) as number) <= bound).length;
    return { value: figure(top), where: ` (worst: ${top.name}; ${within} of ${measured.length} within)` };
  };
  const time = worst((r) => r.overheadNs, 60);
  const instr = worst((r) => r.instrRatio, 2);
  return [
    check(
      `calls: iomux's overhead per call over the baseline addon${time.where}`,
      time.value,
      'max',
      60,
      time.value === null ? 'not measured' : undefined,
      'ns',
    ),
    check(
      `calls: iomux's user-mode instructions per call vs the baseline addon's${instr.where}`,
      instr.value,
      'max',
      2,
      instr.value === null ? `not counted${uncounted === undefined ? '' : `: ${uncounted}`}` : undefined,
    ),
  ];
}

/** The checks as a markdown table. */
export function formatTargets(checks: readonly TargetCheck[]): string {
  const rows = ['| target | measured | bound | met |', '|---|---:|---:|---|'];
  for (const c of checks) {
    const figure = (v: number): string => (c.unit === 'ns' ? `${Math.round(v)} ns` : `${v.toFixed(2)}x`);
    const measured = c.measured === null ? (c.note ?? 'missing') : figure(c.measured);
    const bound = c.unit === 'ns' ? `${c.bound} ns` : `${c.bound}x`;
    rows.push(
      `| ${c.what} | ${measured} | ${c.kind === 'min' ? '>=' : '<='} ${bound} | ${met(c) ? 'yes' : '**no**'} |`,
    );
  }
  return rows.join('\n');
}

/** No tax on the host app: its promise code runs as fast beside iomux's async Tasks as without iomux (within 10 %). */
export function hostTaxTargets(results: readonly TaxResult[]): TargetCheck[] {
  const ms = (mode: TaxResult['mode']): number | undefined => results.find((r) => r.mode === mode)?.ms;
  return [
    check(
      'host promise code with an iomux async Task alive vs without iomux',
      ratio(ms('alive'), ms('plain')),
      'max',
      1.1,
    ),
    check(
      'host promise code after iomux async Tasks ended vs without iomux',
      ratio(ms('ended'), ms('plain')),
      'max',
      1.1,
    ),
  ];
}
