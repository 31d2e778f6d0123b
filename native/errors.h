// How native code reports failure. Every throw helper leaves a pending
// JavaScript exception; the caller returns right after it.
#pragma once

#include <napi.h>

#include <string>

namespace iomux {

// Kernel error: the JS factory builds an OSError (BlockingIOError for EAGAIN,
// EINPROGRESS, EALREADY) with code 'ECONNREFUSED', errno -111, syscall, and
// the message "<syscall> <CODE>[ <detail>]".
void ThrowErrno(Napi::Env env, int err, const char* syscall, const std::string& detail = "");
// The same error as a value, for handing to a callback instead of throwing.
// Empty when the factory itself threw (that exception stays pending).
Napi::Value ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& detail = "");

// Bad argument type: TypeError with code ERR_INVALID_ARG_TYPE.
void ThrowTypeError(Napi::Env env, const std::string& message);
// Bad argument value of the right type: TypeError with code ERR_INVALID_ARG_VALUE.
void ThrowValueError(Napi::Env env, const std::string& message);
// Number outside its range: RangeError with code ERR_OUT_OF_RANGE.
void ThrowRangeError(Napi::Env env, const std::string& message);

// Describes a received value the way Node's argument errors do:
// "type string ('abc')", "1.5", "undefined".
std::string DescribeValue(Napi::Value value);

}  // namespace iomux
