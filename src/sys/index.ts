/**
 * `iomux/sys`: the raw kernel interface, mirroring Python's `select`,
 * `socket` and `os` modules. Timeouts are milliseconds; sizes are bytes.
 *
 * @example
 * ```ts
 * import { Epoll, EPOLLIN, socketpair } from 'iomux/sys';
 * const [a, b] = socketpair();
 * using ep = new Epoll();
 * ep.register(b, EPOLLIN);
 * a.send('ping');
 * console.log(ep.poll(1000)); // [[b.fileno(), EPOLLIN]]
 * ```
 *
 * @module
 */
export type { FileLike } from './args.js';
export * from './constants.js';
export { Epoll } from './epoll.js';
export { BlockingIOError, isErrnoError, OSError } from './errors.js';
export { close, eventfd, pipe, read, syscallCount, tryRead, tryWrite, write } from './fd.js';
export {
  COMPLETION_INTS,
  IORING_CQE_F_BUFFER,
  IORING_CQE_F_MORE,
  IORING_CQE_F_SOCK_NONEMPTY,
  IoUring,
  type IoUringOptions,
  MAX_USER_DATA_HIGH,
} from './io-uring.js';
export {
  type Ancillary,
  CMSG_LEN,
  CMSG_SPACE,
  type FdList,
  type RecvFdsResult,
  type RecvmsgIntoResult,
  type RecvmsgResult,
  recvFds,
  recvmsg,
  recvmsgInto,
  sendFds,
  sendmsg,
  tryRecvFds,
  tryRecvmsg,
  tryRecvmsgInto,
  trySendFds,
  trySendmsg,
} from './msg.js';
export { Poll } from './poll.js';
export { type AddrInfo, type CompletedLookup, numericAddrInfo, Resolver } from './resolver.js';
export { select } from './select.js';
export {
  catchableSignal,
  SIGRTMAX,
  SIGRTMIN,
  type SignalDisposition,
  type SignalLike,
  SignalWatch,
  type SignalWatchOptions,
  signalDisposition,
  signalNumber,
  verifySignals,
} from './signals.js';
export {
  type IPv4Address,
  type IPv6Address,
  type SendData,
  Socket,
  type SocketAddress,
  socketpair,
  type UnixAddress,
} from './socket.js';
export {
  type PemInput,
  TLS_WANT_READ,
  TLS_WANT_WRITE,
  TlsContext,
  type TlsContextOptions,
  TlsError,
  TlsSocket,
  type TlsVersion,
  TlsWantReadError,
  TlsWantWriteError,
  type WrapSocketOptions,
} from './tls.js';
