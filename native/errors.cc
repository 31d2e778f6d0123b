#include "errors.h"

#include <cmath>
#include <cstring>

#include "env.h"

namespace iomux {

namespace {

void ThrowWithCode(Napi::Env env, Napi::Error error, const char* code) {
  error.Set("code", Napi::String::New(env, code));
  error.ThrowAsJavaScriptException();
}

}  // namespace

Napi::Value ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& detail) {
  EnvData* data = GetEnvData(env);
  if (data != nullptr && !data->errnoFactory.IsEmpty()) {
    Napi::Value error = data->errnoFactory.Call({Napi::Number::New(env, err), Napi::String::New(env, syscall),
                                                 Napi::String::New(env, detail)});
    if (env.IsExceptionPending()) return Napi::Value();  // the factory itself threw: keep that
    return error;
  }
  // Before init() (only reachable by loading the addon by hand): still Node-style.
  std::string message = std::string(syscall) + " " + std::strerror(err);
  if (!detail.empty()) message += " " + detail;
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error.Value();
}

void ThrowErrno(Napi::Env env, int err, const char* syscall, const std::string& detail) {
  Napi::Value error = ErrnoError(env, err, syscall, detail);
  if (error.IsEmpty()) return;
  napi_throw(env, error);
}

void ThrowTypeError(Napi::Env env, const std::string& message) {
  ThrowWithCode(env, Napi::TypeError::New(env, message), "ERR_INVALID_ARG_TYPE");
}

void ThrowValueError(Napi::Env env, const std::string& message) {
  ThrowWithCode(env, Napi::TypeError::New(env, message), "ERR_INVALID_ARG_VALUE");
}

void ThrowRangeError(Napi::Env env, const std::string& message) {
  ThrowWithCode(env, Napi::RangeError::New(env, message), "ERR_OUT_OF_RANGE");
}

std::string DescribeValue(Napi::Value value) {
  switch (value.Type()) {
    case napi_undefined:
      return "undefined";
    case napi_null:
      return "null";
    case napi_boolean:
      return std::string("type boolean (") + (value.As<Napi::Boolean>().Value() ? "true" : "false") + ")";
    case napi_number: {
      double d = value.As<Napi::Number>().DoubleValue();
      if (std::isnan(d)) return "NaN";
      if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
      if (d == std::floor(d) && std::fabs(d) < 1e15) return std::to_string(static_cast<long long>(d));
      // As JavaScript prints it (1.5, 1e+21), as the TypeScript checks quote
      // it; std::to_string would say 1.500000. A number runs no user code.
      return value.ToString().Utf8Value();
    }
    case napi_string: {
      std::string s = value.As<Napi::String>().Utf8Value();
      if (s.size() > 28) s = s.substr(0, 25) + "...";
      return "type string ('" + s + "')";
    }
    case napi_bigint:
      return "type bigint";
    case napi_symbol:
      return "type symbol";
    case napi_function:
      return "function";
    default:
      return "an instance of " + std::string(value.IsArray() ? "Array" : "Object");
  }
}

}  // namespace iomux
