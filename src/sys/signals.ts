/**
 * Signals, the notes' fourth I/O model: signal handlers whose only work is
 * to record the signal and make an eventfd readable (so that an event loop
 * runs the real callback in its own iteration), and signal-driven I/O
 * (`O_ASYNC` with `F_SETSIG`), where the kernel queues a real-time signal
 * carrying the ready fd and its poll band.
 *
 * Dispositions belong to the process: a {@link SignalWatch} can only be made
 * on the main thread (a worker gets a TypeError with code
 * `ERR_WORKER_UNSUPPORTED_OPERATION`, as asyncio refuses
 * `add_signal_handler` off the main thread). When the main environment
 * ends, every watch restores what it replaced.
 *
 * Coexistence with `process.on('SIGINT', ...)`: iomux's handler chains to
 * the handler it replaced (libuv's, behind Node's listeners), and is put
 * back on top whenever Node's listeners change (libuv installs its handler
 * over ours when the first listener comes, and resets the signal to
 * SIG_DFL when the last goes) and before an event loop blocks. Both get
 * every signal, in either order of registration.
 *
 * @example
 * ```ts
 * import { SignalWatch, socketpair, POLLIN } from 'iomux/sys';
 * using watch = new SignalWatch();
 * const [a, b] = socketpair();
 * watch.setSignalDriven(b);           // SIGRTMIN, to this thread
 * a.send('x');
 * // watch.fileno() is readable now
 * const n = watch.read();             // 1
 * watch.recordFd(0) === b.fileno();   // true; watch.recordBand(0) & POLLIN
 * ```
 *
 * @module
 */
import { constants as osConstants } from 'node:os';
import { type FileLike, invalidArgType, invalidArgValue, outOfRange, toFd } from './args.js';
import type { NativeSignalWatch } from './binding.js';
import { native } from './native.js';

/** The first real-time signal the C library leaves to applications (34 with glibc). */
export const SIGRTMIN: number = native.SIGRTMIN;
/** The last real-time signal (64 on Linux). */
export const SIGRTMAX: number = native.SIGRTMAX;

/** A signal by name ('SIGINT') or number. */
export type SignalLike = NodeJS.Signals | number;

const SIGNALS = osConstants.signals as Readonly<Record<string, number>>;
const MAX_SIGNAL = 64;
// Faults V8 and Node catch themselves (WebAssembly traps, stack overflow).
const FAULTS = new Set([
  SIGNALS['SIGSEGV'],
  SIGNALS['SIGBUS'],
  SIGNALS['SIGFPE'],
  SIGNALS['SIGILL'],
  SIGNALS['SIGTRAP'],
]);

function nameOf(signo: number): string {
  for (const [name, value] of Object.entries(SIGNALS)) if (value === signo) return name;
  return String(signo);
}

/**
 * The number of a signal given by name or number.
 *
 * @throws {TypeError} ERR_UNKNOWN_SIGNAL for a name that is no signal; ERR_INVALID_ARG_TYPE for neither
 * @throws {RangeError} ERR_OUT_OF_RANGE for a number that is not an integer in [1, 64]
 */
export function signalNumber(signal: unknown): number {
  if (typeof signal === 'string') {
    const signo = Object.hasOwn(SIGNALS, signal) ? SIGNALS[signal] : undefined;
    if (signo === undefined) {
      throw Object.assign(new TypeError(`Unknown signal: ${signal}`), { code: 'ERR_UNKNOWN_SIGNAL' });
    }
    return signo;
  }
  if (typeof signal !== 'number') throw invalidArgType('signal', 'a signal name or number', signal);
  if (!Number.isInteger(signal)) throw outOfRange('signal', 'an integer', signal);
  if (signal < 1 || signal > MAX_SIGNAL) throw outOfRange('signal', `>= 1 and <= ${MAX_SIGNAL}`, signal);
  return signal;
}

/**
 * The number of a signal a handler may be installed for: not SIGKILL or
 * SIGSTOP (they cannot be caught), not the faults the runtime handles
 * itself, not the C library's reserved 32..SIGRTMIN-1.
 *
 * @throws what {@link signalNumber} throws
 * @throws {TypeError} ERR_INVALID_ARG_VALUE for a signal that cannot be handled
 */
export function catchableSignal(signal: unknown): number {
  const signo = signalNumber(signal);
  let why: string | null = null;
  if (signo === SIGNALS['SIGKILL'] || signo === SIGNALS['SIGSTOP']) why = 'cannot be caught';
  else if (FAULTS.has(signo)) why = 'is a synchronous fault the runtime handles itself';
  else if (signo > 31 && signo < SIGRTMIN) why = 'is reserved by the C library';
  if (why !== null) {
    throw invalidArgValue(
      `The "signal" argument must be a signal that can be handled. Received ${signo} (${nameOf(signo)}), which ${why}`,
    );
  }
  return signo;
}

/** Who handles a signal now (see {@link signalDisposition}). */
export interface SignalDisposition {
  /** 'default' (SIG_DFL), 'ignore' (SIG_IGN), 'iomux' (a SignalWatch's), 'handler' (someone else's: Node's, libuv's). */
  kind: 'default' | 'ignore' | 'iomux' | 'handler';
  /** The action's sa_flags (SA_RESETHAND, SA_SIGINFO...). */
  flags: number;
}

const KINDS = ['default', 'ignore', 'iomux', 'handler'] as const;

/**
 * The signal's current action, as sigaction(2) reports it.
 *
 * @throws what {@link signalNumber} throws
 */
export function signalDisposition(signal: SignalLike): SignalDisposition {
  const [kind, flags] = native.signalDisposition(signalNumber(signal));
  return { kind: KINDS[kind] ?? 'handler', flags };
}

/**
 * Puts iomux's handler back on every signal where something replaced it
 * (the replacement is chained to from then on). Event loops call it before
 * they block; call it after installing a handler with other native code.
 *
 * @returns how many signals had been replaced
 */
export function verifySignals(): number {
  return native.verifySignals();
}

// Node installs or resets libuv's handler inside process.on/off for a
// signal (its own newListener/removeListener listeners, registered at
// bootstrap, run before these): put ours back on top right after.
let openWatches = 0;
const onListenerChange = (event: string | symbol): void => {
  if (typeof event === 'string' && Object.hasOwn(SIGNALS, event)) native.verifySignals();
};

function watchOpened(): void {
  if (openWatches++ === 0) {
    process.on('newListener', onListenerChange);
    process.on('removeListener', onListenerChange);
  }
}

function watchClosed(): void {
  if (--openWatches === 0) {
    process.off('newListener', onListenerChange);
    process.off('removeListener', onListenerChange);
  }
}

/** SignalWatch options. */
export interface SignalWatchOptions {
  /** Records of signal-driven I/O kept between reads (rounded up to a power of two; default 1024, at most 65536). */
  capacity?: number;
}

const HEADER = 4;

/**
 * An eventfd that becomes readable when a signal this watch handles
 * arrives, or when a signal-driven fd reports readiness. Handlers record
 * and wake only; {@link read} collects what came, with no allocation.
 * Main thread only. At most 64 open at once.
 *
 * @example
 * ```ts
 * using watch = new SignalWatch();
 * watch.add('SIGINT');
 * // ... wait until watch.fileno() is readable ...
 * watch.read();
 * if (watch.pending('SIGINT')) console.log('interrupted');
 * ```
 */
export class SignalWatch implements Disposable {
  readonly #native: NativeSignalWatch;
  readonly #events: Int32Array;
  #closed = false;

  /**
   * @throws {TypeError} ERR_WORKER_UNSUPPORTED_OPERATION in a worker thread
   * @throws {RangeError} for a capacity outside [1, 65536]
   * @throws {OSError} EMFILE with 64 watches open; eventfd's errors
   */
  constructor(options: SignalWatchOptions = {}) {
    this.#native = new native.SignalWatch(options.capacity ?? 1024);
    this.#events = this.#native.events;
    watchOpened();
  }

  /** The eventfd: readable while something is left to {@link read}. */
  fileno(): number {
    return this.#native.fileno();
  }

  /**
   * Handles `signal` from now on (its previous handler, if a function, is
   * still called after ours). Adding one already added does nothing.
   *
   * @throws what {@link catchableSignal} throws
   * @throws {TypeError} ERR_INVALID_ARG_VALUE when another watch handles it, or it carries signal-driven I/O
   * @throws {OSError} EBADF once closed
   */
  add(signal: SignalLike): void {
    this.#native.add(catchableSignal(signal));
  }

  /**
   * Stops handling `signal`: the action it replaced comes back (SIG_DFL:
   * the default action works again).
   *
   * @returns whether this watch handled it
   * @throws what {@link signalNumber} throws
   */
  remove(signal: SignalLike): boolean {
    return this.#native.remove(signalNumber(signal));
  }

  /**
   * Signal-driven I/O on `fd`: sets O_ASYNC and O_NONBLOCK, and has the
   * kernel queue `signal` (a real-time signal) to this thread whenever fd
   * turns ready; each arrives as a record (fd, band) for {@link read}.
   * When the kernel's queue of real-time signals is full it sends SIGIO
   * instead, and the ring here may fill too: both set {@link overflow},
   * which means "records were lost: rescan every fd".
   *
   * @param signal - SIGRTMIN..SIGRTMAX (default SIGRTMIN)
   * @throws {RangeError} ERR_OUT_OF_RANGE for a negative fd or a signal outside SIGRTMIN..SIGRTMAX
   * @throws {TypeError} ERR_INVALID_ARG_VALUE when another watch uses the signal, or it has a handler
   * @throws {OSError} EBADF for an fd that is not open (or the watch is closed); fcntl's errors
   */
  setSignalDriven(fd: FileLike, signal: SignalLike = SIGRTMIN): void {
    this.#native.setSignalDriven(toFd(fd, 'fd'), signalNumber(signal));
  }

  /**
   * Undoes {@link setSignalDriven}: clears O_ASYNC (O_NONBLOCK stays).
   *
   * @returns whether fd was signal-driven through this watch
   */
  clearSignalDriven(fd: FileLike): boolean {
    return this.#native.clearSignalDriven(toFd(fd, 'fd'));
  }

  /**
   * Resets the eventfd and collects what arrived since the last read: the
   * signals ({@link pending}), the overflow flag, and the records.
   *
   * @returns the number of records ({@link recordFd}, {@link recordBand})
   * @throws {OSError} EBADF once closed
   */
  read(): number {
    return this.#native.drain();
  }

  /** After {@link read}: whether `signal` arrived (once or more). */
  pending(signal: SignalLike): boolean {
    const signo = typeof signal === 'number' ? signal : signalNumber(signal);
    if (!Number.isInteger(signo) || signo < 1 || signo > MAX_SIGNAL) return false;
    const word = this.#events[signo > 32 ? 1 : 0] as number;
    return ((word >>> ((signo - 1) & 31)) & 1) === 1;
  }

  /** After {@link read}: records were lost (ring full, or the kernel fell back to SIGIO). Rescan everything. */
  get overflow(): boolean {
    return this.#events[2] === 1;
  }

  /** After {@link read}: the fd of record `i` (0-based, below what read returned). */
  recordFd(i: number): number {
    return this.#events[HEADER + 2 * i] as number;
  }

  /** After {@link read}: the poll band of record `i` (POLLIN | POLLRDNORM...). */
  recordBand(i: number): number {
    return this.#events[HEADER + 2 * i + 1] as number;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Restores every action this watch replaced, clears O_ASYNC on its
   * signal-driven fds and closes the eventfd. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#native.close();
    watchClosed();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
