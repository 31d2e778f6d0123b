/*
 * The echo benchmark's load generator over TLS: native/floor/echo-client.c
 * with OpenSSL's client side on each connection. C, one thread, epoll,
 * non-blocking sockets and SSL_connect, in its own process, so the client
 * costs little and the server is what is measured. Opens <conns>
 * connections to 127.0.0.1:<port> and completes every TLS handshake first
 * (the server's certificate is not verified: a load generator); then each
 * connection sends a <size>-byte message and waits for all of it to come
 * back, then sends the next (ping-pong). Counts round trips after a warm-up
 * and prints JSON in echo-client's format:
 *
 *   echo-tls-client <port> <conns> <size> <warmup_ms> <measure_ms>
 *   {"roundTrips":N,"seconds":S,"perSecond":R,"p50us":..,"p99us":..}
 */
#define _GNU_SOURCE
#include <signal.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
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
  SSL *ssl;
  int handshaking;
  uint32_t events;
  size_t sent;     /* of the message in flight */
  size_t received; /* of its echo */
  int64_t started;
};

static int ep;

static int cmp64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static void interest(struct conn *c, uint32_t events, uint32_t i) {
  if (c->events == events) return;
  struct epoll_event ev = {.events = events, .data.u32 = i};
  if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
  c->events = events;
}

/* The interest WANT_READ / WANT_WRITE asks for; exits on any other error. */
static uint32_t wanted(struct conn *c, int ret, const char *what) {
  int err = SSL_get_error(c->ssl, ret);
  if (err == SSL_ERROR_WANT_READ) return EPOLLIN;
  if (err == SSL_ERROR_WANT_WRITE) return EPOLLOUT;
  fprintf(stderr, "%s failed (SSL error %d): connection closed by the server?\n", what, err);
  ERR_print_errors_fp(stderr);
  exit(1);
}

/* Sends the rest of the message; leaves the interest on what the connection waits for next. */
static void send_on(struct conn *c, const char *msg, size_t size, uint32_t i) {
  while (c->sent < size) {
    int n = SSL_write(c->ssl, msg + c->sent, (int)(size - c->sent));
    if (n <= 0) {
      interest(c, wanted(c, n, "SSL_write"), i);
      return;
    }
    c->sent += (size_t)n;
  }
  interest(c, EPOLLIN, i);
}

int main(int argc, char **argv) {
  /* OpenSSL writes to the socket with write(2): a peer gone must be an EPIPE, never a SIGPIPE that kills us. */
  signal(SIGPIPE, SIG_IGN);
  if (argc != 6) {
    fprintf(stderr, "usage: %s <port> <conns> <size> <warmup_ms> <measure_ms>\n", argv[0]);
    return 2;
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  int port = atoi(argv[1]), nconns = atoi(argv[2]);
  size_t size = (size_t)atol(argv[3]);
  int64_t warmup = atol(argv[4]) * 1000000LL, measure = atol(argv[5]) * 1000000LL;
  if (nconns < 1 || size < 1 || size > (1 << 24)) return 2;
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == NULL) die("SSL_CTX_new");
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  /* Read ahead: one recv takes what the socket has, not a record header and then its body. */
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  char *msg = malloc(size), *buf = malloc(size);
  for (size_t i = 0; i < size; i++) msg[i] = (char)('a' + i % 26);
  struct conn *conns = calloc((size_t)nconns, sizeof(*conns));
  ep = epoll_create1(EPOLL_CLOEXEC);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  struct epoll_event events[1024];

  /* Connect all, then every handshake at once. */
  int handshaking = nconns;
  for (int i = 0; i < nconns; i++) {
    struct conn *c = &conns[i];
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) die("socket");
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) die("connect");
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) < 0) die("fcntl");
    c->ssl = SSL_new(ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) die("SSL_new");
    SSL_set_connect_state(c->ssl);
    c->handshaking = 1;
    c->events = EPOLLOUT;
    struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
  }
  int64_t deadline = now_ns() + 30000000000LL;
  while (handshaking > 0) {
    if (now_ns() > deadline) {
      fprintf(stderr, "%d TLS handshakes not done in 30 s\n", handshaking);
      return 1;
    }
    int n = epoll_wait(ep, events, 1024, 1000);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int e = 0; e < n; e++) {
      uint32_t i = events[e].data.u32;
      struct conn *c = &conns[i];
      if (!c->handshaking) continue;
      int r = SSL_connect(c->ssl);
      if (r == 1) {
        c->handshaking = 0;
        handshaking--;
        interest(c, EPOLLIN, i);
      } else {
        interest(c, wanted(c, r, "SSL_connect"), i);
      }
    }
  }

  size_t cap = 1 << 20, nlat = 0;
  int64_t *lat = malloc(cap * sizeof(int64_t));
  int64_t t0 = now_ns(), measuring_from = t0 + warmup, end = measuring_from + measure;
  int64_t trips = 0;
  int announced = 0;
  for (int i = 0; i < nconns; i++) {
    conns[i].started = now_ns();
    send_on(&conns[i], msg, size, (uint32_t)i);
  }
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
      uint32_t i = events[e].data.u32;
      struct conn *c = &conns[i];
      if (c->sent < size) {
        send_on(c, msg, size, i);
        if (c->sent < size) continue;
      }
      /* Read on while OpenSSL holds bytes it took off the socket (epoll cannot see those). */
      do {
        int r = SSL_read(c->ssl, buf, (int)(size - c->received));
        if (r <= 0) {
          interest(c, wanted(c, r, "SSL_read"), i);
          break;
        }
        c->received += (size_t)r;
        if (c->received < size) continue;
        int64_t t = now_ns();
        if (t >= measuring_from) {
          trips++;
          if (nlat < cap) lat[nlat++] = t - c->started;
        }
        c->received = 0;
        c->sent = 0;
        c->started = t;
        send_on(c, msg, size, i);
        if (c->sent < size) break;
      } while (SSL_has_pending(c->ssl));
    }
  }
  double secs = (double)measure / 1e9;
  qsort(lat, nlat, sizeof(int64_t), cmp64);
  double p50 = nlat ? lat[nlat / 2] / 1000.0 : 0, p99 = nlat ? lat[(nlat * 99) / 100] / 1000.0 : 0;
  printf("{\"roundTrips\":%lld,\"seconds\":%.3f,\"perSecond\":%.1f,\"p50us\":%.1f,\"p99us\":%.1f}\n", (long long)trips,
         secs, (double)trips / secs, p50, p99);
  return 0;
}
