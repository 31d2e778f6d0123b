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
#include <errno.h>
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "args.h"
#include "bound.h"
#include "errors.h"
#include "modules.h"
#include "sockaddr.h"
#include "uring_core.h"

namespace iomux {

namespace {

using namespace uring;  // NOLINT: this file is the ring's N-API face

bool CheckOpen(Napi::Env env, const UringCore* core, const char* syscall) {
  if (core->Open()) return true;
  ThrowErrno(env, EBADF, syscall, "(the io_uring is closed)");
  return false;
}

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
