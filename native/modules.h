// Each native module's Init, called once per environment from addon.cc.
#pragma once

#include <napi.h>

namespace iomux {

void InitConstants(Napi::Env env, Napi::Object exports);
void InitSelect(Napi::Env env, Napi::Object exports);
void InitPoll(Napi::Env env, Napi::Object exports);
void InitEpoll(Napi::Env env, Napi::Object exports);
void InitSocket(Napi::Env env, Napi::Object exports);
void InitFdOps(Napi::Env env, Napi::Object exports);
void InitMsg(Napi::Env env, Napi::Object exports);
void InitMmsg(Napi::Env env, Napi::Object exports);
void InitResolver(Napi::Env env, Napi::Object exports);
void InitWatcher(Napi::Env env, Napi::Object exports);
void InitUring(Napi::Env env, Napi::Object exports);
void InitSignals(Napi::Env env, Napi::Object exports);
void InitTlsContext(Napi::Env env, Napi::Object exports);
void InitTlsConn(Napi::Env env, Napi::Object exports);

}  // namespace iomux
