/**
 * The notes' five I/O models (11.2.2), each a real fetch on this kernel:
 *
 * - **blocking** ({@link fetchBlocking}): a blocking socket, one page at a
 *   time; the thread sleeps inside connect, send and recv.
 * - **non-blocking** ({@link fetchBusyPoll}): a non-blocking socket asked
 *   again and again, one page at a time; the thread never sleeps.
 * - **I/O multiplexing** (select, poll, epoll): the coroutine fetcher on an
 *   {@link EventLoop} with that selector, every page in flight at once; the
 *   thread sleeps in the multiplexer, which watches every socket.
 * - **signal-driven** ({@link fetchSignalDriven}): sockets with O_ASYNC and
 *   F_SETSIG; the kernel queues a real-time signal carrying (fd, band) when
 *   one turns ready, and the thread sleeps on the {@link SignalWatch}'s one
 *   eventfd -- no multiplexer over the sockets.
 * - **asynchronous** (io_uring): the coroutine fetcher on an EventLoop with
 *   backend 'io_uring': connect, send and recv are requests the kernel
 *   completes, every page in flight at once.
 *
 * {@link fetchWithModel} runs a list of URLs under one of them. Every model
 * fetches https:// too: TLS runs over the model's socket (blocking: a
 * blocking TLS socket; the others: OpenSSL's TLS_WANT_READ / TLS_WANT_WRITE
 * turned into the model's own kind of waiting).
 *
 * @module
 */
import { type Coroutine, TimeoutError } from '../coro/index.js';
import { formatRequest, type HttpTarget, parseHttpUrl } from '../http/index.js';
import { type BackendName, EventLoop, GetAddrInfoError, type LoopTrace } from '../loop/index.js';
import {
  type AddrInfo,
  AF_UNSPEC,
  EINPROGRESS,
  IoUring,
  numericAddrInfo,
  OSError,
  POLLIN,
  Poll,
  Resolver,
  SIGRTMIN,
  type SignalLike,
  SignalWatch,
  SO_ERROR,
  SO_RCVTIMEO,
  SO_SNDTIMEO,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
  Socket,
  type TlsSocket,
} from '../sys/index.js';
import { fetchBusyPoll } from './busy-poll.js';
import { fetchCoroutine } from './coroutine.js';
import { TimedParser, TimingMarks } from './timings.js';
import { wrapClient } from './tls.js';
import {
  DEFAULT_TIMEOUT_MS,
  type FetchError,
  type FetchOptions,
  type FetchResult,
  noAddressError,
  toFetchError,
  toResult,
} from './types.js';

/** The I/O models, the multiplexing one split by its three syscalls. */
export type IoModel = 'blocking' | 'non-blocking' | 'select' | 'poll' | 'epoll' | 'signal-driven' | 'io_uring';

/** Every {@link IoModel}, in the notes' order. */
export const IO_MODELS: readonly IoModel[] = [
  'blocking',
  'non-blocking',
  'select',
  'poll',
  'epoll',
  'signal-driven',
  'io_uring',
];

/** The notes' name of the model a row belongs to. */
export function modelFamily(model: IoModel): string {
  switch (model) {
    case 'select':
    case 'poll':
    case 'epoll':
      return 'I/O multiplexing';
    case 'io_uring':
      return 'asynchronous';
    default:
      return model;
  }
}

const READ_SIZE = 64 * 1024;

/** The addresses of `target`, resolved while this thread waits (a lookup thread does the work). */
function resolveBlocking(target: HttpTarget, timeoutMs: number): AddrInfo[] {
  const direct = numericAddrInfo(target.hostname, target.port, AF_UNSPEC, SOCK_STREAM);
  if (direct !== null) return direct;
  const resolver = new Resolver();
  const waiter = new Poll();
  try {
    resolver.submit(1, target.hostname, String(target.port), AF_UNSPEC, SOCK_STREAM);
    waiter.register(resolver.fileno(), POLLIN);
    const end = performance.now() + timeoutMs;
    for (;;) {
      for (const done of resolver.take()) {
        if (done.error !== 0) throw new GetAddrInfoError(done.error, target.hostname, done.message, done.errno);
        return done.results;
      }
      const left = end - performance.now();
      if (left <= 0) throw new TimeoutError(`timed out after ${timeoutMs} ms`);
      waiter.poll(Math.ceil(left));
    }
  } finally {
    waiter.close();
    resolver.close();
  }
}

/** A struct timeval of `ms` milliseconds, in this machine's byte order. */
function timeval(ms: number): Buffer {
  const tv = new BigInt64Array([BigInt(Math.floor(ms / 1000)), BigInt((ms % 1000) * 1000)]);
  return Buffer.from(tv.buffer);
}

function exchangeBlocking(
  target: HttpTarget,
  info: AddrInfo,
  request: Buffer,
  options: FetchOptions,
  timeoutMs: number,
  marks: TimingMarks,
): FetchResult {
  const sock = new Socket(info.family, SOCK_STREAM);
  let tls: TlsSocket | null = null;
  try {
    // Each blocking call gives up after the timeout (connect goes by SO_SNDTIMEO).
    const tv = timeval(timeoutMs);
    sock.setsockopt(SOL_SOCKET, SO_SNDTIMEO, tv);
    sock.setsockopt(SOL_SOCKET, SO_RCVTIMEO, tv);
    const end = performance.now() + timeoutMs;
    sock.connect(info.address);
    marks.connected();
    // https: a blocking TLS socket over the blocking socket; the same
    // timeouts make OpenSSL's reads and writes fail with a want (EAGAIN).
    let conn: Socket | TlsSocket = sock;
    if (target.tls) {
      tls = wrapClient(sock, target, options);
      tls.doHandshake();
      marks.secured();
      conn = tls;
    }
    conn.sendAll(request);
    marks.sent();
    const parser = new TimedParser(options, marks);
    const buffer = Buffer.allocUnsafe(READ_SIZE);
    while (!parser.done) {
      if (performance.now() > end) throw new TimeoutError(`timed out after ${timeoutMs} ms`);
      const n = conn.recvInto(buffer);
      if (n === 0) {
        parser.end();
        break;
      }
      parser.feed(buffer.subarray(0, n));
    }
    return toResult(target.url, parser);
  } catch (error) {
    // SO_RCVTIMEO/SO_SNDTIMEO expiring: the blocking call fails with EAGAIN (EINPROGRESS for connect).
    const code = (error as { code?: string }).code;
    if (code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'EINPROGRESS') {
      throw new TimeoutError(`timed out after ${timeoutMs} ms`);
    }
    throw error;
  } finally {
    if (tls !== null) tls.close();
    else sock.close();
  }
}

/**
 * Fetches `url` on a blocking socket: connect, send the whole request,
 * recv until the response is complete, each call sleeping in the kernel
 * until it can finish. Synchronous: it returns the page (nothing else runs
 * meanwhile). Each address of the host is tried in turn.
 *
 * @throws {FetchError} code ECONNREFUSED, ENOTFOUND, ERR_HTTP_*, ERR_TIMEOUT (no progress for
 *   `timeoutMs`, or more than `timeoutMs` in all)...
 */
export function fetchBlocking(url: string, options: FetchOptions = {}): FetchResult {
  try {
    const marks = new TimingMarks();
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const target = parseHttpUrl(url);
    const request = formatRequest(target, options);
    let lastError: unknown = null;
    for (const info of resolveBlocking(target, timeoutMs)) {
      try {
        return exchangeBlocking(target, info, request, options, timeoutMs, marks);
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code !== 'ECONNREFUSED' && code !== 'ENETUNREACH' && code !== 'EADDRNOTAVAIL') throw error;
        lastError = error;
      }
    }
    throw lastError ?? noAddressError(target.hostname);
  } catch (error) {
    throw toFetchError(url, error);
  }
}

/** Options of {@link fetchSignalDriven}. */
export interface SignalDrivenOptions extends FetchOptions {
  /** The real-time signal the kernel queues (default SIGRTMIN); no other SignalWatch may use it. */
  signal?: SignalLike;
  /** Where to record each wait in poll(2) (its timeout, the records it brought, the time asleep): a trace and a lane of it. */
  trace?: { trace: LoopTrace; lane: number };
}

/** One page in flight under signal-driven I/O. */
interface InFlight {
  readonly index: number;
  readonly url: string;
  readonly target: HttpTarget;
  readonly sock: Socket;
  /** https: the TLS socket, made once the connect finished. */
  tls: TlsSocket | null;
  readonly request: Buffer;
  readonly options: FetchOptions;
  readonly parser: TimedParser;
  sent: number;
}

// The TLS socket once there is one (close_notify, then the socket's close).
function closePage(page: InFlight): void {
  if (page.tls !== null) page.tls.close();
  else page.sock.close();
}

/**
 * Takes `page` as far as it goes without waiting: sends what is left of the
 * request, then reads until the kernel has nothing more.
 *
 * @returns true once the response is complete
 * @throws the socket's error (a failed connect shows here: ECONNREFUSED...)
 */
function advance(page: InFlight, buffer: Buffer): boolean {
  if (page.target.tls) return advanceTls(page, buffer);
  while (page.sent < page.request.length) {
    // A connect still in progress: EAGAIN (null); its failure: the error.
    const n = page.sock.trySend(page.request.subarray(page.sent));
    if (n === null) return false;
    page.parser.marks.connected(); // the first send that went through: the connection is up
    page.sent += n;
  }
  page.parser.marks.sent();
  for (;;) {
    const n = page.sock.tryRecvInto(buffer);
    if (n === null) return false;
    if (n === 0) {
      page.parser.end();
      return true;
    }
    page.parser.feed(buffer.subarray(0, n));
    if (page.parser.done) return true;
  }
}

/**
 * {@link advance} for https: once connected, the TLS socket's handshake,
 * send and receive, each as far as it goes. Any want just ends the step:
 * the kernel signals every readiness change of the socket (POLLIN and
 * POLLOUT both), so the next record that comes tries again.
 */
function advanceTls(page: InFlight, buffer: Buffer): boolean {
  if (page.tls === null) {
    const error = page.sock.getsockopt(SOL_SOCKET, SO_ERROR);
    if (error !== 0) throw new OSError(error, 'connect', `${page.target.hostname}:${page.target.port}`);
    try {
      page.sock.getpeername();
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOTCONN') return false; // still connecting
      throw e;
    }
    page.parser.marks.connected();
    page.tls = wrapClient(page.sock, page.target, page.options);
  }
  const tls = page.tls;
  if (!tls.handshaken) {
    if (tls.tryHandshake() !== 0) return false;
    page.parser.marks.secured();
  }
  while (page.sent < page.request.length) {
    const n = tls.trySend(page.request, page.sent);
    if (n < 0) return false;
    page.sent += n;
  }
  page.parser.marks.sent();
  for (;;) {
    const n = tls.tryRecvInto(buffer);
    if (n < 0) return false;
    if (n === 0) {
      page.parser.end();
      return true;
    }
    page.parser.feed(buffer.subarray(0, n));
    if (page.parser.done) return true;
  }
}

/**
 * Fetches every URL at once by signal-driven I/O: each socket is made
 * signal-driven ({@link SignalWatch.setSignalDriven}: O_ASYNC, F_SETSIG) before
 * it connects; then the thread sleeps in poll(2) on the watch's one eventfd,
 * and for each (fd, band) record the signal handler queued, takes that
 * socket as far as it goes (send, then recv until EAGAIN). When records were
 * lost (the kernel's queue of real-time signals overflowed) every socket is
 * tried. Names are resolved first, one at a time. Synchronous.
 *
 * @returns results in the order given; a failure is a FetchError in its place (ERR_TIMEOUT
 *   for pages not done within `timeoutMs` of the start)
 * @throws what {@link SignalWatch}'s constructor throws (not on the main thread: TypeError
 *   ERR_WORKER_UNSUPPORTED_OPERATION), and TypeError ERR_INVALID_ARG_VALUE when `signal`
 *   is another watch's
 */
export function fetchSignalDriven(
  urls: readonly string[],
  options: SignalDrivenOptions = {},
): (FetchResult | FetchError)[] {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const signal = options.signal ?? SIGRTMIN;
  const results: (FetchResult | FetchError)[] = new Array(urls.length);
  const watch = new SignalWatch({ capacity: Math.min(65_536, Math.max(1024, urls.length * 4)) });
  const waiter = new Poll();
  const byFd = new Map<number, InFlight>();
  const buffer = Buffer.allocUnsafe(READ_SIZE);
  const finish = (page: InFlight, outcome: FetchResult | FetchError): void => {
    results[page.index] = outcome;
    byFd.delete(page.sock.fileno());
    watch.clearSignalDriven(page.sock);
    closePage(page);
  };
  const step = (page: InFlight): void => {
    try {
      if (advance(page, buffer)) finish(page, toResult(page.url, page.parser));
    } catch (error) {
      finish(page, toFetchError(page.url, error));
    }
  };
  try {
    waiter.register(watch.fileno(), POLLIN);
    const end = performance.now() + timeoutMs;
    urls.forEach((url, index) => {
      try {
        const marks = new TimingMarks();
        const target = parseHttpUrl(url);
        const [info] = resolveBlocking(target, timeoutMs);
        if (info === undefined) throw noAddressError(target.hostname);
        const sock = new Socket(info.family, SOCK_STREAM | SOCK_NONBLOCK);
        const page: InFlight = {
          index,
          url,
          target,
          options,
          sock,
          tls: null,
          request: formatRequest(target, options),
          parser: new TimedParser(options, marks),
          sent: 0,
        };
        try {
          watch.setSignalDriven(sock, signal);
          const rc = sock.connectEx(info.address);
          if (rc !== 0 && rc !== EINPROGRESS) throw new OSError(rc, 'connect', JSON.stringify(info.address));
        } catch (error) {
          sock.close();
          throw error;
        }
        byFd.set(sock.fileno(), page);
        step(page); // loopback may have connected already
      } catch (error) {
        results[index] = toFetchError(url, error);
      }
    });
    while (byFd.size > 0) {
      const left = end - performance.now();
      if (left <= 0) break;
      const t0 = performance.now();
      waiter.poll(Math.ceil(left)); // one fd: the eventfd the signal handler writes
      const n = watch.read();
      options.trace?.trace.wait(options.trace.lane, t0, performance.now() - t0, Math.ceil(left), n);
      if (watch.overflow) {
        for (const page of [...byFd.values()]) step(page);
        continue;
      }
      for (let k = 0; k < n; k++) {
        const page = byFd.get(watch.recordFd(k));
        if (page !== undefined) step(page);
      }
    }
    for (const page of [...byFd.values()]) {
      finish(page, toFetchError(page.url, new TimeoutError(`timed out after ${timeoutMs} ms`)));
    }
    return results;
  } finally {
    for (const page of byFd.values()) closePage(page);
    waiter.close();
    watch.close();
  }
}

/**
 * Options of {@link fetchWithModel}: `signal` for signal-driven, `trace`
 * for the models that wait for many pages at once (select, poll, epoll and
 * io_uring record their loop's whole trace there).
 */
export type ModelOptions = SignalDrivenOptions;

/**
 * Fetches every URL under `model`: blocking and non-blocking one page at a
 * time, the others every page in flight at once (select, poll, epoll and
 * io_uring on a fresh {@link EventLoop} in owning mode, closed after).
 * Synchronous work for all but the promise: it settles when it returns.
 *
 * @returns results in the order given; a failure is a FetchError in its place
 * @throws {Error} code ERR_IO_URING_UNAVAILABLE (through the promise) for 'io_uring'
 *   where {@link IoUring.available} is false; what {@link fetchSignalDriven} throws
 */
export async function fetchWithModel(
  model: IoModel,
  urls: readonly string[],
  options: ModelOptions = {},
): Promise<(FetchResult | FetchError)[]> {
  switch (model) {
    case 'blocking':
      return urls.map((url) => {
        try {
          return fetchBlocking(url, options);
        } catch (error) {
          return toFetchError(url, error);
        }
      });
    case 'non-blocking': {
      const results: (FetchResult | FetchError)[] = [];
      for (const url of urls)
        results.push(await fetchBusyPoll(url, options).catch((e: unknown) => toFetchError(url, e)));
      return results;
    }
    case 'signal-driven':
      return fetchSignalDriven(urls, options);
    case 'io_uring':
      if (!IoUring.available()) {
        throw Object.assign(new Error('io_uring is not available on this kernel (or is disabled)'), {
          code: 'ERR_IO_URING_UNAVAILABLE',
        });
      }
      return onLoop('io_uring', urls, options);
    default:
      return onLoop(model, urls, options);
  }
}

function onLoop(backend: BackendName, urls: readonly string[], options: ModelOptions): (FetchResult | FetchError)[] {
  const loop = new EventLoop({ backend });
  if (options.trace !== undefined) loop.setTrace(options.trace.trace, options.trace.lane);
  try {
    function* settle(url: string): Coroutine<FetchResult | FetchError> {
      try {
        return yield* fetchCoroutine(loop, url, options);
      } catch (error) {
        return toFetchError(url, error);
      }
    }
    const tasks = urls.map((url) => loop.createTask(settle(url)));
    function* all(): Coroutine<(FetchResult | FetchError)[]> {
      const results: (FetchResult | FetchError)[] = [];
      for (const task of tasks) results.push(yield* task);
      return results;
    }
    return loop.runUntilComplete(all());
  } finally {
    loop.close();
  }
}
