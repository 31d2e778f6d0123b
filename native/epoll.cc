// Epoll: one epoll instance per object (never a process-global one). Its
// methods are functions bound to a shared core (bound.h): no napi_unwrap per
// call. wait() lets the kernel write struct epoll_event records straight into
// the core's own Int32Array, `events`: no copy, no allocation and no
// typed-array lookup between epoll_wait(2) and JavaScript.
#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <memory>
#include <string>

#include "args.h"
#include "bound.h"
#include "deadline.h"
#include "errors.h"
#include "modules.h"
#include "unique_fd.h"
#include "syscount.h"

namespace iomux {

namespace {

constexpr uint32_t kEpollEventMask = EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLRDNORM | EPOLLRDBAND |
                                     EPOLLWRNORM | EPOLLWRBAND | EPOLLMSG | EPOLLRDHUP | EPOLLEXCLUSIVE |
                                     EPOLLWAKEUP | EPOLLONESHOT | EPOLLET;
constexpr size_t kEventInts = sizeof(struct epoll_event) / sizeof(int32_t);
static_assert(sizeof(struct epoll_event) % sizeof(int32_t) == 0, "epoll_event must be a whole number of int32s");
constexpr int kMaxCapacity = 1 << 20;

struct EpollCore {
  UniqueFd fd;
  std::shared_ptr<Int32Memory> events;
  int capacity = 0;  // records in `events`
};

bool CheckOpen(Napi::Env env, const EpollCore* core, const char* syscall) {
  if (core->fd.Valid()) return true;
  ThrowErrno(env, EBADF, syscall, "(the epoll object is closed)");
  return false;
}

napi_value Fileno(napi_env e, napi_callback_info info) {
  Napi::Env env(e);
  auto b = Unbind<EpollCore>(e, info);
  if (!CheckOpen(env, b.core, "epoll.fileno")) return nullptr;
  return Napi::Number::New(env, b.core->fd.Get());
}

// ctl(op, fd, events, quiet?, tag?) -> 0: op is EPOLL_CTL_ADD, EPOLL_CTL_MOD or
// EPOLL_CTL_DEL; with quiet, a kernel error is returned as its errno. The
// event's data is the fd in its low 32 bits and the int32 tag in its high
// ones: a selector tags each registration, and so tells an event of a file
// closed since (its registration outlives the fd when the file was dup'ed)
// from one of the file that has the fd number now.
napi_value Ctl(napi_env e, napi_callback_info info) {
  Napi::Env env(e);
  auto b = Unbind<EpollCore>(e, info);
  int64_t op = 0;
  int fd = -1;
  int64_t events = 0;
  int64_t tag = 0;
  if (!CheckOpen(env, b.core, "epoll_ctl")) return nullptr;
  if (!ValueInt(env, Napi::Value(env, b.argv[0]), "op", EPOLL_CTL_ADD, EPOLL_CTL_MOD, &op)) return nullptr;
  if (!ValueFd(env, Napi::Value(env, b.argv[1]), "fd", &fd)) return nullptr;
  if (!Napi::Value(env, b.argv[4]).IsUndefined() &&
      !ValueInt(env, Napi::Value(env, b.argv[4]), "tag", INT32_MIN, INT32_MAX, &tag)) {
    return nullptr;
  }
  if (op != EPOLL_CTL_DEL) {
    if (!ValueInt(env, Napi::Value(env, b.argv[2]), "events", 0, UINT32_MAX, &events)) return nullptr;
    if ((static_cast<uint32_t>(events) & ~kEpollEventMask) != 0) {
      ThrowRangeError(env, "The \"events\" argument has bits that are not EPOLL* flags. Received " +
                               std::to_string(events));
      return nullptr;
    }
  }
  struct epoll_event ev {};
  ev.events = static_cast<uint32_t>(events);
  ev.data.u64 = (static_cast<uint64_t>(static_cast<uint32_t>(tag)) << 32) | static_cast<uint32_t>(fd);
  if (IOMUX_SYSCALL(::epoll_ctl(b.core->fd.Get(), static_cast<int>(op), fd, &ev)) < 0) {
    // quiet: report the errno instead of throwing (an event loop removing an
    // fd that was closed gets EBADF, and an exception costs more than the call).
    if (Napi::Value(env, b.argv[3]).ToBoolean().Value()) return Napi::Number::New(env, errno);
    ThrowErrno(env, errno, "epoll_ctl", "(fd " + std::to_string(fd) + ")");
    return nullptr;
  }
  return Napi::Number::New(env, 0);
}

int WaitOn(EpollCore* core, int timeoutMs, struct epoll_event* events, int maxEvents) {
  return RetryOnEintr(timeoutMs, [&](int ms) { return IOMUX_SYSCALL(::epoll_wait(core->fd.Get(), events, maxEvents, ms)); });
}

// wait(timeoutMs) -> n records written to `events`.
napi_value Wait(napi_env e, napi_callback_info info) {
  Napi::Env env(e);
  auto b = Unbind<EpollCore>(e, info);
  int timeoutMs = 0;
  if (!CheckOpen(env, b.core, "epoll_wait")) return nullptr;
  if (!ValueTimeoutMs(env, Napi::Value(env, b.argv[0]), &timeoutMs)) return nullptr;
  auto* events = reinterpret_cast<struct epoll_event*>(b.core->events->data.get());
  int rc = WaitOn(b.core, timeoutMs, events, b.core->capacity);
  if (rc < 0) {
    ThrowErrno(env, errno, "epoll_wait");
    return nullptr;
  }
  return Napi::Number::New(env, rc);
}

// waitInto(timeoutMs, out) -> n records written to the caller's Int32Array.
napi_value WaitInto(napi_env e, napi_callback_info info) {
  Napi::Env env(e);
  auto b = Unbind<EpollCore>(e, info);
  int timeoutMs = 0;
  Int32View out{};
  if (!CheckOpen(env, b.core, "epoll_wait")) return nullptr;
  if (!ValueTimeoutMs(env, Napi::Value(env, b.argv[0]), &timeoutMs)) return nullptr;
  if (!ValueInt32Array(env, Napi::Value(env, b.argv[1]), "out", &out)) return nullptr;
  const size_t records = out.length / kEventInts;
  if (records == 0) {
    ThrowRangeError(env, "The \"out\" array must hold at least one epoll event (" + std::to_string(kEventInts) +
                             " entries). Received " + std::to_string(out.length));
    return nullptr;
  }
  const int maxEvents = records > static_cast<size_t>(kMaxCapacity) ? kMaxCapacity : static_cast<int>(records);
  int rc = WaitOn(b.core, timeoutMs, reinterpret_cast<struct epoll_event*>(out.data), maxEvents);
  if (rc < 0) {
    ThrowErrno(env, errno, "epoll_wait");
    return nullptr;
  }
  return Napi::Number::New(env, rc);
}

// renew(): the same fd number, a new and empty epoll instance. The only way
// to drop a registration no fd can name any more (its file was closed here
// but lives on as a dup elsewhere); the caller registers again what it
// watches. A watcher of the fd number (libuv) must stop before and start after.
napi_value Renew(napi_env e, napi_callback_info info) {
  Napi::Env env(e);
  auto b = Unbind<EpollCore>(e, info);
  if (!CheckOpen(env, b.core, "epoll_create1")) return nullptr;
  UniqueFd fresh(::epoll_create1(EPOLL_CLOEXEC));
  if (!fresh.Valid()) {
    ThrowErrno(env, errno, "epoll_create1");
    return nullptr;
  }
  // dup3 closes the old instance and puts the new one at its number in one step.
  if (IOMUX_SYSCALL(::dup3(fresh.Get(), b.core->fd.Get(), O_CLOEXEC)) < 0) {
    ThrowErrno(env, errno, "dup3");
    return nullptr;
  }
  return nullptr;
}

napi_value Close(napi_env e, napi_callback_info info) {
  Napi::Env env(e);
  auto b = Unbind<EpollCore>(e, info);
  if (b.core->fd.Valid() && b.core->fd.Reset() < 0 && errno != EINTR) ThrowErrno(env, errno, "close");
  // The result array (12 KiB by default) goes with the fd, not with the GC.
  napi_value events;
  if (!env.IsExceptionPending() && napi_get_named_property(e, b.self, "events", &events) == napi_ok) {
    ReleaseSharedInt32Array(e, events, b.core->events.get());
  }
  return nullptr;
}

napi_value Closed(napi_env e, napi_callback_info info) {
  auto b = Unbind<EpollCore>(e, info);
  return Napi::Boolean::New(Napi::Env(e), !b.core->fd.Valid());
}

// createEpoll(capacity) -> { fileno, ctl, wait, waitInto, renew, close, closed, events }
Napi::Value CreateEpoll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t capacity = 0;
  if (!ArgInt32(info, 0, "capacity", 1, kMaxCapacity, &capacity)) return env.Undefined();
  int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) {
    ThrowErrno(env, errno, "epoll_create1");
    return env.Undefined();
  }
  auto core = std::make_shared<EpollCore>();
  core->fd.Reset(fd);
  core->capacity = capacity;
  core->events = std::make_shared<Int32Memory>(static_cast<size_t>(capacity) * kEventInts);
  Napi::Object obj = Napi::Object::New(env);
  BindFunction(env, obj, "fileno", Fileno, core);
  BindFunction(env, obj, "ctl", Ctl, core);
  BindFunction(env, obj, "wait", Wait, core);
  BindFunction(env, obj, "waitInto", WaitInto, core);
  BindFunction(env, obj, "renew", Renew, core);
  BindFunction(env, obj, "close", Close, core);
  BindFunction(env, obj, "closed", Closed, core);
  obj.Set("events", NewSharedInt32Array(env, core->events));
  return obj;
}

}  // namespace

void InitEpoll(Napi::Env env, Napi::Object exports) {
  exports.Set("createEpoll", Napi::Function::New(env, CreateEpoll, "createEpoll"));
}

}  // namespace iomux
