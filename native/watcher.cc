// How a cooperative event loop sleeps inside Node without busy-polling:
//
//  * FdWatcher: libuv watches one fd (the epoll fd, which is readable
//    whenever any fd registered in it is ready) with a uv_poll_t and calls
//    back on the main thread. Ref'ed or unref'ed like any Node handle.
//  * WaitThread: for select and poll, which have no fd to hand to libuv, a
//    helper thread blocks in select(2)/poll(2) on a snapshot of the watched
//    fds plus its own cancel eventfd, then posts to the main thread through a
//    threadsafe function.
//
// Both are per object and per environment; close() (or environment teardown)
// stops the watcher and joins the thread.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <unistd.h>
#include <uv.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "args.h"
#include "deadline.h"
#include "errors.h"
#include "modules.h"
#include "unique_fd.h"
#include "syscount.h"

namespace iomux {

namespace {

// ---------------------------------------------------------------- FdWatcher

class FdWatcher : public Napi::ObjectWrap<FdWatcher> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FdWatcher",
                       {
                           InstanceMethod<&FdWatcher::Start>("start"),
                           InstanceMethod<&FdWatcher::Stop>("stop"),
                           InstanceMethod<&FdWatcher::Ref>("ref"),
                           InstanceMethod<&FdWatcher::Unref>("unref"),
                           InstanceMethod<&FdWatcher::Close>("close"),
                       });
  }

  // new FdWatcher(fd, callback): callback() runs on the main thread each time fd is readable while started.
  explicit FdWatcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FdWatcher>(info) {
    Napi::Env env = info.Env();
    int fd = -1;
    if (!ArgFd(info, 0, "fd", &fd)) return;
    if (info.Length() < 2 || !info[1].IsFunction()) {
      ThrowTypeError(env, "The \"callback\" argument must be a function. Received " +
                              DescribeValue(info.Length() < 2 ? env.Undefined() : info[1]));
      return;
    }
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      Napi::Error::New(env, "iomux: no libuv loop in this environment").ThrowAsJavaScriptException();
      return;
    }
    handle_ = new uv_poll_t;
    int rc = uv_poll_init(loop, handle_, fd);
    if (rc != 0) {
      delete handle_;
      handle_ = nullptr;
      ThrowErrno(env, -rc, "uv_poll_init", "(fd " + std::to_string(fd) + ")");
      return;
    }
    handle_->data = this;
    fd_ = fd;
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    env_ = env;
  }

  ~FdWatcher() override { CloseHandle(); }

 private:
  // status < 0 (UV_EBADF when epoll reports EPOLLERR on the fd): libuv has
  // already stopped watching, so the callback gets the error as its argument
  // instead of a readiness that would never come again.
  static void OnReadable(uv_poll_t* handle, int status, int events) {
    (void)events;
    auto* self = static_cast<FdWatcher*>(handle->data);
    if (self == nullptr || self->callback_.IsEmpty()) return;
    Napi::HandleScope scope(self->env_);
    if (status < 0) {
      Napi::Value error = ErrnoError(self->env_, -status, "uv_poll", "(fd " + std::to_string(self->fd_) + ")");
      if (error.IsEmpty()) return;
      self->callback_.MakeCallback(self->env_.Global(), {error});
      return;
    }
    // MakeCallback: runs microtasks afterwards and keeps async context, as Node's own handles do.
    self->callback_.MakeCallback(self->env_.Global(), {});
  }

  bool CheckOpen(Napi::Env env) {
    if (handle_ != nullptr) return true;
    ThrowErrno(env, EBADF, "uv_poll", "(the watcher is closed)");
    return false;
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    if (!CheckOpen(info.Env())) return info.Env().Undefined();
    // libuv only learns that the fd was closed behind its back when its
    // epoll_ctl fails inside uv_run, and it aborts there: refuse it here.
    if (IOMUX_SYSCALL(::fcntl(fd_, F_GETFD)) == -1) {
      ThrowErrno(info.Env(), errno, "uv_poll_start", "(fd " + std::to_string(fd_) + ")");
      return info.Env().Undefined();
    }
    int rc = uv_poll_start(handle_, UV_READABLE, OnReadable);
    if (rc != 0) ThrowErrno(info.Env(), -rc, "uv_poll_start");
    return info.Env().Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) uv_poll_stop(handle_);
    return info.Env().Undefined();
  }

  Napi::Value Ref(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(handle_));
    return info.Env().Undefined();
  }

  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(handle_));
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    CloseHandle();
    return info.Env().Undefined();
  }

  // uv_close is asynchronous: the handle memory is freed in its close callback.
  void CloseHandle() {
    if (handle_ == nullptr) return;
    uv_poll_t* handle = handle_;
    handle_ = nullptr;
    callback_.Reset();
    handle->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(handle), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
  }

  uv_poll_t* handle_ = nullptr;
  int fd_ = -1;
  Napi::FunctionReference callback_;
  Napi::Env env_ = Napi::Env(nullptr);
};

// --------------------------------------------------------------- WaitThread

struct WaitCore {
  std::mutex mu;
  std::condition_variable cv;
  UniqueFd cancel;          // eventfd: written to interrupt a wait
  // The snapshot to wait on. Always poll(2), whatever the loop's selector:
  // the helper's own eventfd can be >= FD_SETSIZE once many fds are open,
  // and FD_SET on it would write past the fd_set (a select helper did).
  std::vector<pollfd> fds;
  bool armed = false;
  bool closing = false;
  uint64_t generation = 0;  // bumped per arm, so a stale result is ignored
};

constexpr int kRead = 1;
constexpr int kWrite = 2;

class WaitThread : public Napi::ObjectWrap<WaitThread> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "WaitThread",
                       {
                           InstanceMethod<&WaitThread::Arm>("arm"),
                           InstanceMethod<&WaitThread::Disarm>("disarm"),
                           InstanceMethod<&WaitThread::Close>("close"),
                       });
  }

  // new WaitThread(callback): callback() runs on the main thread when an armed wait sees readiness.
  explicit WaitThread(const Napi::CallbackInfo& info) : Napi::ObjectWrap<WaitThread>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsFunction()) {
      ThrowTypeError(env, "The \"callback\" argument must be a function");
      return;
    }
    int efd = IOMUX_SYSCALL(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (efd < 0) {
      ThrowErrno(env, errno, "eventfd");
      return;
    }
    core_ = std::make_shared<WaitCore>();
    core_->cancel.Reset(efd);
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "iomux.WaitThread", 0, 1);
    // Not ref'ed while disarmed: an idle helper must not keep the process alive.
    tsfn_.Unref(env);
    thread_ = std::thread(Run, core_, tsfn_);
    // When the environment ends (a worker exits) the thread must stop and
    // let go of the thread-safe function first: Node 24 waits for every
    // such function to be released before it finishes tearing a worker
    // down, and this object's destructor would only run after that.
    if (napi_add_env_cleanup_hook(env, OnEnvCleanup, this) == napi_ok) {
      hookEnv_ = env;
    }
  }

  ~WaitThread() override {
    Shutdown();
    Unhook();
  }

 private:
  static void Run(std::shared_ptr<WaitCore> core, Napi::ThreadSafeFunction tsfn) {
    std::vector<pollfd> fds;
    for (;;) {
      uint64_t generation = 0;
      {
        std::unique_lock<std::mutex> lock(core->mu);
        core->cv.wait(lock, [&] { return core->closing || core->armed; });
        if (core->closing) break;
        fds = core->fds;
        generation = core->generation;
      }
      const int cancelFd = core->cancel.Get();
      fds.push_back(pollfd{cancelFd, POLLIN, 0});
      int rc = RetryOnEintr(-1, [&](int) { return ::poll(fds.data(), fds.size(), -1); });
      uint64_t drained = 0;
      if (::read(cancelFd, &drained, sizeof(drained)) < 0) {
        // EAGAIN: not cancelled, something else is ready.
      }
      bool post = false;
      {
        std::lock_guard<std::mutex> lock(core->mu);
        if (core->closing) break;
        // Post once per arm, and only if nobody disarmed or re-armed meanwhile.
        if (core->armed && core->generation == generation) {
          core->armed = false;
          post = rc != 0;
        }
      }
      if (post) tsfn.NonBlockingCall();
    }
    tsfn.Release();
  }

  void Interrupt() {
    uint64_t one = 1;
    if (::write(core_->cancel.Get(), &one, sizeof(one)) < 0) {
      // EAGAIN: a wake-up is already pending.
    }
  }

  // arm(pairs, keepAlive): waits on (fd, mask) pairs (mask 1 read, 2 write)
  // in the helper thread; keepAlive: the process stays alive meanwhile.
  Napi::Value Arm(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Int32View pairs{};
    bool keepAlive = true;
    if (core_ == nullptr) {
      ThrowErrno(env, EBADF, "WaitThread.arm", "(the wait thread is closed)");
      return env.Undefined();
    }
    if (!ArgInt32Array(info, 0, "pairs", &pairs)) return env.Undefined();
    if (!ArgBool(info, 1, "keepAlive", &keepAlive)) return env.Undefined();
    if (pairs.length % 2 != 0) {
      ThrowRangeError(env, "The \"pairs\" array must hold (fd, mask) pairs");
      return env.Undefined();
    }
    std::vector<pollfd> fds;
    fds.reserve(pairs.length / 2);
    for (size_t i = 0; i < pairs.length; i += 2) {
      const int fd = pairs.data[i];
      const int mask = pairs.data[i + 1];
      if (fd < 0) {
        ThrowRangeError(env, "WaitThread: bad fd " + std::to_string(fd));
        return env.Undefined();
      }
      fds.push_back(pollfd{fd, static_cast<short>(((mask & kRead) ? POLLIN : 0) | ((mask & kWrite) ? POLLOUT : 0)), 0});
    }
    {
      std::lock_guard<std::mutex> lock(core_->mu);
      if (core_->armed) Interrupt();  // a wait on the old snapshot is under way
      core_->fds = std::move(fds);
      core_->armed = true;
      core_->generation++;
    }
    core_->cv.notify_one();
    if (keepAlive && !refd_) {
      tsfn_.Ref(env);
      refd_ = true;
    } else if (!keepAlive && refd_) {
      tsfn_.Unref(env);
      refd_ = false;
    }
    return env.Undefined();
  }

  // disarm(): no callback for the current wait; the thread goes back to sleep.
  Napi::Value Disarm(const Napi::CallbackInfo& info) {
    if (core_ == nullptr) return info.Env().Undefined();
    {
      std::lock_guard<std::mutex> lock(core_->mu);
      if (core_->armed) {
        core_->armed = false;
        core_->generation++;
        Interrupt();
      }
    }
    if (refd_) {
      tsfn_.Unref(info.Env());
      refd_ = false;
    }
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    Unhook();
    return info.Env().Undefined();
  }

  static void OnEnvCleanup(void* arg) {
    auto* self = static_cast<WaitThread*>(arg);
    self->hookEnv_ = nullptr;  // Node has taken the hook off: nothing to remove later
    self->Shutdown();
  }

  void Unhook() {
    if (hookEnv_ == nullptr) return;
    napi_remove_env_cleanup_hook(hookEnv_, OnEnvCleanup, this);
    hookEnv_ = nullptr;
  }

  void Shutdown() {
    if (core_ == nullptr) return;
    {
      std::lock_guard<std::mutex> lock(core_->mu);
      core_->closing = true;
      Interrupt();
    }
    core_->cv.notify_one();
    if (thread_.joinable()) thread_.join();
    core_.reset();
  }

  std::shared_ptr<WaitCore> core_;
  Napi::ThreadSafeFunction tsfn_;
  std::thread thread_;
  bool refd_ = false;
  napi_env hookEnv_ = nullptr;
};

}  // namespace

void InitWatcher(Napi::Env env, Napi::Object exports) {
  exports.Set("FdWatcher", FdWatcher::Define(env));
  exports.Set("WaitThread", WaitThread::Define(env));
}

}  // namespace iomux
