/*
 * The C floor for select / poll / epoll: N eventfds, K of them made readable
 * and never drained, so every wait returns the same K ready fds. Prints the
 * cost of one wait (plus finding the ready fds, as any caller must) as JSON.
 *
 *   multiplex <select|poll|epoll|epoll_ctl> <N> <K> <samples> <sample_ms> [threads]
 *
 * threads (default 0) starts that many idle threads first. It matters: the
 * kernel's fdget() skips the file refcount only while a process has a single
 * thread, so select/poll pay an atomic pair per watched fd, and epoll_wait a
 * little per call, in any multi-threaded process -- every Node.js process is
 * one. "floor" is the single-threaded figure; "floor-mt" the fair peer.
 *
 * epoll_ctl is epoll_wait plus one EPOLL_CTL_MOD per ready event: the cost
 * of changing interest on every event (what a naive event loop does).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "floor.h"

static volatile long sink;

static void *idle_thread(void *arg) {
  (void)arg;
  for (;;) pause();
  return NULL;
} /* keeps the result scans from being optimised away */

int main(int argc, char **argv) {
  if (argc != 6 && argc != 7) {
    fprintf(stderr, "usage: %s <select|poll|epoll|epoll_ctl> <N> <K> <samples> <sample_ms> [threads]\n", argv[0]);
    return 2;
  }
  const int threads = argc == 7 ? atoi(argv[6]) : 0;
  for (int t = 0; t < threads; t++) {
    pthread_t tid;
    if (pthread_create(&tid, NULL, idle_thread, NULL) != 0) die("pthread_create");
  }
  const char *backend = argv[1];
  const int n = atoi(argv[2]);
  const int k = atoi(argv[3]);
  const int samples = atoi(argv[4]);
  const int sample_ms = atoi(argv[5]);
  if (n < 1 || k < 0 || k > n || samples < 1 || sample_ms < 1) {
    fprintf(stderr, "bad arguments\n");
    return 2;
  }

  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  int *fds = malloc(sizeof(int) * (size_t)n);
  if (fds == NULL) die("malloc");
  for (int i = 0; i < n; i++) {
    fds[i] = eventfd(0, EFD_CLOEXEC);
    if (fds[i] < 0) die("eventfd");
  }
  /* Spread the K ready fds evenly, so a scan cannot stop early by luck. */
  for (int j = 0; j < k; j++) {
    uint64_t one = 1;
    int idx = (int)(((int64_t)j * n) / k + (n / k) - 1);
    if (idx >= n) idx = n - 1;
    if (write(fds[idx], &one, sizeof(one)) != sizeof(one)) die("write");
  }

  int is_select = strcmp(backend, "select") == 0;
  int is_poll = strcmp(backend, "poll") == 0;
  int is_epoll = strcmp(backend, "epoll") == 0;
  int is_ctl = strcmp(backend, "epoll_ctl") == 0;
  if (!is_select && !is_poll && !is_epoll && !is_ctl) {
    fprintf(stderr, "unknown backend %s\n", backend);
    return 2;
  }
  if (is_select && fds[n - 1] >= FD_SETSIZE) {
    printf("{\"backend\":\"%s\",\"n\":%d,\"k\":%d,\"error\":\"FD_SETSIZE\"}\n", backend, n, k);
    return 0;
  }

  fd_set master;
  int maxfd = -1;
  struct pollfd *pfds = NULL;
  struct epoll_event *events = NULL;
  int epfd = -1;
  if (is_select) {
    FD_ZERO(&master);
    for (int i = 0; i < n; i++) {
      FD_SET(fds[i], &master);
      if (fds[i] > maxfd) maxfd = fds[i];
    }
  } else if (is_poll) {
    pfds = calloc((size_t)n, sizeof(*pfds));
    for (int i = 0; i < n; i++) {
      pfds[i].fd = fds[i];
      pfds[i].events = POLLIN;
    }
  } else {
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) die("epoll_create1");
    events = calloc((size_t)n, sizeof(*events));
    for (int i = 0; i < n; i++) {
      struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
      if (epoll_ctl(epfd, EPOLL_CTL_ADD, fds[i], &ev) < 0) die("epoll_ctl");
    }
  }

  double *results = calloc((size_t)samples, sizeof(double));
  for (int s = -1; s < samples; s++) { /* sample -1 is the warm-up */
    const int64_t budget = (int64_t)sample_ms * 1000000LL;
    const int64_t t0 = now_ns();
    int64_t calls = 0;
    int64_t elapsed = 0;
    do {
      for (int rep = 0; rep < 16; rep++) {
        long found = 0;
        if (is_select) {
          fd_set r;
          memcpy(&r, &master, sizeof(r));
          struct timeval tv = {0, 0};
          int rc = select(maxfd + 1, &r, NULL, NULL, &tv);
          if (rc < 0) die("select");
          for (int i = 0; i < n && found < rc; i++) {
            if (FD_ISSET(fds[i], &r)) found += fds[i];
          }
        } else if (is_poll) {
          int rc = poll(pfds, (nfds_t)n, 0);
          if (rc < 0) die("poll");
          int seen = 0;
          for (int i = 0; i < n && seen < rc; i++) {
            if (pfds[i].revents != 0) {
              found += pfds[i].fd;
              seen++;
            }
          }
        } else {
          int rc = epoll_wait(epfd, events, n, 0);
          if (rc < 0) die("epoll_wait");
          for (int i = 0; i < rc; i++) {
            found += events[i].data.fd;
            if (is_ctl) {
              struct epoll_event ev = {.events = EPOLLIN, .data.fd = events[i].data.fd};
              if (epoll_ctl(epfd, EPOLL_CTL_MOD, events[i].data.fd, &ev) < 0) die("epoll_ctl");
            }
          }
        }
        sink += found;
        calls++;
      }
      elapsed = now_ns() - t0;
    } while (elapsed < budget);
    if (s >= 0) results[s] = (double)elapsed / (double)calls;
  }

  printf("{\"backend\":\"%s\",\"n\":%d,\"k\":%d,\"samplesNs\":[", backend, n, k);
  for (int s = 0; s < samples; s++) printf("%s%.1f", s ? "," : "", results[s]);
  printf("]}\n");
  return 0;
}
