import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';

import { formatRequest, HttpParseError, parseHttpUrl, ResponseParser } from '../../src/http/index.js';

function parse(text: string | Buffer, options = {}, split?: number[]): ResponseParser {
  const bytes = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
  const parser = new ResponseParser(options);
  let at = 0;
  for (const size of split ?? [bytes.length]) {
    parser.feed(bytes.subarray(at, at + size));
    at += size;
  }
  if (at < bytes.length) parser.feed(bytes.subarray(at));
  if (!parser.done) parser.end();
  return parser;
}

const CHUNKED =
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n' +
  '5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Sum: 11\r\n\r\n';

describe('ResponseParser', () => {
  it('Content-Length: status, reason, case-insensitive and repeated fields, body', () => {
    const p = parse(
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nX-Empty:\r\n\r\nhello',
    );
    expect(p.head?.status).toBe(200);
    expect(p.head?.reason).toBe('OK');
    expect(p.head?.version).toBe('1.1');
    expect(p.head?.headers.get('CONTENT-LENGTH')).toBe('5');
    expect(p.head?.headers.getAll('set-cookie')).toEqual(['a=1', 'b=2']);
    expect(p.head?.headers.get('x-empty')).toBe('');
    expect(p.body().toString()).toBe('hello');
    expect(p.head?.headers.toObject()).toEqual({ 'content-length': '5', 'set-cookie': 'a=1, b=2', 'x-empty': '' });
    expect(p.head?.headers.raw()[1]).toEqual(['Set-Cookie', 'a=1']);
  });

  it('a field named __proto__ is an ordinary field of toObject(), not its prototype', () => {
    const p = parse('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n__proto__: x\r\n\r\n');
    const headers = p.head?.headers.toObject() ?? {};
    expect(Object.getPrototypeOf(headers)).toBe(Object.prototype);
    expect(Object.keys(headers)).toEqual(['content-length', '__proto__']);
    expect(Object.getOwnPropertyDescriptor(headers, '__proto__')?.value).toBe('x');
    // Nor is a field named like something every object inherits.
    const q = parse('HTTP/1.1 200 OK\r\nConstructor: c\r\nconstructor: d\r\nContent-Length: 0\r\n\r\n');
    expect(q.head?.headers.toObject()).toEqual({ constructor: 'c, d', 'content-length': '0' });
  });

  it('ends the head at its first empty line: bare LF, reason-less, past the first 4 KiB looked at', () => {
    // A bare-LF head whose body holds CR LF CR LF: the body is intact.
    const lf = parse('HTTP/1.0 200 OK\nContent-Length: 8\n\nab\r\n\r\ncd');
    expect(lf.head?.version).toBe('1.0');
    expect(lf.body().toString()).toBe('ab\r\n\r\ncd');
    // A 10 KiB head, whole and cut around the 4 KiB first looked at, and in 997-byte pieces.
    const long = `HTTP/1.1 200\r\nX-Long: ${'v'.repeat(10_000)}\r\nContent-Length: 2\r\n\r\nok`;
    for (const split of [undefined, [4095], [4096], [4097], Array<number>(11).fill(997)]) {
      const p = parse(long, {}, split);
      expect(p.head?.reason).toBe('');
      expect(p.head?.headers.get('x-long')?.length).toBe(10_000);
      expect(p.body().toString()).toBe('ok');
    }
  });

  it('counts the head limit without the final line end, the same in every split', () => {
    const head = 'HTTP/1.1 200 OK\r\nContent-Length: 0';
    const full = `${head}\r\n\r\n`;
    for (const split of [undefined, Array<number>(full.length).fill(1)]) {
      expect(parse(full, { maxHeaderBytes: head.length }, split).done).toBe(true);
      expect(() => parse(full, { maxHeaderBytes: head.length - 1 }, split)).toThrow(
        expect.objectContaining({ code: 'ERR_HTTP_HEADERS_TOO_LARGE' }),
      );
    }
  });

  it('trims only SP and HTAB around a field value: obs-text such as NBSP stays', () => {
    const p = parse('HTTP/1.1 200 OK\r\nX-A: \t\xa0v\xa0 \t\r\nContent-Length: 0\r\n\r\n');
    expect(p.head?.headers.get('x-a')).toBe('\xa0v\xa0');
  });

  it('takes status codes 100 to 599 and a reason with HTAB and obs-text', () => {
    const p = parse('HTTP/1.1 599 a\tb \xe9\r\nContent-Length: 0\r\n\r\n');
    expect(p.head?.status).toBe(599);
    expect(p.head?.reason).toBe('a\tb \xe9');
    const q = parse('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    expect(q.interimResponses).toBe(1);
  });

  it('chunked with extensions and trailers', () => {
    const p = parse(CHUNKED);
    expect(p.body().toString()).toBe('hello world');
    expect(p.trailers.get('x-sum')).toBe('11');
  });

  it('close-delimited bodies (HTTP/1.0) end with the connection', () => {
    const p = new ResponseParser();
    p.feed(Buffer.from('HTTP/1.0 200 OK\r\nServer: x\r\n\r\nsome '));
    p.feed(Buffer.from('body'));
    expect(p.done).toBe(false);
    p.end();
    expect(p.done).toBe(true);
    expect(p.body().toString()).toBe('some body');
  });

  it('skips 1xx interim responses; HEAD, 204 and 304 have no body', () => {
    const p = parse(
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
    );
    expect(p.interimResponses).toBe(2);
    expect(p.body().toString()).toBe('ok');
    for (const [status, method] of [
      [200, 'HEAD'],
      [204, 'GET'],
      [304, 'GET'],
    ] as const) {
      const q = new ResponseParser({ method });
      q.feed(Buffer.from(`HTTP/1.1 ${status} X\r\nContent-Length: 10\r\n\r\n`));
      expect(q.done).toBe(true);
      expect(q.body().length).toBe(0);
    }
  });

  it('keep-alive: the bytes after the response are left over for the next one', () => {
    const p = new ResponseParser();
    p.feed(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 204 No Content\r\n\r\n'));
    expect(p.done).toBe(true);
    const next = new ResponseParser();
    next.feed(p.leftover());
    expect(next.done).toBe(true);
    expect(next.head?.status).toBe(204);
  });

  it('gives the same result for every split, down to one byte at a time', () => {
    const full = Buffer.from(CHUNKED, 'latin1');
    for (let cut = 1; cut < full.length; cut++) {
      const p = parse(full, {}, [cut]);
      expect(p.body().toString()).toBe('hello world');
    }
    const p = parse(full, {}, Array(full.length).fill(1));
    expect(p.body().toString()).toBe('hello world');
    expect(p.trailers.get('x-sum')).toBe('11');
  });

  it.each([
    ['HTTP/2 200 OK\r\n\r\n', 'ERR_HTTP_BAD_STATUS_LINE'],
    ['HTTP/1.1 20 OK\r\n\r\n', 'ERR_HTTP_BAD_STATUS_LINE'],
    ['HTTP/1.1 200OK\r\n\r\n', 'ERR_HTTP_BAD_STATUS_LINE'],
    ['HTTP/1.1 2x0 OK\r\n\r\n', 'ERR_HTTP_BAD_STATUS_LINE'],
    ['HTTP/1.x 200 OK\r\n\r\n', 'ERR_HTTP_BAD_STATUS_LINE'],
    ['HTTP/1.1 200 O\rK\r\n\r\n', 'ERR_HTTP_BAD_STATUS_LINE'],
    // RFC 9112 4: reason-phrase is HTAB, SP, VCHAR and obs-text; RFC 9110 15: codes are 100-599.
    ['HTTP/1.1 200 O\0K\r\nContent-Length: 0\r\n\r\n', 'ERR_HTTP_BAD_STATUS_LINE'],
    ['HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n', 'ERR_HTTP_BAD_STATUS_LINE'],
    ['HTTP/1.1 200 OK\x7f\r\nContent-Length: 0\r\n\r\n', 'ERR_HTTP_BAD_STATUS_LINE'],
    ['HTTP/1.1 000 OK\r\nContent-Length: 0\r\n\r\n', 'ERR_HTTP_BAD_STATUS_LINE'],
    ['HTTP/1.1 099 OK\r\nContent-Length: 0\r\n\r\n', 'ERR_HTTP_BAD_STATUS_LINE'],
    ['HTTP/1.1 600 OK\r\nContent-Length: 0\r\n\r\n', 'ERR_HTTP_BAD_STATUS_LINE'],
    ['HTTP/1.1 999 OK\r\nContent-Length: 0\r\n\r\n', 'ERR_HTTP_BAD_STATUS_LINE'],
    ['\r\n\r\n', 'ERR_HTTP_BAD_STATUS_LINE'],
    ['garbage\r\n\r\n', 'ERR_HTTP_BAD_STATUS_LINE'],
    ['HTTP/1.1 200 OK\r\nBad Header\r\n\r\n', 'ERR_HTTP_BAD_HEADER'],
    ['HTTP/1.1 200 OK\r\n: x\r\n\r\n', 'ERR_HTTP_BAD_HEADER'],
    // field-vchar (RFC 9110 5.5): no controls but HTAB, not even at an end where OWS is trimmed.
    ['HTTP/1.1 200 OK\r\nX-A: v\x01v\r\nContent-Length: 0\r\n\r\n', 'ERR_HTTP_BAD_HEADER'],
    ['HTTP/1.1 200 OK\r\nX-A: v\x7f\r\nContent-Length: 0\r\n\r\n', 'ERR_HTTP_BAD_HEADER'],
    ['HTTP/1.1 200 OK\r\nX-A: v\r\r\nContent-Length: 0\r\n\r\n', 'ERR_HTTP_BAD_HEADER'],
    ['HTTP/1.1 200 OK\r\nX-A:\x0bv\r\nContent-Length: 0\r\n\r\n', 'ERR_HTTP_BAD_HEADER'],
    ['HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', 'ERR_HTTP_BAD_CONTENT_LENGTH'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 'ERR_HTTP_BAD_CONTENT_LENGTH'],
    [
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n',
      'ERR_HTTP_BAD_CONTENT_LENGTH',
    ],
    ['HTTP/1.1 204 OK\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n', 'ERR_HTTP_BAD_CONTENT_LENGTH'],
    ['HTTP/1.1 204 No Content\r\nContent-Length: +1\r\n\r\n', 'ERR_HTTP_BAD_CONTENT_LENGTH'],
    ['HTTP/1.1 304 Not Modified\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 'ERR_HTTP_BAD_CONTENT_LENGTH'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 'ERR_HTTP_BAD_CHUNK'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;a\x00\r\nx\r\n0\r\n\r\n', 'ERR_HTTP_BAD_CHUNK'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\nx\r\n0\r\n\r\n', 'ERR_HTTP_BAD_CHUNK'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;a=\rb\r\nx\r\n0\r\n\r\n', 'ERR_HTTP_BAD_CHUNK'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY', 'ERR_HTTP_BAD_CHUNK'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort', 'ERR_HTTP_INCOMPLETE'],
    ['HTTP/1.1 200 OK\r\nContent-Le', 'ERR_HTTP_INCOMPLETE'],
    ['HTTP/1.1 101 Switching Protocols\r\n\r\n', 'ERR_HTTP_UNSUPPORTED'],
  ])('rejects %j with %s', (text, code) => {
    expect(() => parse(text)).toThrow(expect.objectContaining({ name: 'HttpParseError', code }));
  });

  it('scans a head that trickles in a few bytes at a time once, not again from its start on every feed', () => {
    // 100 KB in 4-byte pieces: re-scanning the pending head on each of the
    // 25,000 feeds read about 1.25 GB (11 s of CPU here). Counted, not timed:
    // every search for a line end goes through Buffer#indexOf, and the bytes
    // each call may read add up to about the head's size once, not its square.
    const scanned = { bytes: 0 };
    const indexOf = Buffer.prototype.indexOf;
    Buffer.prototype.indexOf = function (this: Buffer, ...args: unknown[]): number {
      const from = typeof args[1] === 'number' ? args[1] : 0;
      scanned.bytes += Math.max(0, this.length - from);
      return (indexOf as (...a: unknown[]) => number).apply(this, args);
    } as typeof indexOf;
    try {
      const head = `HTTP/1.1 200 OK\r\nX-Long: ${'v'.repeat(100_000)}\r\nContent-Length: 2\r\n\r\nok`;
      const p = parse(head, { maxHeaderBytes: 128 * 1024 }, Array<number>(Math.ceil(head.length / 4)).fill(4));
      expect(p.head?.headers.get('x-long')?.length).toBe(100_000);
      expect(p.body().toString()).toBe('ok');
      expect(scanned.bytes).toBeLessThan(4 * head.length);
      // A trailer line trickled in is scanned once too.
      scanned.bytes = 0;
      const trailer = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: ${'t'.repeat(100_000)}\r\n\r\n`;
      const q = parse(trailer, { maxHeaderBytes: 128 * 1024 }, Array<number>(Math.ceil(trailer.length / 4)).fill(4));
      expect(q.trailers.get('x-t')?.length).toBe(100_000);
      expect(scanned.bytes).toBeLessThan(4 * trailer.length);
    } finally {
      Buffer.prototype.indexOf = indexOf;
    }
  });

  it('limits: an oversize head and an oversize body', () => {
    const big = `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`;
    expect(() => parse(big)).toThrow(expect.objectContaining({ code: 'ERR_HTTP_HEADERS_TOO_LARGE' }));
    // Even without the end of the head in sight, memory stays bounded.
    const p = new ResponseParser({ maxHeaderBytes: 1024 });
    expect(() => {
      for (let i = 0; i < 100; i++) p.feed(Buffer.alloc(100, 'a'));
    }).toThrow(expect.objectContaining({ code: 'ERR_HTTP_HEADERS_TOO_LARGE' }));
    expect(() => parse('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n', { maxBodyBytes: 10 })).toThrow(
      expect.objectContaining({ code: 'ERR_HTTP_BODY_TOO_LARGE' }),
    );
    expect(() => parse(`HTTP/1.1 200 OK\r\n\r\n${'x'.repeat(100)}`, { maxBodyBytes: 10 })).toThrow(
      expect.objectContaining({ code: 'ERR_HTTP_BODY_TOO_LARGE' }),
    );
  });

  it('refuses a limit that is not a non-negative integer: NaN is no way to turn the body limit off', () => {
    const bad: [string, number][] = [
      ['maxBodyBytes', Number.NaN],
      ['maxBodyBytes', -1],
      ['maxBodyBytes', 1.5],
      ['maxBodyBytes', Number.POSITIVE_INFINITY],
      ['maxHeaderBytes', Number.NaN],
      ['maxHeaderBytes', 0],
    ];
    for (const [name, value] of bad) {
      expect(() => new ResponseParser({ [name]: value })).toThrow(
        expect.objectContaining({
          name: 'RangeError',
          code: 'ERR_INVALID_LIMIT',
          message: expect.stringContaining(name),
        }),
      );
    }
    // A body limit of 0 is a limit, not its absence.
    expect(() => parse('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx', { maxBodyBytes: 0 })).toThrow(
      expect.objectContaining({ code: 'ERR_HTTP_BODY_TOO_LARGE' }),
    );
  });

  it('random bytes only ever give an HttpParseError, never a hang or another error', () => {
    for (let i = 0; i < 2000; i++) {
      const junk = randomBytes(1 + (i % 300));
      const prefix =
        i % 3 === 0
          ? Buffer.from('HTTP/1.1 200 OK\r\n')
          : i % 3 === 1
            ? Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')
            : Buffer.alloc(0);
      try {
        parse(Buffer.concat([prefix, junk]), { maxHeaderBytes: 512, maxBodyBytes: 4096 }, [7, 3, 11]);
      } catch (e) {
        expect(e).toBeInstanceOf(HttpParseError);
      }
    }
  });
});

describe('requests', () => {
  it('parses http and https URLs: default ports, IPv6 literals, paths and queries', () => {
    expect(parseHttpUrl('http://example.com')).toMatchObject({
      tls: false,
      hostname: 'example.com',
      port: 80,
      hostHeader: 'example.com',
      path: '/',
    });
    expect(parseHttpUrl('http://[::1]:8080/a/b?c=d')).toMatchObject({
      hostname: '::1',
      port: 8080,
      hostHeader: '[::1]:8080',
      path: '/a/b?c=d',
    });
    expect(parseHttpUrl('https://example.com/a')).toMatchObject({
      tls: true,
      hostname: 'example.com',
      port: 443,
      hostHeader: 'example.com',
      path: '/a',
    });
    // The default port written out is still the default: no port in Host.
    expect(parseHttpUrl('https://example.com:443/')).toMatchObject({ port: 443, hostHeader: 'example.com' });
    expect(parseHttpUrl('https://[::1]:8443/')).toMatchObject({ tls: true, port: 8443, hostHeader: '[::1]:8443' });
    expect(() => parseHttpUrl('ftp://example.com/')).toThrow(
      expect.objectContaining({ code: 'ERR_UNSUPPORTED_PROTOCOL' }),
    );
    expect(() => parseHttpUrl('not a url')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_URL' }));
  });

  it('writes the request the notes write, and refuses header injection', () => {
    const target = parseHttpUrl('http://127.0.0.1:8080/goods/1/');
    expect(formatRequest(target).toString()).toBe(
      'GET /goods/1/ HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\nUser-Agent: iomux\r\n\r\n',
    );
    expect(formatRequest(target, { keepAlive: true, method: 'HEAD' }).toString()).toContain('Connection: keep-alive');
    const post = formatRequest(target, { method: 'POST', body: 'abc' }).toString();
    expect(post).toMatch(/Content-Length: 3\r\n\r\nabc$/);
    expect(() => formatRequest(target, { headers: { 'X-A': 'b\r\nEvil: 1' } })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_HEADER' }),
    );
    for (const method of ['GET /x', '', 'G\u00e9T', 42 as unknown as string]) {
      expect(() => formatRequest(target, { method })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_HEADER' }));
    }
    expect(() => formatRequest(target, { headers: { '': 'x' } })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_HEADER' }),
    );
  });

  it('judges header values by the bytes that go on the wire: no CR LF smuggled in as U+010D U+010A', () => {
    const target = parseHttpUrl('http://127.0.0.1:8080/');
    // Encoded latin1, U+010D U+010A would be the bytes CR LF: a second request in the head.
    for (const value of [
      'a\u010d\u010aGET /admin HTTP/1.1',
      'a\u0100',
      'a\u0000b',
      'a\u007fb',
      'a\u000bb',
      '\ud83d\ude00',
    ]) {
      expect(() => formatRequest(target, { headers: { 'X-A': value } }), JSON.stringify(value)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_HEADER' }),
      );
    }
    // What RFC 9110 allows goes through as it is: tabs, spaces, obs-text (latin1).
    const head = formatRequest(target, { headers: { 'X-A': 'tab\tand space, caf\u00e9' } });
    expect(head.includes(Buffer.from('X-A: tab\tand space, caf\xe9\r\n', 'latin1'))).toBe(true);
  });

  it("a Host the caller gives replaces the URL's: one Host header, never two", () => {
    const target = parseHttpUrl('http://127.0.0.1:8080/x');
    const head = formatRequest(target, { headers: { host: 'shop.example' } }).toString();
    expect(head.match(/^host:/gim)).toHaveLength(1);
    expect(head).toContain('host: shop.example\r\n');
    expect(
      formatRequest(target)
        .toString()
        .match(/^host:/gim),
    ).toHaveLength(1);
  });
});
