/*
 * The UDP echo benchmark's load generator: C, one thread, epoll, in its own
 * process, the UDP counterpart of native/floor/echo-client.c and called like
 * it. <conns> client sockets, each connect()ed to 127.0.0.1:<port>, each
 * ping-pongs one <size>-byte datagram: send, wait for its echo, send the
 * next. Counts round trips after a warm-up and prints JSON:
 *
 *   echo-udp-client <port> <conns> <size> <warmup_ms> <measure_ms>
 *   {"roundTrips":N,"seconds":S,"perSecond":R,"p50us":..,"p99us":..,"resent":N,"stale":N}
 *
 * UDP may drop a datagram (a full receive buffer on either side): a client
 * whose echo has not come back within 200 ms sends its datagram again, so no
 * client stalls, and the resends of the measured window are counted
 * ("resent"). Each datagram carries its client's sequence number (its first
 * 8 bytes), so the late echo of a datagram that was resent is told apart
 * from the current one and ignored ("stale"). A round trip's latency runs
 * from its first send. Stops by itself after <warmup_ms> + <measure_ms>.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "floor.h"

#define RESEND_AFTER_NS (200 * 1000000LL)

struct client {
  int fd;
  uint64_t seq;
  int64_t started; /* first send of the current datagram */
  int64_t sent;    /* last send of it (the resend timer) */
};

static int cmp64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static void send_current(struct client *c, char *msg, size_t size, int64_t now) {
  memcpy(msg, &c->seq, sizeof(c->seq));
  /* A full send buffer (ENOBUFS/EAGAIN) is a loss like any other: the timer resends. */
  send(c->fd, msg, size, MSG_DONTWAIT);
  c->sent = now;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s <port> <conns> <size> <warmup_ms> <measure_ms>\n", argv[0]);
    return 2;
  }
  int port = atoi(argv[1]), nclients = atoi(argv[2]);
  size_t size = (size_t)atol(argv[3]);
  int64_t warmup = atol(argv[4]) * 1000000LL, measure = atol(argv[5]) * 1000000LL;
  if (nclients < 1 || size < sizeof(uint64_t) || size > 65507) {
    fprintf(stderr, "echo-udp-client: <conns> >= 1 and 8 <= <size> <= 65507\n");
    return 2;
  }
  char *msg = malloc(size), *buf = malloc(65536);
  for (size_t i = 0; i < size; i++) msg[i] = (char)('a' + i % 26);
  struct client *clients = calloc((size_t)nclients, sizeof(*clients));
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < nclients; i++) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) die("connect");
    clients[i].fd = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  size_t cap = 1 << 20, nlat = 0;
  int64_t *lat = malloc(cap * sizeof(int64_t));
  int64_t t0 = now_ns(), measuring_from = t0 + warmup, end = measuring_from + measure;
  int64_t trips = 0, resent = 0, stale = 0, last_scan = t0;
  for (int i = 0; i < nclients; i++) {
    clients[i].started = now_ns();
    send_current(&clients[i], msg, size, clients[i].started);
  }
  struct epoll_event events[1024];
  for (;;) {
    int64_t now = now_ns();
    if (now >= end) break;
    /* The resend timer: every 20 ms, each client whose echo is overdue sends again. */
    if (now - last_scan >= 20 * 1000000LL) {
      last_scan = now;
      for (int i = 0; i < nclients; i++) {
        if (now - clients[i].sent < RESEND_AFTER_NS) continue;
        if (now >= measuring_from) resent++;
        send_current(&clients[i], msg, size, now);
      }
    }
    int n = epoll_wait(ep, events, 1024, 20);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int e = 0; e < n; e++) {
      struct client *c = &clients[events[e].data.u32];
      for (;;) {
        ssize_t r = recv(c->fd, buf, 65536, MSG_DONTWAIT);
        if (r < 0) {
          if (errno == EAGAIN) break;
          if (errno == EINTR) continue;
          if (errno == ECONNREFUSED) {
            fprintf(stderr, "echo-udp-client: the server is gone (ECONNREFUSED)\n");
            return 1;
          }
          die("recv");
        }
        uint64_t seq;
        if ((size_t)r != size || (memcpy(&seq, buf, sizeof(seq)), seq != c->seq)) {
          stale++; /* the late echo of a datagram sent again */
          continue;
        }
        int64_t t = now_ns();
        if (t >= measuring_from) {
          trips++;
          if (nlat < cap) lat[nlat++] = t - c->started;
        }
        c->seq++;
        c->started = t;
        send_current(c, msg, size, t);
        break; /* one echo per wake-up, as the TCP client: level-triggered epoll reports any other */
      }
    }
  }
  double secs = (double)measure / 1e9;
  qsort(lat, nlat, sizeof(int64_t), cmp64);
  double p50 = nlat ? lat[nlat / 2] / 1000.0 : 0, p99 = nlat ? lat[(nlat * 99) / 100] / 1000.0 : 0;
  printf("{\"roundTrips\":%lld,\"seconds\":%.3f,\"perSecond\":%.1f,\"p50us\":%.1f,\"p99us\":%.1f,\"resent\":%lld,\"stale\":%lld}\n",
         (long long)trips, secs, (double)trips / secs, p50, p99, (long long)resent, (long long)stale);
  return 0;
}
