// The io_uring core shared by uring.cc (its N-API face) and uring_ops.cc
// (staged records -> SQEs): the rings, the memory the kernel may use, and
// the bookkeeping of requests in flight. See uring.cc for the design.
#pragma once

#include <errno.h>
#include <linux/io_uring.h>
#include <napi.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "bound.h"
#include "syscount.h"
#include "unique_fd.h"

namespace iomux {
namespace uring {

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

inline int SysSetup(unsigned entries, io_uring_params* params) {
  return static_cast<int>(IOMUX_SYSCALL(::syscall(__NR_io_uring_setup, entries, params)));
}
inline int SysEnter(int fd, unsigned toSubmit, unsigned minComplete, unsigned flags, const void* arg, size_t size) {
  return static_cast<int>(IOMUX_SYSCALL(::syscall(__NR_io_uring_enter, fd, toSubmit, minComplete, flags, arg, size)));
}
inline int SysRegister(int fd, unsigned op, const void* arg, unsigned nr) {
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

inline size_t PageRound(size_t n) {
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

// Pass 1 of a submit: checks staged record `i` (throws and returns false
// for a bad one). Every record is checked before any becomes an SQE.
bool Validate(Napi::Env env, const UringCore* core, const int32_t* rec, size_t i);
// Pass 2: turns record `rec` into `sqe` (zeroed), in SQ slot `slot`.
void Prepare(UringCore* core, const int32_t* rec, io_uring_sqe* sqe, unsigned slot);

}  // namespace uring
}  // namespace iomux
