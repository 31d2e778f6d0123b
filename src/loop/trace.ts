/**
 * A record of what event loops did, kept in a ring buffer: each wait in the
 * selector (its timeout, the events it returned, the time blocked), each
 * callback or Task step (its name and duration), each socket operation
 * (issued, completed, bytes), and spans the program adds (a fetch's
 * phases). Opt in with `loop.setTrace(trace)`; export with
 * {@link LoopTrace.toChromeTrace} for Perfetto or chrome://tracing.
 *
 * The buffer is columns of typed arrays, so recording an event allocates
 * nothing; when it is full the oldest events give way ({@link LoopTrace.dropped}).
 *
 * @module
 */

/** Event kinds in the ring. */
const WAIT = 1;
const CALL = 2;
const OP_BEGIN = 3;
const OP_END = 4;
const SPAN = 5;
const IDLE = 6;

/** A record's numbers: kind | lane << 3, ts, dur, and three the kind gives a meaning. */
const STRIDE = 6;
const HEAD = 0;
const TS = 1;
const DUR = 2;
const A = 3;
const B = 4;
const C = 5;

/** Socket operations, as the ring stores them (their index). */
export const TRACE_OPS = [
  'recv',
  'recvInto',
  'sendAll',
  'accept',
  'connect',
  'startTls',
  'recvfrom',
  'recvfromInto',
  'sendto',
] as const;

/** A socket operation's name in a trace. */
export type TraceOp = (typeof TRACE_OPS)[number];

/** How a traced socket operation ended. */
export type TraceOutcome = 'ok' | 'error' | 'cancelled';
const OUTCOMES: readonly TraceOutcome[] = ['ok', 'error', 'cancelled'];

/** What ran, for a callback event: prefixes of its label in the decoded events. */
export const CALL_HANDLE = 0;
export const CALL_TASK = 1;
export const CALL_TASK_DONE = 2;
export const CALL_FUTURE_DONE = 3;
export const CALL_OTHER = 4;
const CALL_PREFIX = ['', 'Task ', 'done callbacks of Task ', 'done callbacks of a Future', ''];

/** Distinct callback, span and category names kept at least; a trace keeps as many as its capacity, the rest are recorded as '<other>'. */
const MIN_NAMES = 4096;

/** Default capacity: 65,536 events (48 bytes each: 3 MB). */
export const DEFAULT_TRACE_CAPACITY = 65_536;

/** One wait in a selector: `ts` when it began, `dur` ms blocked. */
export interface TraceWait {
  kind: 'wait';
  lane: number;
  ts: number;
  dur: number;
  /** The timeout it was given, ms; null for none (wait until something is ready). */
  timeoutMs: number | null;
  /** Ready fds it returned (on io_uring: its readiness polls). */
  events: number;
}

/** One callback or Task step the loop ran. */
export interface TraceCall {
  kind: 'call';
  lane: number;
  ts: number;
  dur: number;
  name: string;
}

/** Cooperative mode: the loop asleep in Node's event loop (libuv), waiting for its fds or timers. */
export interface TraceIdle {
  kind: 'idle';
  lane: number;
  ts: number;
  dur: number;
}

/** A socket operation, from issue to completion (`dur` null while it has not completed). */
export interface TraceOperation {
  kind: 'op';
  lane: number;
  /** When it was issued. */
  ts: number;
  dur: number | null;
  op: TraceOp;
  fd: number;
  /** Bytes moved (received, sent); for accept the new socket's fd; else 0. */
  bytes: number;
  outcome: TraceOutcome | null;
}

/** A span added with {@link LoopTrace.span}. */
export interface TraceSpan {
  kind: 'span';
  lane: number;
  ts: number;
  dur: number;
  name: string;
  category: string;
  /** Spans of one group nest in one track (a page's phases under the page). */
  group: number;
}

/** An event of a trace, decoded. Times are ms on the loop's clock (performance.now()). */
export type TraceEvent = TraceWait | TraceIdle | TraceCall | TraceOperation | TraceSpan;

/** One event of the Chrome trace event format. */
export interface ChromeTraceEvent {
  name: string;
  cat?: string;
  ph: string;
  /** Microseconds. */
  ts?: number;
  dur?: number;
  pid: number;
  tid: number;
  id?: string;
  args?: Record<string, unknown>;
}

/** The Chrome trace event format's JSON object form: what Perfetto and chrome://tracing open. */
export interface ChromeTrace {
  traceEvents: ChromeTraceEvent[];
  displayTimeUnit: 'ms';
  otherData: { capacity: number; recorded: number; dropped: number };
}

/** Options of a {@link LoopTrace}. */
export interface LoopTraceOptions {
  /** Events kept (the newest), 48 bytes each; an integer from 16 to 16,777,216. Default 65,536. */
  capacity?: number;
}

/** Options of {@link LoopTrace.span}. */
export interface SpanOptions {
  /** Default 'span'. */
  category?: string;
  /** Spans sharing a group nest in one track: give a page's phases its page's group. Default: a new one. */
  group?: number;
  /** The lane (see {@link LoopTrace.addLane}) it belongs to; default 0, the program's own. */
  lane?: number;
}

/**
 * The ring buffer of loop events. One trace can serve several loops (each
 * is a lane: a track of its own in the viewer).
 *
 * @example
 * ```ts
 * const trace = new LoopTrace();
 * loop.setTrace(trace);
 * loop.runUntilComplete(main());
 * writeFileSync('loop.json', JSON.stringify(trace.toChromeTrace()));
 * ```
 */
export class LoopTrace {
  /** Events kept at most. */
  readonly capacity: number;
  // The events, a record of STRIDE numbers each (kind and lane, ts, dur,
  // then three fields the kind gives a meaning): one record is one or two
  // cache lines, where a column per field would touch seven per event.
  readonly #rec: Float64Array;
  #head = 0;
  #count = 0;
  #dropped = 0;
  readonly #names: string[] = ['<other>'];
  readonly #nameIds = new Map<string, number>([['<other>', 0]]);
  readonly #lanes: string[] = ['main'];
  #nextId = 1;

  /**
   * @throws {TypeError} / {RangeError} ERR_OUT_OF_RANGE for a capacity that is not an integer in [16, 2^24]
   */
  constructor(options: LoopTraceOptions = {}) {
    const capacity = options.capacity ?? DEFAULT_TRACE_CAPACITY;
    if (typeof capacity !== 'number') {
      throw Object.assign(new TypeError(`capacity must be a number, got ${typeof capacity}`), {
        code: 'ERR_INVALID_ARG_TYPE',
      });
    }
    if (!Number.isInteger(capacity) || capacity < 16 || capacity > 1 << 24) {
      throw Object.assign(new RangeError(`capacity must be an integer from 16 to 16777216, got ${capacity}`), {
        code: 'ERR_OUT_OF_RANGE',
      });
    }
    this.capacity = capacity;
    this.#rec = new Float64Array(capacity * STRIDE);
  }

  /** Events held now (at most {@link capacity}). */
  get size(): number {
    return this.#count;
  }

  /** Events overwritten because the ring was full. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Forgets every event (lanes and names stay). */
  clear(): void {
    this.#head = 0;
    this.#count = 0;
    this.#dropped = 0;
  }

  /**
   * A new lane: a track of its own (a loop, a thread of work) named `label`.
   * Lane 0 is 'main', the program's own.
   *
   * @throws {RangeError} past 65,535 lanes
   */
  addLane(label: string): number {
    if (this.#lanes.length > 0xffff) throw new RangeError('a trace holds at most 65536 lanes');
    this.#lanes.push(String(label));
    return this.#lanes.length - 1;
  }

  /** The lanes' labels, by lane number. */
  get lanes(): readonly string[] {
    return this.#lanes;
  }

  /**
   * Records a span from `startMs` to `endMs` (the loop's clock:
   * performance.now()), e.g. a fetch's connect phase.
   *
   * @returns its group (pass it to the spans nested in it)
   * @throws {TypeError} for times that are not finite numbers, or end before start
   * @throws {RangeError} ERR_OUT_OF_RANGE for a lane the trace does not have
   */
  span(name: string, startMs: number, endMs: number, options: SpanOptions = {}): number {
    const lane = options.lane ?? 0;
    if (!Number.isInteger(lane) || lane < 0 || lane >= this.#lanes.length) {
      throw Object.assign(new RangeError(`lane ${lane} is not one of the trace's`), { code: 'ERR_OUT_OF_RANGE' });
    }
    if (!Number.isFinite(startMs) || !Number.isFinite(endMs) || endMs < startMs) {
      throw Object.assign(new TypeError(`a span needs finite times with end >= start, got ${startMs}..${endMs}`), {
        code: 'ERR_INVALID_ARG_VALUE',
      });
    }
    const group = options.group ?? this.newGroup();
    const i = this.#slot(SPAN, lane, startMs);
    this.#rec[i + DUR] = endMs - startMs;
    this.#rec[i + A] = this.#nameId(String(name));
    this.#rec[i + B] = this.#nameId(options.category ?? 'span');
    this.#rec[i + C] = group;
    return group;
  }

  /** A fresh group number for {@link span}. */
  newGroup(): number {
    return this.#nextId++;
  }

  /** @internal A wait in a selector on `lane`: begun at `ts`, blocked `dur` ms. */
  wait(lane: number, ts: number, dur: number, timeoutMs: number | null, events: number): void {
    const i = this.#slot(WAIT, lane, ts);
    this.#rec[i + DUR] = dur;
    this.#rec[i + A] = timeoutMs === null ? -1 : timeoutMs;
    this.#rec[i + B] = events;
  }

  /** @internal Cooperative mode: the loop on `lane` slept in Node's event loop from `ts`, `dur` ms. */
  idle(lane: number, ts: number, dur: number): void {
    const i = this.#slot(IDLE, lane, ts);
    this.#rec[i + DUR] = dur;
  }

  /** @internal A callback or Task step (`what`: CALL_*) labelled `label` that ran `dur` ms from `ts`. */
  call(lane: number, ts: number, dur: number, what: number, label: string): void {
    const i = this.#slot(CALL, lane, ts);
    this.#rec[i + DUR] = dur;
    this.#rec[i + A] = this.#nameId(label);
    this.#rec[i + B] = what;
  }

  /** @internal A socket operation issued; returns its id for {@link opEnd}. */
  opBegin(lane: number, ts: number, op: number, fd: number): number {
    const id = this.#nextId++;
    const i = this.#slot(OP_BEGIN, lane, ts);
    this.#rec[i + A] = id;
    this.#rec[i + B] = fd;
    this.#rec[i + C] = op;
    return id;
  }

  /** @internal The operation `id` completed (outcome: 0 ok, 1 error, 2 cancelled). */
  opEnd(lane: number, ts: number, id: number, bytes: number, outcome: number): void {
    const i = this.#slot(OP_END, lane, ts);
    this.#rec[i + A] = id;
    this.#rec[i + B] = bytes;
    this.#rec[i + C] = outcome;
  }

  /** The events held, oldest first; an operation's completion is folded into its issue. */
  events(): TraceEvent[] {
    const out: TraceEvent[] = [];
    const pending = new Map<number, TraceOperation>();
    const cap = this.capacity;
    for (let k = 0, i = (this.#head - this.#count + cap) % cap; k < this.#count; k++, i = i + 1 === cap ? 0 : i + 1) {
      const r = this.#rec;
      const o = i * STRIDE;
      const head = r[o + HEAD] as number;
      const lane = head >>> 3;
      const ts = r[o + TS] as number;
      const dur = r[o + DUR] as number;
      const a = r[o + A] as number;
      const b = r[o + B] as number;
      const c = r[o + C] as number;
      switch (head & 7) {
        case WAIT:
          out.push({ kind: 'wait', lane, ts, dur, timeoutMs: a < 0 ? null : a, events: b });
          break;
        case IDLE:
          out.push({ kind: 'idle', lane, ts, dur });
          break;
        case CALL:
          out.push({ kind: 'call', lane, ts, dur, name: `${CALL_PREFIX[b] ?? ''}${this.#names[a] as string}` });
          break;
        case OP_BEGIN: {
          const op: TraceOperation = {
            kind: 'op',
            lane,
            ts,
            dur: null,
            op: TRACE_OPS[c] as TraceOp,
            fd: b,
            bytes: 0,
            outcome: null,
          };
          pending.set(a, op);
          out.push(op);
          break;
        }
        case OP_END: {
          const op = pending.get(a);
          // The issue was overwritten: the completion alone says too little.
          if (op === undefined) break;
          pending.delete(a);
          op.dur = ts - op.ts;
          op.bytes = b;
          op.outcome = OUTCOMES[c] as TraceOutcome;
          break;
        }
        case SPAN:
          out.push({
            kind: 'span',
            lane,
            ts,
            dur,
            name: this.#names[a] as string,
            category: this.#names[b] as string,
            group: c,
          });
          break;
      }
    }
    return out;
  }

  /**
   * The events in the Chrome trace event format (JSON object form): one
   * process, a thread per lane; waits and callbacks as complete events
   * ('X'), socket operations and span groups as nestable async events
   * ('b'/'e'). Times in microseconds.
   */
  toChromeTrace(): ChromeTrace {
    const pid = process.pid;
    const traceEvents: ChromeTraceEvent[] = this.#lanes.map((label, tid) => ({
      name: 'thread_name',
      ph: 'M',
      pid,
      tid,
      args: { name: label },
    }));
    const us = (ms: number): number => Math.round(ms * 1000 * 1000) / 1000;
    // A complete event ('X'): from ts, dur long.
    const complete = (name: string, cat: string, e: { lane: number; ts: number; dur: number }): ChromeTraceEvent => ({
      name,
      cat,
      ph: 'X',
      ts: us(e.ts),
      dur: us(e.dur),
      pid,
      tid: e.lane,
    });
    // Nestable async events: a begin and an end each, with the span's length
    // for ordering them (below).
    const spans: { event: ChromeTraceEvent; at: number; dur: number; seq: number }[] = [];
    const asyncPair = (
      name: string,
      cat: string,
      id: string,
      lane: number,
      ts: number,
      dur: number,
      args: [Record<string, unknown> | undefined, Record<string, unknown> | undefined],
    ): void => {
      const [bArgs, eArgs] = args;
      const base = { name, cat, pid, tid: lane, id };
      const seq = spans.length;
      spans.push({ event: { ...base, ph: 'b', ts: us(ts), ...(bArgs ? { args: bArgs } : {}) }, at: ts, dur, seq });
      spans.push({
        event: { ...base, ph: 'e', ts: us(ts + dur), ...(eArgs ? { args: eArgs } : {}) },
        at: ts + dur,
        dur,
        seq,
      });
    };
    const events = this.events();
    // An operation still in flight ends, in the export, with the last event.
    const last = events.reduce((end, e) => Math.max(end, e.ts + (e.dur ?? 0)), 0);
    let ops = 0;
    for (const e of events) {
      switch (e.kind) {
        case 'wait':
          traceEvents.push({ ...complete('wait', 'loop', e), args: { timeoutMs: e.timeoutMs, events: e.events } });
          break;
        case 'idle':
          traceEvents.push(complete("idle in Node's event loop", 'loop', e));
          break;
        case 'call':
          traceEvents.push(complete(e.name, 'callback', e));
          break;
        case 'op': {
          const pending = e.dur === null;
          asyncPair(`${e.op} fd ${e.fd}`, 'socket', `op${ops++}`, e.lane, e.ts, pending ? last - e.ts : (e.dur ?? 0), [
            { fd: e.fd },
            pending ? { outcome: 'pending' } : { bytes: e.bytes, outcome: e.outcome },
          ]);
          break;
        }
        case 'span':
          asyncPair(e.name, e.category, `g${e.group}`, e.lane, e.ts, e.dur, [undefined, undefined]);
          break;
      }
    }
    // In time order, so that viewers nest a group's spans (a page and its
    // phases). At one instant: first the ends of spans begun before it
    // (inner, shorter ones first), then the begins (outer, longer ones
    // first), then the ends of the spans of no length just begun (last
    // begun, first ended).
    const rank = (s: (typeof spans)[number]): number => (s.event.ph === 'b' ? 1 : s.dur > 0 ? 0 : 2);
    spans.sort((x, y) => {
      if (x.at !== y.at) return x.at - y.at;
      const r = rank(x) - rank(y);
      if (r !== 0) return r;
      if (rank(x) === 0) return x.dur - y.dur;
      if (rank(x) === 1) return y.dur - x.dur || x.seq - y.seq;
      return y.seq - x.seq;
    });
    for (const s of spans) traceEvents.push(s.event);
    return {
      traceEvents,
      displayTimeUnit: 'ms',
      otherData: { capacity: this.capacity, recorded: this.#count, dropped: this.#dropped },
    };
  }

  #slot(kind: number, lane: number, ts: number): number {
    const i = this.#head;
    this.#head = i + 1 === this.capacity ? 0 : i + 1;
    if (this.#count === this.capacity) this.#dropped++;
    else this.#count++;
    const o = i * STRIDE;
    const r = this.#rec;
    r[o + HEAD] = kind | (lane << 3);
    r[o + TS] = ts;
    r[o + DUR] = 0;
    r[o + A] = 0;
    r[o + B] = 0;
    r[o + C] = 0;
    return o;
  }

  #nameId(name: string): number {
    const id = this.#nameIds.get(name);
    if (id !== undefined) return id;
    if (this.#names.length >= Math.max(MIN_NAMES, this.capacity)) return 0;
    this.#names.push(name);
    this.#nameIds.set(name, this.#names.length - 1);
    return this.#names.length - 1;
  }
}
