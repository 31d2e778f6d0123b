/*
 * The C floor for the UDP echo benchmark: one thread, one UDP socket bound to
 * 127.0.0.1, a blocking recvfrom/sendto loop -- each datagram is sent back to
 * whoever sent it. Blocking beats waiting in epoll here: with one socket and
 * a hundred clients in flight there is nearly always a datagram queued, so a
 * blocking recvfrom returns at once, where epoll would add an epoll_wait per
 * wake-up and a recvfrom that ends in EAGAIN per drain (measured: the epoll
 * variant, `--epoll`, is slower; it is kept to check that claim).
 *
 *   echo-udp [port] [--epoll]   prints "listening <port>", runs until killed
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "floor.h"

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 0;
  int use_epoll = argc > 2 && strcmp(argv[2], "--epoll") == 0;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | (use_epoll ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) die("socket");
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) die("bind");
  socklen_t alen = sizeof(addr);
  getsockname(fd, (struct sockaddr *)&addr, &alen);
  printf("listening %d\n", ntohs(addr.sin_port));
  fflush(stdout);

  static char buf[65536];
  struct sockaddr_in peer;
  if (!use_epoll) {
    for (;;) {
      socklen_t plen = sizeof(peer);
      ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &plen);
      if (n < 0) {
        if (errno == EINTR || errno == ECONNREFUSED) continue; /* ICMP from a client that went away */
        die("recvfrom");
      }
      /* A full send buffer drops the datagram (the client resends): UDP's own rule. */
      sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer, plen);
    }
  }
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  struct epoll_event events[8];
  for (;;) {
    int k = epoll_wait(ep, events, 8, -1);
    if (k < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (;;) {
      socklen_t plen = sizeof(peer);
      ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &plen);
      if (n < 0) {
        if (errno == EAGAIN) break;
        if (errno == EINTR || errno == ECONNREFUSED) continue;
        die("recvfrom");
      }
      sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer, plen);
    }
  }
}
