// Per-environment state (one per main thread or worker): nothing in the addon
// is process-global, so several workers can load it at once.
#pragma once

#include <napi.h>

namespace iomux {

struct EnvData {
  // JavaScript factory (errno, syscall, detail) -> Error, handed in by
  // src/sys/binding.ts through init(). Native code throws what it returns, so
  // kernel errors are the JS-defined OSError / BlockingIOError classes.
  Napi::FunctionReference errnoFactory;
  // Native Socket constructor, for sockets made by accept() and socketpair().
  Napi::FunctionReference socketCtor;
};

inline EnvData* GetEnvData(Napi::Env env) { return env.GetInstanceData<EnvData>(); }

}  // namespace iomux
