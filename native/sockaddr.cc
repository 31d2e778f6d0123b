#include "sockaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>

#include "env.h"
#include "errors.h"

namespace iomux {

namespace {

bool ReadHostPort(Napi::Env env, Napi::Value value, const char* shape, Napi::Array* array, std::string* host,
                  uint16_t* port) {
  if (!value.IsArray() || value.As<Napi::Array>().Length() < 2) {
    ThrowTypeError(env, std::string("The \"address\" argument must be an array ") + shape + ". Received " +
                            DescribeValue(value));
    return false;
  }
  *array = value.As<Napi::Array>();
  Napi::Value h = array->Get(0u);
  Napi::Value p = array->Get(1u);
  if (env.IsExceptionPending()) return false;
  if (!h.IsString()) {
    ThrowTypeError(env, "The address host must be of type string. Received " + DescribeValue(h));
    return false;
  }
  if (!p.IsNumber()) {
    ThrowTypeError(env, "The address port must be of type number. Received " + DescribeValue(p));
    return false;
  }
  double d = p.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 65535) || d != static_cast<double>(static_cast<int>(d))) {
    ThrowRangeError(env, "The address port must be an integer >= 0 and <= 65535. Received " + DescribeValue(p));
    return false;
  }
  *host = h.As<Napi::String>().Utf8Value();
  *port = static_cast<uint16_t>(d);
  return true;
}

bool ReadOptionalU32(Napi::Env env, Napi::Array array, uint32_t index, const char* name, uint32_t* out) {
  *out = 0;
  if (array.Length() <= index) return true;
  Napi::Value v = array.Get(index);
  if (env.IsExceptionPending()) return false;
  if (v.IsUndefined()) return true;
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 0 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint32_t>(d))) {
    ThrowRangeError(env, std::string("The address ") + name + " must be an integer >= 0 and <= 4294967295. Received " +
                             DescribeValue(v));
    return false;
  }
  *out = static_cast<uint32_t>(d);
  return true;
}

}  // namespace

bool ParseSockAddr(Napi::Env env, int family, Napi::Value value, sockaddr_storage* out, socklen_t* outLen) {
  std::memset(out, 0, sizeof(*out));
  if (family == AF_INET) {
    Napi::Array array;
    std::string host;
    uint16_t port = 0;
    if (!ReadHostPort(env, value, "[host, port]", &array, &host, &port)) return false;
    auto* sin = reinterpret_cast<sockaddr_in*>(out);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    if (host.empty()) {
      sin->sin_addr.s_addr = htonl(INADDR_ANY);
    } else if (host == "<broadcast>") {
      sin->sin_addr.s_addr = htonl(INADDR_BROADCAST);
    } else if (host.find('\0') != std::string::npos || inet_pton(AF_INET, host.c_str(), &sin->sin_addr) != 1) {
      ThrowValueError(env, "The address host must be a numeric IPv4 address (resolve names with getaddrinfo). "
                           "Received '" + host + "'");
      return false;
    }
    *outLen = sizeof(sockaddr_in);
    return true;
  }
  if (family == AF_INET6) {
    Napi::Array array;
    std::string host;
    uint16_t port = 0;
    uint32_t flowinfo = 0;
    uint32_t scopeId = 0;
    if (!ReadHostPort(env, value, "[host, port, flowinfo?, scopeId?]", &array, &host, &port)) return false;
    if (!ReadOptionalU32(env, array, 2, "flowinfo", &flowinfo)) return false;
    if (!ReadOptionalU32(env, array, 3, "scopeId", &scopeId)) return false;
    if (flowinfo > 0xfffff) {
      ThrowRangeError(env, "The address flowinfo must be <= 1048575. Received " + std::to_string(flowinfo));
      return false;
    }
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(out);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    sin6->sin6_flowinfo = htonl(flowinfo);
    sin6->sin6_scope_id = scopeId;
    if (host.empty()) {
      sin6->sin6_addr = in6addr_any;
    } else if (host.find('\0') != std::string::npos || inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr) != 1) {
      ThrowValueError(env, "The address host must be a numeric IPv6 address (resolve names with getaddrinfo). "
                           "Received '" + host + "'");
      return false;
    }
    *outLen = sizeof(sockaddr_in6);
    return true;
  }
  if (family == AF_UNIX) {
    if (!value.IsString()) {
      ThrowTypeError(env, "The \"address\" argument must be a path string for AF_UNIX. Received " +
                              DescribeValue(value));
      return false;
    }
    std::string path = value.As<Napi::String>().Utf8Value();
    auto* sun = reinterpret_cast<sockaddr_un*>(out);
    const bool abstract = !path.empty() && path[0] == '\0';
    // A filesystem path needs room for its terminating NUL; an abstract name does not.
    const size_t room = sizeof(sun->sun_path) - (abstract ? 0 : 1);
    if (path.size() > room) {
      ThrowRangeError(env, "The AF_UNIX path must be at most " + std::to_string(room) + " bytes. Received " +
                               std::to_string(path.size()) + " bytes");
      return false;
    }
    if (!abstract && path.find('\0') != std::string::npos) {
      ThrowValueError(env, "The AF_UNIX path must not contain NUL bytes");
      return false;
    }
    sun->sun_family = AF_UNIX;
    std::memcpy(sun->sun_path, path.data(), path.size());
    *outLen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
    return true;
  }
  ThrowRangeError(env, "Addresses of socket family " + std::to_string(family) + " are not supported");
  return false;
}

Napi::Value FormatSockAddr(Napi::Env env, const sockaddr_storage& addr, socklen_t len) {
  char text[INET6_ADDRSTRLEN] = {0};
  switch (addr.ss_family) {
    case AF_INET: {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(&addr);
      inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
      Napi::Array result = Napi::Array::New(env, 2);
      result.Set(0u, Napi::String::New(env, text));
      result.Set(1u, Napi::Number::New(env, ntohs(sin->sin_port)));
      return result;
    }
    case AF_INET6: {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&addr);
      inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
      Napi::Array result = Napi::Array::New(env, 4);
      result.Set(0u, Napi::String::New(env, text));
      result.Set(1u, Napi::Number::New(env, ntohs(sin6->sin6_port)));
      result.Set(2u, Napi::Number::New(env, ntohl(sin6->sin6_flowinfo)));
      result.Set(3u, Napi::Number::New(env, sin6->sin6_scope_id));
      return result;
    }
    case AF_UNIX: {
      const auto* sun = reinterpret_cast<const sockaddr_un*>(&addr);
      const size_t base = offsetof(sockaddr_un, sun_path);
      if (len <= base) return Napi::String::New(env, "");  // unnamed (e.g. socketpair)
      size_t n = len - base;
      if (sun->sun_path[0] != '\0') n = strnlen(sun->sun_path, n);
      return Napi::String::New(env, sun->sun_path, n);
    }
    default:
      return env.Null();
  }
}

std::string DescribeSockAddr(const sockaddr_storage& addr, socklen_t len) {
  char text[INET6_ADDRSTRLEN] = {0};
  if (addr.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
    return std::string(text) + ":" + std::to_string(ntohs(sin->sin_port));
  }
  if (addr.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
    return "[" + std::string(text) + "]:" + std::to_string(ntohs(sin6->sin6_port));
  }
  if (addr.ss_family == AF_UNIX) {
    const auto* sun = reinterpret_cast<const sockaddr_un*>(&addr);
    const size_t base = offsetof(sockaddr_un, sun_path);
    if (len <= base) return "(unnamed)";
    if (sun->sun_path[0] == '\0') return "@" + std::string(sun->sun_path + 1, len - base - 1);
    return std::string(sun->sun_path, strnlen(sun->sun_path, len - base));
  }
  return "";
}

// Results with an address. Building an array in N-API costs a runtime call
// per element (accept's [fd, [host, port]] was over 8,000 instructions, 20
// times the syscall's own); so these calls return one string, the host (or
// the Unix path; null for no address), and write their numbers into the
// environment's results array, from which the TypeScript side builds the
// address as Python shapes it:
//   [0] the call's count or fd  [1] family  [2] port  [3] flowinfo  [4] scope id
namespace {
enum Result { kValue = 0, kFamily = 1, kPort = 2, kFlowinfo = 3, kScopeId = 4 };
}  // namespace

napi_value AddressResult(napi_env env, int32_t value, const sockaddr_storage& addr, socklen_t len) {
  int32_t* out = GetEnvData(Napi::Env(env))->results->data.get();
  out[kValue] = value;
  out[kFamily] = len == 0 ? AF_UNSPEC : addr.ss_family;
  napi_value host = nullptr;
  char text[INET6_ADDRSTRLEN] = {0};
  if (len == 0) {
    napi_get_null(env, &host);
  } else if (addr.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
    out[kPort] = ntohs(sin->sin_port);
    napi_create_string_latin1(env, text, NAPI_AUTO_LENGTH, &host);
  } else if (addr.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
    out[kPort] = ntohs(sin6->sin6_port);
    out[kFlowinfo] = static_cast<int32_t>(ntohl(sin6->sin6_flowinfo));
    out[kScopeId] = static_cast<int32_t>(sin6->sin6_scope_id);
    napi_create_string_latin1(env, text, NAPI_AUTO_LENGTH, &host);
  } else {
    // AF_UNIX and anything else: the one-value form FormatSockAddr makes.
    host = FormatSockAddr(Napi::Env(env), addr, len);
  }
  return host;
}

}  // namespace iomux
