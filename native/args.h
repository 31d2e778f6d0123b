// Argument checks that run before any syscall. Each returns false after
// leaving a TypeError/RangeError pending, with the same wording everywhere:
//   The "fd" argument must be an integer. Received type string ('3')
// Callers `return` right after a false result.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace iomux {

// An Int32Array (for fd lists and event output), with its element count.
struct Int32View {
  int32_t* data;
  size_t length;
};

// Value-based forms, for functions that read their own argv (bound.h).
bool ValueInt(Napi::Env env, Napi::Value v, const char* name, int64_t min, int64_t max, int64_t* out);
bool ValueFd(Napi::Env env, Napi::Value v, const char* name, int* out);
bool ValueTimeoutMs(Napi::Env env, Napi::Value v, int* out);
bool ValueInt32Array(Napi::Env env, Napi::Value v, const char* name, Int32View* out);
// An integer in [min, max], or `fallback` when v is nullptr (not passed) or undefined.
bool ValueIntOr(Napi::Env env, napi_value v, const char* name, int64_t min, int64_t max, int64_t fallback,
                int64_t* out);

// A number that is an integer in [min, max].
bool ArgInt(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t min, int64_t max,
            int64_t* out);
bool ArgInt32(const Napi::CallbackInfo& info, size_t index, const char* name, int32_t min, int32_t max,
              int32_t* out);
// As ArgInt32, but undefined gives `fallback`.
bool ArgInt32Or(const Napi::CallbackInfo& info, size_t index, const char* name, int32_t min, int32_t max,
                int32_t fallback, int32_t* out);
// A file descriptor: an integer in [0, INT32_MAX].
bool ArgFd(const Napi::CallbackInfo& info, size_t index, const char* name, int* out);
// A timeout in whole milliseconds: -1 blocks without limit, 0 polls.
bool ArgTimeoutMs(const Napi::CallbackInfo& info, size_t index, int* out);
// A boolean.
bool ArgBool(const Napi::CallbackInfo& info, size_t index, const char* name, bool* out);

// Bytes per element of a TypedArray of `type`.
size_t TypedArrayElementSize(napi_typedarray_type type);

// A writable byte range of a TypedArray, DataView or Buffer: offset and length
// in bytes (undefined: 0 and "to the end"), checked against its byte length.
struct ByteRange {
  uint8_t* data;
  size_t length;
};
bool ArgByteRange(const Napi::CallbackInfo& info, size_t bufIndex, size_t offsetIndex, size_t lengthIndex,
                  ByteRange* out);
// The same, from the values (for raw napi_callback functions on the hot path).
bool ValueByteRange(Napi::Env env, napi_value buffer, napi_value offset, napi_value length, ByteRange* out);

bool ArgInt32Array(const Napi::CallbackInfo& info, size_t index, const char* name, Int32View* out);

}  // namespace iomux
