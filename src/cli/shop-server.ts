/**
 * The notes' shop, as a child process for the demo: `/goods/<n>/` pages over
 * HTTP/1.1 on 127.0.0.1, ephemeral port printed as `listening <port>`.
 * (A node:http server in its own process: the demo's fetchers block their
 * thread in select/poll/epoll, as the notes' do, so the server cannot share it.)
 */
import { createServer } from 'node:http';

const server = createServer((req, res) => {
  const match = /^\/goods\/(\d+)\/$/.exec(req.url ?? '');
  if (match === null) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    return;
  }
  const body = `<html><head><title>goods ${match[1]}</title></head><body><h1>goods ${match[1]}</h1>${'<p>in stock</p>'.repeat(64)}</body></html>\n`;
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.keepAliveTimeout = 1000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  process.stdout.write(`listening ${address.port}\n`);
});
process.on('disconnect', () => process.exit(0));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
