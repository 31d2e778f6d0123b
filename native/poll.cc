// Poll: a pollfd set kept in native memory and changed incrementally, like
// Python's select.poll(). ctl() touches one entry (O(1) through an fd ->
// index table); wait() hands the whole array to poll(2) with no per-call
// conversion and writes (fd, revents) pairs to the core's own Int32Array.
// Methods are bound to the core (bound.h): no napi_unwrap per call.
#include <poll.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "args.h"
#include "bound.h"
#include "deadline.h"
#include "errors.h"
#include "modules.h"
#include "syscount.h"

namespace iomux {

namespace {

constexpr int32_t kPollEventMask = POLLIN | POLLPRI | POLLOUT | POLLERR | POLLHUP | POLLNVAL | POLLRDNORM |
                                   POLLRDBAND | POLLWRNORM | POLLWRBAND | POLLMSG | POLLRDHUP;
enum PollOp { kRegister = 1, kModify = 2, kUnregister = 3 };

struct PollCore {
  std::vector<pollfd> fds;
  std::unordered_map<int, size_t> index;
  std::shared_ptr<Int32Memory> events = std::make_shared<Int32Memory>(64);
  bool closed = false;
};

bool CheckOpen(Napi::Env env, const PollCore* core, const char* syscall) {
  if (!core->closed) return true;
  ThrowErrno(env, EBADF, syscall, "(the poll object is closed)");
  return false;
}

// ctl(op, fd, events): 1 registers (or changes a registered fd, as Python's
// poll.register does), 2 modifies, 3 unregisters (ENOENT when unknown).
// Returns the core's new result array when a register outgrew the old one,
// else undefined.
napi_value Ctl(napi_env e, napi_callback_info info) {
  Napi::Env env(e);
  auto b = Unbind<PollCore>(e, info);
  PollCore* core = b.core;
  int64_t op = 0;
  int fd = -1;
  int64_t events = 0;
  if (!ValueInt(env, Napi::Value(env, b.argv[0]), "op", kRegister, kUnregister, &op)) return nullptr;
  const char* syscall = op == kRegister ? "poll.register" : op == kModify ? "poll.modify" : "poll.unregister";
  if (!CheckOpen(env, core, syscall)) return nullptr;
  if (!ValueFd(env, Napi::Value(env, b.argv[1]), "fd", &fd)) return nullptr;
  if (op != kUnregister) {
    if (!ValueInt(env, Napi::Value(env, b.argv[2]), "events", 0, 0xffff, &events)) return nullptr;
    if ((events & ~kPollEventMask) != 0) {
      ThrowRangeError(env, "The \"events\" argument has bits that are not POLL* flags. Received " +
                               std::to_string(events));
      return nullptr;
    }
  }
  auto it = core->index.find(fd);
  if (it == core->index.end() && op != kRegister) {
    ThrowErrno(env, ENOENT, syscall, "(fd " + std::to_string(fd) + " is not registered)");
    return nullptr;
  }
  if (op == kUnregister) {
    const size_t hole = it->second;
    core->index.erase(it);
    if (hole != core->fds.size() - 1) {
      core->fds[hole] = core->fds.back();
      core->index[core->fds[hole].fd] = hole;
    }
    core->fds.pop_back();
    return nullptr;
  }
  if (it != core->index.end()) {
    core->fds[it->second].events = static_cast<short>(events);
    return nullptr;
  }
  // Grow the result array first, so a failure leaves the set unchanged. The
  // new array is returned, not stored on `this`: the functions are bound to
  // the core, not to an object, so the receiver of a call can be anything.
  napi_value grownArray = nullptr;
  if (core->events->length < (core->fds.size() + 1) * 2) {
    auto grown = std::make_shared<Int32Memory>(core->events->length * 2);
    Napi::Value array = NewSharedInt32Array(env, grown);
    if (env.IsExceptionPending()) return nullptr;
    grownArray = array;
    core->events = grown;
  }
  core->index.emplace(fd, core->fds.size());
  core->fds.push_back(pollfd{fd, static_cast<short>(events), 0});
  return grownArray;
}

int WaitOn(PollCore* core, int timeoutMs) {
  return RetryOnEintr(timeoutMs, [&](int ms) { return IOMUX_SYSCALL(::poll(core->fds.data(), core->fds.size(), ms)); });
}

// Writes the ready (fd, revents) pairs; `capacity` pairs at most.
int Collect(const PollCore* core, int ready, int32_t* out, size_t capacity) {
  int written = 0;
  for (size_t i = 0; written < ready && static_cast<size_t>(written) < capacity && i < core->fds.size(); i++) {
    if (core->fds[i].revents != 0) {
      out[written * 2] = core->fds[i].fd;
      out[written * 2 + 1] = static_cast<uint16_t>(core->fds[i].revents);
      written++;
    }
  }
  return written;
}

// wait(timeoutMs) -> n pairs (fd, revents) written to `events`.
napi_value Wait(napi_env e, napi_callback_info info) {
  Napi::Env env(e);
  auto b = Unbind<PollCore>(e, info);
  int timeoutMs = 0;
  if (!CheckOpen(env, b.core, "poll")) return nullptr;
  if (!ValueTimeoutMs(env, Napi::Value(env, b.argv[0]), &timeoutMs)) return nullptr;
  int rc = WaitOn(b.core, timeoutMs);
  if (rc < 0) {
    ThrowErrno(env, errno, "poll");
    return nullptr;
  }
  return Napi::Number::New(env, Collect(b.core, rc, b.core->events->data.get(), b.core->events->length / 2));
}

// waitInto(timeoutMs, out) -> n pairs written to the caller's Int32Array,
// which must hold 2 * size entries so that no ready fd goes unreported.
napi_value WaitInto(napi_env e, napi_callback_info info) {
  Napi::Env env(e);
  auto b = Unbind<PollCore>(e, info);
  int timeoutMs = 0;
  Int32View out{};
  if (!CheckOpen(env, b.core, "poll")) return nullptr;
  if (!ValueTimeoutMs(env, Napi::Value(env, b.argv[0]), &timeoutMs)) return nullptr;
  if (!ValueInt32Array(env, Napi::Value(env, b.argv[1]), "out", &out)) return nullptr;
  if (out.length < b.core->fds.size() * 2) {
    ThrowRangeError(env, "The \"out\" array must hold at least " + std::to_string(b.core->fds.size() * 2) +
                             " entries. Received " + std::to_string(out.length));
    return nullptr;
  }
  int rc = WaitOn(b.core, timeoutMs);
  if (rc < 0) {
    ThrowErrno(env, errno, "poll");
    return nullptr;
  }
  return Napi::Number::New(env, Collect(b.core, rc, out.data, out.length / 2));
}

napi_value Close(napi_env e, napi_callback_info info) {
  auto b = Unbind<PollCore>(e, info);
  b.core->closed = true;
  std::vector<pollfd>().swap(b.core->fds);
  std::unordered_map<int, size_t>().swap(b.core->index);
  return nullptr;
}

napi_value Size(napi_env e, napi_callback_info info) {
  auto b = Unbind<PollCore>(e, info);
  return Napi::Number::New(Napi::Env(e), static_cast<double>(b.core->fds.size()));
}

napi_value Closed(napi_env e, napi_callback_info info) {
  auto b = Unbind<PollCore>(e, info);
  return Napi::Boolean::New(Napi::Env(e), b.core->closed);
}

// createPoll() -> { ctl, wait, waitInto, close, size, closed, events }
Napi::Value CreatePoll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto core = std::make_shared<PollCore>();
  Napi::Object obj = Napi::Object::New(env);
  BindFunction(env, obj, "ctl", Ctl, core);
  BindFunction(env, obj, "wait", Wait, core);
  BindFunction(env, obj, "waitInto", WaitInto, core);
  BindFunction(env, obj, "close", Close, core);
  BindFunction(env, obj, "size", Size, core);
  BindFunction(env, obj, "closed", Closed, core);
  obj.Set("events", NewSharedInt32Array(env, core->events));
  return obj;
}

}  // namespace

void InitPoll(Napi::Env env, Napi::Object exports) {
  exports.Set("createPoll", Napi::Function::New(env, CreatePoll, "createPoll"));
}

}  // namespace iomux
