// Resolver: getaddrinfo(3) on worker threads, completion signalled through
// an eventfd that an event loop watches, so a lookup never blocks the loop
// (in owning mode Node's own dns.lookup cannot complete: its callback needs
// the libuv loop that the iomux loop is blocking).
//
// Threads touch only the core (shared_ptr), never N-API, so a lookup still
// running when its environment is torn down finishes harmlessly.
#include <netdb.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
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

constexpr int kMaxThreads = 4;

struct Job {
  double id;
  std::string host;
  std::string service;
  int family;
  int socktype;
  int flags;
};

struct Entry {
  int family;
  int socktype;
  int protocol;
  sockaddr_storage addr;
  socklen_t len;
};

struct Done {
  double id;
  int error;
  std::vector<Entry> entries;
  // errno when error is EAI_SYSTEM (getaddrinfo reports the cause there).
  int sysErrno = 0;
};

struct ResolverCore {
  UniqueFd efd;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Job> jobs;
  std::vector<Done> done;
  int threads = 0;
  int idle = 0;
  bool closing = false;
};

void Work(std::shared_ptr<ResolverCore> core) {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(core->mu);
      core->idle++;
      // An idle thread leaves after a while, so a resolver nobody closed
      // does not keep threads (and the core) alive forever.
      core->cv.wait_for(lock, std::chrono::seconds(5), [&] { return core->closing || !core->jobs.empty(); });
      core->idle--;
      if (core->jobs.empty()) {
        core->threads--;
        return;
      }
      job = std::move(core->jobs.front());
      core->jobs.pop_front();
    }
    addrinfo hints{};
    hints.ai_family = job.family;
    hints.ai_socktype = job.socktype;
    hints.ai_flags = job.flags;
    addrinfo* res = nullptr;
    Done result{job.id, ::getaddrinfo(job.host.empty() ? nullptr : job.host.c_str(),
                                      job.service.empty() ? nullptr : job.service.c_str(), &hints, &res),
                {}};
    if (result.error == EAI_SYSTEM) result.sysErrno = errno;
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
      Entry e{ai->ai_family, ai->ai_socktype, ai->ai_protocol, {}, ai->ai_addrlen};
      if (ai->ai_addrlen > sizeof(e.addr)) continue;
      std::memcpy(&e.addr, ai->ai_addr, ai->ai_addrlen);
      result.entries.push_back(e);
    }
    if (res != nullptr) ::freeaddrinfo(res);
    {
      std::lock_guard<std::mutex> lock(core->mu);
      if (core->closing) continue;
      core->done.push_back(std::move(result));
    }
    uint64_t one = 1;
    // The eventfd is only closed when the last reference to the core goes.
    if (::write(core->efd.Get(), &one, sizeof(one)) < 0) {
      // EAGAIN: the counter is already non-zero, the loop will wake anyway.
    }
  }
}

napi_value Fileno(napi_env e, napi_callback_info info) {
  auto b = Unbind<ResolverCore>(e, info);
  return Napi::Number::New(Napi::Env(e), b.core->efd.Get());
}

// submit(id, host, service, family, socktype, flags)
napi_value Submit(napi_env e, napi_callback_info info) {
  Napi::Env env(e);
  auto b = Unbind<ResolverCore>(e, info);
  int64_t id = 0;
  int64_t family = 0;
  int64_t socktype = 0;
  int64_t flags = 0;
  if (!ValueInt(env, Napi::Value(env, b.argv[0]), "id", 0, (1LL << 52), &id)) return nullptr;
  Napi::Value host(env, b.argv[1]);
  Napi::Value service(env, b.argv[2]);
  if (!host.IsString() || !service.IsString()) {
    ThrowTypeError(env, "The host and service must be strings");
    return nullptr;
  }
  if (!ValueInt(env, Napi::Value(env, b.argv[3]), "family", 0, 64, &family)) return nullptr;
  if (!ValueInt(env, Napi::Value(env, b.argv[4]), "socktype", 0, 16, &socktype)) return nullptr;
  if (!ValueInt(env, Napi::Value(env, b.argv[5]), "flags", 0, 0xffff, &flags)) return nullptr;
  std::string h = host.As<Napi::String>().Utf8Value();
  std::string s = service.As<Napi::String>().Utf8Value();
  if (h.find('\0') != std::string::npos || s.find('\0') != std::string::npos || h.size() > 1024) {
    ThrowValueError(env, "The host must be a name of at most 1024 bytes without NUL");
    return nullptr;
  }
  std::lock_guard<std::mutex> lock(b.core->mu);
  if (b.core->closing) {
    ThrowErrno(env, EBADF, "getaddrinfo", "(the resolver is closed)");
    return nullptr;
  }
  b.core->jobs.push_back(Job{static_cast<double>(id), std::move(h), std::move(s), static_cast<int>(family),
                             static_cast<int>(socktype), static_cast<int>(flags)});
  if (b.core->idle == 0 && b.core->threads < kMaxThreads) {
    b.core->threads++;
    std::thread(Work, *b.hold).detach();
  }
  b.core->cv.notify_one();
  return nullptr;
}

// take() -> [[id, error, [[family, socktype, protocol, address], ...], message, errno], ...]
// error: 0 or an EAI_* code (negative); errno: the system error (positive)
// when error is EAI_SYSTEM, else 0.
napi_value Take(napi_env e, napi_callback_info info) {
  Napi::Env env(e);
  auto b = Unbind<ResolverCore>(e, info);
  uint64_t counter = 0;
  if (IOMUX_SYSCALL(::read(b.core->efd.Get(), &counter, sizeof(counter))) < 0) {
    // EAGAIN: nothing signalled; there may still be results to take.
  }
  std::vector<Done> done;
  {
    std::lock_guard<std::mutex> lock(b.core->mu);
    done.swap(b.core->done);
  }
  Napi::Array out = Napi::Array::New(env, done.size());
  for (size_t i = 0; i < done.size(); i++) {
    Napi::Array entries = Napi::Array::New(env, done[i].entries.size());
    for (size_t j = 0; j < done[i].entries.size(); j++) {
      const Entry& en = done[i].entries[j];
      Napi::Array item = Napi::Array::New(env, 4);
      item.Set(0u, Napi::Number::New(env, en.family));
      item.Set(1u, Napi::Number::New(env, en.socktype));
      item.Set(2u, Napi::Number::New(env, en.protocol));
      item.Set(3u, FormatSockAddr(env, en.addr, en.len));
      entries.Set(static_cast<uint32_t>(j), item);
    }
    Napi::Array row = Napi::Array::New(env, 5);
    row.Set(0u, Napi::Number::New(env, done[i].id));
    row.Set(1u, Napi::Number::New(env, done[i].error));
    row.Set(2u, entries);
    const char* message = done[i].error == 0            ? ""
                          : done[i].error == EAI_SYSTEM ? std::strerror(done[i].sysErrno)
                                                        : ::gai_strerror(done[i].error);
    row.Set(3u, Napi::String::New(env, message));
    row.Set(4u, Napi::Number::New(env, done[i].sysErrno));
    out.Set(static_cast<uint32_t>(i), row);
  }
  return out;
}

// close(): pending lookups are dropped; threads exit when their current one ends.
napi_value Close(napi_env e, napi_callback_info info) {
  auto b = Unbind<ResolverCore>(e, info);
  std::lock_guard<std::mutex> lock(b.core->mu);
  b.core->closing = true;
  b.core->jobs.clear();
  b.core->done.clear();
  b.core->cv.notify_all();
  return nullptr;
}

// createResolver() -> { fileno, submit, take, close }
Napi::Value CreateResolver(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IOMUX_SYSCALL(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (fd < 0) {
    ThrowErrno(env, errno, "eventfd");
    return env.Undefined();
  }
  auto core = std::make_shared<ResolverCore>();
  core->efd.Reset(fd);
  Napi::Object obj = Napi::Object::New(env);
  BindFunction(env, obj, "fileno", Fileno, core);
  BindFunction(env, obj, "submit", Submit, core);
  BindFunction(env, obj, "take", Take, core);
  BindFunction(env, obj, "close", Close, core);
  return obj;
}

}  // namespace

void InitResolver(Napi::Env env, Napi::Object exports) {
  exports.Set("createResolver", Napi::Function::New(env, CreateResolver, "createResolver"));
  Napi::Object c = exports.Get("constants").As<Napi::Object>();
#define IOMUX_CONST(name) c.Set(#name, Napi::Number::New(env, name))
  IOMUX_CONST(AI_PASSIVE);
  IOMUX_CONST(AI_CANONNAME);
  IOMUX_CONST(AI_NUMERICHOST);
  IOMUX_CONST(AI_NUMERICSERV);
  IOMUX_CONST(AI_ADDRCONFIG);
  IOMUX_CONST(AI_V4MAPPED);
  IOMUX_CONST(AI_ALL);
  IOMUX_CONST(EAI_AGAIN);
  IOMUX_CONST(EAI_BADFLAGS);
  IOMUX_CONST(EAI_FAIL);
  IOMUX_CONST(EAI_FAMILY);
  IOMUX_CONST(EAI_MEMORY);
  IOMUX_CONST(EAI_NONAME);
  IOMUX_CONST(EAI_SERVICE);
  IOMUX_CONST(EAI_SOCKTYPE);
  IOMUX_CONST(EAI_SYSTEM);
  IOMUX_CONST(EAI_NODATA);
#undef IOMUX_CONST
}

}  // namespace iomux
