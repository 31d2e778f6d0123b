// select(2). The caller passes the three fd lists back to back in one
// Int32Array; every fd is range-checked against FD_SETSIZE before any FD_SET,
// because FD_SET beyond the set's 1024 bits writes past the end of the stack
// object (memory corruption, not an error).
#include <sys/select.h>

#include <cstring>
#include <string>

#include <fcntl.h>

#include <memory>

#include "args.h"
#include "bound.h"
#include "deadline.h"
#include "errors.h"
#include "modules.h"
#include "raw.h"
#include "syscount.h"

namespace iomux {

namespace {

// select(2)'s timeout from milliseconds: null (block) for a negative one.
struct timeval* ToTimeval(int ms, struct timeval* tv) {
  if (ms < 0) return nullptr;
  tv->tv_sec = ms / 1000;
  tv->tv_usec = (ms % 1000) * 1000;
  return tv;
}

// select(fds, nr, nw, nx, timeoutMs, out) -> number of ready entries.
// fds[0, nr) are watched for reading, the next nw for writing, the next nx
// for exceptional conditions. out[0..2] receive the three ready counts, then
// out[3...] the indices into `fds` of the ready entries, list by list, in the
// order they were given (like Python, a repeated fd is reported each time).
// A raw function (raw.h): it is select's own cost in `bench calls`.
napi_value Select(napi_env raw, napi_callback_info info) {
  RawArgs<6> a;
  if (!a.Read(raw, info)) return nullptr;
  Napi::Env env(raw);
  Int32View fds{};
  Int32View out{};
  int64_t counts[3] = {0, 0, 0};
  int timeoutMs = 0;
  const char* const countNames[3] = {"nr", "nw", "nx"};
  if (!ValueInt32Array(env, Napi::Value(raw, a.At(raw, 0)), "fds", &fds)) return nullptr;
  for (int i = 0; i < 3; i++) {
    if (!ValueInt(env, Napi::Value(raw, a.At(raw, 1 + i)), countNames[i], 0, INT32_MAX, &counts[i])) return nullptr;
  }
  if (!ValueTimeoutMs(env, Napi::Value(raw, a.At(raw, 4)), &timeoutMs)) return nullptr;
  if (!ValueInt32Array(env, Napi::Value(raw, a.At(raw, 5)), "out", &out)) return nullptr;
  const size_t total = static_cast<size_t>(counts[0] + counts[1] + counts[2]);
  if (total > fds.length) {
    ThrowRangeError(env, "The fd counts (" + std::to_string(total) + ") exceed the fds array length (" +
                             std::to_string(fds.length) + ")");
    return nullptr;
  }
  if (out.length < total + 3) {
    ThrowRangeError(env, "The \"out\" array must hold at least " + std::to_string(total + 3) + " entries. Received " +
                             std::to_string(out.length));
    return nullptr;
  }

  fd_set master[3];
  int maxFd = -1;
  size_t at = 0;
  for (int set = 0; set < 3; set++) {
    FD_ZERO(&master[set]);
    for (int64_t i = 0; i < counts[set]; i++, at++) {
      const int fd = fds.data[at];
      if (fd < 0) {
        ThrowRangeError(env, "select() file descriptor cannot be a negative integer (" + std::to_string(fd) + ")");
        return nullptr;
      }
      if (fd >= FD_SETSIZE) {
        ThrowRangeError(env, "select() cannot watch fd " + std::to_string(fd) + ": it is >= FD_SETSIZE (" +
                                 std::to_string(FD_SETSIZE) + "); use poll or epoll");
        return nullptr;
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
    return IOMUX_SYSCALL(::select(maxFd + 1, &ready[0], &ready[1], &ready[2], ToTimeval(ms, &tv)));
  });
  if (rc < 0) {
    ThrowErrno(env, errno, "select");
    return nullptr;
  }
  if (rc == 0) {
    // Also the "deadline passed while interrupted" case: the sets are stale.
    out.data[0] = out.data[1] = out.data[2] = 0;
    return RawInt32(raw, 0);
  }
  size_t written = 3;
  at = 0;
  for (int set = 0; set < 3; set++) {
    int32_t hits = 0;
    for (int64_t i = 0; i < counts[set]; i++, at++) {
      if (FD_ISSET(fds.data[at], &ready[set])) {
        out.data[written++] = static_cast<int32_t>(at);
        hits++;
      }
    }
    out.data[set] = hits;
  }
  return RawInt32(raw, static_cast<int32_t>(written - 3));
}

// SelectSet: select(2) over fd_sets kept in native memory and changed one fd
// at a time (the hot-path rule: no rebuild per wait), for SelectSelector.
// Methods are bound to the core (bound.h).
constexpr int kRead = 1;
constexpr int kWrite = 2;

struct SelectCore {
  fd_set read;
  fd_set write;
  int maxFd = -1;
  int count = 0;
  bool closed = false;
  // (fd, mask) pairs of the last wait: at most FD_SETSIZE ready fds.
  std::shared_ptr<Int32Memory> events = std::make_shared<Int32Memory>(2 * FD_SETSIZE);
  SelectCore() {
    FD_ZERO(&read);
    FD_ZERO(&write);
  }
  bool Has(int fd) const { return FD_ISSET(fd, &read) || FD_ISSET(fd, &write); }
};

bool CheckSetOpen(Napi::Env env, const SelectCore* core, const char* syscall) {
  if (!core->closed) return true;
  ThrowErrno(env, EBADF, syscall, "(the select set is closed)");
  return false;
}

// ctl(fd, mask): mask 1 read, 2 write, 3 both; 0 removes fd. Adding an fd
// that is not open is EBADF now, not on every later wait.
napi_value SetCtl(napi_env e, napi_callback_info info) {
  Napi::Env env(e);
  auto b = Unbind<SelectCore>(e, info);
  SelectCore* core = b.core;
  int fd = -1;
  int64_t mask = 0;
  if (!CheckSetOpen(env, core, "select")) return nullptr;
  if (!ValueFd(env, Napi::Value(env, b.argv[0]), "fd", &fd)) return nullptr;
  if (!ValueInt(env, Napi::Value(env, b.argv[1]), "mask", 0, kRead | kWrite, &mask)) return nullptr;
  if (fd >= FD_SETSIZE) {
    ThrowRangeError(env, "select() cannot watch fd " + std::to_string(fd) + ": it is >= FD_SETSIZE (" +
                             std::to_string(FD_SETSIZE) + "); use poll or epoll");
    return nullptr;
  }
  const bool had = core->Has(fd);
  if (mask != 0 && !had && IOMUX_SYSCALL(::fcntl(fd, F_GETFD)) < 0) {
    ThrowErrno(env, errno, "select", "(fd " + std::to_string(fd) + ")");
    return nullptr;
  }
  FD_CLR(fd, &core->read);
  FD_CLR(fd, &core->write);
  if (mask & kRead) FD_SET(fd, &core->read);
  if (mask & kWrite) FD_SET(fd, &core->write);
  if (mask != 0) {
    if (!had) core->count++;
    if (fd > core->maxFd) core->maxFd = fd;
  } else if (had) {
    core->count--;
    while (core->maxFd >= 0 && !core->Has(core->maxFd)) core->maxFd--;
  }
  return nullptr;
}

// How often wait() selects again after an EBADF for which no closed fd is
// found (its number was reused meanwhile by another thread); each race needs
// a close and an open elsewhere within one select call, so a few suffice.
constexpr int kEbadfRetries = 16;

// wait(timeoutMs) -> n (fd, mask) pairs in `events`, in fd order.
napi_value SetWait(napi_env e, napi_callback_info info) {
  Napi::Env env(e);
  auto b = Unbind<SelectCore>(e, info);
  SelectCore* core = b.core;
  int timeoutMs = 0;
  if (!CheckSetOpen(env, core, "select")) return nullptr;
  if (!ValueTimeoutMs(env, Napi::Value(env, b.argv[0]), &timeoutMs)) return nullptr;
  fd_set r;
  fd_set w;
  auto selectOnce = [&]() {
    return RetryOnEintr(timeoutMs, [&](int ms) {
      std::memcpy(&r, &core->read, sizeof(r));
      std::memcpy(&w, &core->write, sizeof(w));
      struct timeval tv;
      return IOMUX_SYSCALL(::select(core->maxFd + 1, &r, &w, nullptr, ToTimeval(ms, &tv)));
    });
  };
  int rc = selectOnce();
  int32_t* out = core->events->data.get();
  int n = 0;
  for (int attempt = 0; rc < 0 && errno == EBADF; attempt++) {
    // An fd was closed while in the set: select(2) fails as a whole and
    // would on every later wait. Drop the closed fds and report each ready
    // both ways (as poll's POLLNVAL), so its owner's callbacks find out.
    for (int fd = 0; fd <= core->maxFd; fd++) {
      if (!core->Has(fd) || IOMUX_SYSCALL(::fcntl(fd, F_GETFD)) >= 0) continue;
      FD_CLR(fd, &core->read);
      FD_CLR(fd, &core->write);
      core->count--;
      out[2 * n] = fd;
      out[2 * n + 1] = kRead | kWrite;
      n++;
    }
    while (core->maxFd >= 0 && !core->Has(core->maxFd)) core->maxFd--;
    if (n > 0) return Napi::Number::New(env, n);
    // No fd in the set is closed now: the closed one's number was reused
    // (by another thread: fd numbers are per process) between select(2)
    // and the scan, and the set holds only open fds again. Select again:
    // EBADF comes back at once, before any wait, so this costs no time.
    // Should the race win every time (another thread closing and opening
    // as fast as it can), this wait reports nothing rather than an EBADF
    // that no fd of the set explains: an early, empty return, and the next
    // wait tries again.
    if (attempt == kEbadfRetries) return Napi::Number::New(env, 0);
    rc = selectOnce();
  }
  if (rc < 0) {
    ThrowErrno(env, errno, "select");
    return nullptr;
  }
  for (int fd = 0; rc > 0 && fd <= core->maxFd; fd++) {
    const int mask = (FD_ISSET(fd, &r) ? kRead : 0) | (FD_ISSET(fd, &w) ? kWrite : 0);
    if (mask == 0) continue;
    out[2 * n] = fd;
    out[2 * n + 1] = mask;
    n++;
    rc -= (mask == (kRead | kWrite)) ? 2 : 1;
  }
  return Napi::Number::New(env, n);
}

napi_value SetClose(napi_env e, napi_callback_info info) {
  auto b = Unbind<SelectCore>(e, info);
  b.core->closed = true;
  FD_ZERO(&b.core->read);
  FD_ZERO(&b.core->write);
  b.core->maxFd = -1;
  b.core->count = 0;
  return nullptr;
}

napi_value SetSize(napi_env e, napi_callback_info info) {
  auto b = Unbind<SelectCore>(e, info);
  return Napi::Number::New(Napi::Env(e), b.core->count);
}

// createSelectSet() -> { ctl, wait, close, size, events }
Napi::Value CreateSelectSet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto core = std::make_shared<SelectCore>();
  Napi::Object obj = Napi::Object::New(env);
  BindFunction(env, obj, "ctl", SetCtl, core);
  BindFunction(env, obj, "wait", SetWait, core);
  BindFunction(env, obj, "close", SetClose, core);
  BindFunction(env, obj, "size", SetSize, core);
  obj.Set("events", NewSharedInt32Array(env, core->events));
  return obj;
}

}  // namespace

void InitSelect(Napi::Env env, Napi::Object exports) {
  SetRawFunction(env, exports, "select", Select);
  exports.Set("createSelectSet", Napi::Function::New(env, CreateSelectSet, "createSelectSet"));
}

}  // namespace iomux
