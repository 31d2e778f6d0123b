#pragma once

#include <napi.h>

namespace iomux {

// The fd is no longer a socket this environment owns (close(fd) from
// JavaScript closed it by number): it is not closed again when the
// environment ends.
void ForgetSocketFd(Napi::Env env, int fd);

}  // namespace iomux
