/**
 * The kernel's constants, read from the C headers at build time (never
 * hard-coded here, so they are right on every architecture).
 *
 * @module
 */
import { native } from './native.js';

function k(name: string): number {
  const value = native.constants[name];
  if (value === undefined) throw new Error(`iomux: the addon does not define ${name}`);
  return value;
}

// poll(2) event bits
/** `POLLIN` */
export const POLLIN: number = k('POLLIN');
/** `POLLPRI` */
export const POLLPRI: number = k('POLLPRI');
/** `POLLOUT` */
export const POLLOUT: number = k('POLLOUT');
/** `POLLERR` */
export const POLLERR: number = k('POLLERR');
/** `POLLHUP` */
export const POLLHUP: number = k('POLLHUP');
/** `POLLNVAL` */
export const POLLNVAL: number = k('POLLNVAL');
/** `POLLRDNORM` */
export const POLLRDNORM: number = k('POLLRDNORM');
/** `POLLRDBAND` */
export const POLLRDBAND: number = k('POLLRDBAND');
/** `POLLWRNORM` */
export const POLLWRNORM: number = k('POLLWRNORM');
/** `POLLWRBAND` */
export const POLLWRBAND: number = k('POLLWRBAND');
/** `POLLMSG` */
export const POLLMSG: number = k('POLLMSG');
/** `POLLRDHUP` */
export const POLLRDHUP: number = k('POLLRDHUP');

// epoll(7) event bits and flags
/** `EPOLLIN` */
export const EPOLLIN: number = k('EPOLLIN');
/** `EPOLLPRI` */
export const EPOLLPRI: number = k('EPOLLPRI');
/** `EPOLLOUT` */
export const EPOLLOUT: number = k('EPOLLOUT');
/** `EPOLLERR` */
export const EPOLLERR: number = k('EPOLLERR');
/** `EPOLLHUP` */
export const EPOLLHUP: number = k('EPOLLHUP');
/** `EPOLLRDNORM` */
export const EPOLLRDNORM: number = k('EPOLLRDNORM');
/** `EPOLLRDBAND` */
export const EPOLLRDBAND: number = k('EPOLLRDBAND');
/** `EPOLLWRNORM` */
export const EPOLLWRNORM: number = k('EPOLLWRNORM');
/** `EPOLLWRBAND` */
export const EPOLLWRBAND: number = k('EPOLLWRBAND');
/** `EPOLLMSG` */
export const EPOLLMSG: number = k('EPOLLMSG');
/** `EPOLLRDHUP` */
export const EPOLLRDHUP: number = k('EPOLLRDHUP');
/** `EPOLLEXCLUSIVE` */
export const EPOLLEXCLUSIVE: number = k('EPOLLEXCLUSIVE');
/** `EPOLLWAKEUP` */
export const EPOLLWAKEUP: number = k('EPOLLWAKEUP');
/** `EPOLLONESHOT` */
export const EPOLLONESHOT: number = k('EPOLLONESHOT');
/** `EPOLLET` */
export const EPOLLET: number = k('EPOLLET');
/** `EPOLL_CLOEXEC` */
export const EPOLL_CLOEXEC: number = k('EPOLL_CLOEXEC');
/** `EPOLL_CTL_ADD` */
export const EPOLL_CTL_ADD: number = k('EPOLL_CTL_ADD');
/** `EPOLL_CTL_MOD` */
export const EPOLL_CTL_MOD: number = k('EPOLL_CTL_MOD');
/** `EPOLL_CTL_DEL` */
export const EPOLL_CTL_DEL: number = k('EPOLL_CTL_DEL');

// Address families
/** `AF_UNSPEC` */
export const AF_UNSPEC: number = k('AF_UNSPEC');
/** `AF_UNIX` */
export const AF_UNIX: number = k('AF_UNIX');
/** `AF_INET` */
export const AF_INET: number = k('AF_INET');
/** `AF_INET6` */
export const AF_INET6: number = k('AF_INET6');

// Socket types and type flags
/** `SOCK_STREAM` */
export const SOCK_STREAM: number = k('SOCK_STREAM');
/** `SOCK_DGRAM` */
export const SOCK_DGRAM: number = k('SOCK_DGRAM');
/** `SOCK_RAW` */
export const SOCK_RAW: number = k('SOCK_RAW');
/** `SOCK_SEQPACKET` */
export const SOCK_SEQPACKET: number = k('SOCK_SEQPACKET');
/** `SOCK_NONBLOCK` */
export const SOCK_NONBLOCK: number = k('SOCK_NONBLOCK');
/** `SOCK_CLOEXEC` */
export const SOCK_CLOEXEC: number = k('SOCK_CLOEXEC');

// Socket option levels and options
/** `SOL_SOCKET` */
export const SOL_SOCKET: number = k('SOL_SOCKET');
/** `SO_ACCEPTCONN` */
export const SO_ACCEPTCONN: number = k('SO_ACCEPTCONN');
/** `SO_BROADCAST` */
export const SO_BROADCAST: number = k('SO_BROADCAST');
/** `SO_DOMAIN` */
export const SO_DOMAIN: number = k('SO_DOMAIN');
/** `SO_ERROR` */
export const SO_ERROR: number = k('SO_ERROR');
/** `SO_KEEPALIVE` */
export const SO_KEEPALIVE: number = k('SO_KEEPALIVE');
/** `SO_LINGER` */
export const SO_LINGER: number = k('SO_LINGER');
/** `SO_PROTOCOL` */
export const SO_PROTOCOL: number = k('SO_PROTOCOL');
/** `SO_RCVBUF` */
export const SO_RCVBUF: number = k('SO_RCVBUF');
/** `SO_RCVLOWAT` */
export const SO_RCVLOWAT: number = k('SO_RCVLOWAT');
/** `SO_REUSEADDR` */
export const SO_REUSEADDR: number = k('SO_REUSEADDR');
/** `SO_RCVTIMEO`: a blocking receive's timeout (value: a 16-byte struct timeval, seconds and microseconds as int64). */
export const SO_RCVTIMEO: number = k('SO_RCVTIMEO');
/** `SO_SNDTIMEO`: a blocking send's (and connect's) timeout (value: a 16-byte struct timeval). */
export const SO_SNDTIMEO: number = k('SO_SNDTIMEO');
/** `SO_REUSEPORT` */
export const SO_REUSEPORT: number = k('SO_REUSEPORT');
/** `SO_SNDBUF` */
export const SO_SNDBUF: number = k('SO_SNDBUF');
/** `SO_SNDLOWAT` */
export const SO_SNDLOWAT: number = k('SO_SNDLOWAT');
/** `SO_TYPE` */
export const SO_TYPE: number = k('SO_TYPE');
/** `IPPROTO_IP` */
export const IPPROTO_IP: number = k('IPPROTO_IP');
/** `IPPROTO_IPV6` */
export const IPPROTO_IPV6: number = k('IPPROTO_IPV6');
/** `IPPROTO_TCP` */
export const IPPROTO_TCP: number = k('IPPROTO_TCP');
/** `IPPROTO_UDP` */
export const IPPROTO_UDP: number = k('IPPROTO_UDP');
/** `IPV6_V6ONLY` */
export const IPV6_V6ONLY: number = k('IPV6_V6ONLY');
/** `TCP_NODELAY` */
export const TCP_NODELAY: number = k('TCP_NODELAY');
/** `TCP_KEEPIDLE` */
export const TCP_KEEPIDLE: number = k('TCP_KEEPIDLE');
/** `TCP_KEEPINTVL` */
export const TCP_KEEPINTVL: number = k('TCP_KEEPINTVL');
/** `TCP_KEEPCNT` */
export const TCP_KEEPCNT: number = k('TCP_KEEPCNT');
/** `TCP_QUICKACK` */
export const TCP_QUICKACK: number = k('TCP_QUICKACK');

// shutdown(2) directions
/** `SHUT_RD` */
export const SHUT_RD: number = k('SHUT_RD');
/** `SHUT_WR` */
export const SHUT_WR: number = k('SHUT_WR');
/** `SHUT_RDWR` */
export const SHUT_RDWR: number = k('SHUT_RDWR');

// listen(2) backlog ceiling
/** `SOMAXCONN` */
export const SOMAXCONN: number = k('SOMAXCONN');

// send/recv flags
/** `MSG_PEEK` */
export const MSG_PEEK: number = k('MSG_PEEK');
/** `MSG_DONTWAIT` */
export const MSG_DONTWAIT: number = k('MSG_DONTWAIT');
/** `MSG_WAITALL` */
export const MSG_WAITALL: number = k('MSG_WAITALL');
/** `MSG_TRUNC` */
export const MSG_TRUNC: number = k('MSG_TRUNC');
/** `MSG_OOB` */
export const MSG_OOB: number = k('MSG_OOB');
/** `MSG_NOSIGNAL` */
export const MSG_NOSIGNAL: number = k('MSG_NOSIGNAL');
/** `MSG_CTRUNC`: in recvmsg's msgFlags, control data (fds) did not fit ancbufsize / maxFds. */
export const MSG_CTRUNC: number = k('MSG_CTRUNC');
/** `MSG_CMSG_CLOEXEC`: recvmsg always sets it, so received fds are CLOEXEC. */
export const MSG_CMSG_CLOEXEC: number = k('MSG_CMSG_CLOEXEC');

// Ancillary data (sendmsg / recvmsg)
/** `SCM_RIGHTS`: a control message (level SOL_SOCKET) carrying fds. */
export const SCM_RIGHTS: number = k('SCM_RIGHTS');
/** `SCM_CREDENTIALS`: a control message (level SOL_SOCKET) carrying a `struct ucred` (pid, uid, gid). */
export const SCM_CREDENTIALS: number = k('SCM_CREDENTIALS');
/** `SO_PASSCRED`: receive SCM_CREDENTIALS with every message. */
export const SO_PASSCRED: number = k('SO_PASSCRED');
/** Most fds one message may carry (the kernel's SCM_MAX_FD, 253). */
export const SCM_MAX_FD: number = k('SCM_MAX_FD');

// fd limits and fd flags
/** `FD_SETSIZE` */
export const FD_SETSIZE: number = k('FD_SETSIZE');
/** `EFD_CLOEXEC` */
export const EFD_CLOEXEC: number = k('EFD_CLOEXEC');
/** `EFD_NONBLOCK` */
export const EFD_NONBLOCK: number = k('EFD_NONBLOCK');
/** `EFD_SEMAPHORE` */
export const EFD_SEMAPHORE: number = k('EFD_SEMAPHORE');
/** `O_NONBLOCK` */
export const O_NONBLOCK: number = k('O_NONBLOCK');
/** `O_CLOEXEC` */
export const O_CLOEXEC: number = k('O_CLOEXEC');
/** `O_DIRECT` */
export const O_DIRECT: number = k('O_DIRECT');

// getaddrinfo(3) flags and errors
/** `AI_PASSIVE` */
export const AI_PASSIVE: number = k('AI_PASSIVE');
/** `AI_CANONNAME` */
export const AI_CANONNAME: number = k('AI_CANONNAME');
/** `AI_NUMERICHOST` */
export const AI_NUMERICHOST: number = k('AI_NUMERICHOST');
/** `AI_NUMERICSERV` */
export const AI_NUMERICSERV: number = k('AI_NUMERICSERV');
/** `AI_ADDRCONFIG` */
export const AI_ADDRCONFIG: number = k('AI_ADDRCONFIG');
/** `AI_V4MAPPED` */
export const AI_V4MAPPED: number = k('AI_V4MAPPED');
/** `AI_ALL` */
export const AI_ALL: number = k('AI_ALL');
/** `EAI_AGAIN` (negative, as glibc defines it) */
export const EAI_AGAIN: number = k('EAI_AGAIN');
/** `EAI_FAIL` */
export const EAI_FAIL: number = k('EAI_FAIL');
/** `EAI_NONAME` */
export const EAI_NONAME: number = k('EAI_NONAME');
/** `EAI_NODATA` */
export const EAI_NODATA: number = k('EAI_NODATA');
/** `EAI_SERVICE` */
export const EAI_SERVICE: number = k('EAI_SERVICE');
/** `EAI_SYSTEM`: a system error; the lookup's `errno` says which. */
export const EAI_SYSTEM: number = k('EAI_SYSTEM');
/** `EAI_FAMILY` */
export const EAI_FAMILY: number = k('EAI_FAMILY');

/** Ints per `struct epoll_event` in the array {@link Epoll.pollInto} fills (3 on x86-64). */
export const EPOLL_EVENT_INTS: number = k('EPOLL_EVENT_INTS');
/** Index of the fd within one `struct epoll_event` record of that array. */
export const EPOLL_EVENT_FD_INDEX: number = k('EPOLL_EVENT_FD_INDEX');

// errno values, as Python's errno module has them: what connectEx returns
// and what OSError's `errno` holds (negated, Node's way).
/** `EAGAIN` */
export const EAGAIN: number = k('EAGAIN');
/** `EWOULDBLOCK` (EAGAIN on Linux) */
export const EWOULDBLOCK: number = k('EWOULDBLOCK');
/** `EINPROGRESS`: a non-blocking connect is under way */
export const EINPROGRESS: number = k('EINPROGRESS');
/** `EALREADY`: a connect is still under way */
export const EALREADY: number = k('EALREADY');
/** `EISCONN`: already connected */
export const EISCONN: number = k('EISCONN');
/** `EINTR` */
export const EINTR: number = k('EINTR');
/** `EBADF` */
export const EBADF: number = k('EBADF');
/** `ENOENT` */
export const ENOENT: number = k('ENOENT');
/** `EEXIST` */
export const EEXIST: number = k('EEXIST');
