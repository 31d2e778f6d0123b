// IoUring: one io_uring instance per object, on the raw syscalls and the
// kernel's uapi header (no liburing). The notes' fifth I/O model: the kernel
// does the copy and reports completion.
//
// JavaScript never hands the kernel an address. Everything the kernel reads
// or writes lives in memory this core owns:
//
//  * `arena`: bytes JavaScript stages sends, reads, writes and socket
//    addresses in, named by offset and length (checked here);
//  * `buffers`: the provided-buffer ring (group 0) that receives pick from,
//    named by buffer id;
//  * the kernel's own SQ/CQ rings.
//
// Operations are staged by JavaScript as records of 8 int32 in `sq` (see
// kOp* below) and turned into SQEs by one call, submit(count, wait,
// timeoutMs), which also copies the completions into `cq` (records of 4
// int32: user data low, user data high, res, flags). One crossing per batch,
// none per operation.
//
// Memory stays mapped while the kernel may use it: the core counts requests
// in flight (a completion without IORING_CQE_F_MORE ends one), and close()
// cancels them all and waits for their completions. Should the kernel not
// deliver them in time, the memory is left mapped for the life of the
// process rather than freed under a pending request.
#include <errno.h>
#include <linux/io_uring.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "bound.h"
#include "errors.h"
#include "modules.h"
#include "sockaddr.h"
#include "unique_fd.h"
#include "syscount.h"

namespace iomux {

namespace {

// Staged operation codes (sq record field 0).
enum : int32_t {
  kOpNop = 0,
  kOpPollAdd = 1,       // fd, a = POLL* events, b = 1 for multishot
  kOpPollRemove = 2,    // a, b = target user data (low, high)
  kOpAccept = 3,        // fd, b = 1 for multishot
  kOpConnect = 4,       // fd, a = arena offset of the address, b = its length
  kOpRecv = 5,          // fd, a = arena offset, b = length, c = MSG_* flags
  kOpRecvProvided = 6,  // fd, a = 0, b = max length (0: the buffer size), c = MSG_* flags, d = 1 multishot
  kOpSend = 7,          // fd, a = arena offset, b = length, c = MSG_* flags (MSG_NOSIGNAL always)
  kOpRead = 8,          // fd, a = arena offset, b = length, c/d = file offset low/high (-1/-1: current)
  kOpWrite = 9,         // as kOpRead
  kOpClose = 10,        // fd
  kOpTimeout = 11,      // a = milliseconds, b = completions that end it early (0: none)
  kOpCancel = 12,       // a, b = target user data; or c = 1: every request on fd
  kOpRecycle = 13,      // a = buffer id: back into the provided-buffer ring (no SQE)
  kOpShutdown = 14,     // fd, a = SHUT_*
  kOpCount = 15,
};

constexpr size_t kSqInts = 8;
constexpr size_t kCqInts = 4;
// User data: JavaScript owns the low 62 bits (high word < 2^30); the core
// marks accepts (their result is an fd it must close if nobody takes it) and
// its own requests.
constexpr uint64_t kResultIsFd = 1ULL << 63;
constexpr uint64_t kInternal = 1ULL << 62;
constexpr int32_t kMaxUserHigh = (1 << 30) - 1;
constexpr uint16_t kBufferGroup = 0;
constexpr int kMaxEntries = 32768;
constexpr int64_t kMaxArena = int64_t{1} << 30;
constexpr int kCloseWaitMs = 2000;

int SysSetup(unsigned entries, io_uring_params* params) {
  return static_cast<int>(IOMUX_SYSCALL(::syscall(__NR_io_uring_setup, entries, params)));
}
int SysEnter(int fd, unsigned toSubmit, unsigned minComplete, unsigned flags, const void* arg, size_t size) {
  return static_cast<int>(IOMUX_SYSCALL(::syscall(__NR_io_uring_enter, fd, toSubmit, minComplete, flags, arg, size)));
}
int SysRegister(int fd, unsigned op, const void* arg, unsigned nr) {
  return static_cast<int>(IOMUX_SYSCALL(::syscall(__NR_io_uring_register, fd, op, arg, nr)));
}

// An anonymous or ring mapping; unmapped when destroyed unless leaked (the
// kernel may still write into it).
struct Mapping {
  void* addr = MAP_FAILED;
  size_t length = 0;
  bool leaked = false;
  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() { Unmap(); }
  // Unmaps now (unless leaked); the object stays, empty.
  void Unmap() {
    if (addr != MAP_FAILED && !leaked) ::munmap(addr, length);
    addr = MAP_FAILED;
    length = 0;
  }
  bool Map(size_t len, int prot, int flags, int fd, off_t offset) {
    length = len;
    addr = ::mmap(nullptr, len, prot, flags, fd, offset);
    return addr != MAP_FAILED;
  }
  uint8_t* Bytes() const { return static_cast<uint8_t*>(addr); }
};

size_t PageRound(size_t n) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return (n + page - 1) / page * page;
}

struct UringCore {
  UniqueFd fd;
  unsigned features = 0;
  bool deferTaskrun = false;
  // Rings.
  Mapping sqRing, cqRing, sqes;
  unsigned* sqHead = nullptr;
  unsigned* sqTail = nullptr;
  unsigned sqMask = 0, sqEntries = 0;
  unsigned* sqArray = nullptr;
  unsigned* cqHead = nullptr;
  unsigned* cqTail = nullptr;
  unsigned cqMask = 0, cqEntries = 0;
  io_uring_cqe* cqes = nullptr;
  io_uring_sqe* sqeArray = nullptr;
  unsigned localTail = 0;   // SQEs written, not all published
  unsigned unsubmitted = 0;  // published, not yet taken by the kernel
  // Per SQ slot: the timespec a timeout SQE in it points at.
  std::vector<__kernel_timespec> timespecs;
  // Memory the kernel may use (shared with the ArrayBuffers over it).
  std::shared_ptr<Mapping> arena;
  std::shared_ptr<Mapping> bufferRing;
  std::shared_ptr<Mapping> buffers;
  unsigned bufferCount = 0, bufferSize = 0;
  // The provided-buffer ring, as an array of io_uring_buf: its tail is the
  // first entry's `resv` (io_uring_buf_ring's layout). Not through
  // io_uring_buf_ring itself: in C++ its flexible array sits 8 bytes late
  // (__DECLARE_FLEX_ARRAY's empty struct takes a byte there).
  io_uring_buf* bufRing = nullptr;
  uint16_t bufTail = 0;
  std::vector<uint8_t> bufferInRing;
  // Staging and results, read and written by JavaScript.
  std::shared_ptr<Int32Memory> sq;
  std::shared_ptr<Int32Memory> cq;
  // Requests the kernel holds (each ends with a completion without F_MORE).
  int64_t inflight = 0;
  // io_uring_enter calls on this ring, for stats(); each also counts in the
  // addon's syscallCount() (SysEnter goes through IOMUX_SYSCALL).
  int64_t syscalls = 0;

  UringCore() = default;
  UringCore(const UringCore&) = delete;
  UringCore& operator=(const UringCore&) = delete;
  ~UringCore() { Shutdown(); }

  bool Open() const { return fd.Valid(); }

  io_uring_sqe* NextSqe() {
    if (localTail - __atomic_load_n(sqHead, __ATOMIC_ACQUIRE) >= sqEntries) return nullptr;
    io_uring_sqe* sqe = &sqeArray[localTail & sqMask];
    std::memset(sqe, 0, sizeof(*sqe));
    sqArray[localTail & sqMask] = localTail & sqMask;
    localTail++;
    return sqe;
  }

  void Publish() {
    const unsigned published = __atomic_load_n(sqTail, __ATOMIC_RELAXED);
    unsubmitted += localTail - published;
    __atomic_store_n(sqTail, localTail, __ATOMIC_RELEASE);
  }

  // One io_uring_enter. Returns the syscall's result (-1 with errno).
  int Enter(unsigned minComplete, unsigned flags, int timeoutMs) {
    syscalls++;
    const unsigned toSubmit = unsubmitted;
    int rc;
    if (timeoutMs >= 0 && (flags & IORING_ENTER_GETEVENTS) != 0 && minComplete > 0) {
      __kernel_timespec ts{};
      ts.tv_sec = timeoutMs / 1000;
      ts.tv_nsec = static_cast<long long>(timeoutMs % 1000) * 1000000;
      io_uring_getevents_arg arg{};
      arg.sigmask = 0;
      arg.sigmask_sz = 8;  // the kernel's sigset_t (_NSIG / 8 on x86-64)
      arg.ts = reinterpret_cast<uint64_t>(&ts);
      rc = SysEnter(fd.Get(), toSubmit, minComplete, flags | IORING_ENTER_EXT_ARG, &arg, sizeof(arg));
    } else {
      rc = SysEnter(fd.Get(), toSubmit, minComplete, flags, nullptr, 0);
    }
    if (rc > 0) {
      const unsigned taken = static_cast<unsigned>(rc) > toSubmit ? toSubmit : static_cast<unsigned>(rc);
      unsubmitted -= taken;
      inflight += taken;
    }
    return rc;
  }

  unsigned Ready() const {
    return __atomic_load_n(cqTail, __ATOMIC_ACQUIRE) - __atomic_load_n(cqHead, __ATOMIC_RELAXED);
  }

  // Copies up to `max` completions to `out` (nullptr: drop them, closing the
  // fds of accepts nobody will take). Returns how many.
  unsigned Harvest(int32_t* out, unsigned max) {
    unsigned head = __atomic_load_n(cqHead, __ATOMIC_RELAXED);
    const unsigned tail = __atomic_load_n(cqTail, __ATOMIC_ACQUIRE);
    unsigned n = 0;
    while (head != tail && n < max) {
      const io_uring_cqe& cqe = cqes[head & cqMask];
      if ((cqe.flags & IORING_CQE_F_MORE) == 0) inflight--;
      if ((cqe.flags & IORING_CQE_F_BUFFER) != 0) {
        const unsigned bid = cqe.flags >> IORING_CQE_BUFFER_SHIFT;
        if (bid < bufferInRing.size()) bufferInRing[bid] = 0;
      }
      const uint64_t data = cqe.user_data;
      if (out == nullptr) {
        if ((data & kResultIsFd) != 0 && cqe.res >= 0) IOMUX_SYSCALL(::close(cqe.res));
        if ((cqe.flags & IORING_CQE_F_BUFFER) != 0) Recycle(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
      } else if ((data & kInternal) == 0) {
        int32_t* rec = out + static_cast<size_t>(n) * kCqInts;
        rec[0] = static_cast<int32_t>(static_cast<uint32_t>(data));
        rec[1] = static_cast<int32_t>(static_cast<uint32_t>((data >> 32) & 0x3fffffffU));
        rec[2] = cqe.res;
        rec[3] = static_cast<int32_t>(cqe.flags);
        n++;
      }
      head++;
    }
    __atomic_store_n(cqHead, head, __ATOMIC_RELEASE);
    PublishBuffers();
    return n;
  }

  bool Recycle(unsigned bid) {
    if (bid >= bufferCount || bufferInRing[bid] != 0) return false;
    io_uring_buf* buf = &bufRing[bufTail & (bufferCount - 1)];
    buf->addr = reinterpret_cast<uint64_t>(buffers->Bytes() + static_cast<size_t>(bid) * bufferSize);
    buf->len = bufferSize;
    buf->bid = static_cast<uint16_t>(bid);
    bufTail++;
    bufferInRing[bid] = 1;
    return true;
  }

  void PublishBuffers() {
    if (bufRing != nullptr) __atomic_store_n(&bufRing[0].resv, bufTail, __ATOMIC_RELEASE);
  }

  // Cancels every request, waits (bounded) for their completions, closes the
  // ring. Memory the kernel may still hold is leaked, never freed.
  void Shutdown() {
    if (!fd.Valid()) return;
    if (inflight > 0 || unsubmitted > 0) {
      io_uring_sqe* sqe = NextSqe();
      if (sqe != nullptr) {
        sqe->opcode = IORING_OP_ASYNC_CANCEL;
        sqe->fd = -1;
        sqe->cancel_flags = IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL;
        sqe->user_data = kInternal;
      }
      Publish();
      timespec start{};
      ::clock_gettime(CLOCK_MONOTONIC, &start);
      for (;;) {
        Harvest(nullptr, UINT_MAX);
        if (inflight <= 0 && unsubmitted == 0) break;
        timespec now{};
        ::clock_gettime(CLOCK_MONOTONIC, &now);
        const long long elapsed =
            (now.tv_sec - start.tv_sec) * 1000LL + (now.tv_nsec - start.tv_nsec) / 1000000LL;
        if (elapsed >= kCloseWaitMs) break;
        int rc = Enter(1, IORING_ENTER_GETEVENTS, static_cast<int>(kCloseWaitMs - elapsed));
        if (rc < 0 && errno != EINTR && errno != ETIME && errno != EAGAIN && errno != EBUSY) break;
      }
      Harvest(nullptr, UINT_MAX);
    }
    if (inflight > 0 || unsubmitted > 0) {
      // The kernel may still write into these: keep them for the process's life.
      if (arena) arena->leaked = true;
      if (buffers) buffers->leaked = true;
      if (bufferRing) bufferRing->leaked = true;
    }
    fd.Reset();
    // The rings are the kernel's to keep until it is done with them.
    sqRing.Unmap();
    cqRing.Unmap();
    sqes.Unmap();
    bufRing = nullptr;
  }

  bool Drained() const { return inflight <= 0 && unsubmitted == 0; }
};

bool CheckOpen(Napi::Env env, const UringCore* core, const char* syscall) {
  if (core->Open()) return true;
  ThrowErrno(env, EBADF, syscall, "(the io_uring is closed)");
  return false;
}

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

uint64_t UserData(const int32_t* rec) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(rec[3])) << 32) | static_cast<uint32_t>(rec[2]);
}

uint64_t TargetData(int32_t low, int32_t high) {
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
// no limit). With collect false it only submits, and returns 0.
napi_value Submit(napi_env e, napi_callback_info info) {
  Napi::Env env(e);
  auto b = Unbind<UringCore>(e, info);
  UringCore* core = b.core;
  int64_t count = 0;
  int timeoutMs = 0;
  if (!CheckOpen(env, core, "io_uring_enter")) return nullptr;
  const int64_t maxRecords = static_cast<int64_t>(core->sq->length / kSqInts);
  if (!ValueInt(env, Napi::Value(env, b.argv[0]), "count", 0, maxRecords, &count)) return nullptr;
  const bool wait = Napi::Value(env, b.argv[1]).ToBoolean().Value();
  if (!ValueTimeoutMs(env, Napi::Value(env, b.argv[2]), &timeoutMs)) return nullptr;
  const int32_t* staged = core->sq->data.get();
  for (int64_t i = 0; i < count; i++) {
    if (!Validate(env, core, staged + i * kSqInts, static_cast<size_t>(i))) return nullptr;
  }
  for (int64_t i = 0; i < count; i++) {
    const int32_t* rec = staged + i * kSqInts;
    if (rec[0] == kOpRecycle) {
      core->Recycle(static_cast<unsigned>(rec[4]));
      continue;
    }
    io_uring_sqe* sqe = core->NextSqe();
    if (sqe == nullptr) {
      // The SQ is full: hand the kernel what it holds, then go on.
      core->Publish();
      if (core->Enter(0, 0, 0) < 0 && errno != EAGAIN && errno != EBUSY && errno != EINTR) {
        ThrowErrno(env, errno, "io_uring_enter");
        return nullptr;
      }
      sqe = core->NextSqe();
      if (sqe == nullptr) {
        ThrowErrno(env, EBUSY, "io_uring_enter", "(the submission queue stays full)");
        return nullptr;
      }
    }
    Prepare(core, rec, sqe, (core->localTail - 1) & core->sqMask);
  }
  core->Publish();
  core->PublishBuffers();
  if (Napi::Value(env, b.argv[3]).IsBoolean() && !Napi::Value(env, b.argv[3]).As<Napi::Boolean>().Value()) {
    // Only hand the kernel the staged operations (the staging array was
    // full); the completions stay in the ring for the next call.
    // (With DEFER_TASKRUN, GETEVENTS also runs the task work that ends
    // cancelled requests, so the files they held are released now.)
    const unsigned flags = core->deferTaskrun ? IORING_ENTER_GETEVENTS : 0;
    if ((core->unsubmitted > 0 || core->deferTaskrun) && core->Enter(0, flags, 0) < 0 && errno != EAGAIN &&
        errno != EBUSY && errno != EINTR) {
      ThrowErrno(env, errno, "io_uring_enter");
      return nullptr;
    }
    return Napi::Number::New(env, 0);
  }
  // With DEFER_TASKRUN completions are only posted inside io_uring_enter
  // with GETEVENTS: so every call enters, waiting or not.
  timespec start{};
  if (timeoutMs > 0) ::clock_gettime(CLOCK_MONOTONIC, &start);
  int remaining = timeoutMs;
  for (;;) {
    const bool block = wait && core->Ready() == 0 && remaining != 0;
    if (!block && core->unsubmitted == 0 && !core->deferTaskrun) break;
    const int rc = core->Enter(block ? 1 : 0, IORING_ENTER_GETEVENTS, block ? remaining : 0);
    if (rc >= 0 || errno == ETIME) break;
    if (errno == EAGAIN || errno == EBUSY) break;  // completions first; the rest goes next time
    if (errno != EINTR) {
      ThrowErrno(env, errno, "io_uring_enter");
      return nullptr;
    }
    if (timeoutMs > 0) {
      timespec now{};
      ::clock_gettime(CLOCK_MONOTONIC, &now);
      const long long elapsed =
          (now.tv_sec - start.tv_sec) * 1000LL + (now.tv_nsec - start.tv_nsec) / 1000000LL;
      remaining = elapsed >= timeoutMs ? 0 : static_cast<int>(timeoutMs - elapsed);
    }
  }
  const unsigned n = core->Harvest(core->cq->data.get(), static_cast<unsigned>(core->cq->length / kCqInts));
  return Napi::Number::New(env, n);
}

// writeAddress(family, address, offset) -> the sockaddr's length, written to
// the arena at `offset` (for a staged connect).
napi_value WriteAddress(napi_env e, napi_callback_info info) {
  Napi::Env env(e);
  auto b = Unbind<UringCore>(e, info);
  int64_t family = 0, offset = 0;
  if (!CheckOpen(env, b.core, "connect")) return nullptr;
  if (!ValueInt(env, Napi::Value(env, b.argv[0]), "family", 0, 65535, &family)) return nullptr;
  const int64_t size = b.core->arena ? static_cast<int64_t>(b.core->arena->length) : 0;
  if (!ValueInt(env, Napi::Value(env, b.argv[2]), "offset", 0, size, &offset)) return nullptr;
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (!ParseSockAddr(env, static_cast<int>(family), Napi::Value(env, b.argv[1]), &addr, &len)) return nullptr;
  if (static_cast<int64_t>(len) > size - offset) {
    ThrowRangeError(env, "The address needs " + std::to_string(len) + " bytes of the arena from offset " +
                             std::to_string(offset) + ". Received an arena of " + std::to_string(size));
    return nullptr;
  }
  std::memcpy(b.core->arena->Bytes() + offset, &addr, len);
  return Napi::Number::New(env, static_cast<double>(len));
}

napi_value Fileno(napi_env e, napi_callback_info info) {
  Napi::Env env(e);
  auto b = Unbind<UringCore>(e, info);
  if (!CheckOpen(env, b.core, "io_uring.fileno")) return nullptr;
  return Napi::Number::New(env, b.core->fd.Get());
}

// stats() -> [requests in flight, io_uring_enter calls, SQEs not yet taken]
napi_value Stats(napi_env e, napi_callback_info info) {
  Napi::Env env(e);
  auto b = Unbind<UringCore>(e, info);
  Napi::Array out = Napi::Array::New(env, 3);
  out.Set(0u, Napi::Number::New(env, static_cast<double>(b.core->inflight)));
  out.Set(1u, Napi::Number::New(env, static_cast<double>(b.core->syscalls)));
  out.Set(2u, Napi::Number::New(env, static_cast<double>(b.core->unsubmitted)));
  return out;
}

// Detaches the ArrayBuffer under the Buffer `name` of `self` when it is a
// view of `mapping`'s bytes, so no JavaScript can reach them once unmapped.
bool DetachMappingBuffer(napi_env env, napi_value self, const char* name, const Mapping* mapping) {
  napi_value view;
  bool isTyped = false;
  void* data = nullptr;
  napi_value buffer;
  if (napi_get_named_property(env, self, name, &view) != napi_ok || napi_is_typedarray(env, view, &isTyped) != napi_ok ||
      !isTyped || napi_get_typedarray_info(env, view, nullptr, nullptr, &data, &buffer, nullptr) != napi_ok ||
      data != mapping->addr) {
    return false;
  }
  return napi_detach_arraybuffer(env, buffer) == napi_ok;
}

// close(): cancels what is in flight, waits for it, closes the ring, and
// frees its memory now (detaching `arena`, `buffers`, `sq` and `cq`) rather
// than when the collector gets to them: a program opening and closing many
// rings would otherwise run out of mappings (vm.max_map_count).
napi_value Close(napi_env e, napi_callback_info info) {
  Napi::Env env(e);
  auto b = Unbind<UringCore>(e, info);
  UringCore* core = b.core;
  if (!core->Open()) return nullptr;
  core->Shutdown();
  if (!core->Drained()) return nullptr;  // the kernel may still use the memory
  if (core->arena && DetachMappingBuffer(e, b.self, "arena", core->arena.get())) core->arena->Unmap();
  if (core->buffers && DetachMappingBuffer(e, b.self, "buffers", core->buffers.get())) core->buffers->Unmap();
  if (core->bufferRing) core->bufferRing->Unmap();
  napi_value array;
  if (!env.IsExceptionPending() && napi_get_named_property(e, b.self, "sq", &array) == napi_ok) {
    ReleaseSharedInt32Array(e, array, core->sq.get());
  }
  if (!env.IsExceptionPending() && napi_get_named_property(e, b.self, "cq", &array) == napi_ok) {
    ReleaseSharedInt32Array(e, array, core->cq.get());
  }
  return nullptr;
}

napi_value Closed(napi_env e, napi_callback_info info) {
  auto b = Unbind<UringCore>(e, info);
  return Napi::Boolean::New(Napi::Env(e), !b.core->Open());
}

// A Buffer over a mapping the core owns; the mapping lives while either does.
Napi::Value MappingBuffer(Napi::Env env, const std::shared_ptr<Mapping>& mapping, size_t length) {
  auto* hold = new std::shared_ptr<Mapping>(mapping);
  napi_value buffer;
  if (napi_create_external_buffer(
          env, length, mapping->Bytes(),
          [](napi_env, void*, void* hint) { delete static_cast<std::shared_ptr<Mapping>*>(hint); }, hold,
          &buffer) != napi_ok) {
    delete hold;
    if (!env.IsExceptionPending()) Napi::Error::New(env, "iomux: could not create a Buffer").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  return Napi::Value(env, buffer);
}

bool MapRings(UringCore* core, const io_uring_params& p) {
  const size_t sqSize = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  const size_t cqSize = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
  const bool single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
  const size_t ringSize = single ? (sqSize > cqSize ? sqSize : cqSize) : sqSize;
  if (!core->sqRing.Map(ringSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, core->fd.Get(),
                        IORING_OFF_SQ_RING)) {
    return false;
  }
  uint8_t* cqBase = core->sqRing.Bytes();
  if (!single) {
    if (!core->cqRing.Map(cqSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, core->fd.Get(),
                          IORING_OFF_CQ_RING)) {
      return false;
    }
    cqBase = core->cqRing.Bytes();
  }
  if (!core->sqes.Map(p.sq_entries * sizeof(io_uring_sqe), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                      core->fd.Get(), IORING_OFF_SQES)) {
    return false;
  }
  uint8_t* sq = core->sqRing.Bytes();
  core->sqHead = reinterpret_cast<unsigned*>(sq + p.sq_off.head);
  core->sqTail = reinterpret_cast<unsigned*>(sq + p.sq_off.tail);
  core->sqMask = *reinterpret_cast<unsigned*>(sq + p.sq_off.ring_mask);
  core->sqEntries = *reinterpret_cast<unsigned*>(sq + p.sq_off.ring_entries);
  core->sqArray = reinterpret_cast<unsigned*>(sq + p.sq_off.array);
  core->cqHead = reinterpret_cast<unsigned*>(cqBase + p.cq_off.head);
  core->cqTail = reinterpret_cast<unsigned*>(cqBase + p.cq_off.tail);
  core->cqMask = *reinterpret_cast<unsigned*>(cqBase + p.cq_off.ring_mask);
  core->cqEntries = *reinterpret_cast<unsigned*>(cqBase + p.cq_off.ring_entries);
  core->cqes = reinterpret_cast<io_uring_cqe*>(cqBase + p.cq_off.cqes);
  core->sqeArray = static_cast<io_uring_sqe*>(core->sqes.addr);
  core->localTail = __atomic_load_n(core->sqTail, __ATOMIC_RELAXED);
  return true;
}

bool SetUpBuffers(UringCore* core, unsigned count, unsigned size) {
  core->bufferRing = std::make_shared<Mapping>();
  core->buffers = std::make_shared<Mapping>();
  if (!core->bufferRing->Map(PageRound(count * sizeof(io_uring_buf)), PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ||
      !core->buffers->Map(PageRound(static_cast<size_t>(count) * size), PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) {
    return false;
  }
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(core->bufferRing->addr);
  reg.ring_entries = count;
  reg.bgid = kBufferGroup;
  if (SysRegister(core->fd.Get(), IORING_REGISTER_PBUF_RING, &reg, 1) < 0) return false;
  core->bufRing = static_cast<io_uring_buf*>(core->bufferRing->addr);
  static_assert(sizeof(io_uring_buf) == 16, "io_uring_buf is 16 bytes");
  core->bufferCount = count;
  core->bufferSize = size;
  core->bufferInRing.assign(count, 0);
  for (unsigned i = 0; i < count; i++) core->Recycle(i);
  core->PublishBuffers();
  return true;
}

bool IsPowerOfTwo(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

// createIoUring(entries, completions, arenaBytes, bufferCount, bufferSize, flags)
//   -> { submit, writeAddress, fileno, stats, close, closed, sq, cq, arena, buffers, features }
// flags: 1 = SINGLE_ISSUER | DEFER_TASKRUN.
Napi::Value CreateIoUring(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t entries = 0, completions = 0, arenaBytes = 0, bufferCount = 0, bufferSize = 0, flags = 0;
  if (!ArgInt(info, 0, "entries", 1, kMaxEntries, &entries) ||
      !ArgInt(info, 1, "completions", 0, int64_t{kMaxEntries} * 8, &completions) ||
      !ArgInt(info, 2, "arenaBytes", 0, kMaxArena, &arenaBytes) ||
      !ArgInt(info, 3, "bufferCount", 0, 32768, &bufferCount) ||
      !ArgInt(info, 4, "bufferSize", 0, 1 << 20, &bufferSize) || !ArgInt(info, 5, "flags", 0, 1, &flags)) {
    return env.Undefined();
  }
  if (bufferCount != 0 && (!IsPowerOfTwo(bufferCount) || bufferSize == 0)) {
    ThrowRangeError(env, "The \"bufferCount\" argument must be a power of two with a \"bufferSize\" > 0. Received " +
                             std::to_string(bufferCount) + " x " + std::to_string(bufferSize));
    return env.Undefined();
  }
  if (completions != 0 && completions < entries) {
    ThrowRangeError(env, "The \"completions\" argument must be >= entries (" + std::to_string(entries) +
                             "). Received " + std::to_string(completions));
    return env.Undefined();
  }
  io_uring_params params{};
  params.flags = IORING_SETUP_CLAMP;
  if (completions != 0) {
    params.flags |= IORING_SETUP_CQSIZE;
    params.cq_entries = static_cast<unsigned>(completions);
  }
  if (flags == 1) params.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  auto core = std::make_shared<UringCore>();
  const int fd = SysSetup(static_cast<unsigned>(entries), &params);
  if (fd < 0) {
    ThrowErrno(env, errno, "io_uring_setup");
    return env.Undefined();
  }
  core->fd.Reset(fd);
  core->features = params.features;
  core->deferTaskrun = flags == 1;
  if (!MapRings(core.get(), params)) {
    const int err = errno;
    core->fd.Reset();
    ThrowErrno(env, err, "mmap");
    return env.Undefined();
  }
  core->timespecs.assign(core->sqEntries, __kernel_timespec{});
  if (arenaBytes > 0) {
    core->arena = std::make_shared<Mapping>();
    if (!core->arena->Map(PageRound(static_cast<size_t>(arenaBytes)), PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) {
      const int err = errno;
      core->fd.Reset();
      ThrowErrno(env, err, "mmap");
      return env.Undefined();
    }
    core->arena->length = static_cast<size_t>(arenaBytes);
  }
  if (bufferCount > 0 &&
      !SetUpBuffers(core.get(), static_cast<unsigned>(bufferCount), static_cast<unsigned>(bufferSize))) {
    const int err = errno;
    core->fd.Reset();
    ThrowErrno(env, err, "io_uring_register");
    return env.Undefined();
  }
  core->sq = std::make_shared<Int32Memory>(static_cast<size_t>(core->sqEntries) * kSqInts);
  core->cq = std::make_shared<Int32Memory>(static_cast<size_t>(core->cqEntries) * kCqInts);
  Napi::Object obj = Napi::Object::New(env);
  BindFunction(env, obj, "submit", Submit, core);
  BindFunction(env, obj, "writeAddress", WriteAddress, core);
  BindFunction(env, obj, "fileno", Fileno, core);
  BindFunction(env, obj, "stats", Stats, core);
  BindFunction(env, obj, "close", Close, core);
  BindFunction(env, obj, "closed", Closed, core);
  obj.Set("sq", NewSharedInt32Array(env, core->sq));
  obj.Set("cq", NewSharedInt32Array(env, core->cq));
  obj.Set("arena", core->arena ? MappingBuffer(env, core->arena, core->arena->length) : Napi::Buffer<uint8_t>::New(env, 0));
  obj.Set("buffers", core->buffers ? MappingBuffer(env, core->buffers, static_cast<size_t>(bufferCount) * bufferSize)
                                   : Napi::Buffer<uint8_t>::New(env, 0));
  obj.Set("features", Napi::Number::New(env, core->features));
  obj.Set("sqEntries", Napi::Number::New(env, core->sqEntries));
  obj.Set("cqEntries", Napi::Number::New(env, core->cqEntries));
  return obj;
}

// uringAvailable() -> 0 when io_uring_setup works here, else its errno
// (ENOSYS: no io_uring in this kernel; EPERM: disabled by sysctl or seccomp).
Napi::Value UringAvailable(const Napi::CallbackInfo& info) {
  io_uring_params params{};
  const int fd = SysSetup(1, &params);
  if (fd < 0) return Napi::Number::New(info.Env(), errno);
  IOMUX_SYSCALL(::close(fd));
  return Napi::Number::New(info.Env(), 0);
}

}  // namespace

void InitUring(Napi::Env env, Napi::Object exports) {
  exports.Set("createIoUring", Napi::Function::New(env, CreateIoUring, "createIoUring"));
  exports.Set("uringAvailable", Napi::Function::New(env, UringAvailable, "uringAvailable"));
}

}  // namespace iomux
