/*
 * The echo benchmark's load generator: C, one thread, epoll, in its own
 * process. Opens <conns> connections to 127.0.0.1:<port>; each sends a
 * <size>-byte message and waits for all of it to come back, then sends the
 * next (ping-pong). Counts round trips after a warm-up and prints JSON:
 *
 *   echo-client <port> <conns> <size> <warmup_ms> <measure_ms> [active]
 *   {"roundTrips":N,"seconds":S,"perSecond":R,"p50us":..,"p99us":..}
 *
 * With [active] (C10K), all <conns> connections are opened and held, and
 * only the first <active> of them ping-pong; the rest stay idle.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "floor.h"

struct conn {
  int fd;
  size_t sent;
  size_t received;
  int64_t started;
};

static int cmp64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc != 6 && argc != 7) {
    fprintf(stderr, "usage: %s <port> <conns> <size> <warmup_ms> <measure_ms> [active]\n", argv[0]);
    return 2;
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  int port = atoi(argv[1]), nconns = atoi(argv[2]);
  int active = argc == 7 ? atoi(argv[6]) : nconns;
  size_t size = (size_t)atol(argv[3]);
  int64_t warmup = atol(argv[4]) * 1000000LL, measure = atol(argv[5]) * 1000000LL;
  if (nconns < 1 || size < 1 || size > (1 << 24) || active < 1 || active > nconns) return 2;
  char *msg = malloc(size), *buf = malloc(size);
  for (size_t i = 0; i < size; i++) msg[i] = (char)('a' + i % 26);
  struct conn *conns = calloc((size_t)nconns, sizeof(*conns));
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  for (int i = 0; i < nconns; i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) die("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    conns[i].fd = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  size_t cap = 1 << 20, nlat = 0;
  int64_t *lat = malloc(cap * sizeof(int64_t));
  int64_t t0 = now_ns(), measuring_from = t0 + warmup, end = measuring_from + measure;
  int64_t trips = 0;
  int announced = 0;
  for (int i = 0; i < active; i++) {
    if (send(conns[i].fd, msg, size, MSG_NOSIGNAL) != (ssize_t)size) die("send");
    conns[i].started = now_ns();
  }
  struct epoll_event events[1024];
  for (;;) {
    int64_t now = now_ns();
    if (now >= end) break;
    if (!announced && now >= measuring_from) {
      /* Tells a driver when the measured window starts (it samples the server then). */
      fprintf(stderr, "measuring\n");
      announced = 1;
    }
    int n = epoll_wait(ep, events, 1024, 100);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int e = 0; e < n; e++) {
      struct conn *c = &conns[events[e].data.u32];
      ssize_t r = recv(c->fd, buf, size - c->received, MSG_DONTWAIT);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        fprintf(stderr, "connection closed by the server\n");
        return 1;
      }
      c->received += (size_t)r;
      if (c->received < size) continue;
      int64_t t = now_ns();
      if (t >= measuring_from) {
        trips++;
        if (nlat < cap) lat[nlat++] = t - c->started;
      }
      c->received = 0;
      c->started = t;
      if (send(c->fd, msg, size, MSG_NOSIGNAL) != (ssize_t)size) die("send");
    }
  }
  double secs = (double)measure / 1e9;
  qsort(lat, nlat, sizeof(int64_t), cmp64);
  double p50 = nlat ? lat[nlat / 2] / 1000.0 : 0, p99 = nlat ? lat[(nlat * 99) / 100] / 1000.0 : 0;
  printf("{\"roundTrips\":%lld,\"seconds\":%.3f,\"perSecond\":%.1f,\"p50us\":%.1f,\"p99us\":%.1f}\n", (long long)trips,
         secs, (double)trips / secs, p50, p99);
  return 0;
}
