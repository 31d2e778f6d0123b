/*
 * The C floor for the echo benchmark over TLS: the shape of echo-server.c
 * (one thread, level-triggered epoll, non-blocking sockets, TCP_NODELAY)
 * with OpenSSL's server side on each connection. OpenSSL's defaults
 * otherwise: TLS 1.3, its own session tickets.
 *
 *   echo-tls <port> <certFile> <keyFile>   prints "listening <port>", runs until killed
 *
 * Per connection: SSL_accept non-blocking, its WANT_READ / WANT_WRITE
 * mapped to the epoll interest; then each readable wake-up reads one record
 * (SSL_read, up to 64 KiB) and writes it back (SSL_write, partial writes on,
 * the buffer allowed to move), and reads on while OpenSSL holds bytes
 * already taken off the socket (SSL_has_pending): epoll cannot see those.
 * A write OpenSSL cannot finish (WANT_WRITE) keeps the rest in a buffer of
 * the connection's own and waits for writability instead of readability,
 * as the iomux servers do: the peer is not reading, stop reading from it.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "floor.h"

struct conn {
  int fd;
  SSL *ssl;
  int handshaking;
  uint32_t events;  /* the epoll interest now */
  char *rest;       /* what SSL_write has not taken yet, or NULL */
  size_t rest_off, rest_len;
};

static int ep;
static char buf[65536];

static void interest(struct conn *c, uint32_t events) {
  if (c->events == events) return;
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
  c->events = events;
}

static void drop(struct conn *c) {
  SSL_free(c->ssl);
  close(c->fd); /* closing removes it from the epoll set */
  free(c->rest);
  free(c);
}

/* The interest that WANT_READ / WANT_WRITE asks for; 0 for an error that ends the connection. */
static uint32_t wanted(struct conn *c, int ret) {
  int err = SSL_get_error(c->ssl, ret);
  if (err == SSL_ERROR_WANT_READ) return EPOLLIN;
  if (err == SSL_ERROR_WANT_WRITE) return EPOLLOUT;
  ERR_clear_error();
  return 0;
}

/* Writes data[off..len) on; 1 when all of it went, 0 when the rest waits (kept in c->rest), -1 on an error. */
static int write_on(struct conn *c, const char *data, size_t off, size_t len) {
  while (off < len) {
    int n = SSL_write(c->ssl, data + off, (int)(len - off));
    if (n > 0) {
      off += (size_t)n;
      continue;
    }
    uint32_t want = wanted(c, n);
    if (want == 0) return -1;
    if (data != c->rest) {
      /* Partial writes: OpenSSL took nothing of this call's bytes; keep them. */
      c->rest = malloc(len - off);
      if (c->rest == NULL) die("malloc");
      memcpy(c->rest, data + off, len - off);
      c->rest_len = len - off;
      c->rest_off = 0;
    } else {
      c->rest_off = off;
    }
    interest(c, want);
    return 0;
  }
  if (data == c->rest) {
    free(c->rest);
    c->rest = NULL;
  }
  return 1;
}

/* One wake-up of a connection; -1 when it is over. */
static int serve(struct conn *c) {
  if (c->handshaking) {
    int r = SSL_accept(c->ssl);
    if (r != 1) {
      uint32_t want = wanted(c, r);
      if (want == 0) return -1;
      interest(c, want);
      return 0;
    }
    c->handshaking = 0;
    interest(c, EPOLLIN);
  }
  if (c->rest != NULL) {
    int w = write_on(c, c->rest, c->rest_off, c->rest_len);
    if (w <= 0) return w;
    interest(c, EPOLLIN);
  }
  do {
    int n = SSL_read(c->ssl, buf, sizeof(buf));
    if (n <= 0) {
      uint32_t want = wanted(c, n);
      if (want == 0) return -1;
      interest(c, want);
      return 0;
    }
    int w = write_on(c, buf, 0, (size_t)n);
    if (w <= 0) return w;
  } while (SSL_has_pending(c->ssl));
  return 0;
}

int main(int argc, char **argv) {
  /* OpenSSL writes to the socket with write(2): a peer gone must be an EPIPE, never a SIGPIPE that kills us. */
  signal(SIGPIPE, SIG_IGN);
  if (argc != 4) {
    fprintf(stderr, "usage: %s <port> <certFile> <keyFile>\n", argv[0]);
    return 2;
  }
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == NULL || SSL_CTX_use_certificate_chain_file(ctx, argv[2]) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    ERR_print_errors_fp(stderr);
    return 1;
  }
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  /* Read ahead: one recv takes what the socket has, not a record header and then its body. */
  SSL_CTX_set_read_ahead(ctx, 1);

  int port = atoi(argv[1]);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0) die("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0) die("bind");
  if (listen(lfd, 4096) < 0) die("listen");
  socklen_t alen = sizeof(addr);
  getsockname(lfd, (struct sockaddr *)&addr, &alen);
  printf("listening %d\n", ntohs(addr.sin_port));
  fflush(stdout);

  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}; /* NULL: the listening socket */
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  struct epoll_event events[1024];
  for (;;) {
    int n = epoll_wait(ep, events, 1024, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      struct conn *c = events[i].data.ptr;
      if (c != NULL) {
        if (serve(c) < 0) drop(c);
        continue;
      }
      for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c = calloc(1, sizeof(*c));
        if (c == NULL) die("calloc");
        c->fd = fd;
        c->ssl = SSL_new(ctx);
        if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) die("SSL_new");
        SSL_set_accept_state(c->ssl);
        c->handshaking = 1;
        c->events = EPOLLIN; /* the ClientHello comes first */
        struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) < 0) die("epoll_ctl");
      }
    }
  }
}
