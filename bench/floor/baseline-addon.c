/*
 * The baseline of the calls benchmark (`npm run bench -- calls`): one plain C N-API function per
 * syscall. Each takes fd numbers, returns a count or -errno and never throws,
 * and checks only what keeps a bad argument from crashing the process: that
 * arrays are typed arrays of the right element type, and that every access
 * stays inside them. What iomux spends beyond this on the same call --
 * argument checks, exceptions, result objects -- is what the bench reports
 * as its overhead.
 *
 * None of these calls can sleep (MSG_DONTWAIT, and the bench gives a zero
 * timeout or non-blocking fds), so none retries on EINTR.
 *
 * Built by bench/src/peers.ts (cc -O2 -shared -fPIC) and loaded with
 * process.dlopen.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <node_api.h>

/* epollWait collects at most this many events per call, on the stack. */
#define WAIT_EVENTS 64

/* The caller's Int32Array of (fd, events) pairs is the pollfd array itself. */
_Static_assert(sizeof(struct pollfd) == 2 * sizeof(int32_t), "struct pollfd is two int32s");
_Static_assert(offsetof(struct pollfd, events) == sizeof(int32_t), "pollfd.events follows pollfd.fd");
/* ... with events in the low half of the int32 the caller writes. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the poll layout assumes a little-endian machine");

static napi_value count(napi_env env, long n) {
  napi_value out;
  napi_create_int32(env, (int32_t)n, &out);
  return out;
}

static napi_value result(napi_env env, long r) {
  return count(env, r < 0 ? -errno : r);
}

/* Reads up to `want` arguments; missing ones are undefined (and fail below). */
static int get_args(napi_env env, napi_callback_info info, napi_value *argv, size_t want) {
  size_t argc = want;
  return napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok ? 0 : -1;
}

static int int32_arg(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok ? 0 : -1;
}

/* A Uint8Array (a Buffer is one): its bytes. */
static int bytes_arg(napi_env env, napi_value v, void **data, size_t *len) {
  napi_typedarray_type type;
  if (napi_get_typedarray_info(env, v, &type, len, data, NULL, NULL) != napi_ok) return -1;
  return type == napi_uint8_array ? 0 : -1;
}

static int int32s_arg(napi_env env, napi_value v, int32_t **data, size_t *count) {
  napi_typedarray_type type;
  void *p;
  if (napi_get_typedarray_info(env, v, &type, count, &p, NULL, NULL) != napi_ok) return -1;
  *data = p;
  return type == napi_int32_array ? 0 : -1;
}

/* send(fd, buf, n): sends the first n bytes of buf (at most its length). */
static napi_value Send(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd, n;
  void *data;
  size_t len;
  if (get_args(env, info, argv, 3) || int32_arg(env, argv[0], &fd) || bytes_arg(env, argv[1], &data, &len) ||
      int32_arg(env, argv[2], &n) || n < 0)
    return count(env, -EINVAL);
  if ((size_t)n < len) len = (size_t)n;
  return result(env, send(fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL));
}

/* recv(fd, buf): receives into the whole of buf. */
static napi_value Recv(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  void *data;
  size_t len;
  if (get_args(env, info, argv, 2) || int32_arg(env, argv[0], &fd) || bytes_arg(env, argv[1], &data, &len))
    return count(env, -EINVAL);
  return result(env, recv(fd, data, len, MSG_DONTWAIT));
}

/* accept(fd): the new fd, non-blocking and close-on-exec; no address. */
static napi_value Accept(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (get_args(env, info, argv, 1) || int32_arg(env, argv[0], &fd)) return count(env, -EINVAL);
  return result(env, accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC));
}

/* read(fd, buf): reads into the whole of buf. */
static napi_value Read(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  void *data;
  size_t len;
  if (get_args(env, info, argv, 2) || int32_arg(env, argv[0], &fd) || bytes_arg(env, argv[1], &data, &len))
    return count(env, -EINVAL);
  return result(env, read(fd, data, len));
}

/* write(fd, buf, n): writes the first n bytes of buf (at most its length). */
static napi_value Write(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd, n;
  void *data;
  size_t len;
  if (get_args(env, info, argv, 3) || int32_arg(env, argv[0], &fd) || bytes_arg(env, argv[1], &data, &len) ||
      int32_arg(env, argv[2], &n) || n < 0)
    return count(env, -EINVAL);
  if ((size_t)n < len) len = (size_t)n;
  return result(env, write(fd, data, len));
}

static napi_value Close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (get_args(env, info, argv, 1) || int32_arg(env, argv[0], &fd)) return count(env, -EINVAL);
  return result(env, close(fd));
}

static napi_value EpollCreate(napi_env env, napi_callback_info info) {
  (void)info;
  return result(env, epoll_create1(EPOLL_CLOEXEC));
}

/* epollCtl(epfd, op, fd, events): the event's data is the fd. */
static napi_value EpollCtl(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int32_t epfd, op, fd, events;
  if (get_args(env, info, argv, 4) || int32_arg(env, argv[0], &epfd) || int32_arg(env, argv[1], &op) ||
      int32_arg(env, argv[2], &fd) || int32_arg(env, argv[3], &events))
    return count(env, -EINVAL);
  struct epoll_event ev = {.events = (uint32_t)events, .data = {.fd = fd}};
  return result(env, epoll_ctl(epfd, op, fd, &ev));
}

/*
 * epollWait(epfd, out, timeoutMs): writes (fd, events) pairs into the
 * Int32Array out, as many as it holds (at most WAIT_EVENTS); returns how many.
 */
static napi_value EpollWait(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t epfd, timeout;
  int32_t *out;
  size_t len;
  if (get_args(env, info, argv, 3) || int32_arg(env, argv[0], &epfd) || int32s_arg(env, argv[1], &out, &len) ||
      int32_arg(env, argv[2], &timeout))
    return count(env, -EINVAL);
  size_t max = len / 2 < WAIT_EVENTS ? len / 2 : WAIT_EVENTS;
  if (max == 0) return count(env, -EINVAL);
  struct epoll_event events[WAIT_EVENTS];
  int n = epoll_wait(epfd, events, (int)max, timeout);
  for (int i = 0; i < n; i++) {
    out[2 * i] = events[i].data.fd;
    out[2 * i + 1] = (int32_t)events[i].events;
  }
  return result(env, n);
}

/*
 * poll(pfds, timeoutMs): pfds is an Int32Array of (fd, events) pairs, which
 * is struct pollfd's layout: the kernel writes revents into the high half of
 * each events word (on a little-endian machine, `pfds[2 * i + 1] >>> 16`).
 */
static napi_value Poll(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t timeout;
  int32_t *pfds;
  size_t len;
  if (get_args(env, info, argv, 2) || int32s_arg(env, argv[0], &pfds, &len) || int32_arg(env, argv[1], &timeout))
    return count(env, -EINVAL);
  return result(env, poll((struct pollfd *)pfds, len / 2, timeout));
}

/*
 * select(fds, out, timeoutMs): waits for any of the Int32Array fds to be
 * readable and writes the ready ones into out (as many as it holds);
 * returns how many it wrote. An fd outside 0..FD_SETSIZE-1 is -EINVAL:
 * FD_SET beyond the set would write past it.
 */
static napi_value Select(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t timeout;
  int32_t *fds, *out;
  size_t nfds, nout;
  if (get_args(env, info, argv, 3) || int32s_arg(env, argv[0], &fds, &nfds) || int32s_arg(env, argv[1], &out, &nout) ||
      int32_arg(env, argv[2], &timeout))
    return count(env, -EINVAL);
  fd_set readable;
  FD_ZERO(&readable);
  int maxfd = -1;
  for (size_t i = 0; i < nfds; i++) {
    if (fds[i] < 0 || fds[i] >= FD_SETSIZE) return count(env, -EINVAL);
    FD_SET(fds[i], &readable);
    if (fds[i] > maxfd) maxfd = fds[i];
  }
  struct timeval tv = {.tv_sec = timeout / 1000, .tv_usec = (timeout % 1000) * 1000};
  int n = select(maxfd + 1, &readable, NULL, NULL, timeout < 0 ? NULL : &tv);
  if (n < 0) return count(env, -errno);
  size_t written = 0;
  for (size_t i = 0; i < nfds && written < nout; i++) {
    if (FD_ISSET(fds[i], &readable)) out[written++] = fds[i];
  }
  return count(env, (long)written);
}

#define FUNCTION(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL}

NAPI_MODULE_INIT() {
  const napi_property_descriptor functions[] = {
      FUNCTION("send", Send),
      FUNCTION("recv", Recv),
      FUNCTION("accept", Accept),
      FUNCTION("read", Read),
      FUNCTION("write", Write),
      FUNCTION("close", Close),
      FUNCTION("epollCreate", EpollCreate),
      FUNCTION("epollCtl", EpollCtl),
      FUNCTION("epollWait", EpollWait),
      FUNCTION("poll", Poll),
      FUNCTION("select", Select),
  };
  if (napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions) != napi_ok) return NULL;
  return exports;
}
