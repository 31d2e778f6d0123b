// Plain napi_callback functions for the hot path. A node-addon-api function
// makes about a dozen N-API calls before its body runs (CallbackInfo, the
// argument vector, the receiver, an escapable scope); a raw one makes one
// napi_get_cb_info, then one call per argument it reads and one for its
// result. Arguments the caller did not pass are nullptr, so an optional one
// that was left out costs no call at all (see OptionalInt in args.cc).
#pragma once

#include <napi.h>

#include <cstddef>

namespace iomux {

template <size_t N>
struct RawArgs {
  napi_value argv[N];
  size_t argc = N;

  // False (with nothing pending that JavaScript could see) only when N-API
  // itself fails, which it does not for a valid callback info.
  bool Read(napi_env env, napi_callback_info info) {
    if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return false;
    for (size_t i = argc < N ? argc : N; i < N; i++) argv[i] = nullptr;
    return true;
  }

  // The argument, or undefined when it was not passed (for the checks that
  // describe it in an error message).
  napi_value At(napi_env env, size_t i) const {
    if (argv[i] != nullptr) return argv[i];
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    return undefined;
  }
};

inline napi_value RawInt32(napi_env env, int32_t value) {
  napi_value result;
  napi_create_int32(env, value, &result);
  return result;
}

inline napi_value RawNull(napi_env env) {
  napi_value result;
  napi_get_null(env, &result);
  return result;
}

inline void SetRawFunction(Napi::Env env, Napi::Object exports, const char* name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, nullptr, &fn);
  exports.Set(name, Napi::Value(env, fn));
}

}  // namespace iomux
