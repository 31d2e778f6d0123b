// The addon's syscall counter: every entry point that makes a syscall on the
// JavaScript thread wraps the call in IOMUX_SYSCALL(...), which bumps a
// thread_local counter first. Each Node environment (main thread, worker)
// runs JavaScript on its own thread, so the count is per environment; read by
// syscallCount() in iomux/sys. A plain increment: no atomic, no lock -- the
// cost is one TLS add per syscall, far below the syscall itself.
//
// Not counted: calls on the addon's own helper threads (the resolver's
// getaddrinfo pool, the select/poll watcher thread of cooperative mode) and
// the write in the signal handler (TLS is not async-signal-safe in a
// dlopen'd library). Those run beside JavaScript, not in it.
#pragma once

#include <cstdint>

namespace iomux {

inline thread_local uint64_t tSyscalls = 0;

// One more syscall. A function, not a bare ++ in the macro: two counted calls
// in one expression (a == b) are then sequenced, not undefined behaviour.
inline void CountSyscall() { ++tSyscalls; }

// Syscalls counted so far on this thread.
inline uint64_t SyscallCount() { return tSyscalls; }

}  // namespace iomux

// Counts one syscall, then evaluates the call: IOMUX_SYSCALL(::read(fd, buf, n)).
#define IOMUX_SYSCALL(...) (::iomux::CountSyscall(), (__VA_ARGS__))
