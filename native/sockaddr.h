// Socket addresses between JavaScript and the kernel, in Python's shapes:
// AF_INET ['127.0.0.1', 80], AF_INET6 ['::1', 80, flowinfo?, scopeId?],
// AF_UNIX '/path' (a leading '\0' names the abstract namespace).
#pragma once

#include <napi.h>
#include <sys/socket.h>

#include <string>

namespace iomux {

// Parses `value` as an address of `family`. Host names are refused: resolve
// them first (the loop's getaddrinfo), so that no call here ever blocks on DNS.
bool ParseSockAddr(Napi::Env env, int family, Napi::Value value, sockaddr_storage* out, socklen_t* outLen);

Napi::Value FormatSockAddr(Napi::Env env, const sockaddr_storage& addr, socklen_t len);

// What accept and recvfrom return: the host (or Unix path; null for no
// address) as a string, with `value` and the rest of the address written to
// the environment's results array (see AddressResult in sockaddr.cc).
napi_value AddressResult(napi_env env, int32_t value, const sockaddr_storage& addr, socklen_t len);

// "127.0.0.1:80", "[::1]:80", "/tmp/x.sock": the detail of an error message.
std::string DescribeSockAddr(const sockaddr_storage& addr, socklen_t len);

}  // namespace iomux
