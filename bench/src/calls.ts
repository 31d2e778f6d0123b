/**
 * The calls benchmark (`npm run bench -- calls`): what iomux adds to one call of each hot function, over
 * a plain C N-API addon making the same syscall (bench/floor/baseline-addon.c:
 * fd numbers in, a count or -errno out, no other checks than those that keep
 * it from crashing).
 *
 * Every call is on its valid path, on real kernel objects: each batch of
 * calls is prepared, untimed, so that every call in it succeeds -- the
 * messages a batch of receives takes are queued before it, what a batch of
 * sends queued is drained after it, the connections a batch of accepts takes
 * are connected before it and closed after it -- and the batch's results are
 * checked afterwards. Waits are over 10 eventfds of which 1 is readable and
 * never drained (level-triggered: every wait reports it).
 *
 * Times: per function, baseline and iomux alternate in short batches (the
 * order flips each round), after a warm-up that lets V8 optimize both; each
 * figure is the median of the rounds, and the overhead is the median of each
 * round's difference. Instructions: the same batches run under callgrind
 * (calls-driver.ts), which counts user-mode instructions only around the
 * calls themselves: load-independent, where the times on a shared machine
 * are not.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from '#iomux/cli/bench/stats.js';
import { EpollSelector, EVENT_READ, PollSelector, SelectSelector } from '#iomux/selectors/index.js';
import {
  AF_INET,
  close,
  EPOLL_CTL_ADD,
  EPOLLIN,
  Epoll,
  eventfd,
  type IPv4Address,
  O_NONBLOCK,
  POLLIN,
  Poll,
  pipe,
  read,
  SO_LINGER,
  SOCK_STREAM,
  SOL_SOCKET,
  Socket,
  select,
  socketpair,
  write,
} from '#iomux/sys/index.js';
import { type BaselineAddon, buildBaseline, buildMarks, type CallgrindMarks, loadBaseline } from './baseline.js';
import { callgrindSummary, instrUnavailable } from './instr.js';

/** Which implementation a batch of calls goes through. */
export type Side = 'baseline' | 'iomux';

/** Bytes per send, receive, read and write. */
export const MESSAGE_BYTES = 64;
/** Fds each wait watches; one of them is ready. */
export const WAIT_FDS = 10;
/**
 * The most calls in one batch: a Unix socketpair's send buffer holds some
 * 280 messages of 64 bytes at the default size (each costs its skb's
 * overhead too), and a batch of sends or receives must fit in it.
 */
export const MAX_BATCH = 128;

/** The kernel objects a function is called on, with the untimed steps around each batch. */
interface Fixture {
  /** Before a batch of `calls` on `side`: makes every call in it succeed. */
  before(side: Side, calls: number): void;
  /** After it: undoes what the batch left behind, ready for the next. */
  after(side: Side, calls: number): void;
  close(): void;
}

/** One function measured: what it runs on, and a loop of calls through each side. */
interface CallSpec<F extends Fixture> {
  /** The iomux function, as the table prints it. */
  name: string;
  /** What it is called on. */
  on: string;
  /** What one call returns on its valid path (bytes, ready fds, 1 per connection): a batch sums to calls x this. */
  each: number;
  open(base: BaselineAddon): F;
  /** `calls` calls through the baseline addon; the sum of what they returned. */
  baseline(f: F, calls: number): number;
  /** The same through iomux. */
  iomux(f: F, calls: number): number;
}

/** A row of the table, its fixture type erased. */
export interface CallRow {
  readonly name: string;
  readonly on: string;
  readonly each: number;
  open(base: BaselineAddon): OpenRow;
}

/** A row's fixture, open: run a batch through either side between its before and after. */
export interface OpenRow extends Fixture {
  run(side: Side, calls: number): number;
}

function row<F extends Fixture>(spec: CallSpec<F>): CallRow {
  return {
    name: spec.name,
    on: spec.on,
    each: spec.each,
    open: (base) => {
      const f = spec.open(base);
      return {
        before: (side, calls) => f.before(side, calls),
        after: (side, calls) => f.after(side, calls),
        close: () => f.close(),
        run: (side, calls) => (side === 'baseline' ? spec.baseline(f, calls) : spec.iomux(f, calls)),
      };
    },
  };
}

/**
 * A byte stream (a socketpair or a pipe) in one direction. 'write': the
 * calls write and `after` drains the other end; 'read': `before` queues one
 * message per call and the calls read them, each exactly one message
 * (the receive buffer is one message long).
 */
class Stream implements Fixture {
  /** What each write sends. */
  readonly msg = Buffer.alloc(MESSAGE_BYTES, 0x2a);
  /** Where each read lands. */
  readonly buf = Buffer.alloc(MESSAGE_BYTES);
  readonly #spill = Buffer.alloc(1 << 16);
  readonly #close: () => void;

  constructor(
    readonly base: BaselineAddon,
    readonly writeFd: number,
    readonly readFd: number,
    readonly direction: 'write' | 'read',
    closeAll: () => void,
  ) {
    this.#close = closeAll;
  }

  before(_side: Side, calls: number): void {
    if (this.direction === 'write') return;
    for (let i = 0; i < calls; i++) {
      const n = this.base.write(this.writeFd, this.msg, MESSAGE_BYTES);
      if (n !== MESSAGE_BYTES) throw new Error(`bench calls: queueing message ${i} returned ${n}`);
    }
  }

  after(): void {
    // Non-blocking: stops at -EAGAIN, with the stream empty.
    while (this.base.read(this.readFd, this.#spill) > 0);
  }

  close(): void {
    this.#close();
  }
}

/** A Unix stream socketpair, both ends non-blocking: `a` writes, `b` reads. */
function socketStream(base: BaselineAddon, direction: Stream['direction']): Stream & { a: Socket; b: Socket } {
  const [a, b] = socketpair();
  a.setBlocking(false);
  b.setBlocking(false);
  const closeBoth = (): void => {
    a.close();
    b.close();
  };
  return Object.assign(new Stream(base, a.fileno(), b.fileno(), direction, closeBoth), { a, b });
}

/** A non-blocking pipe. */
function pipeStream(base: BaselineAddon, direction: Stream['direction']): Stream {
  const [r, w] = pipe(O_NONBLOCK);
  return new Stream(base, w, r, direction, () => {
    close(r);
    close(w);
  });
}

// struct linger { l_onoff = 1, l_linger = 0 }: close resets the connection, so
// thousands of them leave no TIME_WAIT behind.
const LINGER_RESET = new Int32Array([1, 0]);

/**
 * A non-blocking loopback TCP listener. `before` connects one client per
 * call (a blocking connect: on loopback the handshake has completed, and the
 * connection sits in the accept queue, when it returns); the calls accept
 * them into `fds` (baseline) or `socks` (iomux); `after` closes both ends.
 */
class Listener implements Fixture {
  readonly sock: Socket;
  readonly fd: number;
  /** What a batch accepted. */
  readonly fds: number[] = [];
  readonly socks: Socket[] = [];
  readonly #port: number;
  readonly #clients: Socket[] = [];

  constructor(readonly base: BaselineAddon) {
    this.sock = new Socket(AF_INET, SOCK_STREAM);
    try {
      this.sock.bind(['127.0.0.1', 0]);
      this.sock.listen(1024);
      this.sock.setBlocking(false);
      this.#port = (this.sock.getsockname() as IPv4Address)[1];
    } catch (e) {
      this.sock.close();
      throw e;
    }
    this.fd = this.sock.fileno();
  }

  before(_side: Side, calls: number): void {
    for (let i = 0; i < calls; i++) {
      const client = new Socket(AF_INET, SOCK_STREAM);
      this.#clients.push(client);
      client.setsockopt(SOL_SOCKET, SO_LINGER, LINGER_RESET);
      client.connect(['127.0.0.1', this.#port]);
    }
  }

  after(): void {
    for (const client of this.#clients) client.close();
    this.#clients.length = 0;
    for (const fd of this.fds) if (fd >= 0) this.base.close(fd);
    this.fds.length = 0;
    for (const sock of this.socks) sock.close();
    this.socks.length = 0;
    // A batch cut short leaves connections queued: take them too.
    for (let fd = this.base.accept(this.fd); fd >= 0; fd = this.base.accept(this.fd)) this.base.close(fd);
  }

  close(): void {
    this.after();
    this.sock.close();
  }
}

/**
 * WAIT_FDS eventfds, the last one readable (the C floor's choice for K = 1),
 * watched for reading by each kind of wait: the baseline's epoll, pollfd
 * array and select fd list, and iomux's Epoll, Poll and three selectors.
 */
class Ready implements Fixture {
  readonly fds: number[] = [];
  /** The baseline's: its epoll fd and (fd, events) output. */
  epfd = -1;
  readonly epollOut = new Int32Array(2 * WAIT_FDS);
  /** (fd, POLLIN) pairs: the baseline's pollfd array. */
  readonly pfds = new Int32Array(2 * WAIT_FDS);
  /** The fds, and where the baseline's select writes the ready ones. */
  readonly fdArray = new Int32Array(WAIT_FDS);
  readonly selectOut = new Int32Array(WAIT_FDS);
  readonly epoll = new Epoll();
  readonly poll = new Poll();
  readonly selectSelector = new SelectSelector();
  readonly pollSelector = new PollSelector();
  readonly epollSelector = new EpollSelector();

  constructor(readonly base: BaselineAddon) {
    try {
      for (let i = 0; i < WAIT_FDS; i++) this.fds.push(eventfd(0));
      const one = Buffer.alloc(8);
      one.writeBigUInt64LE(1n);
      write(this.fds[WAIT_FDS - 1] as number, one);
      this.epfd = base.epollCreate();
      if (this.epfd < 0) throw new Error(`bench calls: the baseline's epoll_create1 returned ${this.epfd}`);
      this.fds.forEach((fd, i) => {
        const r = base.epollCtl(this.epfd, EPOLL_CTL_ADD, fd, EPOLLIN);
        if (r !== 0) throw new Error(`bench calls: the baseline's epoll_ctl returned ${r}`);
        this.pfds[2 * i] = fd;
        this.pfds[2 * i + 1] = POLLIN;
        this.fdArray[i] = fd;
        this.epoll.register(fd, EPOLLIN);
        this.poll.register(fd, POLLIN);
        this.selectSelector.register(fd, EVENT_READ);
        this.pollSelector.register(fd, EVENT_READ);
        this.epollSelector.register(fd, EVENT_READ);
      });
    } catch (e) {
      this.close();
      throw e;
    }
  }

  before(): void {}

  after(): void {}

  close(): void {
    for (const s of [this.epoll, this.poll, this.selectSelector, this.pollSelector, this.epollSelector]) s.close();
    if (this.epfd >= 0) this.base.close(this.epfd);
    this.epfd = -1;
    for (const fd of this.fds) close(fd);
    this.fds.length = 0;
  }
}

const NO_FDS: readonly number[] = [];

/**
 * Every function `bench calls` measures, with both of its loops. The iomux
 * names are written once each, here: renaming one is a one-line edit.
 *
 * Each baseline is the bare call. Where the iomux function returns more
 * than a count -- recv's fresh Buffer, poll's and select's lists, a
 * selector's [key, events] pairs, accept's Socket and address -- making that
 * is part of its overhead.
 */
export const CALLS: readonly CallRow[] = [
  row({
    name: 'Socket.send',
    on: 'Unix socketpair, 64 B',
    each: MESSAGE_BYTES,
    open: (base) => socketStream(base, 'write'),
    baseline: ({ base, writeFd, msg }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += base.send(writeFd, msg, MESSAGE_BYTES);
      return sum;
    },
    iomux: ({ a, msg }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += a.send(msg);
      return sum;
    },
  }),
  row({
    name: 'Socket.trySend',
    on: 'Unix socketpair, 64 B',
    each: MESSAGE_BYTES,
    open: (base) => socketStream(base, 'write'),
    baseline: ({ base, writeFd, msg }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += base.send(writeFd, msg, MESSAGE_BYTES);
      return sum;
    },
    iomux: ({ a, msg }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += a.trySend(msg) ?? 0;
      return sum;
    },
  }),
  row({
    name: 'Socket.recv',
    on: 'Unix socketpair, 64 B',
    each: MESSAGE_BYTES,
    open: (base) => socketStream(base, 'read'),
    baseline: ({ base, readFd, buf }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += base.recv(readFd, buf);
      return sum;
    },
    iomux: ({ b }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += b.recv(MESSAGE_BYTES).length;
      return sum;
    },
  }),
  row({
    name: 'Socket.recvInto',
    on: 'Unix socketpair, 64 B',
    each: MESSAGE_BYTES,
    open: (base) => socketStream(base, 'read'),
    baseline: ({ base, readFd, buf }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += base.recv(readFd, buf);
      return sum;
    },
    iomux: ({ b, buf }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += b.recvInto(buf);
      return sum;
    },
  }),
  row({
    name: 'Socket.tryRecvInto',
    on: 'Unix socketpair, 64 B',
    each: MESSAGE_BYTES,
    open: (base) => socketStream(base, 'read'),
    baseline: ({ base, readFd, buf }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += base.recv(readFd, buf);
      return sum;
    },
    iomux: ({ b, buf }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += b.tryRecvInto(buf) ?? 0;
      return sum;
    },
  }),
  row({
    name: 'Socket.accept',
    on: 'loopback TCP, connection pending',
    each: 1,
    open: (base) => new Listener(base),
    baseline: ({ base, fd, fds }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) {
        const conn = base.accept(fd);
        fds[i] = conn;
        if (conn >= 0) sum++;
      }
      return sum;
    },
    iomux: ({ sock, socks }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) {
        const [conn] = sock.accept();
        socks[i] = conn;
        sum++;
      }
      return sum;
    },
  }),
  row({
    name: 'Socket.tryAccept',
    on: 'loopback TCP, connection pending',
    each: 1,
    open: (base) => new Listener(base),
    baseline: ({ base, fd, fds }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) {
        const conn = base.accept(fd);
        fds[i] = conn;
        if (conn >= 0) sum++;
      }
      return sum;
    },
    iomux: ({ sock, socks }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) {
        const conn = sock.tryAccept();
        if (conn !== null) {
          socks[i] = conn;
          sum++;
        }
      }
      return sum;
    },
  }),
  row({
    name: 'write',
    on: 'pipe, 64 B',
    each: MESSAGE_BYTES,
    open: (base) => pipeStream(base, 'write'),
    baseline: ({ base, writeFd, msg }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += base.write(writeFd, msg, MESSAGE_BYTES);
      return sum;
    },
    iomux: ({ writeFd, msg }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += write(writeFd, msg);
      return sum;
    },
  }),
  row({
    name: 'read',
    on: 'pipe, 64 B',
    each: MESSAGE_BYTES,
    open: (base) => pipeStream(base, 'read'),
    baseline: ({ base, readFd, buf }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += base.read(readFd, buf);
      return sum;
    },
    iomux: ({ readFd, buf }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += read(readFd, buf);
      return sum;
    },
  }),
  row({
    name: 'Epoll.pollInto',
    on: '10 eventfds, 1 ready',
    each: 1,
    open: (base) => new Ready(base),
    baseline: ({ base, epfd, epollOut }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += base.epollWait(epfd, epollOut, 0);
      return sum;
    },
    iomux: ({ epoll }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += epoll.pollInto(0);
      return sum;
    },
  }),
  row({
    name: 'Epoll.poll',
    on: '10 eventfds, 1 ready',
    each: 1,
    open: (base) => new Ready(base),
    baseline: ({ base, epfd, epollOut }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += base.epollWait(epfd, epollOut, 0);
      return sum;
    },
    iomux: ({ epoll }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += epoll.poll(0).length;
      return sum;
    },
  }),
  row({
    name: 'Poll.pollInto',
    on: '10 eventfds, 1 ready',
    each: 1,
    open: (base) => new Ready(base),
    baseline: ({ base, pfds }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += base.poll(pfds, 0);
      return sum;
    },
    iomux: ({ poll }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += poll.pollInto(0);
      return sum;
    },
  }),
  row({
    name: 'Poll.poll',
    on: '10 eventfds, 1 ready',
    each: 1,
    open: (base) => new Ready(base),
    baseline: ({ base, pfds }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += base.poll(pfds, 0);
      return sum;
    },
    iomux: ({ poll }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += poll.poll(0).length;
      return sum;
    },
  }),
  row({
    name: 'select',
    on: '10 eventfds, 1 ready',
    each: 1,
    open: (base) => new Ready(base),
    baseline: ({ base, fdArray, selectOut }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += base.select(fdArray, selectOut, 0);
      return sum;
    },
    iomux: ({ fds }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += select(fds, NO_FDS, NO_FDS, 0)[0].length;
      return sum;
    },
  }),
  row({
    name: 'SelectSelector.select',
    on: '10 eventfds, 1 ready',
    each: 1,
    open: (base) => new Ready(base),
    baseline: ({ base, fdArray, selectOut }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += base.select(fdArray, selectOut, 0);
      return sum;
    },
    iomux: ({ selectSelector }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += selectSelector.select(0).length;
      return sum;
    },
  }),
  row({
    name: 'PollSelector.select',
    on: '10 eventfds, 1 ready',
    each: 1,
    open: (base) => new Ready(base),
    baseline: ({ base, pfds }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += base.poll(pfds, 0);
      return sum;
    },
    iomux: ({ pollSelector }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += pollSelector.select(0).length;
      return sum;
    },
  }),
  row({
    name: 'EpollSelector.select',
    on: '10 eventfds, 1 ready',
    each: 1,
    open: (base) => new Ready(base),
    baseline: ({ base, epfd, epollOut }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += base.epollWait(epfd, epollOut, 0);
      return sum;
    },
    iomux: ({ epollSelector }, calls) => {
      let sum = 0;
      for (let i = 0; i < calls; i++) sum += epollSelector.select(0).length;
      return sum;
    },
  }),
];

/**
 * One batch: `before`, the calls, `after`, then the check that every call
 * took its valid path. `between` runs right around the calls (a clock read,
 * callgrind's toggle) and returns what it measured.
 */
export function runBatch<T>(
  r: OpenRow,
  spec: Pick<CallRow, 'name' | 'each'>,
  side: Side,
  calls: number,
  between: (run: () => number) => T,
): T {
  r.before(side, calls);
  let got = Number.NaN;
  let out: T;
  try {
    out = between(() => {
      got = r.run(side, calls);
      return got;
    });
  } finally {
    r.after(side, calls);
  }
  if (got !== calls * spec.each) {
    throw new Error(
      `bench calls: ${spec.name} through the ${side} was off its valid path: ${calls} calls returned ${got} in all, not ${calls * spec.each}`,
    );
  }
  return out;
}

/** Runs `calls` calls of each side, in batches of at most `batch`, alternating: V8's warm-up. */
export function warmUp(r: OpenRow, spec: CallRow, calls: number, batch: number): void {
  for (let done = 0; done < calls; done += batch) {
    const n = Math.min(batch, calls - done);
    for (const side of ['baseline', 'iomux'] as const) runBatch(r, spec, side, n, (run) => run());
  }
}

function timed(run: () => number): number {
  const t0 = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - t0);
}

/** What one function costs per call through each side. */
export interface CallResult {
  /** The iomux function. */
  name: string;
  /** What it was called on. */
  on: string;
  /** Median ns per call through the baseline addon, over the rounds. */
  baselineNs: number;
  /** Median ns per call through iomux. */
  iomuxNs: number;
  /** Median over the rounds of iomux's ns per call minus the baseline's in the same round. */
  overheadNs: number;
  /** Each round's ns per call, in order. */
  baselineRoundsNs: number[];
  iomuxRoundsNs: number[];
  /** User-mode instructions per call under callgrind (calls-driver.ts), or null when not counted. */
  baselineInstr: number | null;
  iomuxInstr: number | null;
  /** iomuxInstr / baselineInstr, or null. */
  instrRatio: number | null;
}

/** How much `bench calls` measures. */
export interface CallsOptions {
  /** Rounds per function: each times one batch through each side. */
  rounds: number;
  /** Calls per batch (1..MAX_BATCH). */
  batch: number;
  /** Calls of each side before the first timed round (and before counting), for V8 to optimize. */
  warmupCalls: number;
  /** Counted batches of each side under callgrind (the median counts), or 0 not to count instructions. */
  countedBatches: number;
  /** Only these functions (default: all of CALLS). */
  names?: readonly string[];
  /** Called after each function's times (progress). */
  onTimed?: (result: CallResult) => void;
  /** Called when the count under callgrind starts (it takes a minute or more). */
  onCounting?: () => void;
}

/** The figures of one run, and why instructions were not counted (null when they were). */
export interface CallsBenchResult {
  results: CallResult[];
  instrNote: string | null;
}

function timeRow(spec: CallRow, base: BaselineAddon, options: CallsOptions): CallResult {
  const r = spec.open(base);
  try {
    warmUp(r, spec, options.warmupCalls, options.batch);
    const baselineRoundsNs: number[] = [];
    const iomuxRoundsNs: number[] = [];
    for (let round = 0; round < options.rounds; round++) {
      // Flipping the order each round puts either side first as often.
      const order = round % 2 === 0 ? (['baseline', 'iomux'] as const) : (['iomux', 'baseline'] as const);
      for (const side of order) {
        const ns = runBatch(r, spec, side, options.batch, timed) / options.batch;
        (side === 'baseline' ? baselineRoundsNs : iomuxRoundsNs).push(ns);
      }
    }
    return {
      name: spec.name,
      on: spec.on,
      baselineNs: median(baselineRoundsNs),
      iomuxNs: median(iomuxRoundsNs),
      overheadNs: median(iomuxRoundsNs.map((ns, i) => ns - (baselineRoundsNs[i] as number))),
      baselineRoundsNs,
      iomuxRoundsNs,
      baselineInstr: null,
      iomuxInstr: null,
      instrRatio: null,
    };
  } finally {
    r.close();
  }
}

/** Picks the rows named (all when `names` is undefined); an unknown name is an error. */
export function selectRows(names: readonly string[] | undefined): CallRow[] {
  if (names === undefined) return [...CALLS];
  return names.map((name) => {
    const found = CALLS.find((c) => c.name === name);
    if (found === undefined) throw new RangeError(`bench calls: no function '${name}' (see CALLS in calls.ts)`);
    return found;
  });
}

/**
 * Times every function (or those named) through both sides, then counts
 * their instructions under callgrind when `countedBatches` > 0 and valgrind
 * is installed.
 *
 * @throws when the baseline addon cannot be built (no C compiler or no Node
 *   headers), or a call leaves its valid path
 */
export function runCallsBench(options: CallsOptions): CallsBenchResult {
  if (!Number.isInteger(options.batch) || options.batch < 1 || options.batch > MAX_BATCH) {
    throw new RangeError(`bench calls: batch must be 1..${MAX_BATCH}, not ${options.batch}`);
  }
  const built = buildBaseline();
  if ('error' in built) throw new Error(`bench calls: no baseline addon: ${built.error}`);
  const base = loadBaseline(built.path);
  const rows = selectRows(options.names);
  const results: CallResult[] = [];
  for (const spec of rows) {
    const result = timeRow(spec, base, options);
    results.push(result);
    options.onTimed?.(result);
  }
  let instrNote: string | null = 'not asked for';
  if (options.countedBatches > 0) {
    options.onCounting?.();
    const counted = countInstructions(rows, built.path, options);
    instrNote = 'error' in counted ? counted.error : null;
    if (!('error' in counted)) {
      for (const result of results) {
        const c = counted.perCall.get(result.name);
        if (c === undefined) continue;
        result.baselineInstr = c.baseline;
        result.iomuxInstr = c.iomux;
        result.instrRatio = c.baseline > 0 ? c.iomux / c.baseline : null;
      }
    }
  }
  return { results, instrNote };
}

/** What calls-driver.js is told, as its one argument (JSON). */
export interface DriverArgs {
  baseline: string;
  marks: string;
  names: string[];
  warmupCalls: number;
  batch: number;
  countedBatches: number;
}

/** The dump label of the toggle cost, counted around batches that make no call. */
export const CALIBRATION_LABEL = 'calibration';

/** The dump label of one counted batch of one side of one function. */
export function dumpLabel(name: string, side: Side, batch: number): string {
  return `${name}|${side}|${batch}`;
}

/**
 * Runs calls-driver.js under callgrind: for each function, the warm-up, then
 * `countedBatches` batches of each side with collection on only during the
 * calls, each dumped under its own label. Per call: the median batch, less
 * the median calibration batch (the toggles' own cost), / the batch's calls.
 *
 * The median, not the sum: under valgrind V8's background compiler finishes
 * late, and a batch that installs optimized code or runs a major GC counts
 * tens of thousands of instructions more than the rest (with 2 batches of
 * 64 calls after 2,048 of warm-up, sums moved by up to 4x between runs).
 * What it leaves out of an allocating function is a young-generation
 * scavenge now and then: a few instructions per call, spread out.
 */
function countInstructions(
  rows: readonly CallRow[],
  baselinePath: string,
  options: CallsOptions,
): { perCall: Map<string, { baseline: number; iomux: number }> } | { error: string } {
  const unavailable = instrUnavailable();
  if (unavailable !== null) return { error: unavailable };
  const marks = buildMarks();
  if ('error' in marks) return { error: `no callgrind marks: ${marks.error}` };
  const dir = mkdtempSync(join(tmpdir(), 'iomux-calls-'));
  try {
    const args: DriverArgs = {
      baseline: baselinePath,
      marks: marks.path,
      names: rows.map((r) => r.name),
      warmupCalls: options.warmupCalls,
      batch: options.batch,
      countedBatches: options.countedBatches,
    };
    const driver = fileURLToPath(new URL('./calls-driver.js', import.meta.url));
    const r = spawnSync(
      'valgrind',
      [
        '--tool=callgrind',
        '--quiet',
        '--collect-atstart=no',
        '--separate-threads=yes',
        `--callgrind-out-file=${join(dir, 'calls.out')}`,
        process.execPath,
        driver,
        JSON.stringify(args),
      ],
      { encoding: 'utf8', timeout: 1_800_000 },
    );
    if (r.error !== undefined || r.status !== 0) {
      // The error's own line, not the stack under it or Node's version after it.
      const lines = r.stderr.trim().split('\n');
      const why = r.error?.message ?? lines.find((l) => /Error\b/.test(l)) ?? lines.at(-1) ?? `exit ${r.status}`;
      return { error: `the driver under callgrind failed: ${why}` };
    }
    const dumps = readDumps(dir, 'calls.out');
    const batches = (name: string, side: Side): number[] | null => {
      const counts: number[] = [];
      for (let b = 0; b < options.countedBatches; b++) {
        const count = dumps.get(dumpLabel(name, side, b));
        if (count === undefined) return null;
        counts.push(count);
      }
      return counts;
    };
    const calibration = batches(CALIBRATION_LABEL, 'baseline');
    if (calibration === null) return { error: 'callgrind wrote no calibration dump' };
    const toggles = median(calibration);
    const perCall = new Map<string, { baseline: number; iomux: number }>();
    for (const row of rows) {
      const baseline = batches(row.name, 'baseline');
      const iomux = batches(row.name, 'iomux');
      if (baseline === null || iomux === null) return { error: `callgrind wrote no dump for ${row.name}` };
      perCall.set(row.name, {
        baseline: (median(baseline) - toggles) / options.batch,
        iomux: (median(iomux) - toggles) / options.batch,
      });
    }
    return { perCall };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The main thread's instruction count of each dump in `dir`, by label:
 * callgrind writes dump k of thread t as `<name>.<k>-<tt>` (the main thread
 * is 01), with the label in its `desc: Trigger: Client Request:` line.
 */
export function readDumps(dir: string, name: string): Map<string, number> {
  const counts = new Map<string, number>();
  const pattern = new RegExp(`^${name.replaceAll('.', '\\.')}\\.\\d+-01$`);
  for (const file of readdirSync(dir)) {
    if (!pattern.test(file)) continue;
    const text = readFileSync(join(dir, file), 'utf8');
    const label = /^desc: Trigger: Client Request: (.*)$/m.exec(text)?.[1];
    if (label !== undefined) counts.set(label, callgrindSummary(text));
  }
  return counts;
}

/**
 * The batches calls-driver.ts counts, in the process that runs under
 * callgrind: for each function, warm up both sides, then count each side's
 * batches with collection on only around the calls, one dump per batch. The
 * calibration comes first: the same batches around a run that makes no call.
 */
export function countUnderCallgrind(base: BaselineAddon, marks: CallgrindMarks, args: DriverArgs): void {
  const counted = (run: () => number): number => {
    marks.toggle();
    const got = run();
    marks.toggle();
    return got;
  };
  const nothing: CallRow = row({
    name: CALIBRATION_LABEL,
    on: '',
    each: 0,
    open: () => ({ before() {}, after() {}, close() {} }),
    baseline: () => 0,
    iomux: () => 0,
  });
  const open = nothing.open(base);
  warmUp(open, nothing, args.warmupCalls, args.batch);
  for (let b = 0; b < args.countedBatches; b++) {
    runBatch(open, nothing, 'baseline', args.batch, counted);
    marks.dump(dumpLabel(CALIBRATION_LABEL, 'baseline', b));
  }
  for (const spec of selectRows(args.names)) {
    const r = spec.open(base);
    try {
      warmUp(r, spec, args.warmupCalls, args.batch);
      for (const side of ['baseline', 'iomux'] as const) {
        for (let b = 0; b < args.countedBatches; b++) {
          runBatch(r, spec, side, args.batch, counted);
          marks.dump(dumpLabel(spec.name, side, b));
        }
      }
    } finally {
      r.close();
    }
  }
}

/** `+12` / `-3`: a signed, rounded ns figure. */
function signed(ns: number): string {
  const n = Math.round(ns);
  return n > 0 ? `+${n.toLocaleString('en-US')}` : n.toLocaleString('en-US');
}

/**
 * The markdown table: per function, ns per call through each side, the
 * overhead, instructions per call of each side and their ratio.
 */
export function formatCallsTable(results: readonly CallResult[]): string {
  const rows = [
    '| function | on | baseline ns | iomux ns | overhead ns | baseline instr | iomux instr | instr ratio |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  const int = (n: number | null): string => (n === null ? 'n/a' : Math.round(n).toLocaleString('en-US'));
  for (const r of results) {
    rows.push(
      `| ${r.name} | ${r.on} | ${int(r.baselineNs)} | ${int(r.iomuxNs)} | ${signed(r.overheadNs)} | ${int(r.baselineInstr)} | ${int(r.iomuxInstr)} | ${r.instrRatio === null ? 'n/a' : `${r.instrRatio.toFixed(2)}x`} |`,
    );
  }
  return rows.join('\n');
}
