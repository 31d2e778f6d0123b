// Plain fd operations, like Python's os module: eventfd, pipe, read, write,
// close. Every fd made here is CLOEXEC.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <string>

#include "args.h"
#include "deadline.h"
#include "errors.h"
#include "modules.h"
#include "raw.h"
#include "socket.h"
#include "unique_fd.h"
#include "syscount.h"

namespace iomux {

namespace {

// eventfd(initval = 0, flags = 0) -> fd. flags: EFD_NONBLOCK | EFD_SEMAPHORE.
Napi::Value EventFd(const Napi::CallbackInfo& info) {
  int32_t initval = 0;
  int32_t flags = 0;
  if (!ArgInt32Or(info, 0, "initval", 0, INT32_MAX, 0, &initval)) return info.Env().Undefined();
  if (!ArgInt32Or(info, 1, "flags", 0, INT32_MAX, 0, &flags)) return info.Env().Undefined();
  if ((flags & ~(EFD_NONBLOCK | EFD_SEMAPHORE | EFD_CLOEXEC)) != 0) {
    ThrowRangeError(info.Env(), "The \"flags\" argument may only hold EFD_NONBLOCK, EFD_SEMAPHORE and EFD_CLOEXEC. "
                                "Received " + std::to_string(flags));
    return info.Env().Undefined();
  }
  int fd = IOMUX_SYSCALL(::eventfd(static_cast<unsigned>(initval), flags | EFD_CLOEXEC));
  if (fd < 0) {
    ThrowErrno(info.Env(), errno, "eventfd");
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), fd);
}

// pipe(flags = 0) -> [readFd, writeFd]. flags: O_NONBLOCK | O_DIRECT.
Napi::Value Pipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t flags = 0;
  if (!ArgInt32Or(info, 0, "flags", 0, INT32_MAX, 0, &flags)) return env.Undefined();
  if ((flags & ~(O_NONBLOCK | O_DIRECT | O_CLOEXEC)) != 0) {
    ThrowRangeError(env, "The \"flags\" argument may only hold O_NONBLOCK, O_DIRECT and O_CLOEXEC. Received " +
                             std::to_string(flags));
    return env.Undefined();
  }
  int fds[2];
  if (IOMUX_SYSCALL(::pipe2(fds, flags | O_CLOEXEC)) < 0) {
    ThrowErrno(env, errno, "pipe2");
    return env.Undefined();
  }
  // Owned until both are in the array: a failure on the way closes them.
  UniqueFd readEnd(fds[0]);
  UniqueFd writeEnd(fds[1]);
  Napi::Array pair = Napi::Array::New(env, 2);
  if (env.IsExceptionPending()) return env.Undefined();
  pair.Set(0u, Napi::Number::New(env, readEnd.Get()));
  pair.Set(1u, Napi::Number::New(env, writeEnd.Get()));
  if (env.IsExceptionPending()) return env.Undefined();
  readEnd.Release();
  writeEnd.Release();
  return pair;
}

enum class Io { kRead, kWrite };

constexpr const char* kIoNames[] = {"read", "write"};

template <Io kIo>
ssize_t DoIo(int fd, const ByteRange& range) {
  return RetryEintr([&]() -> ssize_t {
    switch (kIo) {
      case Io::kRead:
        return IOMUX_SYSCALL(::read(fd, range.data, range.length));
      case Io::kWrite:
        return IOMUX_SYSCALL(::write(fd, range.data, range.length));
    }
    return -1;
  });
}

// (fd, buf, offset?, length?) -> bytes: read/write raise BlockingIOError
// for EAGAIN; tryRead/tryWrite return null instead. Raw functions (raw.h).
template <Io kIo, bool kTry>
napi_value FdIo(napi_env raw, napi_callback_info info) {
  RawArgs<4> a;
  if (!a.Read(raw, info)) return nullptr;
  Napi::Env env(raw);
  int fd = -1;
  ByteRange range{};
  if (!ValueFd(env, Napi::Value(raw, a.At(raw, 0)), "fd", &fd)) return nullptr;
  if (!ValueByteRange(env, a.At(raw, 1), a.argv[2], a.argv[3], &range)) return nullptr;
  ssize_t n = DoIo<kIo>(fd, range);
  if (n < 0) {
    if (kTry && (errno == EAGAIN || errno == EWOULDBLOCK)) return RawNull(raw);
    ThrowErrno(env, errno, kIoNames[static_cast<int>(kIo)]);
    return nullptr;
  }
  // Linux moves at most 0x7ffff000 bytes per call: n fits an int32.
  return RawInt32(raw, static_cast<int32_t>(n));
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  int fd = -1;
  if (!ArgFd(info, 0, "fd", &fd)) return info.Env().Undefined();
  ForgetSocketFd(info.Env(), fd);
  // Never retried: Linux releases the fd even when close(2) says EINTR.
  if (IOMUX_SYSCALL(::close(fd)) < 0 && errno != EINTR) ThrowErrno(info.Env(), errno, "close", "(fd " + std::to_string(fd) + ")");
  return info.Env().Undefined();
}

}  // namespace

void InitFdOps(Napi::Env env, Napi::Object exports) {
  exports.Set("eventfd", Napi::Function::New(env, EventFd, "eventfd"));
  exports.Set("pipe", Napi::Function::New(env, Pipe, "pipe"));
  SetRawFunction(env, exports, "read", FdIo<Io::kRead, false>);
  SetRawFunction(env, exports, "write", FdIo<Io::kWrite, false>);
  SetRawFunction(env, exports, "tryRead", FdIo<Io::kRead, true>);
  SetRawFunction(env, exports, "tryWrite", FdIo<Io::kWrite, true>);
  exports.Set("close", Napi::Function::New(env, Close, "close"));
}

}  // namespace iomux
