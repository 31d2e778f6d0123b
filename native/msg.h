// Limits of sendmsg(2)/recvmsg(2) that the uapi headers do not carry.
#pragma once

namespace iomux {

// Most fds one SCM_RIGHTS message may carry: the kernel's SCM_MAX_FD
// (include/net/scm.h, 253 since Linux 2.6.x), which is not exported to user
// space; more is EINVAL from the kernel, refused here before the syscall.
constexpr int kScmMaxFd = 253;

}  // namespace iomux
