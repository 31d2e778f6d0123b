// Socket syscalls on fd numbers: no native object per socket. The
// TypeScript Socket class holds the fd and passes it to every call, so a
// call costs what the syscall and its argument checks cost and nothing else
// (an ObjectWrap method paid an unwrap and a dozen N-API calls more).
//
// Ownership: every socket fd made here (socket, accept, socketpair, fromFd)
// is recorded in its environment's EnvData::sockets until closeSocket or
// detachSocket takes it out; what is still there when the environment ends
// (a worker that exits) is closed then. The TypeScript side closes sockets
// nobody closed when they are collected (a FinalizationRegistry).
//
// Forms: the Python-shaped calls throw (a would-block is BlockingIOError);
// the try* calls pass MSG_DONTWAIT and return null when they would block
// (tryRecvfrom returns false: null there is a sender without an address).
// Every send passes MSG_NOSIGNAL: a vanished peer is EPIPE, never SIGPIPE.
// Every call reads all its JavaScript arguments before it takes a pointer
// into any buffer: reading an address can run a getter that detaches one.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <climits>
#include <string>
#include <vector>

#include "args.h"
#include "deadline.h"
#include "env.h"
#include "errors.h"
#include "modules.h"
#include "raw.h"
#include "sockaddr.h"
#include "socket.h"
#include "unique_fd.h"
#include "syscount.h"

namespace iomux {

namespace {

bool IsWouldBlock(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

bool KnownFamily(int family) { return family == AF_INET || family == AF_INET6 || family == AF_UNIX; }

bool KnownLevel(int level) {
  return level == SOL_SOCKET || level == IPPROTO_IP || level == IPPROTO_IPV6 || level == IPPROTO_TCP ||
         level == IPPROTO_UDP;
}

// Hands a new socket fd to JavaScript: recorded as owned, then returned.
napi_value Own(napi_env env, int fd) {
  GetEnvData(Napi::Env(env))->sockets.insert(fd);
  return RawInt32(env, fd);
}

// ---------------------------------------------------------------------------
// The byte-moving calls: (fd, buffer, offset?, length?, flags?).

enum class Dir { kRecv, kSend };

template <Dir kDir>
ssize_t Move(int fd, const ByteRange& range, int flags) {
  return RetryEintr([&]() -> ssize_t {
    if (kDir == Dir::kRecv) return IOMUX_SYSCALL(::recv(fd, range.data, range.length, flags));
    return IOMUX_SYSCALL(::send(fd, range.data, range.length, flags | MSG_NOSIGNAL));
  });
}

// Reads (fd, buffer, offset?, length?, flags?).
bool ReadIo(napi_env raw, const RawArgs<5>& a, int* fd, ByteRange* range, int* flags) {
  Napi::Env env(raw);
  int64_t f = 0;
  if (!ValueFd(env, Napi::Value(raw, a.At(raw, 0)), "fd", fd)) return false;
  if (!ValueIntOr(env, a.argv[4], "flags", 0, INT32_MAX, 0, &f)) return false;
  *flags = static_cast<int>(f);
  return ValueByteRange(env, a.At(raw, 1), a.argv[2], a.argv[3], range);
}

// recv/send: bytes moved; a would-block throws BlockingIOError.
// tryRecv/trySend: the same with MSG_DONTWAIT (never blocks, even on a
// blocking socket), and null when it would block.
template <Dir kDir, bool kTry>
napi_value MoveBytes(napi_env raw, napi_callback_info info) {
  RawArgs<5> a;
  if (!a.Read(raw, info)) return nullptr;
  int fd = -1;
  int flags = 0;
  ByteRange range{};
  if (!ReadIo(raw, a, &fd, &range, &flags)) return nullptr;
  ssize_t n = Move<kDir>(fd, range, kTry ? flags | MSG_DONTWAIT : flags);
  if (n < 0) {
    if (kTry && IsWouldBlock(errno)) return RawNull(raw);
    ThrowErrno(Napi::Env(raw), errno, kDir == Dir::kRecv ? "recv" : "send");
    return nullptr;
  }
  // Linux moves at most 0x7ffff000 bytes per call: n fits an int32.
  return RawInt32(raw, static_cast<int32_t>(n));
}

// sendAll(fd, buffer, offset?, length?, flags?): sends until done. On a
// non-blocking socket a full buffer raises BlockingIOError, whose message
// says how many bytes did go out.
napi_value SendAll(napi_env raw, napi_callback_info info) {
  RawArgs<5> a;
  if (!a.Read(raw, info)) return nullptr;
  int fd = -1;
  int flags = 0;
  ByteRange range{};
  if (!ReadIo(raw, a, &fd, &range, &flags)) return nullptr;
  size_t sent = 0;
  while (sent < range.length) {
    ByteRange rest{range.data + sent, range.length - sent};
    ssize_t n = Move<Dir::kSend>(fd, rest, flags);
    if (n < 0) {
      ThrowErrno(Napi::Env(raw), errno, "send", "(" + std::to_string(sent) + " bytes were sent)");
      return nullptr;
    }
    sent += static_cast<size_t>(n);
  }
  napi_value undefined;
  napi_get_undefined(raw, &undefined);
  return undefined;
}

// recvfrom(fd, buffer, offset?, length?, flags?) -> host | path | null, the
// byte count and the rest of the address in the results array; a
// would-block throws BlockingIOError.
// tryRecvfrom: the same with MSG_DONTWAIT, and false when it would block
// (null already means a sender without an address: an unbound Unix socket).
template <bool kTry>
napi_value RecvFrom(napi_env raw, napi_callback_info info) {
  RawArgs<5> a;
  if (!a.Read(raw, info)) return nullptr;
  int fd = -1;
  int flags = 0;
  ByteRange range{};
  if (!ReadIo(raw, a, &fd, &range, &flags)) return nullptr;
  if (kTry) flags |= MSG_DONTWAIT;
  sockaddr_storage addr{};
  socklen_t len = 0;
  ssize_t n = RetryEintr([&] {
    len = sizeof(addr);
    return IOMUX_SYSCALL(::recvfrom(fd, range.data, range.length, flags, reinterpret_cast<sockaddr*>(&addr), &len));
  });
  if (n < 0) {
    if (kTry && IsWouldBlock(errno)) {
      napi_value no;
      napi_get_boolean(raw, false, &no);
      return no;
    }
    ThrowErrno(Napi::Env(raw), errno, "recvfrom");
    return nullptr;
  }
  return AddressResult(raw, static_cast<int32_t>(n), addr, len);
}

// sendto(fd, family, address, buffer, offset?, length?, flags?) -> bytes;
// a would-block throws BlockingIOError.
// trySendto: the same with MSG_DONTWAIT, and null when it would block.
// The address is read first: its getters may run JavaScript.
template <bool kTry>
napi_value SendTo(napi_env raw, napi_callback_info info) {
  RawArgs<7> a;
  if (!a.Read(raw, info)) return nullptr;
  Napi::Env env(raw);
  int fd = -1;
  int64_t family = 0;
  int64_t flags = 0;
  sockaddr_storage addr;
  socklen_t len = 0;
  ByteRange range{};
  if (!ValueFd(env, Napi::Value(raw, a.At(raw, 0)), "fd", &fd)) return nullptr;
  if (!ValueInt(env, Napi::Value(raw, a.At(raw, 1)), "family", 0, INT32_MAX, &family)) return nullptr;
  if (!ValueIntOr(env, a.argv[6], "flags", 0, INT32_MAX, 0, &flags)) return nullptr;
  if (!ParseSockAddr(env, static_cast<int>(family), Napi::Value(raw, a.At(raw, 2)), &addr, &len)) return nullptr;
  if (!ValueByteRange(env, a.At(raw, 3), a.argv[4], a.argv[5], &range)) return nullptr;
  const int sendFlags = static_cast<int>(flags) | MSG_NOSIGNAL | (kTry ? MSG_DONTWAIT : 0);
  ssize_t n = RetryEintr([&] {
    return IOMUX_SYSCALL(
        ::sendto(fd, range.data, range.length, sendFlags, reinterpret_cast<sockaddr*>(&addr), len));
  });
  if (n < 0) {
    if (kTry && IsWouldBlock(errno)) return RawNull(raw);
    ThrowErrno(env, errno, "sendto", DescribeSockAddr(addr, len));
    return nullptr;
  }
  return RawInt32(raw, static_cast<int32_t>(n));
}

// ---------------------------------------------------------------------------
// accept: the new socket is owned like any other.

int Accept4(int fd, sockaddr_storage* addr, socklen_t* len, bool nonBlocking) {
  const int flags = SOCK_CLOEXEC | (nonBlocking ? SOCK_NONBLOCK : 0);
  return RetryEintr([&] {
    if (addr == nullptr) return IOMUX_SYSCALL(::accept4(fd, nullptr, nullptr, flags));
    *len = sizeof(*addr);
    return IOMUX_SYSCALL(::accept4(fd, reinterpret_cast<sockaddr*>(addr), len, flags));
  });
}

bool ReadAcceptArgs(napi_env raw, const RawArgs<2>& a, int* fd, bool* nonBlocking) {
  Napi::Env env(raw);
  if (!ValueFd(env, Napi::Value(raw, a.At(raw, 0)), "fd", fd)) return false;
  Napi::Value flag(raw, a.At(raw, 1));
  if (!flag.IsBoolean()) {
    ThrowTypeError(env, "The \"nonBlocking\" argument must be of type boolean. Received " + DescribeValue(flag));
    return false;
  }
  *nonBlocking = flag.As<Napi::Boolean>().Value();
  return true;
}

// accept(fd, nonBlocking) -> host | path, the new fd and the rest of the
// address in the results array; a would-block throws.
napi_value Accept(napi_env raw, napi_callback_info info) {
  RawArgs<2> a;
  if (!a.Read(raw, info)) return nullptr;
  int fd = -1;
  bool nonBlocking = false;
  if (!ReadAcceptArgs(raw, a, &fd, &nonBlocking)) return nullptr;
  sockaddr_storage addr{};
  socklen_t len = 0;
  UniqueFd conn(Accept4(fd, &addr, &len, nonBlocking));
  Napi::Env env(raw);
  if (!conn.Valid()) {
    ThrowErrno(env, errno, "accept");
    return nullptr;
  }
  napi_value host = AddressResult(raw, conn.Get(), addr, len);
  if (host == nullptr || env.IsExceptionPending()) return nullptr;  // conn is closed on the way out
  Own(raw, conn.Release());
  return host;
}

// tryAccept(fd, nonBlocking) -> fd, or null when none is pending.
napi_value TryAccept(napi_env raw, napi_callback_info info) {
  RawArgs<2> a;
  if (!a.Read(raw, info)) return nullptr;
  int fd = -1;
  bool nonBlocking = false;
  if (!ReadAcceptArgs(raw, a, &fd, &nonBlocking)) return nullptr;
  int conn = Accept4(fd, nullptr, nullptr, nonBlocking);
  if (conn < 0) {
    if (IsWouldBlock(errno)) return RawNull(raw);
    ThrowErrno(Napi::Env(raw), errno, "accept");
    return nullptr;
  }
  return Own(raw, conn);
}

// ---------------------------------------------------------------------------
// Making, adopting and ending sockets.

bool CheckType(Napi::Env env, int32_t type, bool raw) {
  const int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (base == SOCK_STREAM || base == SOCK_DGRAM || base == SOCK_SEQPACKET || (raw && base == SOCK_RAW)) return true;
  ThrowRangeError(env, std::string("The \"type\" argument must be SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET") +
                           (raw ? " or SOCK_RAW" : "") + " (optionally | SOCK_NONBLOCK). Received " +
                           std::to_string(type));
  return false;
}

// socket(family, type, proto = 0) -> fd.
Napi::Value NewSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t family = 0;
  int32_t type = 0;
  int32_t proto = 0;
  if (!ArgInt32(info, 0, "family", 0, INT32_MAX, &family)) return env.Undefined();
  if (!ArgInt32(info, 1, "type", 0, INT32_MAX, &type)) return env.Undefined();
  if (!ArgInt32Or(info, 2, "proto", 0, INT32_MAX, 0, &proto)) return env.Undefined();
  if (!KnownFamily(family)) {
    ThrowRangeError(env, "The \"family\" argument must be AF_INET, AF_INET6 or AF_UNIX. Received " +
                             std::to_string(family));
    return env.Undefined();
  }
  if (!CheckType(env, type, true)) return env.Undefined();
  int fd = IOMUX_SYSCALL(::socket(family, type | SOCK_CLOEXEC, proto));
  if (fd < 0) {
    ThrowErrno(env, errno, "socket");
    return env.Undefined();
  }
  return Napi::Value(env, Own(env, fd));
}

// socketpair(family, type, proto = 0) -> [fd, fd].
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
  if (!CheckType(env, type, false)) return env.Undefined();
  int fds[2];
  if (IOMUX_SYSCALL(::socketpair(family, type | SOCK_CLOEXEC, proto, fds)) < 0) {
    ThrowErrno(env, errno, "socketpair");
    return env.Undefined();
  }
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(0u, Napi::Value(env, Own(env, fds[0])));
  pair.Set(1u, Napi::Value(env, Own(env, fds[1])));
  return pair;
}

// fromFd(fd) -> [dup, family, type, proto]: a CLOEXEC duplicate of a socket
// fd, which the caller keeps (and still has to close).
Napi::Value FromFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ArgFd(info, 0, "fd", &fd)) return env.Undefined();
  UniqueFd dup(IOMUX_SYSCALL(::fcntl(fd, F_DUPFD_CLOEXEC, 0)));
  if (!dup.Valid()) {
    ThrowErrno(env, errno, "fcntl", "(fd " + std::to_string(fd) + ")");
    return env.Undefined();
  }
  int values[3] = {0, 0, 0};
  const int opts[3] = {SO_DOMAIN, SO_TYPE, SO_PROTOCOL};
  for (int i = 0; i < 3; i++) {
    socklen_t len = sizeof(int);
    if (IOMUX_SYSCALL(::getsockopt(dup.Get(), SOL_SOCKET, opts[i], &values[i], &len)) < 0) {
      ThrowErrno(env, errno, "getsockopt", "(fd " + std::to_string(fd) + ")");
      return env.Undefined();  // dup is closed on the way out
    }
  }
  Napi::Array result = Napi::Array::New(env, 4);
  for (uint32_t i = 0; i < 3; i++) result.Set(i + 1, Napi::Number::New(env, values[i]));
  result.Set(0u, Napi::Value(env, Own(env, dup.Release())));
  return result;
}

// adoptSocket(fd): takes ownership of a socket fd the kernel made without a
// syscall of ours (an io_uring accept's result): recorded as owned, so that
// closeSocket closes it and the environment's end does too.
Napi::Value AdoptSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ArgFd(info, 0, "fd", &fd)) return env.Undefined();
  return Napi::Value(env, Own(env, fd));
}

// closeSocket(fd): closes an owned socket fd. ECONNRESET from close(2) is
// not worth raising (Python ignores it too), nor EINTR: the fd is gone
// either way, and close(2) is never retried.
Napi::Value CloseSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ArgFd(info, 0, "fd", &fd)) return env.Undefined();
  GetEnvData(env)->sockets.erase(fd);
  if (IOMUX_SYSCALL(::close(fd)) < 0 && errno != ECONNRESET && errno != EINTR) ThrowErrno(env, errno, "close");
  return env.Undefined();
}

// detachSocket(fd): the caller takes the fd over; it is no longer closed
// when the environment ends.
Napi::Value DetachSocket(const Napi::CallbackInfo& info) {
  int fd = -1;
  if (!ArgFd(info, 0, "fd", &fd)) return info.Env().Undefined();
  GetEnvData(info.Env())->sockets.erase(fd);
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------
// The rest of Python's socket methods: (fd, ...).

Napi::Value SetBlocking(const Napi::CallbackInfo& info) {
  int fd = -1;
  bool blocking = true;
  if (!ArgFd(info, 0, "fd", &fd)) return info.Env().Undefined();
  if (!ArgBool(info, 1, "flag", &blocking)) return info.Env().Undefined();
  int flags = IOMUX_SYSCALL(::fcntl(fd, F_GETFL));
  int wanted = blocking ? (flags & ~O_NONBLOCK) : (flags | O_NONBLOCK);
  if (flags < 0 || (wanted != flags && IOMUX_SYSCALL(::fcntl(fd, F_SETFL, wanted)) < 0)) ThrowErrno(info.Env(), errno, "fcntl");
  return info.Env().Undefined();
}

Napi::Value GetBlocking(const Napi::CallbackInfo& info) {
  int fd = -1;
  if (!ArgFd(info, 0, "fd", &fd)) return info.Env().Undefined();
  int flags = IOMUX_SYSCALL(::fcntl(fd, F_GETFL));
  if (flags < 0) {
    ThrowErrno(info.Env(), errno, "fcntl");
    return info.Env().Undefined();
  }
  return Napi::Boolean::New(info.Env(), (flags & O_NONBLOCK) == 0);
}

// (fd, family, address, ...): the fd and the address in the socket's family.
bool ReadFdAndAddress(const Napi::CallbackInfo& info, int* fd, sockaddr_storage* addr, socklen_t* len) {
  int32_t family = 0;
  if (!ArgFd(info, 0, "fd", fd)) return false;
  if (!ArgInt32(info, 1, "family", 0, INT32_MAX, &family)) return false;
  return ParseSockAddr(info.Env(), family, info.Length() > 2 ? info[2] : info.Env().Undefined(), addr, len);
}

// connect(2) with PEP 475's rule for EINTR: the connection goes on in the
// kernel, so a blocking socket waits for it and reads SO_ERROR, and a
// non-blocking one reports EINPROGRESS. Returns 0 or an errno.
int DoConnect(int fd, const sockaddr_storage& addr, socklen_t len) {
  if (IOMUX_SYSCALL(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), len)) == 0) return 0;
  int err = errno;
  if (err != EINTR) return err;
  int flags = IOMUX_SYSCALL(::fcntl(fd, F_GETFL));
  if (flags >= 0 && (flags & O_NONBLOCK) != 0) return EINPROGRESS;
  pollfd pfd{fd, POLLOUT, 0};
  if (RetryOnEintr(-1, [&](int ms) { return IOMUX_SYSCALL(::poll(&pfd, 1, ms)); }) < 0) return errno;
  int soError = 0;
  socklen_t soLen = sizeof(soError);
  if (IOMUX_SYSCALL(::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &soLen)) < 0) return errno;
  return soError;
}

// connect(fd, family, address): throws, BlockingIOError for EINPROGRESS.
Napi::Value Connect(const Napi::CallbackInfo& info) {
  int fd = -1;
  sockaddr_storage addr;
  socklen_t len = 0;
  if (!ReadFdAndAddress(info, &fd, &addr, &len)) return info.Env().Undefined();
  int err = DoConnect(fd, addr, len);
  if (err != 0) ThrowErrno(info.Env(), err, "connect", DescribeSockAddr(addr, len));
  return info.Env().Undefined();
}

// connectEx(fd, family, address) -> 0 or an errno, like Python's connect_ex.
Napi::Value ConnectEx(const Napi::CallbackInfo& info) {
  int fd = -1;
  sockaddr_storage addr;
  socklen_t len = 0;
  if (!ReadFdAndAddress(info, &fd, &addr, &len)) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), DoConnect(fd, addr, len));
}

Napi::Value Bind(const Napi::CallbackInfo& info) {
  int fd = -1;
  sockaddr_storage addr;
  socklen_t len = 0;
  if (!ReadFdAndAddress(info, &fd, &addr, &len)) return info.Env().Undefined();
  if (IOMUX_SYSCALL(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), len)) < 0) {
    ThrowErrno(info.Env(), errno, "bind", DescribeSockAddr(addr, len));
  }
  return info.Env().Undefined();
}

Napi::Value Listen(const Napi::CallbackInfo& info) {
  int fd = -1;
  int32_t backlog = 0;
  if (!ArgFd(info, 0, "fd", &fd)) return info.Env().Undefined();
  if (!ArgInt32Or(info, 1, "backlog", 0, INT32_MAX, SOMAXCONN, &backlog)) return info.Env().Undefined();
  if (IOMUX_SYSCALL(::listen(fd, backlog)) < 0) ThrowErrno(info.Env(), errno, "listen");
  return info.Env().Undefined();
}

Napi::Value Shutdown(const Napi::CallbackInfo& info) {
  int fd = -1;
  int32_t how = 0;
  if (!ArgFd(info, 0, "fd", &fd)) return info.Env().Undefined();
  if (!ArgInt32(info, 1, "how", SHUT_RD, SHUT_RDWR, &how)) return info.Env().Undefined();
  if (IOMUX_SYSCALL(::shutdown(fd, how)) < 0) ThrowErrno(info.Env(), errno, "shutdown");
  return info.Env().Undefined();
}

// (fd, level, option, ...): level must be SOL_SOCKET or an IPPROTO_* level;
// the option number is the kernel's to judge (ENOPROTOOPT).
bool ReadLevelAndOption(const Napi::CallbackInfo& info, int* fd, int32_t* level, int32_t* name) {
  if (!ArgFd(info, 0, "fd", fd)) return false;
  if (!ArgInt32(info, 1, "level", 0, INT32_MAX, level)) return false;
  if (!ArgInt32(info, 2, "option", 0, INT32_MAX, name)) return false;
  if (KnownLevel(*level)) return true;
  ThrowRangeError(info.Env(), "The \"level\" argument must be SOL_SOCKET or an IPPROTO_* level. Received " +
                                  std::to_string(*level));
  return false;
}

// setsockopt(fd, level, option, value): a number or boolean for int
// options, bytes otherwise.
Napi::Value SetSockOpt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  int32_t level = 0;
  int32_t name = 0;
  if (!ReadLevelAndOption(info, &fd, &level, &name)) return env.Undefined();
  Napi::Value v = info.Length() > 3 ? info[3] : env.Undefined();
  int rc = 0;
  if (v.IsBoolean() || v.IsNumber()) {
    int32_t value = 0;
    if (v.IsBoolean()) {
      value = v.As<Napi::Boolean>().Value() ? 1 : 0;
    } else if (!ArgInt32(info, 3, "value", INT32_MIN, INT32_MAX, &value)) {
      return env.Undefined();
    }
    rc = IOMUX_SYSCALL(::setsockopt(fd, level, name, &value, sizeof(value)));
  } else {
    ByteRange range{};
    if (!v.IsTypedArray() && !v.IsDataView()) {
      ThrowTypeError(env, "The \"value\" argument must be of type number, boolean or Buffer. Received " +
                              DescribeValue(v));
      return env.Undefined();
    }
    if (!ValueByteRange(env, v, nullptr, nullptr, &range)) return env.Undefined();
    rc = IOMUX_SYSCALL(::setsockopt(fd, level, name, range.data, static_cast<socklen_t>(range.length)));
  }
  if (rc < 0) ThrowErrno(env, errno, "setsockopt");
  return env.Undefined();
}

// getsockopt(fd, level, option, buflen?) -> number, or a Buffer of at most
// buflen bytes when buflen is given.
Napi::Value GetSockOpt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  int32_t level = 0;
  int32_t name = 0;
  if (!ReadLevelAndOption(info, &fd, &level, &name)) return env.Undefined();
  if (info.Length() > 3 && !info[3].IsUndefined()) {
    int32_t buflen = 0;
    if (!ArgInt32(info, 3, "buflen", 1, 1024, &buflen)) return env.Undefined();
    std::vector<uint8_t> buf(static_cast<size_t>(buflen));
    socklen_t len = static_cast<socklen_t>(buflen);
    if (IOMUX_SYSCALL(::getsockopt(fd, level, name, buf.data(), &len)) < 0) {
      ThrowErrno(env, errno, "getsockopt");
      return env.Undefined();
    }
    return Napi::Buffer<uint8_t>::Copy(env, buf.data(), len);
  }
  int value = 0;
  socklen_t len = sizeof(value);
  if (IOMUX_SYSCALL(::getsockopt(fd, level, name, &value, &len)) < 0) {
    ThrowErrno(env, errno, "getsockopt");
    return env.Undefined();
  }
  return Napi::Number::New(env, value);
}

Napi::Value Name(const Napi::CallbackInfo& info, bool peer) {
  const char* syscall = peer ? "getpeername" : "getsockname";
  int fd = -1;
  if (!ArgFd(info, 0, "fd", &fd)) return info.Env().Undefined();
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  int rc = peer ? IOMUX_SYSCALL(::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len))
                : IOMUX_SYSCALL(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len));
  if (rc < 0) {
    ThrowErrno(info.Env(), errno, syscall);
    return info.Env().Undefined();
  }
  return FormatSockAddr(info.Env(), addr, len);
}
Napi::Value GetSockName(const Napi::CallbackInfo& info) { return Name(info, false); }
Napi::Value GetPeerName(const Napi::CallbackInfo& info) { return Name(info, true); }

}  // namespace

void ForgetSocketFd(Napi::Env env, int fd) { GetEnvData(env)->sockets.erase(fd); }

void InitSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("results", NewSharedInt32Array(env, GetEnvData(env)->results));
  SetRawFunction(env, exports, "recv", MoveBytes<Dir::kRecv, false>);
  SetRawFunction(env, exports, "send", MoveBytes<Dir::kSend, false>);
  SetRawFunction(env, exports, "tryRecv", MoveBytes<Dir::kRecv, true>);
  SetRawFunction(env, exports, "trySend", MoveBytes<Dir::kSend, true>);
  SetRawFunction(env, exports, "sendAll", SendAll);
  SetRawFunction(env, exports, "recvfrom", RecvFrom<false>);
  SetRawFunction(env, exports, "sendto", SendTo<false>);
  SetRawFunction(env, exports, "tryRecvfrom", RecvFrom<true>);
  SetRawFunction(env, exports, "trySendto", SendTo<true>);
  SetRawFunction(env, exports, "accept", Accept);
  SetRawFunction(env, exports, "tryAccept", TryAccept);
  exports.Set("socket", Napi::Function::New(env, NewSocket, "socket"));
  exports.Set("socketpair", Napi::Function::New(env, SocketPair, "socketpair"));
  exports.Set("fromFd", Napi::Function::New(env, FromFd, "fromFd"));
  exports.Set("adoptSocket", Napi::Function::New(env, AdoptSocket, "adoptSocket"));
  exports.Set("closeSocket", Napi::Function::New(env, CloseSocket, "closeSocket"));
  exports.Set("detachSocket", Napi::Function::New(env, DetachSocket, "detachSocket"));
  exports.Set("setBlocking", Napi::Function::New(env, SetBlocking, "setBlocking"));
  exports.Set("getBlocking", Napi::Function::New(env, GetBlocking, "getBlocking"));
  exports.Set("connect", Napi::Function::New(env, Connect, "connect"));
  exports.Set("connectEx", Napi::Function::New(env, ConnectEx, "connectEx"));
  exports.Set("bind", Napi::Function::New(env, Bind, "bind"));
  exports.Set("listen", Napi::Function::New(env, Listen, "listen"));
  exports.Set("shutdown", Napi::Function::New(env, Shutdown, "shutdown"));
  exports.Set("setsockopt", Napi::Function::New(env, SetSockOpt, "setsockopt"));
  exports.Set("getsockopt", Napi::Function::New(env, GetSockOpt, "getsockopt"));
  exports.Set("getsockname", Napi::Function::New(env, GetSockName, "getsockname"));
  exports.Set("getpeername", Napi::Function::New(env, GetPeerName, "getpeername"));
}

}  // namespace iomux
