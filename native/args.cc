#include "args.h"

#include <climits>
#include <cmath>
#include <string>

#include "errors.h"

namespace iomux {

namespace {

std::string Quote(const char* name) { return std::string("The \"") + name + "\" argument"; }

Napi::Value At(const Napi::CallbackInfo& info, size_t index) {
  return index < info.Length() ? info[index] : info.Env().Undefined();
}


// The error paths, out of line: the checks' hot path builds no strings.
[[gnu::cold, gnu::noinline]] void ThrowNotNumber(Napi::Env env, napi_value v, const char* name) {
  ThrowTypeError(env, Quote(name) + " must be of type number. Received " + DescribeValue(Napi::Value(env, v)));
}

[[gnu::cold, gnu::noinline]] void ThrowBadInt(Napi::Env env, napi_value v, double d, const char* name, int64_t min,
                                              int64_t max) {
  if (std::isnan(d) || std::floor(d) != d) {
    ThrowRangeError(env, Quote(name) + " must be an integer. Received " + DescribeValue(Napi::Value(env, v)));
  } else {
    ThrowRangeError(env, Quote(name) + " must be >= " + std::to_string(min) + " and <= " + std::to_string(max) +
                             ". Received " + DescribeValue(Napi::Value(env, v)));
  }
}

[[gnu::cold, gnu::noinline]] void ThrowNotBytes(Napi::Env env, napi_value v) {
  ThrowTypeError(env, std::string("The \"buffer\" argument must be an instance of Buffer, TypedArray or DataView. "
                                  "Received ") +
                          DescribeValue(Napi::Value(env, v)));
}

// The checks of ValueInt on a number already read: an integer in [min, max].
inline bool IntFromDouble(Napi::Env env, napi_value v, double d, const char* name, int64_t min, int64_t max,
                          int64_t* out) {
  // In range first (NaN fails both tests), so that the cast is defined.
  if (d >= static_cast<double>(min) && d <= static_cast<double>(max)) {
    const auto i = static_cast<int64_t>(d);
    if (static_cast<double>(i) == d) {
      *out = i;
      return true;
    }
  }
  ThrowBadInt(env, v, d, name, min, max);
  return false;
}

// An integer in [0, max], or `fallback` for undefined. A number costs one
// N-API call (the loop passes both offset and length); only a non-number is
// asked whether it is undefined.
inline bool OptionalInt(Napi::Env env, napi_value v, const char* name, int64_t max, int64_t fallback, int64_t* out) {
  // nullptr: the caller did not pass it at all (see raw.h), which costs no call.
  if (v == nullptr) {
    *out = fallback;
    return true;
  }
  double d = 0;
  if (napi_get_value_double(env, v, &d) == napi_ok) return IntFromDouble(env, v, d, name, 0, max, out);
  napi_valuetype type = napi_undefined;
  if (napi_typeof(env, v, &type) == napi_ok && type == napi_undefined) {
    *out = fallback;
    return true;
  }
  ThrowNotNumber(env, v, name);
  return false;
}

}  // namespace

size_t TypedArrayElementSize(napi_typedarray_type type) {
  switch (type) {
    case napi_int8_array:
    case napi_uint8_array:
    case napi_uint8_clamped_array:
      return 1;
    case napi_int16_array:
    case napi_uint16_array:
      return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array:
      return 4;
    case napi_float64_array:
    case napi_bigint64_array:
    case napi_biguint64_array:
      return 8;
  }
  return 1;
}

bool ValueInt(Napi::Env env, Napi::Value v, const char* name, int64_t min, int64_t max, int64_t* out) {
  double d = 0;
  if (napi_get_value_double(env, v, &d) != napi_ok) {
    ThrowNotNumber(env, v, name);
    return false;
  }
  return IntFromDouble(env, v, d, name, min, max, out);
}

bool ValueIntOr(Napi::Env env, napi_value v, const char* name, int64_t min, int64_t max, int64_t fallback,
                int64_t* out) {
  if (v == nullptr) {
    *out = fallback;
    return true;
  }
  double d = 0;
  if (napi_get_value_double(env, v, &d) == napi_ok) return IntFromDouble(env, v, d, name, min, max, out);
  napi_valuetype type = napi_undefined;
  if (napi_typeof(env, v, &type) == napi_ok && type == napi_undefined) {
    *out = fallback;
    return true;
  }
  ThrowNotNumber(env, v, name);
  return false;
}

bool ValueFd(Napi::Env env, Napi::Value v, const char* name, int* out) {
  int64_t fd = 0;
  if (!ValueInt(env, v, name, 0, INT32_MAX, &fd)) return false;
  *out = static_cast<int>(fd);
  return true;
}

bool ValueTimeoutMs(Napi::Env env, Napi::Value v, int* out) {
  int64_t ms = 0;
  if (!ValueInt(env, v, "timeoutMs", -1, INT32_MAX, &ms)) return false;
  *out = static_cast<int>(ms);
  return true;
}

bool ValueInt32Array(Napi::Env env, Napi::Value v, const char* name, Int32View* out) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr) != napi_ok ||
      type != napi_int32_array) {
    ThrowTypeError(env, Quote(name) + " must be an instance of Int32Array. Received " + DescribeValue(v));
    return false;
  }
  out->data = static_cast<int32_t*>(data);
  out->length = length;
  return true;
}

bool ArgInt(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t min, int64_t max,
            int64_t* out) {
  return ValueInt(info.Env(), At(info, index), name, min, max, out);
}

bool ArgInt32(const Napi::CallbackInfo& info, size_t index, const char* name, int32_t min, int32_t max,
              int32_t* out) {
  int64_t value = 0;
  if (!ArgInt(info, index, name, min, max, &value)) return false;
  *out = static_cast<int32_t>(value);
  return true;
}

bool ArgInt32Or(const Napi::CallbackInfo& info, size_t index, const char* name, int32_t min, int32_t max,
                int32_t fallback, int32_t* out) {
  if (At(info, index).IsUndefined()) {
    *out = fallback;
    return true;
  }
  return ArgInt32(info, index, name, min, max, out);
}

bool ArgFd(const Napi::CallbackInfo& info, size_t index, const char* name, int* out) {
  int32_t fd = 0;
  if (!ArgInt32(info, index, name, 0, INT32_MAX, &fd)) return false;
  *out = fd;
  return true;
}

bool ArgTimeoutMs(const Napi::CallbackInfo& info, size_t index, int* out) {
  int32_t ms = 0;
  if (!ArgInt32(info, index, "timeoutMs", -1, INT32_MAX, &ms)) return false;
  *out = ms;
  return true;
}

bool ArgBool(const Napi::CallbackInfo& info, size_t index, const char* name, bool* out) {
  Napi::Value v = At(info, index);
  if (!v.IsBoolean()) {
    ThrowTypeError(info.Env(), Quote(name) + " must be of type boolean. Received " + DescribeValue(v));
    return false;
  }
  *out = v.As<Napi::Boolean>().Value();
  return true;
}

bool ValueByteRange(Napi::Env env, napi_value buffer, napi_value offsetValue, napi_value lengthValue,
                    ByteRange* out) {
  uint8_t* data = nullptr;
  size_t byteLength = 0;
  // One napi_get_typedarray_info call both checks the type and gives the
  // data pointer (already at the view's offset) and the length: the hot path
  // of every recv and send, where asking napi_is_typedarray first, or the
  // node-addon-api accessors, would cost more calls than the syscall.
  napi_typedarray_type type = napi_uint8_array;
  size_t length = 0;
  void* p = nullptr;
  bool isDataView = false;
  if (napi_get_typedarray_info(env, buffer, &type, &length, &p, nullptr, nullptr) == napi_ok) {
    data = static_cast<uint8_t*>(p);
    byteLength = length * TypedArrayElementSize(type);
  } else if (napi_is_dataview(env, buffer, &isDataView) == napi_ok && isDataView) {
    if (napi_get_dataview_info(env, buffer, &length, &p, nullptr, nullptr) != napi_ok) {
      ThrowNotBytes(env, buffer);
      return false;
    }
    data = static_cast<uint8_t*>(p);
    byteLength = length;
  } else {
    ThrowNotBytes(env, buffer);
    return false;
  }
  int64_t offset = 0;
  if (!OptionalInt(env, offsetValue, "offset", static_cast<int64_t>(byteLength), 0, &offset)) return false;
  int64_t count = 0;
  const int64_t room = static_cast<int64_t>(byteLength) - offset;
  if (!OptionalInt(env, lengthValue, "length", room, room, &count)) return false;
  // A detached buffer has no memory: only an empty range is valid there.
  out->data = data == nullptr ? nullptr : data + offset;
  out->length = static_cast<size_t>(count);
  return true;
}

bool ArgByteRange(const Napi::CallbackInfo& info, size_t bufIndex, size_t offsetIndex, size_t lengthIndex,
                  ByteRange* out) {
  return ValueByteRange(info.Env(), At(info, bufIndex), At(info, offsetIndex), At(info, lengthIndex), out);
}

bool ArgInt32Array(const Napi::CallbackInfo& info, size_t index, const char* name, Int32View* out) {
  return ValueInt32Array(info.Env(), At(info, index), name, out);
}

}  // namespace iomux
