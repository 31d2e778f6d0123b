/**
 * The server process of `iomux bench c10k`:
 *
 *   node c10k-server.js [select|poll|epoll|io_uring]
 *
 * the iomux loop in owning mode, a coroutine per connection (echo-loop.ts).
 * Prints "listening <port>" (and, with IOMUX_STATS=1, its stats lines) and
 * serves until killed.
 */

import { serveIomux } from './echo-loop.js';

const [backend = 'epoll'] = process.argv.slice(2);
if (backend === 'select' || backend === 'poll' || backend === 'epoll' || backend === 'io_uring') {
  serveIomux(backend);
} else {
  process.stderr.write('usage: c10k-server.js [select|poll|epoll|io_uring]\n');
  process.exitCode = 2;
}
