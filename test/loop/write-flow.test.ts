/**
 * The transports' write flow control (write-flow.ts): asyncio's water marks
 * and when the protocol hears pauseWriting / resumeWriting. The transports'
 * own tests show it over real sockets (transports.test.ts, datagram.test.ts).
 */
import { describe, expect, it } from 'vitest';

import { DEFAULT_HIGH_WATER, WriteFlow } from '../../src/loop/write-flow.js';

function recorder(): { calls: string[]; pauseWriting(): void; resumeWriting(): void } {
  const calls: string[] = [];
  return { calls, pauseWriting: () => calls.push('pause'), resumeWriting: () => calls.push('resume') };
}

describe('WriteFlow', () => {
  it('pauses once above the high mark and resumes once at or below the low one', () => {
    const flow = new WriteFlow(() => {});
    const p = recorder();
    expect(flow.limits()).toEqual([DEFAULT_HIGH_WATER / 4, DEFAULT_HIGH_WATER]);
    flow.grew(DEFAULT_HIGH_WATER, p); // at the mark: not above it
    flow.grew(DEFAULT_HIGH_WATER + 1, p);
    flow.grew(DEFAULT_HIGH_WATER * 2, p);
    flow.shrank(DEFAULT_HIGH_WATER / 4 + 1, p);
    flow.shrank(DEFAULT_HIGH_WATER / 4, p);
    flow.shrank(0, p);
    expect(p.calls).toEqual(['pause', 'resume']);
  });

  it('new marks pause or resume at once for what is buffered; asyncio defaults for the one left out', () => {
    const flow = new WriteFlow(() => {});
    const p = recorder();
    flow.set(100, 10, 500, p);
    expect(p.calls).toEqual(['pause']);
    flow.set(1000, undefined, 500, p); // low = 250: still above it
    expect([flow.limits(), p.calls]).toEqual([[250, 1000], ['pause']]);
    flow.set(undefined, 600, 500, p); // high = 2400: resume
    expect([flow.limits(), p.calls]).toEqual([
      [600, 2400],
      ['pause', 'resume'],
    ]);
    flow.set(undefined, undefined, 0, p);
    expect(flow.limits()).toEqual([DEFAULT_HIGH_WATER / 4, DEFAULT_HIGH_WATER]);
  });

  it('bad marks are refused with nothing changed', () => {
    const flow = new WriteFlow(() => {});
    const p = recorder();
    for (const [high, low, code] of [
      [10, 20, 'ERR_OUT_OF_RANGE'],
      [-1, undefined, 'ERR_OUT_OF_RANGE'],
      [1.5, 1, 'ERR_OUT_OF_RANGE'],
      ['big', undefined, 'ERR_INVALID_ARG_TYPE'],
      [undefined, null, 'ERR_INVALID_ARG_TYPE'],
    ] as const) {
      expect(() => flow.set(high as never, low as never, 0, p)).toThrow(
        expect.objectContaining({ code }) as unknown as Error,
      );
    }
    expect([flow.limits(), flow.paused, p.calls]).toEqual([[DEFAULT_HIGH_WATER / 4, DEFAULT_HIGH_WATER], false, []]);
  });

  it('a protocol whose pauseWriting or resumeWriting throws is reported, and the state still moves', () => {
    const reports: string[] = [];
    const flow = new WriteFlow((message, exception) => reports.push(`${message}: ${String(exception)}`));
    const bad = {
      pauseWriting: () => {
        throw new Error('no pause');
      },
      resumeWriting: () => {
        throw new Error('no resume');
      },
    };
    flow.grew(DEFAULT_HIGH_WATER + 1, bad);
    expect(flow.paused).toBe(true);
    flow.shrank(0, bad);
    expect(flow.paused).toBe(false);
    expect(reports).toEqual([
      'protocol.pauseWriting() failed: Error: no pause',
      'protocol.resumeWriting() failed: Error: no resume',
    ]);
  });
});
