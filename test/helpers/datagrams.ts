/**
 * What the datagram tests share: the backends and run modes, a protocol
 * that records what its transport calls, and small waits.
 */
import { type Coroutine, sleep } from '../../src/coro/index.js';
import type { DatagramProtocol, DatagramTransport, EventLoop } from '../../src/loop/index.js';
import { type OSError, SOCK_DGRAM, Socket, type SocketAddress } from '../../src/sys/index.js';
import { trackClosable } from './fds.js';
import { BACKENDS } from './loops.js';

export type Mode = 'owning' | 'cooperative';
export const MODES: Mode[] = ['owning', 'cooperative'];
export const CASES = BACKENDS.flatMap((backend) => MODES.map((mode) => [backend, mode] as const));

/** Runs `main` to completion on `loop`: runUntilComplete, or `await loop.run`. */
export async function runIn<T>(loop: EventLoop, mode: Mode, main: () => Coroutine<T>): Promise<T> {
  if (mode === 'owning') return loop.runUntilComplete(main());
  return loop.run(main());
}

/** A non-blocking datagram socket, bound to `address` when given, closed at the end of the test. */
export function dgram(family: number, address?: SocketAddress): Socket {
  const sock = trackClosable(new Socket(family, SOCK_DGRAM));
  sock.setBlocking(false);
  if (address !== undefined) sock.bind(address);
  return sock;
}

/** Waits (bounded) until `done()` holds, one loop iteration at a time. */
export function* until(done: () => boolean, what: string, limitMs = 10_000): Coroutine<void> {
  const start = Date.now();
  while (!done()) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    yield* sleep(1);
  }
}

/** A protocol that records what the transport calls, in order. */
export class Recorder implements DatagramProtocol {
  readonly events: string[] = [];
  readonly datagrams: [string, SocketAddress | null][] = [];
  readonly errors: Error[] = [];
  transport: DatagramTransport | null = null;
  lost = 0;
  echo = false;

  connectionMade(transport: DatagramTransport): void {
    this.events.push('made');
    this.transport = transport;
  }
  datagramReceived(data: Buffer, address: SocketAddress | null): void {
    this.events.push('datagram');
    this.datagrams.push([data.toString(), address]);
    if (this.echo && address !== null) this.transport?.sendto(data, address);
  }
  errorReceived(exc: Error): void {
    this.events.push(`error:${(exc as OSError).code}`);
    this.errors.push(exc);
  }
  connectionLost(exc: Error | null): void {
    this.events.push(exc === null ? 'lost' : `lost:${exc.message}`);
    this.lost++;
  }
  pauseWriting(): void {
    this.events.push('pause');
  }
  resumeWriting(): void {
    this.events.push('resume');
  }
}

export function echoRecorder(): Recorder {
  const r = new Recorder();
  r.echo = true;
  return r;
}

/** Closes `transport` and waits until its connectionLost ran. */
export function* closed(transport: DatagramTransport, protocol: Recorder): Coroutine<void> {
  transport.close();
  yield* until(() => protocol.lost > 0, 'connectionLost');
}
