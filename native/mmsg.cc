// Datagrams in batches: recvmmsg(2) and sendmmsg(2), for the loop's datagram
// transport. One crossing and one syscall move up to kMaxBatch datagrams,
// where recvfrom/sendto move one each.
//
// tryRecvmmsg(fd, slab, slotSize, count, meta) receives up to `count`
// datagrams, datagram i into slab[i * slotSize, (i + 1) * slotSize), and
// describes each in meta (an Int32Array of count * kMetaInts):
//   [0] bytes  [1] family  [2] port  [3] flowinfo  [4] scope id
//   [5] the IPv4 address as it lies in memory (network order)
//   [6] the length of the host's text, which starts at byte 32 of the record
//       (inet_ntop's form; a Unix path; empty for an unnamed sender)
//   [7] 1 when the datagram was longer than its slot (MSG_TRUNC)
// It returns the count received, or false when none was waiting.
//
// trySendmmsg(fd, family, datagrams, addresses, start, count) sends
// datagrams[start, start + count) to addresses[i] (null on a connected
// socket) and returns how many the kernel took, or null when it took none
// because the socket's buffer is full. An error on the first datagram
// throws; an error after it ends the batch early (the kernel forgets it:
// the caller's next call, starting at the first datagram not sent, meets it
// again -- unless it was the socket's pending error, ECONNREFUSED on a
// connected socket, which that datagram consumed: a caller that must see
// every such error sends one datagram a call on a connected socket).
//
// Both add MSG_DONTWAIT; sends add MSG_NOSIGNAL. EINTR is retried. As in
// msg.cc, the JavaScript values (an address's getters may run code) are all
// read before any pointer into a buffer is taken.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <string>
#include <vector>

#include "args.h"
#include "deadline.h"
#include "errors.h"
#include "modules.h"
#include "raw.h"
#include "sockaddr.h"
#include "syscount.h"

namespace iomux {

namespace {

constexpr int64_t kMaxBatch = 1024;
constexpr size_t kMetaInts = 24;
constexpr size_t kTextOffset = 32;
constexpr size_t kTextRoom = kMetaInts * 4 - kTextOffset;

bool IsWouldBlock(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

// The sender's address into its meta record (see the header comment).
void Describe(const sockaddr_storage& addr, socklen_t len, int32_t* record) {
  auto* text = reinterpret_cast<char*>(record) + kTextOffset;
  std::memset(record, 0, kMetaInts * sizeof(int32_t));
  record[1] = len == 0 ? AF_UNSPEC : addr.ss_family;
  if (len == 0) return;
  if (addr.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&addr);
    record[2] = ntohs(sin->sin_port);
    std::memcpy(&record[5], &sin->sin_addr, sizeof(sin->sin_addr));
    inet_ntop(AF_INET, &sin->sin_addr, text, kTextRoom);
  } else if (addr.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    record[2] = ntohs(sin6->sin6_port);
    record[3] = static_cast<int32_t>(ntohl(sin6->sin6_flowinfo));
    record[4] = static_cast<int32_t>(sin6->sin6_scope_id);
    inet_ntop(AF_INET6, &sin6->sin6_addr, text, kTextRoom);
  } else {
    // Only the inet families are batched (a Unix datagram may be larger
    // than any slot): another family leaves its text empty.
    return;
  }
  record[6] = static_cast<int32_t>(std::strlen(text));
}

napi_value TryRecvmmsg(napi_env raw, napi_callback_info info) {
  RawArgs<5> a;
  if (!a.Read(raw, info)) return nullptr;
  Napi::Env env(raw);
  int fd = -1;
  int64_t slotSize = 0;
  int64_t count = 0;
  Int32View meta{};
  ByteRange slab{};
  if (!ValueFd(env, Napi::Value(raw, a.At(raw, 0)), "fd", &fd)) return nullptr;
  if (!ValueInt(env, Napi::Value(raw, a.At(raw, 2)), "slotSize", 1, INT32_MAX, &slotSize)) return nullptr;
  if (!ValueInt(env, Napi::Value(raw, a.At(raw, 3)), "count", 1, kMaxBatch, &count)) return nullptr;
  if (!ValueInt32Array(env, Napi::Value(raw, a.At(raw, 4)), "meta", &meta)) return nullptr;
  if (!ValueByteRange(env, a.At(raw, 1), nullptr, nullptr, &slab)) return nullptr;
  const auto n = static_cast<size_t>(count);
  const auto slot = static_cast<size_t>(slotSize);
  if (slab.length / slot < n) {
    ThrowRangeError(env, "The \"slab\" argument must hold count * slotSize = " + std::to_string(n * slot) +
                             " bytes. Received " + std::to_string(slab.length));
    return nullptr;
  }
  if (meta.length < n * kMetaInts) {
    ThrowRangeError(env, "The \"meta\" argument must hold count * " + std::to_string(kMetaInts) + " = " +
                             std::to_string(n * kMetaInts) + " elements. Received " + std::to_string(meta.length));
    return nullptr;
  }
  std::vector<mmsghdr> msgs(n);
  std::vector<iovec> iovs(n);
  std::vector<sockaddr_storage> addrs(n);
  for (size_t i = 0; i < n; i++) {
    iovs[i] = {slab.data + i * slot, slot};
    msgs[i].msg_hdr = {};
    msgs[i].msg_hdr.msg_name = &addrs[i];
    msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_len = 0;
  }
  int got = RetryEintr(
      [&] { return IOMUX_SYSCALL(::recvmmsg(fd, msgs.data(), static_cast<unsigned>(n), MSG_DONTWAIT, nullptr)); });
  if (got < 0) {
    if (IsWouldBlock(errno)) {
      napi_value no;
      napi_get_boolean(raw, false, &no);
      return no;
    }
    ThrowErrno(env, errno, "recvmmsg");
    return nullptr;
  }
  for (size_t i = 0; i < static_cast<size_t>(got); i++) {
    int32_t* record = meta.data + i * kMetaInts;
    Describe(addrs[i], msgs[i].msg_hdr.msg_namelen, record);
    record[0] = static_cast<int32_t>(msgs[i].msg_len);
    record[7] = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0 ? 1 : 0;
  }
  return RawInt32(raw, got);
}

napi_value TrySendmmsg(napi_env raw, napi_callback_info info) {
  RawArgs<6> a;
  if (!a.Read(raw, info)) return nullptr;
  Napi::Env env(raw);
  int fd = -1;
  int64_t family = 0;
  int64_t start = 0;
  int64_t count = 0;
  if (!ValueFd(env, Napi::Value(raw, a.At(raw, 0)), "fd", &fd)) return nullptr;
  if (!ValueInt(env, Napi::Value(raw, a.At(raw, 1)), "family", 0, INT32_MAX, &family)) return nullptr;
  Napi::Value datagramsValue(raw, a.At(raw, 2));
  Napi::Value addressesValue(raw, a.At(raw, 3));
  if (!datagramsValue.IsArray()) {
    ThrowTypeError(env, "The \"datagrams\" argument must be an array. Received " + DescribeValue(datagramsValue));
    return nullptr;
  }
  if (!addressesValue.IsArray()) {
    ThrowTypeError(env, "The \"addresses\" argument must be an array. Received " + DescribeValue(addressesValue));
    return nullptr;
  }
  auto datagrams = datagramsValue.As<Napi::Array>();
  auto addresses = addressesValue.As<Napi::Array>();
  if (!ValueInt(env, Napi::Value(raw, a.At(raw, 4)), "start", 0, UINT32_MAX, &start)) return nullptr;
  if (!ValueInt(env, Napi::Value(raw, a.At(raw, 5)), "count", 1, kMaxBatch, &count)) return nullptr;
  if (static_cast<uint64_t>(start + count) > datagrams.Length() ||
      static_cast<uint64_t>(start + count) > addresses.Length()) {
    ThrowRangeError(env, "start + count must be <= the arrays' lengths (" + std::to_string(datagrams.Length()) +
                             " datagrams, " + std::to_string(addresses.Length()) + " addresses). Received " +
                             std::to_string(start + count));
    return nullptr;
  }
  const auto n = static_cast<size_t>(count);
  // Phase one: every address parsed and every datagram value read.
  std::vector<sockaddr_storage> addrs(n);
  std::vector<socklen_t> lens(n, 0);
  std::vector<napi_value> buffers(n);
  for (size_t i = 0; i < n; i++) {
    const auto index = static_cast<uint32_t>(start) + static_cast<uint32_t>(i);
    Napi::Value address = addresses.Get(index);
    if (env.IsExceptionPending()) return nullptr;
    if (!address.IsNull() && !ParseSockAddr(env, static_cast<int>(family), address, &addrs[i], &lens[i])) {
      return nullptr;
    }
    Napi::Value datagram = datagrams.Get(index);
    if (env.IsExceptionPending()) return nullptr;
    buffers[i] = datagram;
  }
  // Phase two: the pointers, with no JavaScript between them and the syscall.
  std::vector<mmsghdr> msgs(n);
  std::vector<iovec> iovs(n);
  for (size_t i = 0; i < n; i++) {
    ByteRange range{};
    if (!ValueByteRange(env, buffers[i], nullptr, nullptr, &range)) return nullptr;
    iovs[i] = {range.data, range.length};
    msgs[i].msg_hdr = {};
    msgs[i].msg_hdr.msg_name = lens[i] == 0 ? nullptr : &addrs[i];
    msgs[i].msg_hdr.msg_namelen = lens[i];
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  int sent = RetryEintr([&] {
    return IOMUX_SYSCALL(::sendmmsg(fd, msgs.data(), static_cast<unsigned>(n), MSG_DONTWAIT | MSG_NOSIGNAL));
  });
  if (sent < 0) {
    if (IsWouldBlock(errno)) return RawNull(raw);
    const int err = errno;
    if (lens[0] == 0) {
      ThrowErrno(env, err, "sendmmsg");
    } else {
      ThrowErrno(env, err, "sendmmsg", DescribeSockAddr(addrs[0], lens[0]));
    }
    return nullptr;
  }
  return RawInt32(raw, sent);
}

}  // namespace

void InitMmsg(Napi::Env env, Napi::Object exports) {
  SetRawFunction(env, exports, "tryRecvmmsg", TryRecvmmsg);
  SetRawFunction(env, exports, "trySendmmsg", TrySendmmsg);
}

}  // namespace iomux
