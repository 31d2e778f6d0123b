// Per-environment state (one per main thread or worker): nothing in the addon
// is process-global, so several workers can load it at once.
#pragma once

#include <napi.h>
#include <unistd.h>

#include <memory>
#include <unordered_set>

#include "bound.h"

namespace iomux {

struct TlsConnTable;  // tls_conn.cc

struct EnvData {
  // JavaScript factory (errno, syscall, detail) -> Error, handed in by
  // src/sys/binding.ts through init(). Native code throws what it returns, so
  // kernel errors are the JS-defined OSError / BlockingIOError classes.
  Napi::FunctionReference errnoFactory;
  // The TlsContext class (tls_context.cc), to tell its objects from others.
  Napi::FunctionReference tlsContextClass;
  // The TLS connections of this environment by id (tls_conn.cc); shared
  // with each connection, which may be finalized after the environment's data.
  std::shared_ptr<TlsConnTable> tlsConns;
  // Socket fds handed to JavaScript and not yet closed or detached (see
  // socket.cc). Closed when the environment ends, so a worker that exits
  // leaks none of its sockets into the process.
  std::unordered_set<int> sockets;
  // The numbers accept and recvfrom return besides their string (see
  // socket.cc), in an Int32Array JavaScript reads: no array built per call.
  std::shared_ptr<Int32Memory> results = std::make_shared<Int32Memory>(kResultInts);
  static constexpr size_t kResultInts = 8;

  EnvData() = default;
  EnvData(const EnvData&) = delete;
  EnvData& operator=(const EnvData&) = delete;
  ~EnvData() {
    for (int fd : sockets) ::close(fd);
  }
};

inline EnvData* GetEnvData(Napi::Env env) { return env.GetInstanceData<EnvData>(); }

}  // namespace iomux
