// sendmsg(2) and recvmsg(2) on fd numbers, with ancillary data: SCM_RIGHTS
// fds as plain fd numbers, any other control message as raw bytes.
//
// Every function works in two phases, because JavaScript can run while its
// arguments are read: an array element or an address field may be a getter,
// and a getter may detach, transfer or resize any ArrayBuffer. Phase one
// reads every JavaScript value (running whatever getters there are) and
// copies the numbers out; phase two takes the pointers into the buffers,
// with no JavaScript between it and the syscall. A pointer taken in phase
// one could point at freed memory by the time the kernel reads it.
//
// Sends always add MSG_NOSIGNAL (a vanished peer is EPIPE, never SIGPIPE);
// receives always add MSG_CMSG_CLOEXEC, so a received fd is CLOEXEC from the
// moment it exists and no child spawned meanwhile inherits it. The try forms
// add MSG_DONTWAIT and return null where the throwing forms raise
// BlockingIOError. EINTR is retried.
#include <limits.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "args.h"
#include "deadline.h"
#include "errors.h"
#include "modules.h"
#include "msg.h"
#include "raw.h"
#include "sockaddr.h"
#include "unique_fd.h"
#include "syscount.h"

namespace iomux {

namespace {

// Ancillary data is capped by the kernel at net.core.optmem_max (20 KiB to
// 128 KiB): a control buffer beyond this is refused before it is allocated.
constexpr size_t kMaxControlBytes = 1 << 20;

constexpr size_t kMaxArgs = 7;

struct Args {
  napi_value argv[kMaxArgs];
  size_t argc = kMaxArgs;
};

bool ReadArgs(napi_env env, napi_callback_info info, Args* args) {
  if (napi_get_cb_info(env, info, &args->argc, args->argv, nullptr, nullptr) != napi_ok) return false;
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  for (size_t i = args->argc < kMaxArgs ? args->argc : kMaxArgs; i < kMaxArgs; i++) args->argv[i] = undefined;
  return true;
}

napi_valuetype TypeOf(napi_env env, napi_value v) {
  napi_valuetype type = napi_undefined;
  napi_typeof(env, v, &type);
  return type;
}

bool IsNullish(napi_env env, napi_value v) {
  const napi_valuetype type = TypeOf(env, v);
  return type == napi_undefined || type == napi_null;
}

std::string Quote(const std::string& name) { return "The \"" + name + "\" argument"; }

std::string Indexed(const char* name, uint32_t i, const std::string& suffix = "") {
  return std::string(name) + "[" + std::to_string(i) + "]" + suffix;
}

std::string Describe(napi_env env, napi_value v) { return DescribeValue(Napi::Value(env, v)); }

// An integer in [min, max], or `fallback` when undefined.
bool IntOr(napi_env env, napi_value v, const char* name, int64_t min, int64_t max, int64_t fallback, int64_t* out) {
  return ValueIntOr(Napi::Env(env), v, name, min, max, fallback, out);
}

bool IsView(napi_env env, napi_value v) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) return true;
  return napi_is_dataview(env, v, &is) == napi_ok && is;
}

[[gnu::cold, gnu::noinline]] void ThrowNotView(napi_env env, napi_value v, const std::string& name) {
  ThrowTypeError(env, Quote(name) + " must be an instance of Buffer, TypedArray or DataView. Received " +
                          Describe(env, v));
}

[[gnu::cold, gnu::noinline]] void ThrowDetached(napi_env env, const std::string& name) {
  ThrowValueError(env, Quote(name) + " must not be a view of a detached ArrayBuffer");
}


// Phase two: the memory of a view that phase one checked with IsView. False
// when its ArrayBuffer was detached since: that is an error rather than an
// empty range, because a message silently missing one of its parts would
// corrupt the stream it belongs to.
bool ViewBytes(napi_env env, napi_value v, iovec* out) {
  napi_typedarray_type type = napi_uint8_array;
  size_t length = 0;
  void* data = nullptr;
  napi_value arraybuffer = nullptr;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, &arraybuffer, nullptr) == napi_ok) {
    length *= TypedArrayElementSize(type);
  } else if (napi_get_dataview_info(env, v, &length, &data, &arraybuffer, nullptr) != napi_ok) {
    return false;
  }
  if (length == 0) {
    bool detached = false;
    if (napi_is_detached_arraybuffer(env, arraybuffer, &detached) == napi_ok && detached) return false;
  }
  out->iov_base = data;
  out->iov_len = length;
  return true;
}

// Phase one: an Array of at most IOV_MAX byte buffers. Reads each element
// (which may run a getter) and checks its type.
bool ReadViewList(napi_env env, napi_value v, const char* name, std::vector<napi_value>* out) {
  bool isArray = false;
  if (napi_is_array(env, v, &isArray) != napi_ok || !isArray) {
    ThrowTypeError(env, Quote(name) + " must be an instance of Array. Received " + Describe(env, v));
    return false;
  }
  uint32_t n = 0;
  napi_get_array_length(env, v, &n);
  if (n > IOV_MAX) {
    ThrowRangeError(env, Quote(name) + " must hold at most " + std::to_string(IOV_MAX) +
                             " buffers (IOV_MAX). Received " + std::to_string(n));
    return false;
  }
  out->resize(n);
  for (uint32_t i = 0; i < n; i++) {
    napi_value element;
    if (napi_get_element(env, v, i, &element) != napi_ok) return false;  // a getter threw
    if (!IsView(env, element)) {
      ThrowNotView(env, element, Indexed(name, i));
      return false;
    }
    (*out)[i] = element;
  }
  return true;
}

// Phase two for a list read by ReadViewList.
bool ListBytes(napi_env env, const std::vector<napi_value>& views, const char* name, std::vector<iovec>* out) {
  out->resize(views.size());
  for (size_t i = 0; i < views.size(); i++) {
    if (!ViewBytes(env, views[i], &(*out)[i])) {
      ThrowDetached(env, Indexed(name, static_cast<uint32_t>(i)));
      return false;
    }
  }
  return true;
}

[[gnu::cold, gnu::noinline]] void ThrowTooManyFds(napi_env env, size_t n) {
  ThrowRangeError(env, Quote("fds") + " must hold at most " + std::to_string(kScmMaxFd) +
                           " fds (SCM_MAX_FD). Received " + std::to_string(n));
}

// Phase one: the fds to pass, an Int32Array or an Array of fd numbers
// (undefined or null: none), copied out at once.
bool ReadFds(napi_env env, napi_value v, std::vector<int>* out) {
  if (IsNullish(env, v)) return true;
  napi_typedarray_type type = napi_uint8_array;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr) == napi_ok &&
      type == napi_int32_array) {
    if (length > static_cast<size_t>(kScmMaxFd)) {
      ThrowTooManyFds(env, length);
      return false;
    }
    const auto* fds = static_cast<const int32_t*>(data);
    for (size_t i = 0; i < length; i++) {
      if (fds[i] < 0) {
        ThrowRangeError(env, Quote(Indexed("fds", static_cast<uint32_t>(i))) +
                                 " must be >= 0 and <= 2147483647. Received " + std::to_string(fds[i]));
        return false;
      }
    }
    out->assign(fds, fds + length);
    return true;
  }
  bool isArray = false;
  if (napi_is_array(env, v, &isArray) != napi_ok || !isArray) {
    ThrowTypeError(env, Quote("fds") + " must be an instance of Int32Array or Array. Received " + Describe(env, v));
    return false;
  }
  uint32_t n = 0;
  napi_get_array_length(env, v, &n);
  if (n > static_cast<uint32_t>(kScmMaxFd)) {
    ThrowTooManyFds(env, n);
    return false;
  }
  out->resize(n);
  for (uint32_t i = 0; i < n; i++) {
    napi_value element;
    if (napi_get_element(env, v, i, &element) != napi_ok) return false;
    double d = -1;
    if (napi_get_value_double(env, element, &d) == napi_ok && d >= 0 && d <= INT32_MAX && std::floor(d) == d) {
      (*out)[i] = static_cast<int>(d);
      continue;
    }
    // Not an fd: ValueFd words the error.
    int fd = -1;
    if (!ValueFd(Napi::Env(env), Napi::Value(env, element), Indexed("fds", i).c_str(), &fd)) return false;
    (*out)[i] = fd;
  }
  return true;
}

// A control message other than SCM_RIGHTS, read in phase one (`view`) and
// given its bytes in phase two.
struct RawCmsg {
  int level;
  int type;
  napi_value view;
  iovec bytes;
};

bool ReadCmsgField(napi_env env, napi_value item, uint32_t i, const char* field, int* out) {
  napi_value v;
  if (napi_get_named_property(env, item, field, &v) != napi_ok) return false;
  int64_t value = 0;
  const std::string name = Indexed("ancdata", i, std::string(".") + field);
  if (!ValueInt(Napi::Env(env), Napi::Value(env, v), name.c_str(), 0, INT32_MAX, &value)) return false;
  *out = static_cast<int>(value);
  return true;
}

// Phase one: an Array of { level, type, data } (undefined or null: none).
// SCM_RIGHTS goes through ReadFds, whose checks it would otherwise skip.
bool ReadCmsgs(napi_env env, napi_value v, std::vector<RawCmsg>* out) {
  if (IsNullish(env, v)) return true;
  bool isArray = false;
  if (napi_is_array(env, v, &isArray) != napi_ok || !isArray) {
    ThrowTypeError(env, Quote("ancdata") + " must be an instance of Array. Received " + Describe(env, v));
    return false;
  }
  uint32_t n = 0;
  napi_get_array_length(env, v, &n);
  if (n > IOV_MAX) {
    ThrowRangeError(env, Quote("ancdata") + " must hold at most " + std::to_string(IOV_MAX) +
                             " messages. Received " + std::to_string(n));
    return false;
  }
  out->resize(n);
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    if (napi_get_element(env, v, i, &item) != napi_ok) return false;
    if (TypeOf(env, item) != napi_object) {
      ThrowTypeError(env, Quote(Indexed("ancdata", i)) + " must be an object { level, type, data }. Received " +
                              Describe(env, item));
      return false;
    }
    RawCmsg& c = (*out)[i];
    if (!ReadCmsgField(env, item, i, "level", &c.level)) return false;
    if (!ReadCmsgField(env, item, i, "type", &c.type)) return false;
    if (napi_get_named_property(env, item, "data", &c.view) != napi_ok) return false;
    if (!IsView(env, c.view)) {
      ThrowNotView(env, c.view, Indexed("ancdata", i, ".data"));
      return false;
    }
    if (c.level == SOL_SOCKET && c.type == SCM_RIGHTS) {
      ThrowValueError(env, Quote(Indexed("ancdata", i)) + " must not be SCM_RIGHTS: pass the fds in \"fds\"");
      return false;
    }
  }
  return true;
}

// Phase one, last (it may make a syscall): the destination address, parsed
// for `family`, or for the socket's own family (SO_DOMAIN) when that is
// undefined. Undefined or null: none (*len = 0).
bool ReadAddress(napi_env env, int fd, napi_value familyValue, napi_value address, sockaddr_storage* addr,
                 socklen_t* len) {
  *len = 0;
  int64_t family = -1;
  if (!IntOr(env, familyValue, "family", 0, INT32_MAX, -1, &family)) return false;
  if (IsNullish(env, address)) return true;
  if (family < 0) {
    int domain = 0;
    socklen_t size = sizeof(domain);
    if (IOMUX_SYSCALL(::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &size)) < 0) {
      ThrowErrno(Napi::Env(env), errno, "getsockopt");
      return false;
    }
    family = domain;
  }
  return ParseSockAddr(Napi::Env(env), static_cast<int>(family), Napi::Value(env, address), addr, len);
}

bool IsWouldBlock(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

// sendmsg(fd, buffers, fds?, flags = 0, address?, family?, ancdata?) -> bytes
// sent. fds: Int32Array or number[] (SCM_RIGHTS); ancdata: other control
// messages as { level, type, data }. The try form returns null for EAGAIN.
template <bool kTry>
napi_value SendMsg(napi_env env, napi_callback_info info) {
  Args args;
  if (!ReadArgs(env, info, &args)) return nullptr;
  const napi_value* argv = args.argv;
  // Phase one: every JavaScript value.
  int fd = -1;
  if (!ValueFd(Napi::Env(env), Napi::Value(env, argv[0]), "fd", &fd)) return nullptr;
  std::vector<napi_value> views;
  if (!ReadViewList(env, argv[1], "buffers", &views)) return nullptr;
  std::vector<int> fds;
  if (!ReadFds(env, argv[2], &fds)) return nullptr;
  int64_t flags = 0;
  if (!IntOr(env, argv[3], "flags", 0, INT32_MAX, 0, &flags)) return nullptr;
  std::vector<RawCmsg> cmsgs;
  if (!ReadCmsgs(env, argv[6], &cmsgs)) return nullptr;
  sockaddr_storage addr;
  socklen_t addrLen = 0;
  if (!ReadAddress(env, fd, argv[5], argv[4], &addr, &addrLen)) return nullptr;

  // Phase two: pointers, then the control buffer, then the syscall.
  std::vector<iovec> iov;
  if (!ListBytes(env, views, "buffers", &iov)) return nullptr;
  size_t controlLen = fds.empty() ? 0 : CMSG_SPACE(fds.size() * sizeof(int));
  for (size_t i = 0; i < cmsgs.size(); i++) {
    if (!ViewBytes(env, cmsgs[i].view, &cmsgs[i].bytes)) {
      ThrowDetached(env, Indexed("ancdata", static_cast<uint32_t>(i), ".data"));
      return nullptr;
    }
    // Checked one by one first, so that the sum cannot overflow.
    const size_t len = cmsgs[i].bytes.iov_len;
    controlLen += len > kMaxControlBytes ? kMaxControlBytes + 1 : CMSG_SPACE(len);
    if (controlLen > kMaxControlBytes) {
      ThrowRangeError(env, Quote("ancdata") + " must take at most " + std::to_string(kMaxControlBytes) +
                               " bytes of control buffer (the sum of CMSG_SPACE(data.byteLength))");
      return nullptr;
    }
  }
  // Zeroed, so that the padding between messages sends nothing of this
  // process's memory.
  std::vector<uint64_t> control((controlLen + sizeof(uint64_t) - 1) / sizeof(uint64_t));
  auto* base = reinterpret_cast<unsigned char*>(control.data());
  size_t offset = 0;
  auto put = [&](int level, int type, const void* data, size_t len) {
    auto* c = reinterpret_cast<cmsghdr*>(base + offset);
    c->cmsg_level = level;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(len);
    if (len > 0) std::memcpy(CMSG_DATA(c), data, len);
    offset += CMSG_SPACE(len);
  };
  if (!fds.empty()) put(SOL_SOCKET, SCM_RIGHTS, fds.data(), fds.size() * sizeof(int));
  for (const RawCmsg& c : cmsgs) put(c.level, c.type, c.bytes.iov_base, c.bytes.iov_len);

  msghdr msg{};
  msg.msg_name = addrLen > 0 ? &addr : nullptr;
  msg.msg_namelen = addrLen;
  msg.msg_iov = iov.data();
  msg.msg_iovlen = iov.size();
  msg.msg_control = controlLen > 0 ? base : nullptr;
  msg.msg_controllen = controlLen;
  const int sendFlags = static_cast<int>(flags) | MSG_NOSIGNAL | (kTry ? MSG_DONTWAIT : 0);
  const ssize_t n = RetryEintr([&] { return IOMUX_SYSCALL(::sendmsg(fd, &msg, sendFlags)); });
  if (n < 0) {
    const int err = errno;
    if (kTry && IsWouldBlock(err)) {
      napi_value null;
      napi_get_null(env, &null);
      return null;
    }
    ThrowErrno(Napi::Env(env), err, "sendmsg", addrLen > 0 ? DescribeSockAddr(addr, addrLen) : "");
    return nullptr;
  }
  napi_value result;
  napi_create_double(env, static_cast<double>(n), &result);
  return result;
}

struct ReceivedCmsg {
  int level;
  int type;
  const unsigned char* data;
  size_t length;
};

// Takes ownership of every fd of the SCM_RIGHTS messages at once: the kernel
// installed them in this process, and from here on any failure must close
// them. Lists the other messages. A message cut short (MSG_CTRUNC) keeps what
// arrived of it: the kernel passes only whole fds, and drops (closes) for us
// those that did not fit.
void TakeControl(const msghdr& msg, std::vector<UniqueFd>* fds, std::vector<ReceivedCmsg>* others) {
  if (msg.msg_control == nullptr) return;
  const auto* base = static_cast<const unsigned char*>(msg.msg_control);
  const size_t end = msg.msg_controllen;
  size_t offset = 0;
  while (offset + sizeof(cmsghdr) <= end) {
    const auto* c = reinterpret_cast<const cmsghdr*>(base + offset);
    const size_t len = c->cmsg_len < end - offset ? c->cmsg_len : end - offset;
    if (len < CMSG_LEN(0)) break;
    const unsigned char* data = base + offset + CMSG_LEN(0);
    const size_t dataLen = len - CMSG_LEN(0);
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      for (size_t i = 0; i + sizeof(int) <= dataLen; i += sizeof(int)) {
        int fd = -1;
        std::memcpy(&fd, data + i, sizeof(int));
        fds->emplace_back(fd);
      }
    } else {
      others->push_back({c->cmsg_level, c->cmsg_type, data, dataLen});
    }
    offset += CMSG_ALIGN(c->cmsg_len);
  }
}

// recvmsg(fd, buffers, ancbufsize = 0, flags = 0) -> [bytes, fds, msgFlags,
// address, ancdata]: the fds of SCM_RIGHTS messages as numbers (CLOEXEC,
// owned by the caller), msgFlags with MSG_TRUNC / MSG_CTRUNC, the sender's
// address or null, and the other control messages as { level, type, data }.
// The try form returns null for EAGAIN.
template <bool kTry>
napi_value RecvMsg(napi_env env, napi_callback_info info) {
  Args args;
  if (!ReadArgs(env, info, &args)) return nullptr;
  const napi_value* argv = args.argv;
  Napi::Env e(env);
  int fd = -1;
  if (!ValueFd(e, Napi::Value(env, argv[0]), "fd", &fd)) return nullptr;
  std::vector<napi_value> views;
  if (!ReadViewList(env, argv[1], "buffers", &views)) return nullptr;
  int64_t ancbufsize = 0;
  if (!IntOr(env, argv[2], "ancbufsize", 0, static_cast<int64_t>(kMaxControlBytes), 0, &ancbufsize)) return nullptr;
  int64_t flags = 0;
  if (!IntOr(env, argv[3], "flags", 0, INT32_MAX, 0, &flags)) return nullptr;

  std::vector<iovec> iov;
  if (!ListBytes(env, views, "buffers", &iov)) return nullptr;
  std::vector<uint64_t> control((static_cast<size_t>(ancbufsize) + sizeof(uint64_t) - 1) / sizeof(uint64_t));
  sockaddr_storage addr{};
  msghdr msg{};
  const int recvFlags = static_cast<int>(flags) | MSG_CMSG_CLOEXEC | (kTry ? MSG_DONTWAIT : 0);
  const ssize_t n = RetryEintr([&] {
    // recvmsg writes the lengths back: reset them for each attempt.
    msg = msghdr{};
    msg.msg_name = &addr;
    msg.msg_namelen = sizeof(addr);
    msg.msg_iov = iov.data();
    msg.msg_iovlen = iov.size();
    msg.msg_control = ancbufsize > 0 ? control.data() : nullptr;
    msg.msg_controllen = static_cast<size_t>(ancbufsize);
    return IOMUX_SYSCALL(::recvmsg(fd, &msg, recvFlags));
  });
  if (n < 0) {
    const int err = errno;
    if (kTry && IsWouldBlock(err)) return e.Null();
    ThrowErrno(e, err, "recvmsg");
    return nullptr;
  }
  std::vector<UniqueFd> fds;
  std::vector<ReceivedCmsg> others;
  TakeControl(msg, &fds, &others);

  // Building the result runs no user code of its own, but any step can still
  // fail (a setter on Array.prototype, no memory): then the UniqueFds close
  // every received fd on return, and none leaks.
  Napi::Array fdList = Napi::Array::New(e, fds.size());
  for (size_t i = 0; i < fds.size() && !e.IsExceptionPending(); i++) {
    fdList.Set(static_cast<uint32_t>(i), Napi::Number::New(e, fds[i].Get()));
  }
  if (e.IsExceptionPending()) return nullptr;
  Napi::Array otherList = Napi::Array::New(e, others.size());
  for (size_t i = 0; i < others.size() && !e.IsExceptionPending(); i++) {
    Napi::Object item = Napi::Object::New(e);
    item.Set("level", Napi::Number::New(e, others[i].level));
    item.Set("type", Napi::Number::New(e, others[i].type));
    item.Set("data", Napi::Buffer<uint8_t>::Copy(e, others[i].data, others[i].length));
    otherList.Set(static_cast<uint32_t>(i), item);
  }
  if (e.IsExceptionPending()) return nullptr;
  Napi::Value address = msg.msg_namelen == 0 ? e.Null() : FormatSockAddr(e, addr, msg.msg_namelen);
  if (e.IsExceptionPending()) return nullptr;
  Napi::Array result = Napi::Array::New(e, 5);
  result.Set(0u, Napi::Number::New(e, static_cast<double>(n)));
  result.Set(1u, fdList);
  // The kernel echoes MSG_CMSG_CLOEXEC into msg_flags; it says nothing
  // about the message, and the caller never asked for it.
  result.Set(2u, Napi::Number::New(e, msg.msg_flags & ~MSG_CMSG_CLOEXEC));
  result.Set(3u, address);
  result.Set(4u, otherList);
  if (e.IsExceptionPending()) return nullptr;
  for (UniqueFd& received : fds) received.Release();
  return result;
}

// cmsgLen(length) / cmsgSpace(length): the CMSG_LEN / CMSG_SPACE macros, as
// Python's socket.CMSG_LEN / CMSG_SPACE, for sizing ancbufsize.
template <bool kSpace>
napi_value CmsgSize(napi_env env, napi_callback_info info) {
  Args args;
  if (!ReadArgs(env, info, &args)) return nullptr;
  int64_t length = 0;
  if (!ValueInt(Napi::Env(env), Napi::Value(env, args.argv[0]), "length", 0, static_cast<int64_t>(kMaxControlBytes),
                &length)) {
    return nullptr;
  }
  const size_t size = kSpace ? CMSG_SPACE(static_cast<size_t>(length)) : CMSG_LEN(static_cast<size_t>(length));
  napi_value result;
  napi_create_double(env, static_cast<double>(size), &result);
  return result;
}

}  // namespace

void InitMsg(Napi::Env env, Napi::Object exports) {
  SetRawFunction(env, exports, "sendmsg", SendMsg<false>);
  SetRawFunction(env, exports, "trySendmsg", SendMsg<true>);
  SetRawFunction(env, exports, "recvmsg", RecvMsg<false>);
  SetRawFunction(env, exports, "tryRecvmsg", RecvMsg<true>);
  SetRawFunction(env, exports, "cmsgLen", CmsgSize<false>);
  SetRawFunction(env, exports, "cmsgSpace", CmsgSize<true>);
}

}  // namespace iomux
