/*
 * The fetch benchmark's C floor: what the notes' fetcher costs with nothing
 * between it and the kernel. One thread, epoll, in its own process: <count>
 * GETs of /goods/<i>/ on 127.0.0.1:<port>, all started at once, each on its
 * own connection (Connection: close), as the other clients of the benchmark.
 *
 *   fetch-client <port> <count>
 *   {"requests":N,"ok":N,"seconds":S,"cpuUs":U}
 *
 * Per request: a non-blocking socket, connect, the request sent as soon as
 * the connection is up (at once over loopback, else when writable), the
 * response read until its Content-Length is in (or the server closes), then
 * close. A response is ok when its status is 200; it must fit in 4 KiB (the
 * shop's pages do). Only the fetching is timed; cpuUs is the process's CPU
 * time (user + system) over the same span.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "floor.h"

#define BUF_SIZE 4096

/* CPU time of this process so far (user + system), in microseconds. */
static int64_t cpu_us(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) < 0) die("getrusage");
  return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

struct fetch {
  int fd;
  int sent;       /* the request went out */
  size_t have;    /* bytes of the response in buf */
  size_t want;    /* head + Content-Length once the head is in, else 0 */
  char buf[BUF_SIZE];
};

/* The request for page i, as the other clients send it; returns its length. */
static int format_request(char *out, size_t size, int i, int port) {
  return snprintf(out, size, "GET /goods/%d/ HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", i, port);
}

/* Sends the whole request (it is small: a short send is an error here); 0 when it would block. */
static int send_request(int fd, int i, int port) {
  char request[128];
  int len = format_request(request, sizeof(request), i, port);
  ssize_t n = send(fd, request, (size_t)len, MSG_NOSIGNAL);
  if (n == len) return 1;
  if (n < 0 && (errno == EAGAIN || errno == ENOTCONN)) return 0;
  if (n >= 0) errno = EMSGSIZE;
  die("send");
}

/* head + body length once the head is complete; 0 while it is not. */
static size_t expected_length(const char *buf, size_t have) {
  const char *end = memmem(buf, have, "\r\n\r\n", 4);
  if (end == NULL) return 0;
  size_t head = (size_t)(end - buf) + 4;
  for (const char *line = memchr(buf, '\n', head); line != NULL && line + 1 < end;
       line = memchr(line + 1, '\n', (size_t)(end - line - 1))) {
    if (strncasecmp(line + 1, "content-length:", 15) == 0) return head + strtoul(line + 16, NULL, 10);
  }
  return SIZE_MAX; /* no length: read until the server closes */
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s <port> <count>\n", argv[0]);
    return 2;
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  int port = atoi(argv[1]), count = atoi(argv[2]);
  if (port < 1 || port > 65535 || count < 1) return 2;
  struct fetch *fetches = calloc((size_t)count, sizeof(*fetches));
  if (fetches == NULL) die("calloc");
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int pending = count, ok = 0;

  int64_t cpu0 = cpu_us();
  int64_t t0 = now_ns();
  for (int i = 0; i < count; i++) {
    struct fetch *f = &fetches[i];
    f->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (f->fd < 0) die("socket");
    if (connect(f->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 && errno != EINPROGRESS) die("connect");
    /* Over loopback the handshake is over when connect returns: send now. */
    f->sent = send_request(f->fd, i, port);
    struct epoll_event ev = {.events = f->sent ? EPOLLIN : EPOLLOUT, .data.u32 = (uint32_t)i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, f->fd, &ev) < 0) die("epoll_ctl");
  }
  struct epoll_event events[1024];
  while (pending > 0) {
    int n = epoll_wait(ep, events, 1024, 10000);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    if (n == 0) {
      fprintf(stderr, "no progress in 10 s\n");
      return 1;
    }
    for (int e = 0; e < n; e++) {
      int i = (int)events[e].data.u32;
      struct fetch *f = &fetches[i];
      if (!f->sent) {
        if (send_request(f->fd, i, port) == 0) continue;
        f->sent = 1;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_MOD, f->fd, &ev) < 0) die("epoll_ctl");
        continue;
      }
      ssize_t r = recv(f->fd, f->buf + f->have, BUF_SIZE - f->have, 0);
      if (r < 0) {
        if (errno == EAGAIN) continue;
        die("recv");
      }
      f->have += (size_t)r;
      if (f->want == 0) f->want = expected_length(f->buf, f->have);
      if (r > 0 && (f->want == 0 || f->have < f->want)) {
        if (f->have < BUF_SIZE) continue;
        fprintf(stderr, "response %d is larger than %d bytes\n", i, BUF_SIZE);
        return 1;
      }
      if (f->have >= 12 && memcmp(f->buf, "HTTP/1.1 200", 12) == 0) ok++;
      close(f->fd);
      pending--;
    }
  }
  double seconds = (double)(now_ns() - t0) / 1e9;
  printf("{\"requests\":%d,\"ok\":%d,\"seconds\":%.6f,\"cpuUs\":%lld}\n", count, ok, seconds,
         (long long)(cpu_us() - cpu0));
  return 0;
}
