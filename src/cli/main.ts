#!/usr/bin/env node
/**
 * The `iomux` command: parses the subcommand and hands over to its room --
 * fetch (fetch-many.ts), demo (demo.ts), serve (server.ts), bench (bench.ts).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import type { FetchError, FetchResult } from '../fetch/index.js';
import { type BackendName, EventLoop, LoopTrace } from '../loop/index.js';
import { IoUring } from '../sys/index.js';
import { runBenchCommand } from './bench.js';
import { makeDemoCertificates } from './certs.js';
import { type DemoTls, runDemo } from './demo.js';
import { type FetchStyle, fetchMany, STYLES } from './fetch-many.js';
import { runModels } from './models.js';
import { Progress } from './progress.js';
import { startServer } from './server.js';
import { UsageError, writableFile } from './usage.js';

const USAGE = `usage: iomux <command> [options]

commands:
  demo     fetch the notes' shop pages in each style (busy-poll, callbacks, coroutines, async) on each backend;
           --models: under each of the five I/O models (blocking ... io_uring), with syscalls per page
  fetch    fetch http:// and https:// URLs over HTTP/1.1 with a chosen style and backend
  serve    run the embedded test server (the notes' shop and test endpoints) on the iomux loop;
           --tls CERT KEY: over TLS
  bench    compare select, poll and epoll with the C floor (sys), and hold 10,000 connections (c10k)

Run 'iomux <command> --help' for a command's options.
`;

const DEMO_USAGE = `usage: iomux demo [--models] [--count N] [--concurrency N] [--latency MS] [--json]
                  [--tls [CERT KEY] [--ca FILE | --insecure]] [--html FILE]

Starts the embedded server (iomux serve) in a child process and fetches /goods/0/ ...
/goods/N-1/ by busy-polling, then with the callback Fetcher, generator coroutines and
async/await on select, poll and epoll, and prints wall and CPU time of each, with a
line that states the notes' lesson in this run's numbers.

With --models, fetches the same pages under each of the notes' five I/O models instead:
  blocking        blocking sockets, one page at a time
  non-blocking    busy-polling a non-blocking socket, one page at a time
  select/poll/epoll  I/O multiplexing: the coroutine fetcher on an event loop, all pages in flight
  signal-driven   O_ASYNC + F_SETSIG (SignalWatch), waiting on its one eventfd, all in flight
  io_uring        asynchronous: the event loop on io_uring completions, all in flight
                  ("n/a" where io_uring is unavailable)
and prints wall time, CPU time, syscalls per page (counted by the addon) and voluntary/
involuntary context switches of each.

options:
  --models          compare the five I/O models (see above)
  --count N         pages per style and backend (default 20, as in the notes; at most 100000)
  --concurrency N   requests in flight at once (default: all of them, at most 400)
  --latency MS      the server holds each page this long, as a real shop's round trip
                    (default 50; 0: loopback's microseconds; at most 10000)
  --json            print the rows as JSON instead of the table
  --tls [CERT KEY]  serve and fetch over TLS (https://). Alone: with a CA and a server certificate
                    for 127.0.0.1 made for this run by the openssl command (removed after; without
                    openssl, give CERT KEY and --ca). With CERT KEY: the server presents those
                    PEM files, and the fetchers trust --ca FILE (else Node's bundled roots)
  --ca FILE         with --tls CERT KEY: the CA certificate(s) to trust (PEM)
  --insecure        with --tls: accept any certificate (no verification)
  --html FILE       also write one self-contained HTML page (no network; open it in any browser):
                    a waterfall per style and backend (per model with --models) -- one bar per
                    page with its connect, tls, send, wait and receive phases on a shared time
                    axis -- and under it what the thread did (asleep in the selector, running
                    callbacks, spinning); the fetches are traced for it (LoopTrace)
  --help            this text
`;

const FETCH_USAGE = `usage: iomux fetch [options] URL...

Fetches http:// and https:// URLs. One URL: its body goes to stdout. Several: a line
each (status, bytes, URL), or their bodies to files with --output.

https: the server's certificate must verify against Node's bundled root certificates
(or --ca) and name the URL's host (also sent as SNI). A body the server cuts off
without TLS close_notify is an error (ERR_SSL_UNEXPECTED_EOF_WHILE_READING), never
a short body.

options:
  --style S         busy | callback | coroutine | async (default coroutine)
  --backend B       epoll | poll | select | io_uring (default epoll)
  --concurrency N   requests in flight at once (default 10)
  --timeout MS      per request, connection included (default 30000)
  --output DIR      write each body to DIR/<n>.body
  --include         print the status line and headers before each body
  --close           one connection per URL (Connection: close); by default the coroutine
                    and async styles reuse connections per host (keep-alive, TLS ones too)
  --ca FILE         https: trust the CA certificate(s) in FILE (PEM) instead of Node's roots
  --insecure        https: accept any certificate, of any name (no verification: tests only)
  --trace FILE      write what the loop did (each wait, callback and socket operation) and
                    each page's phases (connect, tls, send, wait, receive) to FILE as Chrome
                    trace JSON: open it in https://ui.perfetto.dev or chrome://tracing
  --help            this text

Exits 1 if any URL failed (each failure is one line on stderr).
`;

const SERVE_USAGE = `usage: iomux serve [--port N] [--backend B] [--latency MS] [--tls CERT KEY] [--trace FILE]

Serves on 127.0.0.1 from the iomux loop (owning mode): /goods/<n>/ (the notes' shop),
/bytes/<n>, /chunked/<n>, /delay/<ms>. Prints "listening http://127.0.0.1:<port>"
(https:// with --tls).

options:
  --port N         port (default 0: an ephemeral one)
  --backend B      epoll | poll | select | io_uring (default epoll)
  --latency MS     hold every response this long first (a timer per request; default 0)
  --tls CERT KEY   serve over TLS (1.2 and 1.3) with the certificate (chain) in CERT and its
                   private key in KEY, both PEM; a client whose handshake fails is closed,
                   the server goes on
  --trace FILE     record what the loop does (the newest 262,144 events: waits, callbacks,
                   each request as a span) and write it to FILE as Chrome trace JSON when the
                   server is stopped by SIGINT or SIGTERM (with its loop.stats() on stderr)
  --help           this text
`;

/** Events a trace of `fetch --trace` or `serve --trace` keeps (the newest; 12 MB). */
const TRACE_CAPACITY = 262_144;

/** Writes `trace` to `file` as Chrome trace JSON and says so on stderr. */
function writeTrace(trace: LoopTrace, file: string): void {
  writeFileSync(file, JSON.stringify(trace.toChromeTrace()));
  const dropped = trace.dropped === 0 ? '' : ` (the oldest ${trace.dropped} dropped)`;
  process.stderr.write(
    `iomux: trace of ${trace.size} events${dropped} written to ${file}: open it in https://ui.perfetto.dev or chrome://tracing\n`,
  );
}

/** A file's content for an option, or a UsageError naming the option. */
function readOptionFile(path: string, name: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`${name}: cannot read ${path} (${(error as { code?: string }).code ?? String(error)})`);
  }
}

/**
 * `--tls CERT KEY`: parseArgs takes no option with two values, so --tls is a
 * flag and CERT and KEY are the command's only positionals.
 */
function tlsFiles(tls: boolean | undefined, positionals: string[], command: string): [string, string] | null {
  if (tls !== true) {
    if (positionals.length > 0) throw new UsageError(`${command}: unexpected argument '${positionals[0]}'`);
    return null;
  }
  if (positionals.length === 0) return null;
  if (positionals.length !== 2) throw new UsageError(`${command}: --tls takes a certificate file and a key file`);
  return positionals as [string, string];
}

function intOption(value: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`${name} must be an integer from ${min} to ${max}`);
  return n;
}

function backendOption(value: string | undefined): BackendName {
  const backend = value ?? 'epoll';
  if (backend !== 'epoll' && backend !== 'poll' && backend !== 'select' && backend !== 'io_uring') {
    throw new UsageError(`--backend must be epoll, poll, select or io_uring, not '${backend}'`);
  }
  if (backend === 'io_uring' && !IoUring.available()) {
    throw new UsageError('--backend io_uring: io_uring is unavailable here (disabled, or not in this kernel)');
  }
  return backend;
}

async function demo(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      count: { type: 'string' },
      concurrency: { type: 'string' },
      latency: { type: 'string' },
      models: { type: 'boolean' },
      json: { type: 'boolean' },
      tls: { type: 'boolean' },
      ca: { type: 'string' },
      insecure: { type: 'boolean' },
      html: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.help === true) {
    process.stdout.write(DEMO_USAGE);
    return 0;
  }
  const files = tlsFiles(values.tls, positionals, 'demo');
  if (values.tls !== true && (values.ca !== undefined || values.insecure === true)) {
    throw new UsageError('demo: --ca and --insecure go with --tls');
  }
  if (values.tls === true && files === null && values.ca !== undefined) {
    throw new UsageError('demo: --ca goes with --tls CERT KEY (the certificate made for the run has its own CA)');
  }
  const count = intOption(values.count, '--count', 20, 1, 100_000);
  const concurrency = intOption(values.concurrency, '--concurrency', Math.min(count, 400), 1, 400);
  const latencyMs = intOption(values.latency, '--latency', 50, 0, 10_000);
  const json = values.json === true;
  let made: ReturnType<typeof makeDemoCertificates> = null;
  let tls: DemoTls | undefined;
  if (files !== null) {
    tls = { certFile: files[0], keyFile: files[1] };
    if (values.ca !== undefined) tls.ca = readOptionFile(values.ca, '--ca');
  } else if (values.tls === true) {
    made = makeDemoCertificates();
    if (made === null) {
      throw new UsageError(
        'demo --tls: no openssl command here to make a certificate with; give --tls CERT KEY and --ca FILE',
      );
    }
    tls = { certFile: made.certFile, keyFile: made.keyFile, ca: made.ca };
  }
  if (tls !== undefined && values.insecure === true) tls.rejectUnauthorized = false;
  const html = writableFile(values.html, '--html');
  try {
    const options = {
      count,
      concurrency,
      latencyMs,
      json,
      out: process.stdout,
      ...(tls === undefined ? {} : { tls }),
      ...(html === undefined ? {} : { html }),
    };
    if (values.models === true) await runModels(options);
    else await runDemo(options);
  } finally {
    made?.remove();
  }
  return 0;
}

async function fetchCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      style: { type: 'string' },
      backend: { type: 'string' },
      concurrency: { type: 'string' },
      timeout: { type: 'string' },
      output: { type: 'string' },
      include: { type: 'boolean' },
      close: { type: 'boolean' },
      ca: { type: 'string' },
      insecure: { type: 'boolean' },
      trace: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.help === true) {
    process.stdout.write(FETCH_USAGE);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('fetch needs at least one URL');
  const style = (values.style ?? 'coroutine') as FetchStyle;
  if (!STYLES.includes(style)) throw new UsageError(`--style must be one of ${STYLES.join(', ')}, not '${style}'`);
  const backend = backendOption(values.backend);
  const concurrency = intOption(values.concurrency, '--concurrency', 10, 1, 400);
  const timeoutMs = intOption(values.timeout, '--timeout', 30_000, 1, 3_600_000);
  const output = values.output;
  if (output !== undefined) mkdirSync(output, { recursive: true });
  const progress = new Progress(positionals.length);
  const traceFile = writableFile(values.trace, '--trace');
  const trace = traceFile === undefined ? null : new LoopTrace({ capacity: TRACE_CAPACITY });
  const results = await fetchMany(positionals, {
    ...(trace === null
      ? {}
      : {
          trace: {
            trace,
            loopLane: trace.addLane(style === 'busy' ? 'busy-poll (no loop)' : `${style} on ${backend}`),
            pagesLane: trace.addLane('pages'),
          },
        }),
    style,
    backend,
    concurrency,
    timeoutMs,
    keepAlive: values.close !== true,
    ...(values.ca === undefined ? {} : { ca: readOptionFile(values.ca, '--ca') }),
    ...(values.insecure === true ? { rejectUnauthorized: false } : {}),
    onDone: (_i, outcome) => progress.tick(!('status' in outcome)),
  });
  progress.finish();
  if (trace !== null) writeTrace(trace, traceFile as string);
  let failed = 0;
  results.forEach((outcome: FetchResult | FetchError, i) => {
    if (!('status' in outcome)) {
      failed++;
      process.stderr.write(`iomux: ${outcome.message} (${outcome.code})\n`);
      return;
    }
    const headText = `HTTP ${outcome.status}\n${Object.entries(outcome.headers)
      .map(([k, v]) => `${k}: ${v}`)
      .join('\n')}\n\n`;
    if (output !== undefined) {
      writeFileSync(join(output, `${i}.body`), outcome.body);
      if (values.include === true) writeFileSync(join(output, `${i}.head`), headText);
    } else if (positionals.length === 1) {
      if (values.include === true) process.stdout.write(headText);
      process.stdout.write(outcome.body);
    } else {
      if (values.include === true) process.stdout.write(headText);
      process.stdout.write(`${outcome.status} ${outcome.body.length} ${outcome.url}\n`);
    }
  });
  return failed > 0 ? 1 : 0;
}

function serve(args: string[]): number {
  const { values, positionals } = parseArgs({
    args,
    options: {
      port: { type: 'string' },
      backend: { type: 'string' },
      latency: { type: 'string' },
      tls: { type: 'boolean' },
      trace: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.help === true) {
    process.stdout.write(SERVE_USAGE);
    return 0;
  }
  const files = tlsFiles(values.tls, positionals, 'serve');
  if (values.tls === true && files === null)
    throw new UsageError('serve: --tls takes a certificate file and a key file');
  const port = intOption(values.port, '--port', 0, 0, 65535);
  const latencyMs = intOption(values.latency, '--latency', 0, 0, 60_000);
  const tls =
    files === null ? null : { cert: readOptionFile(files[0], '--tls'), key: readOptionFile(files[1], '--tls') };
  const traceFile = writableFile(values.trace, '--trace');
  const loop = new EventLoop({ backend: backendOption(values.backend) });
  // Traced: the loop's waits and callbacks, and each request as a span, on one lane.
  const trace = traceFile === undefined ? null : new LoopTrace({ capacity: TRACE_CAPACITY });
  const lane = trace === null ? 0 : trace.addLane('iomux serve');
  let server: ReturnType<typeof startServer>;
  try {
    server = startServer(loop, port, {
      latencyMs,
      ...(tls === null ? {} : { tls }),
      ...(trace === null ? {} : { trace: { trace, lane } }),
    });
  } catch (error) {
    // A certificate or key that does not parse, or do not belong together: the user's files, not a crash.
    const code = (error as { code?: string }).code ?? '';
    if (tls !== null && code.startsWith('ERR_OSSL')) throw new UsageError(`--tls: ${(error as Error).message}`);
    throw error;
  }
  if (trace !== null && traceFile !== undefined) {
    loop.setTrace(trace, lane);
    const stop = (): void => {
      loop.stop();
      writeTrace(trace, traceFile);
      process.stderr.write(`iomux serve: loop.stats() ${JSON.stringify(loop.stats())}\n`);
    };
    loop.addSignalHandler('SIGINT', stop);
    loop.addSignalHandler('SIGTERM', stop);
  }
  process.stdout.write(`listening ${tls === null ? 'http' : 'https'}://127.0.0.1:${server.port}\n`);
  loop.runForever();
  return 0;
}

/** Runs the command line; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'demo':
        return await demo(rest);
      case 'fetch':
        return await fetchCommand(rest);
      case 'serve':
        return serve(rest);
      case 'bench':
        return await runBenchCommand(rest);
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (e) {
    if (
      e instanceof UsageError ||
      (e instanceof TypeError && 'code' in e && String(e.code).startsWith('ERR_PARSE_ARGS'))
    ) {
      process.stderr.write(`iomux: ${e.message}\n${command === undefined ? USAGE : ''}`);
      return 2;
    }
    throw e;
  }
}

// A reader that went away (`iomux fetch URL | head`) is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`iomux: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
