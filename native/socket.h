#pragma once

#include <napi.h>

namespace iomux {

// Wraps fd (ownership passes, closed on failure) in a native Socket object.
Napi::Value AdoptSocketFd(Napi::Env env, int fd);

}  // namespace iomux
