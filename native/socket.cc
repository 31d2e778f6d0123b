// Socket: one socket fd per object, owned by RAII and closed by close(),
// detach() or the garbage collector. Python's socket methods throw (a
// would-block is BlockingIOError); tryAccept returns null instead, and the
// hot recv/send forms are fd-based functions in fdops.cc (sockRecv,
// sockSend) that the TypeScript wrapper calls with the fd it guards.
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
#include "sockaddr.h"
#include "socket.h"
#include "unique_fd.h"

namespace iomux {

namespace {

bool IsWouldBlock(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

bool KnownFamily(int family) { return family == AF_INET || family == AF_INET6 || family == AF_UNIX; }

bool KnownLevel(int level) {
  return level == SOL_SOCKET || level == IPPROTO_IP || level == IPPROTO_IPV6 || level == IPPROTO_TCP ||
         level == IPPROTO_UDP;
}

class Socket : public Napi::ObjectWrap<Socket> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Socket",
                       {
                           StaticMethod<&Socket::FromFd>("fromFd"),
                           InstanceMethod<&Socket::Fileno>("fileno"),
                           InstanceAccessor<&Socket::Family>("family"),
                           InstanceAccessor<&Socket::Type>("type"),
                           InstanceAccessor<&Socket::Proto>("proto"),
                           InstanceAccessor<&Socket::Closed>("closed"),
                           InstanceMethod<&Socket::SetBlocking>("setBlocking"),
                           InstanceMethod<&Socket::GetBlocking>("getBlocking"),
                           InstanceMethod<&Socket::Connect>("connect"),
                           InstanceMethod<&Socket::ConnectEx>("connectEx"),
                           InstanceMethod<&Socket::Bind>("bind"),
                           InstanceMethod<&Socket::Listen>("listen"),
                           InstanceMethod<&Socket::Accept>("accept"),
                           InstanceMethod<&Socket::TryAccept>("tryAccept"),
                           InstanceMethod<&Socket::RecvInto>("recvInto"),
                           InstanceMethod<&Socket::RecvFromInto>("recvFromInto"),
                           InstanceMethod<&Socket::Send>("send"),
                           InstanceMethod<&Socket::SendAll>("sendAll"),
                           InstanceMethod<&Socket::SendTo>("sendTo"),
                           InstanceMethod<&Socket::Shutdown>("shutdown"),
                           InstanceMethod<&Socket::Close>("close"),
                           InstanceMethod<&Socket::Detach>("detach"),
                           InstanceMethod<&Socket::SetSockOpt>("setsockopt"),
                           InstanceMethod<&Socket::GetSockOpt>("getsockopt"),
                           InstanceMethod<&Socket::GetSockName>("getsockname"),
                           InstanceMethod<&Socket::GetPeerName>("getpeername"),
                       });
  }

  // new Socket(family, type, proto) from JavaScript, or new Socket(External<int>)
  // from native code adopting an fd (JavaScript cannot make an External).
  explicit Socket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Socket>(info) {
    Napi::Env env = info.Env();
    if (info.Length() == 1 && info[0].IsExternal()) {
      fd_.Reset(*info[0].As<Napi::External<int>>().Data());
      ReadIdentity(env);
      return;
    }
    int32_t family = 0;
    int32_t type = 0;
    int32_t proto = 0;
    if (!ArgInt32(info, 0, "family", 0, INT32_MAX, &family)) return;
    if (!ArgInt32(info, 1, "type", 0, INT32_MAX, &type)) return;
    if (!ArgInt32Or(info, 2, "proto", 0, INT32_MAX, 0, &proto)) return;
    if (!KnownFamily(family)) {
      ThrowRangeError(env, "The \"family\" argument must be AF_INET, AF_INET6 or AF_UNIX. Received " +
                               std::to_string(family));
      return;
    }
    const int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (base != SOCK_STREAM && base != SOCK_DGRAM && base != SOCK_SEQPACKET && base != SOCK_RAW) {
      ThrowRangeError(env, "The \"type\" argument must be SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET or SOCK_RAW "
                           "(optionally | SOCK_NONBLOCK). Received " + std::to_string(type));
      return;
    }
    int fd = ::socket(family, type | SOCK_CLOEXEC, proto);
    if (fd < 0) {
      ThrowErrno(env, errno, "socket");
      return;
    }
    fd_.Reset(fd);
    family_ = family;
    type_ = base;
    proto_ = proto;
  }

  static Napi::Value Adopt(Napi::Env env, int fd) {
    // The constructor takes ownership of fd at once, so it is closed on any failure.
    Napi::Object obj = GetEnvData(env)->socketCtor.New({Napi::External<int>::New(env, &fd)});
    if (env.IsExceptionPending()) return env.Undefined();
    return obj;
  }

 private:
  void ReadIdentity(Napi::Env env) {
    int values[3] = {0, 0, 0};
    const int opts[3] = {SO_DOMAIN, SO_TYPE, SO_PROTOCOL};
    for (int i = 0; i < 3; i++) {
      socklen_t len = sizeof(int);
      if (::getsockopt(fd_.Get(), SOL_SOCKET, opts[i], &values[i], &len) < 0) {
        int err = errno;
        fd_.Reset();
        ThrowErrno(env, err, "getsockopt");
        return;
      }
    }
    family_ = values[0];
    type_ = values[1];
    proto_ = values[2];
  }

  bool CheckOpen(Napi::Env env, const char* syscall) {
    if (fd_.Valid()) return true;
    ThrowErrno(env, EBADF, syscall, "(the socket is closed)");
    return false;
  }

  // Socket.fromFd(fd): a new Socket on a CLOEXEC duplicate of fd; the caller
  // keeps (and still has to close) the original.
  static Napi::Value FromFd(const Napi::CallbackInfo& info) {
    int fd = -1;
    if (!ArgFd(info, 0, "fd", &fd)) return info.Env().Undefined();
    int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) {
      ThrowErrno(info.Env(), errno, "fcntl", "(fd " + std::to_string(fd) + ")");
      return info.Env().Undefined();
    }
    return Adopt(info.Env(), dup);
  }

  Napi::Value Fileno(const Napi::CallbackInfo& info) {
    if (!CheckOpen(info.Env(), "fileno")) return info.Env().Undefined();
    return Napi::Number::New(info.Env(), fd_.Get());
  }
  Napi::Value Family(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), family_); }
  Napi::Value Type(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), type_); }
  Napi::Value Proto(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), proto_); }
  Napi::Value Closed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !fd_.Valid()); }

  Napi::Value SetBlocking(const Napi::CallbackInfo& info) {
    bool blocking = true;
    if (!CheckOpen(info.Env(), "fcntl")) return info.Env().Undefined();
    if (!ArgBool(info, 0, "flag", &blocking)) return info.Env().Undefined();
    int flags = ::fcntl(fd_.Get(), F_GETFL);
    int wanted = blocking ? (flags & ~O_NONBLOCK) : (flags | O_NONBLOCK);
    if (flags < 0 || (wanted != flags && ::fcntl(fd_.Get(), F_SETFL, wanted) < 0)) {
      ThrowErrno(info.Env(), errno, "fcntl");
    }
    return info.Env().Undefined();
  }

  Napi::Value GetBlocking(const Napi::CallbackInfo& info) {
    if (!CheckOpen(info.Env(), "fcntl")) return info.Env().Undefined();
    int flags = ::fcntl(fd_.Get(), F_GETFL);
    if (flags < 0) {
      ThrowErrno(info.Env(), errno, "fcntl");
      return info.Env().Undefined();
    }
    return Napi::Boolean::New(info.Env(), (flags & O_NONBLOCK) == 0);
  }

  // connect(2) with PEP 475's rule for EINTR: the connection goes on in the
  // kernel, so a blocking socket waits for it and reads SO_ERROR, and a
  // non-blocking one reports EINPROGRESS. Returns 0 or an errno.
  int DoConnect(const sockaddr_storage& addr, socklen_t len) {
    if (::connect(fd_.Get(), reinterpret_cast<const sockaddr*>(&addr), len) == 0) return 0;
    int err = errno;
    if (err != EINTR) return err;
    int flags = ::fcntl(fd_.Get(), F_GETFL);
    if (flags >= 0 && (flags & O_NONBLOCK) != 0) return EINPROGRESS;
    pollfd pfd{fd_.Get(), POLLOUT, 0};
    if (RetryOnEintr(-1, [&](int ms) { return ::poll(&pfd, 1, ms); }) < 0) return errno;
    int soError = 0;
    socklen_t soLen = sizeof(soError);
    if (::getsockopt(fd_.Get(), SOL_SOCKET, SO_ERROR, &soError, &soLen) < 0) return errno;
    return soError;
  }

  bool ReadAddress(const Napi::CallbackInfo& info, size_t index, sockaddr_storage* addr, socklen_t* len) {
    return ParseSockAddr(info.Env(), family_, index < info.Length() ? info[index] : info.Env().Undefined(), addr,
                         len);
  }

  Napi::Value Connect(const Napi::CallbackInfo& info) {
    sockaddr_storage addr;
    socklen_t len = 0;
    if (!CheckOpen(info.Env(), "connect")) return info.Env().Undefined();
    if (!ReadAddress(info, 0, &addr, &len)) return info.Env().Undefined();
    int err = DoConnect(addr, len);
    if (err != 0) ThrowErrno(info.Env(), err, "connect", DescribeSockAddr(addr, len));
    return info.Env().Undefined();
  }

  Napi::Value ConnectEx(const Napi::CallbackInfo& info) {
    sockaddr_storage addr;
    socklen_t len = 0;
    if (!CheckOpen(info.Env(), "connect")) return info.Env().Undefined();
    if (!ReadAddress(info, 0, &addr, &len)) return info.Env().Undefined();
    return Napi::Number::New(info.Env(), DoConnect(addr, len));
  }

  Napi::Value Bind(const Napi::CallbackInfo& info) {
    sockaddr_storage addr;
    socklen_t len = 0;
    if (!CheckOpen(info.Env(), "bind")) return info.Env().Undefined();
    if (!ReadAddress(info, 0, &addr, &len)) return info.Env().Undefined();
    if (::bind(fd_.Get(), reinterpret_cast<const sockaddr*>(&addr), len) < 0) {
      ThrowErrno(info.Env(), errno, "bind", DescribeSockAddr(addr, len));
    }
    return info.Env().Undefined();
  }

  Napi::Value Listen(const Napi::CallbackInfo& info) {
    int32_t backlog = 0;
    if (!CheckOpen(info.Env(), "listen")) return info.Env().Undefined();
    if (!ArgInt32Or(info, 0, "backlog", 0, INT32_MAX, SOMAXCONN, &backlog)) return info.Env().Undefined();
    if (::listen(fd_.Get(), backlog) < 0) ThrowErrno(info.Env(), errno, "listen");
    return info.Env().Undefined();
  }

  // accept() -> [Socket, address]. As in Python, the new socket is blocking
  // whatever the listening socket is.
  Napi::Value Accept(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env, "accept")) return env.Undefined();
    sockaddr_storage addr;
    socklen_t len = sizeof(addr);
    int fd = RetryEintr(
        [&] { return ::accept4(fd_.Get(), reinterpret_cast<sockaddr*>(&addr), &len, SOCK_CLOEXEC); });
    if (fd < 0) {
      ThrowErrno(env, errno, "accept");
      return env.Undefined();
    }
    Napi::Value sock = Adopt(env, fd);
    if (env.IsExceptionPending()) return env.Undefined();
    Napi::Array pair = Napi::Array::New(env, 2);
    pair.Set(0u, sock);
    pair.Set(1u, FormatSockAddr(env, addr, len));
    return pair;
  }

  // tryAccept(nonBlocking) -> Socket | null (would block). Other errors throw.
  Napi::Value TryAccept(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bool nonBlocking = false;
    if (!CheckOpen(env, "accept")) return env.Undefined();
    if (!ArgBool(info, 0, "nonBlocking", &nonBlocking)) return env.Undefined();
    const int flags = SOCK_CLOEXEC | (nonBlocking ? SOCK_NONBLOCK : 0);
    int fd = RetryEintr([&] { return ::accept4(fd_.Get(), nullptr, nullptr, flags); });
    if (fd < 0) {
      if (IsWouldBlock(errno)) return env.Null();
      ThrowErrno(env, errno, "accept");
      return env.Undefined();
    }
    return Adopt(env, fd);
  }

  // Reads (buf, offset, length, flags) from info; flags may be undefined.
  bool ReadIo(const Napi::CallbackInfo& info, const char* syscall, ByteRange* range, int32_t* flags) {
    if (!CheckOpen(info.Env(), syscall)) return false;
    if (!ArgByteRange(info, 0, 1, 2, range)) return false;
    return ArgInt32Or(info, 3, "flags", 0, INT32_MAX, 0, flags);
  }

  Napi::Value RecvInto(const Napi::CallbackInfo& info) {
    ByteRange range{};
    int32_t flags = 0;
    if (!ReadIo(info, "recv", &range, &flags)) return info.Env().Undefined();
    ssize_t n = RetryEintr([&] { return ::recv(fd_.Get(), range.data, range.length, flags); });
    if (n < 0) {
      ThrowErrno(info.Env(), errno, "recv");
      return info.Env().Undefined();
    }
    return Napi::Number::New(info.Env(), static_cast<double>(n));
  }

  // recvFromInto(buf, offset, length, flags) -> [bytes, address].
  Napi::Value RecvFromInto(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ByteRange range{};
    int32_t flags = 0;
    if (!ReadIo(info, "recvfrom", &range, &flags)) return env.Undefined();
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    ssize_t n = RetryEintr([&] {
      len = sizeof(addr);
      return ::recvfrom(fd_.Get(), range.data, range.length, flags, reinterpret_cast<sockaddr*>(&addr), &len);
    });
    if (n < 0) {
      ThrowErrno(env, errno, "recvfrom");
      return env.Undefined();
    }
    Napi::Array pair = Napi::Array::New(env, 2);
    pair.Set(0u, Napi::Number::New(env, static_cast<double>(n)));
    pair.Set(1u, len == 0 ? env.Null() : FormatSockAddr(env, addr, len));
    return pair;
  }

  Napi::Value Send(const Napi::CallbackInfo& info) {
    ByteRange range{};
    int32_t flags = 0;
    if (!ReadIo(info, "send", &range, &flags)) return info.Env().Undefined();
    ssize_t n = RetryEintr([&] { return ::send(fd_.Get(), range.data, range.length, flags | MSG_NOSIGNAL); });
    if (n < 0) {
      ThrowErrno(info.Env(), errno, "send");
      return info.Env().Undefined();
    }
    return Napi::Number::New(info.Env(), static_cast<double>(n));
  }

  // sendAll: sends until done. On a non-blocking socket a full buffer raises
  // BlockingIOError, whose message says how many bytes did go out.
  Napi::Value SendAll(const Napi::CallbackInfo& info) {
    ByteRange range{};
    int32_t flags = 0;
    if (!ReadIo(info, "send", &range, &flags)) return info.Env().Undefined();
    size_t sent = 0;
    while (sent < range.length) {
      ssize_t n = RetryEintr(
          [&] { return ::send(fd_.Get(), range.data + sent, range.length - sent, flags | MSG_NOSIGNAL); });
      if (n < 0) {
        ThrowErrno(info.Env(), errno, "send", "(" + std::to_string(sent) + " bytes were sent)");
        return info.Env().Undefined();
      }
      sent += static_cast<size_t>(n);
    }
    return info.Env().Undefined();
  }

  // sendTo(buf, offset, length, flags, address) -> bytes sent.
  Napi::Value SendTo(const Napi::CallbackInfo& info) {
    ByteRange range{};
    int32_t flags = 0;
    sockaddr_storage addr;
    socklen_t len = 0;
    if (!ReadIo(info, "sendto", &range, &flags)) return info.Env().Undefined();
    if (!ReadAddress(info, 4, &addr, &len)) return info.Env().Undefined();
    ssize_t n = RetryEintr([&] {
      return ::sendto(fd_.Get(), range.data, range.length, flags | MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
                      len);
    });
    if (n < 0) {
      ThrowErrno(info.Env(), errno, "sendto", DescribeSockAddr(addr, len));
      return info.Env().Undefined();
    }
    return Napi::Number::New(info.Env(), static_cast<double>(n));
  }

  Napi::Value Shutdown(const Napi::CallbackInfo& info) {
    int32_t how = 0;
    if (!CheckOpen(info.Env(), "shutdown")) return info.Env().Undefined();
    if (!ArgInt32(info, 0, "how", SHUT_RD, SHUT_RDWR, &how)) return info.Env().Undefined();
    if (::shutdown(fd_.Get(), how) < 0) ThrowErrno(info.Env(), errno, "shutdown");
    return info.Env().Undefined();
  }

  // close(): idempotent, as in Python. ECONNRESET from close(2) is not an
  // error worth raising (Python ignores it too); the fd is gone either way.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (fd_.Valid() && fd_.Reset() < 0 && errno != ECONNRESET && errno != EINTR) {
      ThrowErrno(info.Env(), errno, "close");
    }
    return info.Env().Undefined();
  }

  // detach(): the object is closed without closing the fd, which is returned.
  Napi::Value Detach(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_.Release()); }

  // (level, option, ...): level must be SOL_SOCKET or an IPPROTO_* level;
  // the option number is the kernel's to judge (ENOPROTOOPT).
  bool ReadLevelAndOption(const Napi::CallbackInfo& info, const char* syscall, int32_t* level, int32_t* name) {
    if (!CheckOpen(info.Env(), syscall)) return false;
    if (!ArgInt32(info, 0, "level", 0, INT32_MAX, level)) return false;
    if (!ArgInt32(info, 1, "option", 0, INT32_MAX, name)) return false;
    if (KnownLevel(*level)) return true;
    ThrowRangeError(info.Env(), "The \"level\" argument must be SOL_SOCKET or an IPPROTO_* level. Received " +
                                    std::to_string(*level));
    return false;
  }

  Napi::Value SetSockOpt(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int32_t level = 0;
    int32_t name = 0;
    if (!ReadLevelAndOption(info, "setsockopt", &level, &name)) return env.Undefined();
    Napi::Value v = info.Length() > 2 ? info[2] : env.Undefined();
    int rc = 0;
    if (v.IsBoolean() || v.IsNumber()) {
      int32_t value = 0;
      if (v.IsBoolean()) {
        value = v.As<Napi::Boolean>().Value() ? 1 : 0;
      } else if (!ArgInt32(info, 2, "value", INT32_MIN, INT32_MAX, &value)) {
        return env.Undefined();
      }
      rc = ::setsockopt(fd_.Get(), level, name, &value, sizeof(value));
    } else {
      ByteRange range{};
      if (!v.IsTypedArray() && !v.IsDataView()) {
        ThrowTypeError(env, "The \"value\" argument must be of type number, boolean or Buffer. Received " +
                                DescribeValue(v));
        return env.Undefined();
      }
      if (!ArgByteRange(info, 2, SIZE_MAX, SIZE_MAX, &range)) return env.Undefined();
      rc = ::setsockopt(fd_.Get(), level, name, range.data, static_cast<socklen_t>(range.length));
    }
    if (rc < 0) ThrowErrno(env, errno, "setsockopt");
    return env.Undefined();
  }

  // getsockopt(level, option, buflen?) -> number, or a Buffer of at most
  // buflen bytes when buflen is given.
  Napi::Value GetSockOpt(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int32_t level = 0;
    int32_t name = 0;
    if (!ReadLevelAndOption(info, "getsockopt", &level, &name)) return env.Undefined();
    if (info.Length() > 2 && !info[2].IsUndefined()) {
      int32_t buflen = 0;
      if (!ArgInt32(info, 2, "buflen", 1, 1024, &buflen)) return env.Undefined();
      std::vector<uint8_t> buf(static_cast<size_t>(buflen));
      socklen_t len = static_cast<socklen_t>(buflen);
      if (::getsockopt(fd_.Get(), level, name, buf.data(), &len) < 0) {
        ThrowErrno(env, errno, "getsockopt");
        return env.Undefined();
      }
      return Napi::Buffer<uint8_t>::Copy(env, buf.data(), len);
    }
    int value = 0;
    socklen_t len = sizeof(value);
    if (::getsockopt(fd_.Get(), level, name, &value, &len) < 0) {
      ThrowErrno(env, errno, "getsockopt");
      return env.Undefined();
    }
    return Napi::Number::New(env, value);
  }

  Napi::Value Name(const Napi::CallbackInfo& info, bool peer) {
    const char* syscall = peer ? "getpeername" : "getsockname";
    if (!CheckOpen(info.Env(), syscall)) return info.Env().Undefined();
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    int rc = peer ? ::getpeername(fd_.Get(), reinterpret_cast<sockaddr*>(&addr), &len)
                  : ::getsockname(fd_.Get(), reinterpret_cast<sockaddr*>(&addr), &len);
    if (rc < 0) {
      ThrowErrno(info.Env(), errno, syscall);
      return info.Env().Undefined();
    }
    return FormatSockAddr(info.Env(), addr, len);
  }
  Napi::Value GetSockName(const Napi::CallbackInfo& info) { return Name(info, false); }
  Napi::Value GetPeerName(const Napi::CallbackInfo& info) { return Name(info, true); }

  UniqueFd fd_;
  int family_ = 0;
  int type_ = 0;
  int proto_ = 0;
};

}  // namespace

Napi::Value AdoptSocketFd(Napi::Env env, int fd) { return Socket::Adopt(env, fd); }

void InitSocket(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = Socket::Define(env);
  GetEnvData(env)->socketCtor = Napi::Persistent(ctor);
  exports.Set("Socket", ctor);
}

}  // namespace iomux
