/* What every C floor program uses: a monotonic clock and a fatal error. */
#ifndef IOMUX_FLOOR_H
#define IOMUX_FLOOR_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds. */
static inline int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* perror(what), then exit(1). */
static inline _Noreturn void die(const char *what) {
  perror(what);
  exit(1);
}

#endif
