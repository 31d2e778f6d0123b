/*
 * The fetch benchmark's C floor over TLS (https): fetch-client.c with
 * OpenSSL's client side. One thread, epoll, non-blocking sockets and
 * SSL_connect, in its own process: <count> GETs of /goods/<i>/ on
 * https://127.0.0.1:<port>, <conns> at a time, the server's certificate
 * verified against <caFile> (for the address 127.0.0.1), as the Node
 * clients of the benchmark do.
 *
 *   fetch-tls <port> <count> <conns> <caFile> [--keep-alive] [--resume]
 *   {"requests":N,"ok":N,"seconds":S,"cpuUs":U,"handshakes":H,"resumed":R}
 *
 * --keep-alive: <conns> connections, each one TLS handshake, then GET after
 * GET on it (HTTP/1.1 keep-alive), the response read until its
 * Content-Length is in. The connections are opened and their handshakes
 * done before the timing starts: the figures are per request on warm
 * connections (`handshakes` counts them all the same). Without: a new connection per request (Connection:
 * close), a full TLS handshake each -- unless --resume, where each new
 * connection offers the session of the last response read (TLS 1.3
 * tickets; the first connections, before any ticket came, cannot).
 * `resumed` counts the handshakes the server accepted a session in.
 * A connection that is done is closed without a close_notify (a quiet
 * shutdown: the server sends its own on Connection: close). A response is ok when its status is
 * 200; it must fit in 4 KiB. Without --keep-alive everything is timed,
 * handshakes included; cpuUs is the process's CPU time (user + system) over
 * the same span.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
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

enum state { CONNECTING, HANDSHAKING, IDLE, SENDING, READING };

struct conn {
  int fd;
  SSL *ssl;
  enum state state;
  uint32_t events;
  int page;    /* the request in flight */
  int reqlen;  /* its length */
  size_t have; /* bytes of the response in buf */
  size_t want; /* head + Content-Length once the head is in, else 0 */
  char req[128];
  char buf[BUF_SIZE];
};

static int ep, port, count, keep_alive, resume, timing;
static int started, done, ok, handshakes, resumed;
static SSL_CTX *ctx;
static SSL_SESSION *latest; /* the session to offer (--resume) */
static struct sockaddr_in addr;

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
  fprintf(stderr, "%s failed (SSL error %d, errno %d)\n", what, err, errno);
  ERR_print_errors_fp(stderr);
  exit(1);
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

/* Formats the request for c->page; it is sent at once (over loopback the socket takes it). */
static void format_request(struct conn *c) {
  c->reqlen = snprintf(c->req, sizeof(c->req), "GET /goods/%d/ HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n", c->page,
                       port, keep_alive ? "" : "Connection: close\r\n");
  c->have = 0;
  c->want = 0;
  c->state = SENDING;
}

/* A new connection in slot i, for the next request: socket, connect, an SSL offering the latest session. */
static void open_conn(struct conn *c, uint32_t i) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) die("socket");
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 && errno != EINPROGRESS) die("connect");
  c->ssl = SSL_new(ctx);
  if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) die("SSL_new");
  SSL_set_connect_state(c->ssl);
  if (resume && latest != NULL) SSL_set_session(c->ssl, latest);
  c->page = started++; /* this connection's request (the first of them, with keep-alive) */
  c->state = CONNECTING;
  c->events = EPOLLOUT;
  struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = i};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
}

static void close_conn(struct conn *c) {
  /* Quiet: no close_notify, but marked shut down, else SSL_free would make the session unresumable. */
  SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  SSL_free(c->ssl);
  close(c->fd);
  c->ssl = NULL;
  c->fd = -1;
}

/* One wake-up of slot i; steps the connection on as far as it goes without waiting. */
static void step(struct conn *c, uint32_t i) {
  for (;;) {
    if (c->state == CONNECTING) {
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        errno = err;
        die("connect");
      }
      c->state = HANDSHAKING;
    }
    if (c->state == HANDSHAKING) {
      int r = SSL_connect(c->ssl);
      if (r != 1) {
        interest(c, wanted(c, r, "SSL_connect"), i);
        return;
      }
      handshakes++;
      if (SSL_session_reused(c->ssl)) resumed++;
      if (!timing) {
        c->state = IDLE; /* keep-alive: the request waits for the timing to start */
        interest(c, 0, i);
        return;
      }
      format_request(c);
    }
    if (c->state == SENDING) {
      int n = SSL_write(c->ssl, c->req, c->reqlen);
      if (n <= 0) {
        interest(c, wanted(c, n, "SSL_write"), i);
        return;
      }
      if (n != c->reqlen) {
        fprintf(stderr, "a short SSL_write of the request\n");
        exit(1);
      }
      c->state = READING;
      interest(c, EPOLLIN, i);
    }
    /* READING: on while OpenSSL holds bytes it took off the socket (epoll cannot see those). */
    int n = SSL_read(c->ssl, c->buf + c->have, (int)(BUF_SIZE - c->have));
    if (n <= 0) {
      int err = SSL_get_error(c->ssl, n);
      if (err != SSL_ERROR_ZERO_RETURN && err != SSL_ERROR_SYSCALL) {
        interest(c, wanted(c, n, "SSL_read"), i);
        return;
      }
      ERR_clear_error();
      if (c->want != SIZE_MAX) {
        fprintf(stderr, "the server closed before response %d was in\n", c->page);
        exit(1);
      }
    } else {
      c->have += (size_t)n;
      if (c->want == 0) c->want = expected_length(c->buf, c->have);
      if (c->want == 0 || c->have < c->want) {
        if (c->have < BUF_SIZE) continue;
        fprintf(stderr, "response %d is larger than %d bytes\n", c->page, BUF_SIZE);
        exit(1);
      }
    }
    /* The response is in. */
    if (c->have >= 12 && memcmp(c->buf, "HTTP/1.1 200", 12) == 0) ok++;
    done++;
    if (resume) {
      SSL_SESSION *s = SSL_get1_session(c->ssl);
      if (s != NULL && SSL_SESSION_is_resumable(s)) {
        SSL_SESSION_free(latest);
        latest = s;
      } else {
        SSL_SESSION_free(s);
      }
    }
    if (keep_alive && started < count) {
      c->page = started++;
      format_request(c);
      continue;
    }
    close_conn(c);
    if (started < count) open_conn(c, i);
    return;
  }
}

int main(int argc, char **argv) {
  /* OpenSSL writes to the socket with write(2): a peer gone must be an EPIPE, never a SIGPIPE that kills us. */
  signal(SIGPIPE, SIG_IGN);
  if (argc < 5) {
    fprintf(stderr, "usage: %s <port> <count> <conns> <caFile> [--keep-alive] [--resume]\n", argv[0]);
    return 2;
  }
  for (int a = 5; a < argc; a++) {
    if (strcmp(argv[a], "--keep-alive") == 0) {
      keep_alive = 1;
    } else if (strcmp(argv[a], "--resume") == 0) {
      resume = 1;
    } else {
      fprintf(stderr, "unknown option %s\n", argv[a]);
      return 2;
    }
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  port = atoi(argv[1]);
  count = atoi(argv[2]);
  int nconns = atoi(argv[3]);
  if (port < 1 || port > 65535 || count < 1 || nconns < 1) return 2;
  if (nconns > count) nconns = count;
  ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == NULL || SSL_CTX_load_verify_locations(ctx, argv[4], NULL) != 1) {
    ERR_print_errors_fp(stderr);
    return 1;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  /* Read ahead: one recv takes what the socket has, not a record header and then its body. */
  SSL_CTX_set_read_ahead(ctx, 1);
  if (X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(ctx), "127.0.0.1") != 1) die("X509_VERIFY_PARAM_set1_ip_asc");
  struct conn *conns = calloc((size_t)nconns, sizeof(*conns));
  if (conns == NULL) die("calloc");
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

  struct epoll_event events[1024];
  for (int i = 0; i < nconns; i++) open_conn(&conns[i], (uint32_t)i);
  /* Keep-alive: every connection's handshake first, untimed. */
  while (keep_alive && handshakes < nconns) {
    int n = epoll_wait(ep, events, 1024, 10000);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    if (n == 0) {
      fprintf(stderr, "handshakes not done in 10 s\n");
      return 1;
    }
    for (int e = 0; e < n; e++) step(&conns[events[e].data.u32], events[e].data.u32);
  }
  timing = 1;
  int64_t cpu0 = cpu_us();
  int64_t t0 = now_ns();
  for (int i = 0; keep_alive && i < nconns; i++) {
    format_request(&conns[i]);
    step(&conns[i], (uint32_t)i);
  }
  while (done < count) {
    int n = epoll_wait(ep, events, 1024, 10000);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    if (n == 0) {
      fprintf(stderr, "no progress in 10 s\n");
      return 1;
    }
    for (int e = 0; e < n; e++) {
      uint32_t i = events[e].data.u32;
      if (conns[i].ssl != NULL) step(&conns[i], i);
    }
  }
  double seconds = (double)(now_ns() - t0) / 1e9;
  printf("{\"requests\":%d,\"ok\":%d,\"seconds\":%.6f,\"cpuUs\":%lld,\"handshakes\":%d,\"resumed\":%d}\n", count, ok,
         seconds, (long long)(cpu_us() - cpu0), handshakes, resumed);
  return 0;
}
