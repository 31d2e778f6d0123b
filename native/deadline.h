// Monotonic deadlines and the PEP 475 rule: a wait interrupted by a signal
// (EINTR) is retried with whatever is left of its timeout, so JavaScript never
// sees EINTR and a timeout is never stretched by signals.
#pragma once

#include <time.h>

#include <cerrno>
#include <cstdint>

namespace iomux {

inline int64_t MonotonicNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

// Calls wait(timeoutMs) until it does not fail with EINTR. timeoutMs < 0
// blocks without limit, 0 does not block. Returns wait's last result; when
// the deadline passed during an interrupted wait, returns 0 ("timed out").
template <typename Wait>
int RetryOnEintr(int timeoutMs, Wait wait) {
  if (timeoutMs <= 0) {
    for (;;) {
      int rc = wait(timeoutMs);
      if (rc >= 0 || errno != EINTR) return rc;
    }
  }
  const int64_t deadline = MonotonicNs() + static_cast<int64_t>(timeoutMs) * 1000000LL;
  int remaining = timeoutMs;
  for (;;) {
    int rc = wait(remaining);
    if (rc >= 0 || errno != EINTR) return rc;
    const int64_t left = deadline - MonotonicNs();
    if (left <= 0) return 0;
    // Round up: a sub-millisecond remainder must still wait, not spin.
    remaining = static_cast<int>((left + 999999) / 1000000);
  }
}

// Retries a non-waiting syscall (read, write, accept...) on EINTR.
template <typename Call>
auto RetryEintr(Call call) -> decltype(call()) {
  for (;;) {
    auto rc = call();
    if (rc >= 0 || errno != EINTR) return rc;
  }
}

}  // namespace iomux
