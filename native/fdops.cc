// Plain fd operations, like Python's os module: eventfd, pipe, socketpair,
// read, write, close. Every fd made here is CLOEXEC.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "args.h"
#include "deadline.h"
#include "errors.h"
#include "modules.h"
#include "socket.h"
#include "unique_fd.h"

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
  int fd = ::eventfd(static_cast<unsigned>(initval), flags | EFD_CLOEXEC);
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
  if (::pipe2(fds, flags | O_CLOEXEC) < 0) {
    ThrowErrno(env, errno, "pipe2");
    return env.Undefined();
  }
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(0u, Napi::Number::New(env, fds[0]));
  pair.Set(1u, Napi::Number::New(env, fds[1]));
  return pair;
}

// socketpair(family, type, proto) -> [Socket, Socket].
Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t family = 0;
  int32_t type = 0;
  int32_t proto = 0;
  if (!ArgInt32(info, 0, "family", 0, INT32_MAX, &family)) return env.Undefined();
  if (!ArgInt32(info, 1, "type", 0, INT32_MAX, &type)) return env.Undefined();
  if (!ArgInt32Or(info, 2, "proto", 0, INT32_MAX, 0, &proto)) return env.Undefined();
  if (family != AF_UNIX) {
    ThrowRangeError(env, "The \"family\" argument of socketpair must be AF_UNIX. Received " + std::to_string(family));
    return env.Undefined();
  }
  const int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (base != SOCK_STREAM && base != SOCK_DGRAM && base != SOCK_SEQPACKET) {
    ThrowRangeError(env, "The \"type\" argument must be SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET. Received " +
                             std::to_string(type));
    return env.Undefined();
  }
  int fds[2];
  if (::socketpair(family, type | SOCK_CLOEXEC, proto, fds) < 0) {
    ThrowErrno(env, errno, "socketpair");
    return env.Undefined();
  }
  UniqueFd second(fds[1]);
  Napi::Value a = AdoptSocketFd(env, fds[0]);
  if (env.IsExceptionPending()) return env.Undefined();
  Napi::Value b = AdoptSocketFd(env, second.Release());
  if (env.IsExceptionPending()) return env.Undefined();
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(0u, a);
  pair.Set(1u, b);
  return pair;
}

enum class Io { kRead, kWrite, kRecv, kSend };

constexpr const char* kIoNames[] = {"read", "write", "recv", "send"};

template <Io kIo>
ssize_t DoIo(int fd, const ByteRange& range) {
  return RetryEintr([&]() -> ssize_t {
    switch (kIo) {
      case Io::kRead:
        return ::read(fd, range.data, range.length);
      case Io::kWrite:
        return ::write(fd, range.data, range.length);
      case Io::kRecv:
        return ::recv(fd, range.data, range.length, MSG_DONTWAIT);
      case Io::kSend:
        return ::send(fd, range.data, range.length, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    return -1;
  });
}

// (fd, buf, offset, length) -> bytes, for each way of moving bytes on an fd:
//  read/write: EAGAIN raises BlockingIOError; tryRead/tryWrite return -1.
//  sockRecv/sockSend: the event loop's socket I/O on an fd the caller (a
//  Socket wrapper) vouches for; never blocks (MSG_DONTWAIT), never raises
//  SIGPIPE (MSG_NOSIGNAL); would-block is -1.
// Raw napi_callbacks: the loop calls sockRecv/sockSend twice per message,
// and the node-addon-api form made about twelve N-API calls per call, more
// than the syscall cost; this one makes one napi_get_cb_info, one call per
// argument and one for the result. The checks are the same.
template <Io kIo, bool kTry>
napi_value FdIo(napi_env raw, napi_callback_info cbinfo) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(raw, cbinfo, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  Napi::Env env(raw);
  for (size_t i = argc; i < 4; i++) napi_get_undefined(raw, &argv[i]);
  int fd = -1;
  ByteRange range{};
  if (!ValueFd(env, Napi::Value(raw, argv[0]), "fd", &fd)) return nullptr;
  if (!ValueByteRange(env, argv[1], argv[2], argv[3], &range)) return nullptr;
  ssize_t n = DoIo<kIo>(fd, range);
  if (n < 0) {
    if (!kTry || (errno != EAGAIN && errno != EWOULDBLOCK)) {
      ThrowErrno(env, errno, kIoNames[static_cast<int>(kIo)]);
      return nullptr;
    }
    n = -1;
  }
  // Linux moves at most 0x7ffff000 bytes per call: n fits an int32.
  napi_value result;
  napi_create_int32(raw, static_cast<int32_t>(n), &result);
  return result;
}

void SetRawFunction(Napi::Env env, Napi::Object exports, const char* name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, nullptr, &fn);
  exports.Set(name, Napi::Value(env, fn));
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  int fd = -1;
  if (!ArgFd(info, 0, "fd", &fd)) return info.Env().Undefined();
  // Never retried: Linux releases the fd even when close(2) says EINTR.
  if (::close(fd) < 0 && errno != EINTR) ThrowErrno(info.Env(), errno, "close", "(fd " + std::to_string(fd) + ")");
  return info.Env().Undefined();
}

}  // namespace

void InitFdOps(Napi::Env env, Napi::Object exports) {
  exports.Set("eventfd", Napi::Function::New(env, EventFd, "eventfd"));
  exports.Set("pipe", Napi::Function::New(env, Pipe, "pipe"));
  exports.Set("socketpair", Napi::Function::New(env, SocketPair, "socketpair"));
  SetRawFunction(env, exports, "read", FdIo<Io::kRead, false>);
  SetRawFunction(env, exports, "write", FdIo<Io::kWrite, false>);
  SetRawFunction(env, exports, "tryRead", FdIo<Io::kRead, true>);
  SetRawFunction(env, exports, "tryWrite", FdIo<Io::kWrite, true>);
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  SetRawFunction(env, exports, "sockRecv", FdIo<Io::kRecv, true>);
  SetRawFunction(env, exports, "sockSend", FdIo<Io::kSend, true>);
}

}  // namespace iomux
