// select(2). The caller passes the three fd lists back to back in one
// Int32Array; every fd is range-checked against FD_SETSIZE before any FD_SET,
// because FD_SET beyond the set's 1024 bits writes past the end of the stack
// object (memory corruption, not an error).
#include <sys/select.h>

#include <cstring>
#include <string>

#include "args.h"
#include "deadline.h"
#include "errors.h"
#include "modules.h"

namespace iomux {

namespace {

// select(fds, nr, nw, nx, timeoutMs, out) -> number of ready entries.
// fds[0, nr) are watched for reading, the next nw for writing, the next nx
// for exceptional conditions. out[0..2] receive the three ready counts, then
// out[3...] the indices into `fds` of the ready entries, list by list, in the
// order they were given (like Python, a repeated fd is reported each time).
Napi::Value Select(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Int32View fds{};
  Int32View out{};
  int32_t counts[3] = {0, 0, 0};
  int timeoutMs = 0;
  if (!ArgInt32Array(info, 0, "fds", &fds)) return env.Undefined();
  if (!ArgInt32(info, 1, "nr", 0, INT32_MAX, &counts[0])) return env.Undefined();
  if (!ArgInt32(info, 2, "nw", 0, INT32_MAX, &counts[1])) return env.Undefined();
  if (!ArgInt32(info, 3, "nx", 0, INT32_MAX, &counts[2])) return env.Undefined();
  if (!ArgTimeoutMs(info, 4, &timeoutMs)) return env.Undefined();
  if (!ArgInt32Array(info, 5, "out", &out)) return env.Undefined();
  const size_t total = static_cast<size_t>(counts[0]) + counts[1] + counts[2];
  if (total > fds.length) {
    ThrowRangeError(env, "The fd counts (" + std::to_string(total) + ") exceed the fds array length (" +
                             std::to_string(fds.length) + ")");
    return env.Undefined();
  }
  if (out.length < total + 3) {
    ThrowRangeError(env, "The \"out\" array must hold at least " + std::to_string(total + 3) + " entries. Received " +
                             std::to_string(out.length));
    return env.Undefined();
  }

  fd_set master[3];
  int maxFd = -1;
  size_t at = 0;
  for (int set = 0; set < 3; set++) {
    FD_ZERO(&master[set]);
    for (int32_t i = 0; i < counts[set]; i++, at++) {
      const int fd = fds.data[at];
      if (fd < 0) {
        ThrowRangeError(env, "select() file descriptor cannot be a negative integer (" + std::to_string(fd) + ")");
        return env.Undefined();
      }
      if (fd >= FD_SETSIZE) {
        ThrowRangeError(env, "select() cannot watch fd " + std::to_string(fd) + ": it is >= FD_SETSIZE (" +
                                 std::to_string(FD_SETSIZE) + "); use poll or epoll");
        return env.Undefined();
      }
      FD_SET(fd, &master[set]);
      if (fd > maxFd) maxFd = fd;
    }
  }

  fd_set ready[3];
  int rc = RetryOnEintr(timeoutMs, [&](int ms) {
    // select(2) leaves the sets undefined after EINTR: start from the master copy each time.
    std::memcpy(ready, master, sizeof(ready));
    struct timeval tv;
    struct timeval* tvp = nullptr;
    if (ms >= 0) {
      tv.tv_sec = ms / 1000;
      tv.tv_usec = (ms % 1000) * 1000;
      tvp = &tv;
    }
    return ::select(maxFd + 1, &ready[0], &ready[1], &ready[2], tvp);
  });
  if (rc < 0) {
    ThrowErrno(env, errno, "select");
    return env.Undefined();
  }
  if (rc == 0) {
    // Also the "deadline passed while interrupted" case: the sets are stale.
    out.data[0] = out.data[1] = out.data[2] = 0;
    return Napi::Number::New(env, 0);
  }
  size_t written = 3;
  at = 0;
  for (int set = 0; set < 3; set++) {
    int32_t hits = 0;
    for (int32_t i = 0; i < counts[set]; i++, at++) {
      if (FD_ISSET(fds.data[at], &ready[set])) {
        out.data[written++] = static_cast<int32_t>(at);
        hits++;
      }
    }
    out.data[set] = hits;
  }
  return Napi::Number::New(env, static_cast<double>(written - 3));
}

}  // namespace

void InitSelect(Napi::Env env, Napi::Object exports) { exports.Set("select", Napi::Function::New(env, Select, "select")); }

}  // namespace iomux
