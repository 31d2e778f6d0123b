// Module entry: one EnvData per environment (main thread or worker), freed by
// Node when that environment is torn down.
#include <napi.h>

#include "env.h"
#include "errors.h"
#include "modules.h"
#include "raw.h"
#include "syscount.h"

namespace iomux {

namespace {

// init(errnoFactory): hands in the JavaScript function that turns
// (errno, syscall, detail) into an OSError, so native code throws the
// classes JavaScript defines.
Napi::Value InitErrors(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction()) {
    ThrowTypeError(info.Env(), "The \"errnoFactory\" argument must be a function. Received " +
                                   DescribeValue(info.Length() < 1 ? info.Env().Undefined() : info[0]));
    return info.Env().Undefined();
  }
  GetEnvData(info.Env())->errnoFactory = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

// syscallCount() -> syscalls the addon has made on this thread (see syscount.h).
napi_value SyscallCountJs(napi_env env, napi_callback_info) {
  napi_value result;
  napi_create_double(env, static_cast<double>(SyscallCount()), &result);
  return result;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new EnvData());
  exports.Set("init", Napi::Function::New(env, InitErrors, "init"));
  SetRawFunction(env, exports, "syscallCount", SyscallCountJs);
  InitConstants(env, exports);
  InitSelect(env, exports);
  InitPoll(env, exports);
  InitEpoll(env, exports);
  InitSocket(env, exports);
  InitFdOps(env, exports);
  InitMsg(env, exports);
  InitMmsg(env, exports);
  InitResolver(env, exports);
  InitWatcher(env, exports);
  InitUring(env, exports);
  InitSignals(env, exports);
  InitTlsContext(env, exports);
  InitTlsConn(env, exports);
  return exports;
}

}  // namespace

}  // namespace iomux

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return iomux::Init(env, exports); }

NODE_API_MODULE(iomux, InitAddon)
