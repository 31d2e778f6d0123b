/**
 * 1,000 GETs of a small page, all started at once, against the embedded
 * server (in its own process), Connection: close on every side, in one run:
 * iomux's fetchCoroutine on epoll against a C epoll fetcher (the floor:
 * bench/floor/fetch-client.c), the notes' own Python selectors fetcher
 * (bench/peers/selectors_fetcher.py), node:http without keep-alive,
 * and Node's built-in fetch with keep-alive off (an undici Agent with
 * pipelining 0; undici is a devDependency of the benchmarks).
 *
 * And with keep-alive, 100 connections each: iomux's HttpPool against
 * node:http with a keep-alive Agent and undici.request.
 *
 * Beside requests/s, each client's CPU time (user + system) per request: of
 * this process around an in-process client, as the C and Python clients
 * report their own. With keep-alive one nginx worker bounds every client to
 * about the same requests/s on 2 cores, so there the CPU a client spends per
 * request is what tells them apart.
 *
 * And over https, against nginx's TLS port (TLS 1.3, an ECDSA P-256
 * certificate made at run time, its CA trusted by every client), 100
 * connections each: with keep-alive, a C OpenSSL fetcher (the floor:
 * bench/floor/fetch-tls.c), node:https with a keep-alive Agent and undici,
 * each timed on connections it opened (and shook hands on) beforehand;
 * with a new connection per request (100 at a time), the C floor with full
 * handshakes and offering the last session (--resume), node:https with
 * `agent: false` and undici with keep-alive off, each as its users get it:
 * the row's label says what share of its handshakes resumed a session
 * (measured: node:https's `agent: false` keeps no session, undici caches
 * them by default). For those rows, handshakes per second of client CPU
 * too (1e6 / CPU us per request: one handshake per request).
 */
import { spawnSync } from 'node:child_process';
import { get, Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent, get as httpsGet } from 'node:https';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import type { TLSSocket } from 'node:tls';
import { formatRange, median } from '#iomux/cli/bench/stats.js';
import { startServerProcess } from '#iomux/cli/demo.js';
import { fetchMany } from '#iomux/cli/fetch-many.js';
import type { Coroutine } from '#iomux/coro/index.js';
import { fetchCoroutine, HttpPool } from '#iomux/fetch/index.js';
import { type BackendName, EventLoop } from '#iomux/loop/index.js';
import { IoUring } from '#iomux/sys/index.js';
import { startNginx } from './nginx.js';
import { buildBenchC, buildBenchTlsC, findPython, peerScript } from './peers.js';
import { findOpenssl, makeCertificates } from './tls-certs.js';

/**
 * How a client fetches: plain HTTP with Connection: close or keep-alive;
 * https with keep-alive, or a new connection (and TLS handshake) per request.
 */
export type FetchPolicy = 'close' | 'keep-alive' | 'https keep-alive' | 'https new connection';

export interface FetchBenchResult {
  policy: FetchPolicy;
  /**
   * The client; for 'https new connection', followed by what share of its
   * handshakes resumed a TLS session (e.g. ", full handshakes").
   */
  name: string;
  /** Median requests per second. */
  perSecond: number;
  /** Median CPU time (user + system) of the client per request, in microseconds. */
  cpuUsPerRequest: number;
  /** 'https new connection': TLS handshakes per second of client CPU (1e6 / cpuUsPerRequest). */
  handshakesPerCpuSecond?: number;
  runs: number[];
}

/** One run of one client: requests per second and its CPU time per request (us). */
interface FetchSample {
  perSecond: number;
  cpuUs: number;
  /** Over TLS: the handshakes of the run, and how many resumed a session. */
  handshakes?: { total: number; resumed: number };
}

/**
 * Runs an in-process client, `count` requests, with this process's CPU clock
 * around it (every thread: V8's compiler and GC threads work for the client).
 */
async function inProcess(count: number, run: () => Promise<number | TlsRun | null>): Promise<FetchSample | null> {
  const cpu0 = process.cpuUsage();
  const out = await run();
  const cpu = process.cpuUsage(cpu0);
  if (out === null) return null;
  const cpuUs = (cpu.user + cpu.system) / count;
  return typeof out === 'number' ? { perSecond: out, cpuUs } : { ...out, cpuUs };
}

/** An https client's run: requests per second, and its handshakes when it counted them. */
interface TlsRun {
  perSecond: number;
  handshakes?: { total: number; resumed: number };
}

const KEEP_ALIVE_CONNECTIONS = 100;

type Variant = [FetchPolicy, string, () => Promise<FetchSample | null> | FetchSample | null];

// A row on the io_uring loop, where the kernel offers io_uring (else none).
function uringVariant(policy: FetchBenchResult['policy'], name: string, measure: Variant[2]): Variant[] {
  return IoUring.available() ? [[policy, name, measure]] : [];
}

/**
 * `count` GETs of /goods/<i>/ at once with iomux's fetchCoroutine on epoll
 * or another backend (or its HttpPool with `keepAlive`); resolves with
 * requests per second.
 *
 * @throws when any request failed
 */
export async function iomuxCoroutine(
  port: number,
  count: number,
  keepAlive = false,
  backend: BackendName = 'epoll',
): Promise<number> {
  const urls = Array.from({ length: count }, (_, i) => `http://127.0.0.1:${port}/goods/${i}/`);
  const t0 = performance.now();
  const results = await fetchMany(urls, {
    style: 'coroutine',
    backend,
    concurrency: keepAlive ? KEEP_ALIVE_CONNECTIONS : count,
    timeoutMs: 60_000,
    keepAlive,
  });
  const seconds = (performance.now() - t0) / 1000;
  const failed = results.filter((r) => !('status' in r) || r.status !== 200).length;
  if (failed > 0) throw new Error(`iomux: ${failed} requests failed`);
  return count / seconds;
}

/**
 * Runs a fetcher process that prints `{"ok": N, "seconds": S, "cpuUs": U}`
 * (the Python peer, the C floor); returns its requests per second and CPU
 * time per request.
 *
 * @throws when it fails or any request failed
 */
function fetcherProcess(label: string, command: string, args: string[], count: number): FetchSample {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${label} failed: ${r.stderr || r.error?.message}`);
  const out = JSON.parse(r.stdout) as {
    ok: number;
    seconds: number;
    cpuUs: number;
    handshakes?: number;
    resumed?: number;
  };
  if (out.ok !== count) throw new Error(`${label}: ${count - out.ok} requests failed`);
  const sample: FetchSample = { perSecond: count / out.seconds, cpuUs: out.cpuUs / count };
  if (out.handshakes !== undefined) sample.handshakes = { total: out.handshakes, resumed: out.resumed ?? 0 };
  return sample;
}

function python(port: number, count: number): FetchSample {
  const python3 = findPython();
  if (python3 === null) throw new Error('python3 not found');
  return fetcherProcess(
    'python fetcher',
    python3,
    [peerScript('selectors_fetcher.py'), '127.0.0.1', String(port), String(count)],
    count,
  );
}

// The C floor (bench/floor/fetch-client.c); null without a C compiler.
function cFloor(port: number, count: number): FetchSample | null {
  const binary = buildBenchC('fetch-client');
  if ('error' in binary) return null;
  return fetcherProcess('C fetch floor', binary.path, [String(port), String(count)], count);
}

/**
 * The C https floor (bench/floor/fetch-tls.c): `count` GETs over
 * KEEP_ALIVE_CONNECTIONS connections at a time, keep-alive or one per
 * request (`--resume`: offering the last session); null without a C
 * compiler or libssl-dev.
 */
function cTls(port: number, count: number, caFile: string, flags: readonly string[]): FetchSample | null {
  const binary = buildBenchTlsC('fetch-tls');
  if ('error' in binary) return null;
  const args = [String(port), String(count), String(KEEP_ALIVE_CONNECTIONS), caFile, ...flags];
  return fetcherProcess('C https floor', binary.path, args, count);
}

/** Runs `one(i)` for i < count, `width` at a time: a new connection per request, never more than `width` open. */
async function atMost(width: number, count: number, one: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await one(next++);
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, worker));
}

/**
 * node:https: with a keep-alive Agent (KEEP_ALIVE_CONNECTIONS sockets, all
 * `count` requests queued at once, as node:http's row), or `agent: false`, a
 * new connection per request, counting the handshakes that resumed a
 * session; see {@link timeHttps}.
 */
async function nodeHttps(port: number, count: number, ca: string, keepAlive: boolean): Promise<FetchSample> {
  const agent = keepAlive ? new HttpsAgent({ keepAlive, maxSockets: KEEP_ALIVE_CONNECTIONS, ca }) : false;
  const handshakes = { total: 0, resumed: 0 };
  const one = (i: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = httpsGet({ host: '127.0.0.1', port, path: `/goods/${i}/`, agent, ca }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
      }).on('error', reject);
      if (!keepAlive) {
        req.once('socket', (socket) => {
          (socket as TLSSocket).once('secureConnect', () => {
            handshakes.total++;
            if ((socket as TLSSocket).isSessionReused()) handshakes.resumed++;
          });
        });
      }
    });
  const sample = await timeHttps(count, keepAlive, one, handshakes);
  if (agent !== false) agent.destroy();
  return sample;
}

/**
 * iomux's https client on the epoll loop, owning mode: with keep-alive its
 * HttpPool (KEEP_ALIVE_CONNECTIONS connections opened first, untimed), else
 * fetchCoroutine, a new connection per request, KEEP_ALIVE_CONNECTIONS at a
 * time. Handshakes are counted through the loop's startTls (as the undici
 * row's connector is wrapped); with `resume` false each connection gets a
 * session key of its own, so every handshake is a full one (the fetchers'
 * shared context resumes otherwise).
 */
async function iomuxHttps(
  port: number,
  count: number,
  ca: string,
  keepAlive: boolean,
  resume = true,
): Promise<FetchSample> {
  const loop = new EventLoop({ backend: 'epoll' });
  const handshakes = { total: 0, resumed: 0 };
  const startTls = loop.startTls.bind(loop);
  let fresh = 0;
  loop.startTls = (sock, options = {}) => {
    const future = startTls(sock, resume ? options : { ...options, sessionKey: `bench-full-${fresh++}` });
    future.addDoneCallback((done) => {
      if (done.cancelled() || done.exception() !== null) return;
      handshakes.total++;
      if (done.result().sessionReused) handshakes.resumed++;
    });
    return future;
  };
  const options = { ca, timeoutMs: 60_000 };
  const url = (i: number): string => `https://127.0.0.1:${port}/goods/${i}/`;
  const check = (status: number): void => {
    if (status !== 200) throw new Error(`iomux https: HTTP ${status}`);
  };
  const pool = new HttpPool(loop, { maxPerHost: KEEP_ALIVE_CONNECTIONS });
  // `n` requests: through the pool all at once (it keeps to its connections), or fetchCoroutine from
  // KEEP_ALIVE_CONNECTIONS workers.
  const run = (n: number): void => {
    let next = 0;
    function* worker(): Coroutine<void> {
      while (next < n) {
        const i = next++;
        check((yield* fetchCoroutine(loop, url(i), options)).status);
      }
    }
    function* main(): Coroutine<void> {
      const tasks = keepAlive
        ? Array.from({ length: n }, (_, i) => loop.createTask(pool.fetch(url(i), options)))
        : Array.from({ length: Math.min(n, KEEP_ALIVE_CONNECTIONS) }, () => loop.createTask(worker()));
      for (const task of tasks) {
        const result = yield* task;
        if (result !== undefined) check(result.status);
      }
    }
    loop.runUntilComplete(main());
  };
  try {
    if (keepAlive) run(KEEP_ALIVE_CONNECTIONS);
    const sample = await inProcess(count, async () => {
      const t0 = performance.now();
      run(count);
      const perSecond = count / ((performance.now() - t0) / 1000);
      return keepAlive ? { perSecond } : { perSecond, handshakes };
    });
    return sample as FetchSample;
  } finally {
    pool.close();
    loop.close();
  }
}

/**
 * Times an https client's `count` requests (`one(i)` each), with this
 * process's CPU clock around them. With keep-alive, all at once on
 * connections opened first (KEEP_ALIVE_CONNECTIONS requests at once,
 * untimed): the figures are per request on warm connections, as the C
 * floor's. Else a new connection per request, KEEP_ALIVE_CONNECTIONS at a
 * time, with the `handshakes` the client counted.
 */
async function timeHttps(
  count: number,
  keepAlive: boolean,
  one: (i: number) => Promise<void>,
  handshakes: { total: number; resumed: number },
): Promise<FetchSample> {
  if (keepAlive) await Promise.all(Array.from({ length: KEEP_ALIVE_CONNECTIONS }, (_, i) => one(i)));
  const sample = await inProcess(count, async () => {
    const t0 = performance.now();
    if (keepAlive) await Promise.all(Array.from({ length: count }, (_, i) => one(i)));
    else await atMost(KEEP_ALIVE_CONNECTIONS, count, one);
    const perSecond = count / ((performance.now() - t0) / 1000);
    return keepAlive ? { perSecond } : { perSecond, handshakes };
  });
  return sample as FetchSample;
}

function nodeHttp(port: number, count: number, keepAlive = false): Promise<number> {
  const agent = new HttpAgent({ keepAlive, maxSockets: keepAlive ? KEEP_ALIVE_CONNECTIONS : Number.POSITIVE_INFINITY });
  const t0 = performance.now();
  const headers = keepAlive ? {} : { connection: 'close' };
  const one = (i: number): Promise<void> =>
    new Promise((resolve, reject) => {
      get({ host: '127.0.0.1', port, path: `/goods/${i}/`, agent, headers }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
      }).on('error', reject);
    });
  return Promise.all(Array.from({ length: count }, (_, i) => one(i))).then(() => {
    agent.destroy();
    return count / ((performance.now() - t0) / 1000);
  });
}

async function nodeFetch(port: number, count: number): Promise<number | null> {
  let Agent: new (options: { pipelining: number; connections: null }) => { close(): Promise<void> };
  try {
    ({ Agent } = createRequire(import.meta.url)('undici') as { Agent: typeof Agent });
  } catch {
    return null;
  }
  const dispatcher = new Agent({ pipelining: 0, connections: null });
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const res = await fetch(`http://127.0.0.1:${port}/goods/${i}/`, { dispatcher } as RequestInit);
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    }),
  );
  const rate = count / ((performance.now() - t0) / 1000);
  await dispatcher.close();
  return rate;
}

/** undici's connector: opens a socket (a TLSSocket for https, called back once it is secure). */
type UndiciConnector = (options: object, callback: (error: Error | null, socket: unknown) => void) => void;

interface Undici {
  Agent: new (options: {
    pipelining?: number;
    connections: number | null;
    connect?: { ca: string } | UndiciConnector;
  }) => { close(): Promise<void> };
  buildConnector(options: { ca: string }): UndiciConnector;
  request(
    url: string,
    options: { dispatcher: unknown },
  ): Promise<{ statusCode: number; body: { arrayBuffer(): Promise<ArrayBuffer> } }>;
}

function loadUndici(): Undici | null {
  try {
    return createRequire(import.meta.url)('undici') as Undici;
  } catch {
    return null;
  }
}

async function undiciRequest(port: number, count: number): Promise<number | null> {
  const undici = loadUndici();
  if (undici === null) return null;
  const dispatcher = new undici.Agent({ connections: KEEP_ALIVE_CONNECTIONS });
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const res = await undici.request(`http://127.0.0.1:${port}/goods/${i}/`, { dispatcher });
      await res.body.arrayBuffer();
      if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
    }),
  );
  const rate = count / ((performance.now() - t0) / 1000);
  await dispatcher.close();
  return rate;
}

/**
 * undici.request over https: keep-alive with KEEP_ALIVE_CONNECTIONS
 * connections (all `count` requests at once, as the plain row), or
 * keep-alive off (pipelining 0: a new connection per request; see
 * {@link timeHttps}), with undici's own connector (its TLS
 * session cache on, as users get it) wrapped to count the handshakes that
 * resumed a session. Null without undici.
 */
async function undiciHttps(port: number, count: number, ca: string, keepAlive: boolean): Promise<FetchSample | null> {
  const undici = loadUndici();
  if (undici === null) return null;
  const handshakes = { total: 0, resumed: 0 };
  const connector = undici.buildConnector({ ca });
  const counting: UndiciConnector = (options, callback) =>
    connector(options, (error, socket) => {
      if (error === null) {
        handshakes.total++;
        if ((socket as TLSSocket).isSessionReused()) handshakes.resumed++;
      }
      callback(error, socket);
    });
  const dispatcher = keepAlive
    ? new undici.Agent({ connections: KEEP_ALIVE_CONNECTIONS, connect: { ca } })
    : new undici.Agent({ pipelining: 0, connections: null, connect: counting });
  const one = async (i: number): Promise<void> => {
    const res = await undici.request(`https://127.0.0.1:${port}/goods/${i}/`, { dispatcher });
    await res.body.arrayBuffer();
    if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
  };
  const sample = await timeHttps(count, keepAlive, one, handshakes);
  await dispatcher.close();
  return sample;
}

/**
 * Pins this process, every thread of it, to `cpu` (with taskset); false when
 * taskset failed and nothing changed.
 */
function pinToCpu(cpu: number): boolean {
  const r = spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { encoding: 'utf8' });
  return r.error === undefined && r.status === 0;
}

/** Lets this process run on every CPU again. */
function unpin(): void {
  spawnSync('taskset', ['-a', '-p', '-c', `0-${availableParallelism() - 1}`, String(process.pid)], {
    encoding: 'utf8',
  });
}

/** Warm-up rounds per client before the measured ones. */
const WARMUP_ROUNDS = 3;

/** A peer server's https side: its port and the CA certificate (PEM text and file) that signed its certificate. */
export interface PeerTls {
  port: number;
  ca: string;
  caFile: string;
}

/**
 * The server of the run: nginx when installed (one worker), else the
 * embedded iomux server in its own process. With `tls`, nginx also listens
 * with TLS (TLS 1.2 and 1.3; certificates made with the openssl command),
 * when openssl is installed; `tls` on the result says where.
 */
export async function startPeerServer(
  cli: string | undefined,
  preferNginx: boolean,
  serverCpu?: number,
  options: { tls?: boolean } = {},
): Promise<{ port: number; name: string; tls?: PeerTls; stop(): Promise<void> }> {
  const certs = preferNginx && options.tls === true && findOpenssl() !== null ? makeCertificates() : null;
  const tls = certs === null ? undefined : { certFile: certs.server.certFile, keyFile: certs.server.keyFile };
  const nginx = preferNginx ? await startNginx({}, serverCpu, tls === undefined ? {} : { tls }) : null;
  if (nginx !== null) {
    const where = serverCpu === undefined ? '' : `, pinned to CPU ${serverCpu}`;
    const name = `${nginx.version} (1 worker${where})`;
    const stop = (): Promise<void> => nginx.stop();
    if (certs === null || nginx.tlsPort === undefined) return { port: nginx.port, name, stop };
    const peerTls = { port: nginx.tlsPort, ca: certs.ca.cert, caFile: certs.ca.certFile };
    return { port: nginx.port, name, tls: peerTls, stop };
  }
  const embedded = await startServerProcess(cli);
  return {
    port: embedded.port,
    name: 'the embedded iomux server',
    stop: async () => embedded.stop(),
  };
}

/**
 * Runs every client `runs` times, interleaved, against one server process
 * (nginx when installed and `preferNginx`, else the embedded server).
 */
export async function runFetchBench(
  count: number,
  runs: number,
  options: { cli?: string; preferNginx?: boolean; warmupRounds?: number } = {},
): Promise<{ server: string; results: FetchBenchResult[] }> {
  // On two cores or more, nginx's worker gets CPU 1 and this process (and
  // the C and Python clients it starts) CPU 0, as MEASUREMENTS.md measured:
  // unpinned, the clients and the server take turns on both cores, and every
  // client reads nginx's pace and a share of its scheduling.
  // (The server starts first: a child started after the pinning would share CPU 0.)
  const canPin = availableParallelism() >= 2 && spawnSync('taskset', ['-V']).status === 0;
  const server = await startPeerServer(options.cli, options.preferNginx ?? true, canPin ? 1 : undefined, {
    tls: true,
  });
  const pinned = canPin && pinToCpu(0);
  try {
    const port = server.port;
    const variants: Variant[] = [
      ['close', 'iomux fetchCoroutine (epoll)', () => inProcess(count, () => iomuxCoroutine(port, count))],
      ...uringVariant('close', 'iomux fetchCoroutine (io_uring)', () =>
        inProcess(count, () => iomuxCoroutine(port, count, false, 'io_uring')),
      ),
      ['close', 'C epoll fetcher (floor)', () => cFloor(port, count)],
      ['close', 'Python selectors Fetcher (the notes)', () => python(port, count)],
      ['close', 'node:http, no keep-alive', () => inProcess(count, () => nodeHttp(port, count))],
      ['close', 'Node fetch (undici), no keep-alive', () => inProcess(count, () => nodeFetch(port, count))],
      ['keep-alive', 'iomux HttpPool (epoll)', () => inProcess(count, () => iomuxCoroutine(port, count, true))],
      ...uringVariant('keep-alive', 'iomux HttpPool (io_uring)', () =>
        inProcess(count, () => iomuxCoroutine(port, count, true, 'io_uring')),
      ),
      ['keep-alive', 'node:http, keep-alive Agent', () => inProcess(count, () => nodeHttp(port, count, true))],
      ['keep-alive', 'undici.request', () => inProcess(count, () => undiciRequest(port, count))],
      ...(server.tls === undefined ? [] : httpsVariants(server.tls, count)),
    ];
    // Uncounted rounds first: JIT warm-up for the JavaScript clients (V8
    // takes a few thousand requests to settle: its first rounds run half as
    // fast), caches for all.
    for (let round = 0; round < (options.warmupRounds ?? WARMUP_ROUNDS); round++) {
      for (const [, , measure] of variants) await measure();
    }
    const samples = new Map<string, FetchSample[]>();
    for (let run = 0; run < runs; run++) {
      for (const [policy, name, measure] of variants) {
        // By policy and name: the same client may run under several policies.
        const key = `${policy}: ${name}`;
        const sample = await measure();
        if (sample !== null) samples.set(key, [...(samples.get(key) ?? []), sample]);
      }
    }
    const results = variants.flatMap(([policy, name]): FetchBenchResult[] => {
      const s = samples.get(`${policy}: ${name}`);
      if (s === undefined) return [];
      const perSecond = median(s.map((x) => x.perSecond));
      const cpuUsPerRequest = median(s.map((x) => x.cpuUs));
      const result: FetchBenchResult = { policy, name, perSecond, cpuUsPerRequest, runs: s.map((x) => x.perSecond) };
      if (policy === 'https new connection') {
        result.name = `${name}, ${resumption(s)}`;
        result.handshakesPerCpuSecond = 1e6 / cpuUsPerRequest;
      }
      return [result];
    });
    return { server: server.name, results };
  } finally {
    await server.stop();
    if (pinned) unpin();
  }
}

/**
 * The https rows: keep-alive and a new connection per request, against the
 * peer server's TLS port. iomux's rows come first in each policy: the
 * table's ratios and the targets find them by the "iomux" prefix (for a new
 * connection, the first is full handshakes, as node:https's agent: false).
 */
function httpsVariants(tls: PeerTls, count: number): Variant[] {
  const { port, ca, caFile } = tls;
  return [
    ['https keep-alive', 'iomux HttpPool (https, epoll)', () => iomuxHttps(port, count, ca, true)],
    ['https keep-alive', 'C OpenSSL fetcher, keep-alive (floor)', () => cTls(port, count, caFile, ['--keep-alive'])],
    ['https keep-alive', 'node:https, keep-alive Agent', () => nodeHttps(port, count, ca, true)],
    ['https keep-alive', 'undici.request (https)', () => undiciHttps(port, count, ca, true)],
    ['https new connection', 'iomux fetchCoroutine (https, epoll)', () => iomuxHttps(port, count, ca, false, false)],
    ['https new connection', 'iomux fetchCoroutine (https, epoll), resuming', () => iomuxHttps(port, count, ca, false)],
    ['https new connection', 'C OpenSSL fetcher (floor)', () => cTls(port, count, caFile, [])],
    ['https new connection', 'C OpenSSL fetcher (floor), --resume', () => cTls(port, count, caFile, ['--resume'])],
    ['https new connection', 'node:https, agent: false', () => nodeHttps(port, count, ca, false)],
    ['https new connection', 'undici.request (https), no keep-alive', () => undiciHttps(port, count, ca, false)],
  ];
}

/** What share of a client's handshakes resumed a TLS session, over its runs: "full handshakes", "all resumed", "N % resumed". */
function resumption(samples: readonly FetchSample[]): string {
  let total = 0;
  let resumed = 0;
  for (const s of samples) {
    total += s.handshakes?.total ?? 0;
    resumed += s.handshakes?.resumed ?? 0;
  }
  if (total === 0) return 'handshakes not counted';
  if (resumed === 0) return 'full handshakes';
  if (resumed === total) return 'all resumed';
  return `${Math.round((100 * resumed) / total)} % resumed`;
}

/**
 * A markdown table with ratios of iomux to each client of the same policy:
 * requests/s (iomux's over the client's) and the client's CPU per request
 * (iomux's over the client's: below 1 is iomux spending less).
 */
export function formatFetchTable(results: readonly FetchBenchResult[]): string {
  const rows = [
    '| policy | client | requests/s | iomux vs it | client CPU us/request | iomux CPU vs it | handshakes/s of client CPU | runs (min-max) |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    const iomux = results.find((x) => x.policy === r.policy && x.name.startsWith('iomux'));
    const ratio = iomux === undefined ? '-' : `${(iomux.perSecond / r.perSecond).toFixed(2)}x`;
    const cpu = iomux === undefined ? '-' : `${(iomux.cpuUsPerRequest / r.cpuUsPerRequest).toFixed(2)}x`;
    rows.push(
      `| ${r.policy} | ${r.name} | ${Math.round(r.perSecond).toLocaleString('en-US')} | ${ratio} | ` +
        `${r.cpuUsPerRequest.toFixed(1)} | ${cpu} | ` +
        `${r.handshakesPerCpuSecond === undefined ? '-' : Math.round(r.handshakesPerCpuSecond).toLocaleString('en-US')} | ` +
        `${formatRange(r.runs)} |`,
    );
  }
  return rows.join('\n');
}
