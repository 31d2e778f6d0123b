// Staged operation records -> SQEs, for uring.cc's submit: each record is
// checked (Validate) before any becomes an SQE (Prepare), so a bad one throws
// with nothing of its batch submitted. Addresses the kernel gets point only
// into memory the core owns: the arena, by checked offset and length.
#include <poll.h>
#include <sys/socket.h>

#include <string>

#include "errors.h"
#include "uring_core.h"

namespace iomux {
namespace uring {

namespace {

std::string RecordWhere(size_t i) { return "sq record " + std::to_string(i); }

bool CheckRange(Napi::Env env, const UringCore* core, size_t i, int32_t offset, int32_t length) {
  const size_t size = core->arena ? core->arena->length : 0;
  if (offset < 0 || length < 0 || static_cast<size_t>(offset) > size ||
      static_cast<size_t>(length) > size - static_cast<size_t>(offset)) {
    ThrowRangeError(env, "The arena range of " + RecordWhere(i) + " must lie within its " + std::to_string(size) +
                             " bytes. Received offset " + std::to_string(offset) + ", length " +
                             std::to_string(length));
    return false;
  }
  return true;
}

bool CheckFd(Napi::Env env, size_t i, int32_t fd) {
  if (fd >= 0) return true;
  ThrowRangeError(env, "The fd of " + RecordWhere(i) + " must be >= 0. Received " + std::to_string(fd));
  return false;
}

bool CheckUserData(Napi::Env env, size_t i, int32_t high) {
  if (high >= 0 && high <= kMaxUserHigh) return true;
  ThrowRangeError(env, "The user data high word of " + RecordWhere(i) + " must be in [0, " +
                           std::to_string(kMaxUserHigh) + "]. Received " + std::to_string(high));
  return false;
}

// Pass 1: every staged record is checked before any becomes an SQE, so a bad
// one throws with nothing submitted.
}  // namespace

bool Validate(Napi::Env env, const UringCore* core, const int32_t* rec, size_t i) {
  const int32_t op = rec[0], fd = rec[1], a = rec[4], b = rec[5], c = rec[6];
  if (op < 0 || op >= kOpCount) {
    ThrowRangeError(env, "The op of " + RecordWhere(i) + " is unknown. Received " + std::to_string(op));
    return false;
  }
  if (!CheckUserData(env, i, rec[3])) return false;
  switch (op) {
    case kOpPollAdd:
      if (!CheckFd(env, i, fd)) return false;
      if ((a & ~(POLLIN | POLLOUT | POLLPRI | POLLERR | POLLHUP | POLLRDHUP)) != 0) {
        ThrowRangeError(env, "The events of " + RecordWhere(i) + " have bits that are not POLL* flags. Received " +
                                 std::to_string(a));
        return false;
      }
      return true;
    case kOpPollRemove:
      return CheckUserData(env, i, b);
    case kOpCancel:
      return c == 1 ? CheckFd(env, i, fd) : CheckUserData(env, i, b);
    case kOpAccept:
    case kOpClose:
    case kOpShutdown:
      return CheckFd(env, i, fd);
    case kOpConnect:
      if (!CheckFd(env, i, fd) || !CheckRange(env, core, i, a, b)) return false;
      if (b < static_cast<int32_t>(sizeof(sa_family_t)) || b > static_cast<int32_t>(sizeof(sockaddr_storage))) {
        ThrowRangeError(env, "The address length of " + RecordWhere(i) + " must be in [2, " +
                                 std::to_string(sizeof(sockaddr_storage)) + "]. Received " + std::to_string(b));
        return false;
      }
      return true;
    case kOpRecv:
    case kOpSend:
    case kOpRead:
    case kOpWrite:
      return CheckFd(env, i, fd) && CheckRange(env, core, i, a, b);
    case kOpRecvProvided:
      if (!CheckFd(env, i, fd)) return false;
      if (core->bufferCount == 0) {
        ThrowValueError(env, "The io_uring has no provided buffers (" + RecordWhere(i) + ")");
        return false;
      }
      if (b < 0) {
        ThrowRangeError(env, "The length of " + RecordWhere(i) + " must be >= 0. Received " + std::to_string(b));
        return false;
      }
      return true;
    case kOpTimeout:
      if (a < 0 || b < 0) {
        ThrowRangeError(env, "The timeout of " + RecordWhere(i) + " must be >= 0 ms, its count >= 0. Received " +
                                 std::to_string(a) + ", " + std::to_string(b));
        return false;
      }
      return true;
    case kOpRecycle:
      if (a < 0 || static_cast<unsigned>(a) >= core->bufferCount) {
        ThrowRangeError(env, "The buffer id of " + RecordWhere(i) + " must be in [0, " +
                                 std::to_string(core->bufferCount) + "). Received " + std::to_string(a));
        return false;
      }
      return true;
    default:
      return true;
  }
}

static uint64_t UserData(const int32_t* rec) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(rec[3])) << 32) | static_cast<uint32_t>(rec[2]);
}

static uint64_t TargetData(int32_t low, int32_t high) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(high)) << 32) | static_cast<uint32_t>(low);
}

// Pass 2: one record into one SQE (`sqe` is zeroed).
void Prepare(UringCore* core, const int32_t* rec, io_uring_sqe* sqe, unsigned slot) {
  const int32_t op = rec[0], fd = rec[1], a = rec[4], b = rec[5], c = rec[6], d = rec[7];
  uint8_t* arena = core->arena ? core->arena->Bytes() : nullptr;
  sqe->user_data = UserData(rec);
  sqe->fd = fd;
  switch (op) {
    case kOpNop:
      sqe->opcode = IORING_OP_NOP;
      sqe->fd = -1;
      break;
    case kOpPollAdd:
      sqe->opcode = IORING_OP_POLL_ADD;
      sqe->poll32_events = static_cast<uint32_t>(a);
      sqe->len = b == 1 ? IORING_POLL_ADD_MULTI : 0;
      break;
    case kOpPollRemove:
      sqe->opcode = IORING_OP_POLL_REMOVE;
      sqe->fd = -1;
      sqe->addr = TargetData(a, b);
      break;
    case kOpAccept:
      sqe->opcode = IORING_OP_ACCEPT;
      sqe->accept_flags = SOCK_NONBLOCK | SOCK_CLOEXEC;
      sqe->ioprio = b == 1 ? IORING_ACCEPT_MULTISHOT : 0;
      sqe->user_data |= kResultIsFd;
      break;
    case kOpConnect:
      sqe->opcode = IORING_OP_CONNECT;
      sqe->addr = reinterpret_cast<uint64_t>(arena + a);
      sqe->off = static_cast<uint64_t>(b);
      break;
    case kOpRecv:
    case kOpSend:
      sqe->opcode = op == kOpRecv ? IORING_OP_RECV : IORING_OP_SEND;
      sqe->addr = reinterpret_cast<uint64_t>(arena + a);
      sqe->len = static_cast<uint32_t>(b);
      sqe->msg_flags = static_cast<uint32_t>(c) | (op == kOpSend ? MSG_NOSIGNAL : 0);
      break;
    case kOpRecvProvided:
      sqe->opcode = IORING_OP_RECV;
      sqe->flags = IOSQE_BUFFER_SELECT;
      sqe->buf_group = kBufferGroup;
      sqe->len = b == 0 || static_cast<unsigned>(b) > core->bufferSize ? 0 : static_cast<uint32_t>(b);
      sqe->msg_flags = static_cast<uint32_t>(c);
      if (d == 1) {
        // A multishot receive takes whole buffers: the kernel refuses a length.
        sqe->ioprio = IORING_RECV_MULTISHOT;
        sqe->len = 0;
      }
      break;
    case kOpRead:
    case kOpWrite:
      sqe->opcode = op == kOpRead ? IORING_OP_READ : IORING_OP_WRITE;
      sqe->addr = reinterpret_cast<uint64_t>(arena + a);
      sqe->len = static_cast<uint32_t>(b);
      sqe->off = c == -1 && d == -1 ? static_cast<uint64_t>(-1) : TargetData(c, d);
      break;
    case kOpClose:
      sqe->opcode = IORING_OP_CLOSE;
      break;
    case kOpShutdown:
      sqe->opcode = IORING_OP_SHUTDOWN;
      sqe->len = static_cast<uint32_t>(a);
      break;
    case kOpTimeout: {
      __kernel_timespec& ts = core->timespecs[slot];
      ts.tv_sec = a / 1000;
      ts.tv_nsec = static_cast<long long>(a % 1000) * 1000000;
      sqe->opcode = IORING_OP_TIMEOUT;
      sqe->fd = -1;
      sqe->addr = reinterpret_cast<uint64_t>(&ts);
      sqe->len = 1;
      sqe->off = static_cast<uint64_t>(b);
      break;
    }
    case kOpCancel:
      sqe->opcode = IORING_OP_ASYNC_CANCEL;
      if (c == 1) {
        sqe->cancel_flags = IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL;
      } else {
        sqe->fd = -1;
        sqe->addr = TargetData(a, b);
      }
      break;
    default:
      break;
  }
}

// submit(count, wait, timeoutMs, collect = true) -> completions written to
// `cq`. Turns the first `count` staged records into SQEs, submits them, and,
// when `wait` is true and no completion is ready, waits up to timeoutMs (-1:

}  // namespace uring
}  // namespace iomux
