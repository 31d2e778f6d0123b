// Signals, the notes' fourth I/O model: asyncio's loop signal handlers and
// signal-driven I/O (O_ASYNC + F_SETSIG), both reported through one eventfd
// per SignalWatch that an event loop watches like any other reader.
//
// Dispositions are per process, so this is the one module with
// process-global state: what each signal's handler must find without a
// lock, allocation or N-API call (signal-safety(7)). The handler only loads
// and stores atomics, pushes into a preallocated ring, and write(2)s an
// eventfd. Everything else -- installing, removing, the watches -- runs on
// the main thread only (a worker gets ERR_WORKER_UNSUPPORTED_OPERATION, as
// asyncio's add_signal_handler refuses any thread but the main one), so
// those parts need no lock either.
//
// Coexistence with Node's own signal handling (libuv's uv_signal_t behind
// process.on('SIGINT')): libuv's handler is a plain function; ours chains
// to the function it replaced. libuv installs its handler when its first
// uv_signal_t for a signal starts, over ours, and resets the signal to
// SIG_DFL when its last one stops, wiping ours. verifySignals() re-asserts
// ours over whatever replaced it, chaining to that from then on; JavaScript
// calls it right after Node's own listener changes (src/sys/signals.ts) and
// before an event loop blocks. A replaced handler with SA_RESETHAND is not
// chained to: that is Node's SignalExit for SIGINT/SIGTERM (reset the tty,
// then die by the signal again), the process's default action in disguise,
// which a loop handler replaces as asyncio's does.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "args.h"
#include "bound.h"
#include "errors.h"
#include "modules.h"
#include "unique_fd.h"
#include "syscount.h"

namespace iomux {

namespace {

constexpr int kMaxSignal = 64;  // Linux: signals 1..64 (NSIG - 1)
constexpr int kMaxWatches = 64;
constexpr uint32_t kMaxCapacity = 1u << 16;
// events[]: [0] signals 1..32 pending (bit signo - 1), [1] signals 33..64,
// [2] overflow flag, [3] records that follow, then (fd, band) pairs.
constexpr size_t kHeaderInts = 4;

// A single-producer single-consumer ring of (fd, band) records. The producer
// is the signal handler; `producing` turns away a second, nested or
// concurrent one (another thread, another signal), which then reports an
// overflow instead: the ring never sees two producers.
struct Ring {
  explicit Ring(uint32_t cap) : capacity(cap), records(new int32_t[static_cast<size_t>(cap) * 2]()) {}
  const uint32_t capacity;  // a power of two
  std::unique_ptr<int32_t[]> records;
  std::atomic<uint32_t> head{0};  // next to read (consumer)
  std::atomic<uint32_t> tail{0};  // next to write (producer)
  std::atomic<bool> producing{false};
};

// What a handler finds of one watch. `busy` counts handlers inside it, so
// that closing the watch can wait for them before closing its eventfd.
struct Slot {
  std::atomic<int> fd{-1};
  std::atomic<int> busy{0};
  std::atomic<uint64_t> pending{0};
  std::atomic<bool> overflow{false};
  std::atomic<bool> signalDriven{false};  // has O_ASYNC fds: SIGIO means overflow
  std::atomic<Ring*> ring{nullptr};
  bool used = false;  // main thread only
};

// One signal's state. `previous` is double-buffered: the main thread writes
// the inactive copy and then flips `prevIndex`, so a handler never reads a
// half-written struct.
struct Disposition {
  std::atomic<int> owner{-1};    // watch delivering it to a loop handler
  std::atomic<int> ioOwner{-1};  // watch recording it as signal-driven I/O
  struct sigaction previous[2];
  std::atomic<int> prevIndex{0};
  bool installed = false;  // main thread only
};

Slot g_slots[kMaxWatches];
Disposition g_signals[kMaxSignal + 1];
std::atomic<int> g_sigioUsers{0};  // watches with signal-driven fds

uint64_t Bit(int signo) { return uint64_t{1} << (signo - 1); }

void WakeSlot(Slot& slot) {
  int fd = slot.fd.load();
  if (fd < 0) return;
  uint64_t one = 1;
  // EAGAIN (the counter is full) still leaves the eventfd readable.
  ssize_t rc = ::write(fd, &one, sizeof one);
  (void)rc;
}

void PushRecord(Slot& slot, int fd, int band) {
  Ring* ring = slot.ring.load();
  if (ring == nullptr) return;
  bool expected = false;
  if (!ring->producing.compare_exchange_strong(expected, true)) {
    slot.overflow.store(true);
    return;
  }
  uint32_t tail = ring->tail.load(std::memory_order_relaxed);
  uint32_t head = ring->head.load(std::memory_order_acquire);
  if (tail - head >= ring->capacity) {
    slot.overflow.store(true);
  } else {
    uint32_t i = tail & (ring->capacity - 1);
    ring->records[2 * i] = fd;
    ring->records[2 * i + 1] = band;
    ring->tail.store(tail + 1, std::memory_order_release);
  }
  ring->producing.store(false);
}

bool IsOurs(const struct sigaction& sa);

void Chain(Disposition& d, int signo, siginfo_t* info, void* context) {
  const struct sigaction& p = d.previous[d.prevIndex.load()];
  // One-shot handlers are Node's SignalExit (see the file comment).
  if ((p.sa_flags & SA_RESETHAND) != 0) return;
  if ((p.sa_flags & SA_SIGINFO) != 0) {
    if (p.sa_sigaction != nullptr && !IsOurs(p)) p.sa_sigaction(signo, info, context);
    return;
  }
  if (p.sa_handler == SIG_DFL || p.sa_handler == SIG_IGN || p.sa_handler == nullptr) return;
  p.sa_handler(signo);
}

// The handler: async-signal-safe throughout.
void OnSignal(int signo, siginfo_t* info, void* context) {
  const int savedErrno = errno;
  if (signo > 0 && signo <= kMaxSignal) {
    Disposition& d = g_signals[signo];
    int owner = d.owner.load();
    if (owner >= 0) {
      Slot& slot = g_slots[owner];
      slot.busy.fetch_add(1);
      if (slot.fd.load() >= 0) {
        slot.pending.fetch_or(Bit(signo));
        WakeSlot(slot);
      }
      slot.busy.fetch_sub(1);
    }
    int io = d.ioOwner.load();
    // Only the kernel's readiness reports (si_code POLL_IN..POLL_HUP) carry
    // an fd; the same signal sent by kill(2) or sigqueue(3) carries none.
    if (io >= 0 && info != nullptr && info->si_code >= POLL_IN && info->si_code <= POLL_HUP) {
      Slot& slot = g_slots[io];
      slot.busy.fetch_add(1);
      if (slot.fd.load() >= 0) {
        PushRecord(slot, info->si_fd, static_cast<int>(info->si_band));
        WakeSlot(slot);
      }
      slot.busy.fetch_sub(1);
    }
    // The kernel sends plain SIGIO instead of the F_SETSIG signal when the
    // real-time queue is full (fcntl(2)): records were lost, rescan.
    if (signo == SIGIO && g_sigioUsers.load() > 0) {
      for (Slot& slot : g_slots) {
        if (!slot.signalDriven.load()) continue;
        slot.busy.fetch_add(1);
        if (slot.fd.load() >= 0) {
          slot.overflow.store(true);
          WakeSlot(slot);
        }
        slot.busy.fetch_sub(1);
      }
    }
    Chain(d, signo, info, context);
  }
  errno = savedErrno;
}

bool IsOurs(const struct sigaction& sa) { return (sa.sa_flags & SA_SIGINFO) != 0 && sa.sa_sigaction == OnSignal; }

struct sigaction OurAction() {
  struct sigaction sa{};
  sa.sa_sigaction = OnSignal;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  // Everything blocked while it runs: short, and no nested producer.
  sigfillset(&sa.sa_mask);
  return sa;
}

bool MainThread() { return IOMUX_SYSCALL(::syscall(SYS_gettid)) == IOMUX_SYSCALL(::getpid()); }

// Whether anything still needs our handler on `signo`.
bool Needed(int signo) {
  const Disposition& d = g_signals[signo];
  return d.owner.load() >= 0 || d.ioOwner.load() >= 0 || (signo == SIGIO && g_sigioUsers.load() > 0);
}

// Makes ours the action, remembering the one it replaces. Returns 0 or errno.
int Install(int signo) {
  Disposition& d = g_signals[signo];
  if (d.installed) return 0;
  int next = 1 - d.prevIndex.load();
  if (IOMUX_SYSCALL(::sigaction(signo, nullptr, &d.previous[next])) != 0) return errno;
  if (IsOurs(d.previous[next])) {
    // Left installed by an environment that could not restore it: chain to nothing.
    d.previous[next] = {};
    d.previous[next].sa_handler = SIG_DFL;
  }
  d.prevIndex.store(next);
  struct sigaction sa = OurAction();
  if (IOMUX_SYSCALL(::sigaction(signo, &sa, nullptr)) != 0) return errno;
  d.installed = true;
  return 0;
}

// Puts ours back when something replaced it; the replacement is chained to.
bool Reassert(int signo) {
  Disposition& d = g_signals[signo];
  if (!d.installed) return false;
  struct sigaction current{};
  if (IOMUX_SYSCALL(::sigaction(signo, nullptr, &current)) != 0 || IsOurs(current)) return false;
  int next = 1 - d.prevIndex.load();
  d.previous[next] = current;
  d.prevIndex.store(next);
  struct sigaction sa = OurAction();
  IOMUX_SYSCALL(::sigaction(signo, &sa, nullptr));
  return true;
}

// Restores what ours replaced, unless something replaced ours since (then
// that stays). `discard`: set SIG_IGN first, which drops instances still
// queued (signal(7)), so a queued real-time signal never meets SIG_DFL.
void Uninstall(int signo, bool discard) {
  Disposition& d = g_signals[signo];
  if (!d.installed || Needed(signo)) return;
  d.installed = false;
  struct sigaction current{};
  if (IOMUX_SYSCALL(::sigaction(signo, nullptr, &current)) != 0 || !IsOurs(current)) return;
  if (discard) {
    struct sigaction ignore{};
    ignore.sa_handler = SIG_IGN;
    IOMUX_SYSCALL(::sigaction(signo, &ignore, nullptr));
  }
  IOMUX_SYSCALL(::sigaction(signo, &d.previous[d.prevIndex.load()], nullptr));
}

pid_t Gettid() { return static_cast<pid_t>(IOMUX_SYSCALL(::syscall(SYS_gettid))); }

[[gnu::cold]] void ThrowNotMainThread(Napi::Env env) {
  Napi::Error error = Napi::TypeError::New(
      env, "Signal handling is not supported in workers: signal dispositions belong to the process (use the main "
           "thread)");
  error.Set("code", Napi::String::New(env, "ERR_WORKER_UNSUPPORTED_OPERATION"));
  error.ThrowAsJavaScriptException();
}

// A signal a handler can be installed for: 1..64, not SIGKILL/SIGSTOP, not
// the faults V8 relies on catching itself, not glibc's reserved 32..SIGRTMIN-1.
bool ArgCatchable(const Napi::CallbackInfo& info, size_t index, int* out) {
  int32_t signo = 0;
  if (!ArgInt32(info, index, "signal", 1, kMaxSignal, &signo)) return false;
  const char* why = nullptr;
  if (signo == SIGKILL || signo == SIGSTOP) {
    why = "cannot be caught";
  } else if (signo == SIGSEGV || signo == SIGBUS || signo == SIGFPE || signo == SIGILL || signo == SIGTRAP) {
    why = "is a synchronous fault the runtime handles itself";
  } else if (signo > 31 && signo < SIGRTMIN) {
    why = "is reserved by the C library";
  }
  if (why != nullptr) {
    ThrowValueError(info.Env(), "The \"signal\" argument must be a signal that can be handled. Received " +
                                    std::to_string(signo) + ", which " + why);
    return false;
  }
  *out = signo;
  return true;
}

class SignalWatch;
std::unordered_set<SignalWatch*>* g_watches = nullptr;  // main thread only

class SignalWatch : public Napi::ObjectWrap<SignalWatch> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "SignalWatch",
                       {
                           InstanceMethod<&SignalWatch::Fileno>("fileno"),
                           InstanceMethod<&SignalWatch::Add>("add"),
                           InstanceMethod<&SignalWatch::Remove>("remove"),
                           InstanceMethod<&SignalWatch::SetSignalDriven>("setSignalDriven"),
                           InstanceMethod<&SignalWatch::ClearSignalDriven>("clearSignalDriven"),
                           InstanceMethod<&SignalWatch::Drain>("drain"),
                           InstanceMethod<&SignalWatch::Close>("close"),
                       });
  }

  // new SignalWatch(capacity): `capacity` records of signal-driven I/O, rounded up to a power of two.
  explicit SignalWatch(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SignalWatch>(info) {
    Napi::Env env = info.Env();
    int32_t capacity = 0;
    if (!ArgInt32(info, 0, "capacity", 1, kMaxCapacity, &capacity)) return;
    if (!MainThread()) {
      ThrowNotMainThread(env);
      return;
    }
    int slot = -1;
    for (int i = 0; i < kMaxWatches; i++) {
      if (!g_slots[i].used) {
        slot = i;
        break;
      }
    }
    if (slot < 0) {
      ThrowErrno(env, EMFILE, "SignalWatch", "(" + std::to_string(kMaxWatches) + " watches open)");
      return;
    }
    UniqueFd efd(IOMUX_SYSCALL(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)));
    if (!efd.Valid()) {
      ThrowErrno(env, errno, "eventfd");
      return;
    }
    uint32_t cap = 1;
    while (cap < static_cast<uint32_t>(capacity)) cap <<= 1;
    events_ = std::make_shared<Int32Memory>(kHeaderInts + 2 * static_cast<size_t>(cap));
    Napi::Value events = NewSharedInt32Array(env, events_);
    if (events.IsEmpty()) return;
    info.This().As<Napi::Object>().Set("events", events);
    ring_ = std::make_unique<Ring>(cap);
    Slot& s = g_slots[slot];
    s.used = true;
    s.pending.store(0);
    s.overflow.store(false);
    s.signalDriven.store(false);
    s.ring.store(ring_.get());
    fd_ = std::move(efd);
    s.fd.store(fd_.Get());
    slot_ = slot;
    if (g_watches == nullptr) g_watches = new std::unordered_set<SignalWatch*>();
    g_watches->insert(this);
  }

  ~SignalWatch() override { CloseNow(); }

  // Everything back as it was: handlers restored, O_ASYNC cleared, the eventfd closed.
  void CloseNow() {
    if (slot_ < 0) return;
    for (int signo = 1; signo <= kMaxSignal; signo++) {
      if ((signals_ & Bit(signo)) != 0) {
        g_signals[signo].owner.store(-1);
        Uninstall(signo, false);
      }
    }
    signals_ = 0;
    while (!driven_.empty()) Undrive(driven_.begin()->first);
    Slot& s = g_slots[slot_];
    s.fd.store(-1);
    s.ring.store(nullptr);
    // A handler that loaded this slot before the stores above may still be
    // inside it (on another thread): wait for it before closing the fd it
    // writes and freeing the ring it fills.
    while (s.busy.load() != 0) ::sched_yield();
    s.used = false;
    slot_ = -1;
    fd_.Reset();
    ring_.reset();
    if (g_watches != nullptr) g_watches->erase(this);
  }

 private:
  bool CheckOpen(Napi::Env env) {
    if (slot_ >= 0) return true;
    ThrowErrno(env, EBADF, "SignalWatch", "(the watch is closed)");
    return false;
  }

  Napi::Value Fileno(const Napi::CallbackInfo& info) {
    if (!CheckOpen(info.Env())) return info.Env().Undefined();
    return Napi::Number::New(info.Env(), fd_.Get());
  }

  // add(signo): ours becomes the action for signo, delivered to this watch.
  Napi::Value Add(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int signo = 0;
    if (!ArgCatchable(info, 0, &signo)) return env.Undefined();
    if (!CheckOpen(env)) return env.Undefined();
    Disposition& d = g_signals[signo];
    int owner = d.owner.load();
    if (owner == slot_) return env.Undefined();
    if (owner >= 0 || d.ioOwner.load() >= 0) {
      ThrowValueError(env, "The \"signal\" argument must be a signal no other SignalWatch uses. Received " +
                               std::to_string(signo) + ", which " +
                               (owner >= 0 ? "another watch handles" : "carries signal-driven I/O"));
      return env.Undefined();
    }
    d.owner.store(slot_);
    int err = Install(signo);
    if (err != 0) {
      d.owner.store(-1);
      ThrowErrno(env, err, "sigaction", "(signal " + std::to_string(signo) + ")");
      return env.Undefined();
    }
    signals_ |= Bit(signo);
    return env.Undefined();
  }

  // remove(signo) -> whether this watch had it; the replaced action comes back.
  Napi::Value Remove(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int32_t signo = 0;
    if (!ArgInt32(info, 0, "signal", 1, kMaxSignal, &signo)) return env.Undefined();
    if (slot_ < 0 || (signals_ & Bit(signo)) == 0) return Napi::Boolean::New(env, false);
    signals_ &= ~Bit(signo);
    g_signals[signo].owner.store(-1);
    Uninstall(signo, false);
    return Napi::Boolean::New(env, true);
  }

  // setSignalDriven(fd, signo): O_ASYNC | O_NONBLOCK on fd, its readiness
  // queued as real-time signal signo to this thread, recorded in the ring.
  Napi::Value SetSignalDriven(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = -1;
    int32_t signo = 0;
    if (!ArgFd(info, 0, "fd", &fd)) return env.Undefined();
    if (!ArgInt32(info, 1, "signal", SIGRTMIN, SIGRTMAX, &signo)) return env.Undefined();
    if (!CheckOpen(env)) return env.Undefined();
    Disposition& d = g_signals[signo];
    const int ioOwner = d.ioOwner.load();
    if (d.owner.load() >= 0 || (ioOwner >= 0 && ioOwner != slot_)) {
      ThrowValueError(env, "The \"signal\" argument must be a signal no other SignalWatch uses. Received " +
                               std::to_string(signo));
      return env.Undefined();
    }
    const int flags = IOMUX_SYSCALL(::fcntl(fd, F_GETFL));
    if (flags < 0) {
      ThrowErrno(env, errno, "fcntl", "(fd " + std::to_string(fd) + ")");
      return env.Undefined();
    }
    // Set again (perhaps with another signal): undone first, so no signal stays installed for nothing.
    if (driven_.count(fd) != 0) Undrive(fd);
    // Handlers first: a signal may come the moment O_ASYNC is set.
    const bool firstSigio = !g_slots[slot_].signalDriven.load();
    d.ioOwner.store(slot_);
    int err = Install(signo);
    if (err == 0 && firstSigio) {
      g_slots[slot_].signalDriven.store(true);
      g_sigioUsers.fetch_add(1);
      err = Install(SIGIO);
    }
    const char* syscall = "sigaction";
    if (err == 0) {
      struct f_owner_ex owner{F_OWNER_TID, Gettid()};
      syscall = "fcntl";
      if (IOMUX_SYSCALL(::fcntl(fd, F_SETOWN_EX, &owner)) != 0 || IOMUX_SYSCALL(::fcntl(fd, F_SETSIG, signo)) != 0 ||
          IOMUX_SYSCALL(::fcntl(fd, F_SETFL, flags | O_ASYNC | O_NONBLOCK)) != 0) {
        err = errno;
        IOMUX_SYSCALL(::fcntl(fd, F_SETSIG, 0));
      }
    }
    if (err != 0) {
      RollBack(signo, firstSigio);
      ThrowErrno(env, err, syscall, "(fd " + std::to_string(fd) + ")");
      return env.Undefined();
    }
    driven_[fd] = signo;
    return env.Undefined();
  }

  // Releases `signo` once no fd of this watch uses it, and this watch's
  // share of SIGIO when `dropSigio` (no signal-driven fd left).
  void RollBack(int signo, bool dropSigio) {
    bool signoUsed = false;
    for (const auto& entry : driven_) signoUsed = signoUsed || entry.second == signo;
    if (!signoUsed) {
      g_signals[signo].ioOwner.store(-1);
      Uninstall(signo, true);
    }
    if (dropSigio && g_slots[slot_].signalDriven.exchange(false)) {
      g_sigioUsers.fetch_sub(1);
      Uninstall(SIGIO, true);
    }
  }

  // Clears O_ASYNC and F_SETSIG on fd (when fd still carries this watch's
  // signal: the number may belong to another file by now) and releases the
  // signal once no fd of this watch uses it.
  void Undrive(int fd) {
    auto it = driven_.find(fd);
    if (it == driven_.end()) return;
    const int signo = it->second;
    driven_.erase(it);
    if (IOMUX_SYSCALL(::fcntl(fd, F_GETSIG)) == signo) {
      int flags = IOMUX_SYSCALL(::fcntl(fd, F_GETFL));
      if (flags >= 0) IOMUX_SYSCALL(::fcntl(fd, F_SETFL, flags & ~O_ASYNC));
      IOMUX_SYSCALL(::fcntl(fd, F_SETSIG, 0));
    }
    RollBack(signo, driven_.empty());
  }

  // clearSignalDriven(fd) -> whether fd was signal-driven through this watch.
  Napi::Value ClearSignalDriven(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = -1;
    if (!ArgFd(info, 0, "fd", &fd)) return env.Undefined();
    if (slot_ < 0 || driven_.count(fd) == 0) return Napi::Boolean::New(env, false);
    Undrive(fd);
    return Napi::Boolean::New(env, true);
  }

  // drain() -> records in `events` (see kHeaderInts); resets the eventfd.
  Napi::Value Drain(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    uint64_t counter = 0;
    // Read first: anything that comes after the reads below wakes it again.
    while (IOMUX_SYSCALL(::read(fd_.Get(), &counter, sizeof counter)) < 0 && errno == EINTR) {
    }
    Slot& s = g_slots[slot_];
    int32_t* out = events_->data.get();
    const uint64_t pending = s.pending.exchange(0);
    out[0] = static_cast<int32_t>(static_cast<uint32_t>(pending));
    out[1] = static_cast<int32_t>(static_cast<uint32_t>(pending >> 32));
    out[2] = s.overflow.exchange(false) ? 1 : 0;
    uint32_t n = 0;
    Ring& ring = *ring_;
    uint32_t head = ring.head.load(std::memory_order_relaxed);
    const uint32_t tail = ring.tail.load(std::memory_order_acquire);
    for (; head != tail; head++, n++) {
      uint32_t i = head & (ring.capacity - 1);
      out[kHeaderInts + 2 * n] = ring.records[2 * i];
      out[kHeaderInts + 2 * n + 1] = ring.records[2 * i + 1];
    }
    ring.head.store(head, std::memory_order_release);
    out[3] = static_cast<int32_t>(n);
    return Napi::Number::New(env, n);
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    CloseNow();
    return info.Env().Undefined();
  }

  int slot_ = -1;
  UniqueFd fd_;
  std::unique_ptr<Ring> ring_;
  std::shared_ptr<Int32Memory> events_;
  uint64_t signals_ = 0;                  // loop-handler signals of this watch
  std::unordered_map<int, int> driven_;  // signal-driven fd -> its signal
};

// verifySignals() -> how many of ours had been replaced and were put back.
Napi::Value VerifySignals(const Napi::CallbackInfo& info) {
  int n = 0;
  if (MainThread()) {
    for (int signo = 1; signo <= kMaxSignal; signo++) {
      if (Reassert(signo)) n++;
    }
  }
  return Napi::Number::New(info.Env(), n);
}

// signalDisposition(signo) -> [kind, sa_flags]: kind 0 SIG_DFL, 1 SIG_IGN,
// 2 iomux's handler, 3 another handler. For tests and diagnostics.
Napi::Value SignalDisposition(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t signo = 0;
  if (!ArgInt32(info, 0, "signal", 1, kMaxSignal, &signo)) return env.Undefined();
  struct sigaction current{};
  if (IOMUX_SYSCALL(::sigaction(signo, nullptr, &current)) != 0) {
    ThrowErrno(env, errno, "sigaction", "(signal " + std::to_string(signo) + ")");
    return env.Undefined();
  }
  int kind = 3;
  if (IsOurs(current)) {
    kind = 2;
  } else if ((current.sa_flags & SA_SIGINFO) == 0 && current.sa_handler == SIG_DFL) {
    kind = 0;
  } else if ((current.sa_flags & SA_SIGINFO) == 0 && current.sa_handler == SIG_IGN) {
    kind = 1;
  }
  Napi::Array result = Napi::Array::New(env, 2);
  result.Set(0u, Napi::Number::New(env, kind));
  result.Set(1u, Napi::Number::New(env, static_cast<double>(static_cast<uint32_t>(current.sa_flags))));
  return result;
}

// The main environment ends: every watch restores what it replaced.
void CleanupWatches(void*) {
  if (g_watches == nullptr) return;
  while (!g_watches->empty()) (*g_watches->begin())->CloseNow();
}

}  // namespace

void InitSignals(Napi::Env env, Napi::Object exports) {
  exports.Set("SignalWatch", SignalWatch::Define(env));
  exports.Set("verifySignals", Napi::Function::New(env, VerifySignals, "verifySignals"));
  exports.Set("signalDisposition", Napi::Function::New(env, SignalDisposition, "signalDisposition"));
  exports.Set("SIGRTMIN", Napi::Number::New(env, SIGRTMIN));
  exports.Set("SIGRTMAX", Napi::Number::New(env, SIGRTMAX));
  if (MainThread()) napi_add_env_cleanup_hook(env, CleanupWatches, nullptr);
}

}  // namespace iomux
