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

}  // namespace

bool ValueInt(Napi::Env env, Napi::Value v, const char* name, int64_t min, int64_t max, int64_t* out) {
  double d = 0;
  if (napi_get_value_double(env, v, &d) != napi_ok) {
    ThrowTypeError(env, Quote(name) + " must be of type number. Received " + DescribeValue(v));
    return false;
  }
  if (std::isnan(d) || std::floor(d) != d) {
    ThrowRangeError(env, Quote(name) + " must be an integer. Received " + DescribeValue(v));
    return false;
  }
  if (d < static_cast<double>(min) || d > static_cast<double>(max)) {
    ThrowRangeError(env, Quote(name) + " must be >= " + std::to_string(min) + " and <= " + std::to_string(max) +
                             ". Received " + DescribeValue(v));
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
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

bool ArgByteRange(const Napi::CallbackInfo& info, size_t bufIndex, size_t offsetIndex, size_t lengthIndex,
                  ByteRange* out) {
  Napi::Value v = At(info, bufIndex);
  napi_env env = info.Env();
  uint8_t* data = nullptr;
  size_t byteLength = 0;
  bool isTypedArray = false;
  bool isDataView = false;
  // One napi_get_typedarray_info call gives the data pointer (already at the
  // view's offset) and the length: the hot path of every recv and send, where
  // the node-addon-api accessors would make four calls.
  if (napi_is_typedarray(env, v, &isTypedArray) == napi_ok && isTypedArray) {
    napi_typedarray_type type = napi_uint8_array;
    size_t length = 0;
    void* p = nullptr;
    if (napi_get_typedarray_info(env, v, &type, &length, &p, nullptr, nullptr) != napi_ok) {
      ThrowTypeError(info.Env(), "The \"buffer\" argument could not be read");
      return false;
    }
    data = static_cast<uint8_t*>(p);
    byteLength = length * TypedArrayElementSize(type);
  } else if (napi_is_dataview(env, v, &isDataView) == napi_ok && isDataView) {
    size_t length = 0;
    void* p = nullptr;
    if (napi_get_dataview_info(env, v, &length, &p, nullptr, nullptr) != napi_ok) {
      ThrowTypeError(info.Env(), "The \"buffer\" argument could not be read");
      return false;
    }
    data = static_cast<uint8_t*>(p);
    byteLength = length;
  } else {
    ThrowTypeError(info.Env(), std::string("The \"buffer\" argument must be an instance of Buffer, TypedArray or "
                                           "DataView. Received ") +
                                   DescribeValue(v));
    return false;
  }
  int64_t offset = 0;
  if (!At(info, offsetIndex).IsUndefined() &&
      !ArgInt(info, offsetIndex, "offset", 0, static_cast<int64_t>(byteLength), &offset)) {
    return false;
  }
  int64_t length = static_cast<int64_t>(byteLength) - offset;
  if (!At(info, lengthIndex).IsUndefined() &&
      !ArgInt(info, lengthIndex, "length", 0, static_cast<int64_t>(byteLength) - offset, &length)) {
    return false;
  }
  // A detached buffer has no memory: only an empty range is valid there.
  out->data = data == nullptr ? nullptr : data + offset;
  out->length = static_cast<size_t>(length);
  return true;
}

bool ArgInt32Array(const Napi::CallbackInfo& info, size_t index, const char* name, Int32View* out) {
  return ValueInt32Array(info.Env(), At(info, index), name, out);
}

}  // namespace iomux
