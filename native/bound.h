// Hot-path plumbing that avoids per-call N-API lookups, which cost more than
// the syscalls they wrap on a VM (napi_unwrap ~120 ns, typed-array info
// ~90 ns, against ~500 ns for epoll_wait):
//
//  * BindFunction: a JS function whose N-API `data` is a heap shared_ptr to
//    its native core, freed by the function's finalizer. A call reaches the
//    core with one napi_get_cb_info, and the core lives as long as any
//    function bound to it, whatever order the collector runs in.
//  * SharedInt32Array: an Int32Array over native memory that the core keeps
//    writing into (epoll_wait's results). Memory is shared by the core and
//    the ArrayBuffer and freed when both are gone, so detaching or
//    transferring the buffer from JavaScript can never leave a dangling
//    pointer.
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>

namespace iomux {

struct Int32Memory {
  explicit Int32Memory(size_t n) : data(new int32_t[n == 0 ? 1 : n]()), length(n) {}
  std::unique_ptr<int32_t[]> data;
  size_t length;
};

inline Napi::Value NewSharedInt32Array(Napi::Env env, const std::shared_ptr<Int32Memory>& memory) {
  auto* hold = new std::shared_ptr<Int32Memory>(memory);
  napi_value buffer;
  napi_status status = napi_create_external_arraybuffer(
      env, memory->data.get(), memory->length * sizeof(int32_t),
      [](napi_env, void*, void* hint) { delete static_cast<std::shared_ptr<Int32Memory>*>(hint); }, hold, &buffer);
  if (status != napi_ok) {
    delete hold;
    if (!env.IsExceptionPending()) {
      Napi::Error::New(env, "iomux: could not create an external ArrayBuffer").ThrowAsJavaScriptException();
    }
    return Napi::Value();
  }
  napi_value array;
  if (napi_create_typedarray(env, napi_int32_array, memory->length, buffer, 0, &array) != napi_ok) {
    // The buffer's finalizer releases `hold` when it is collected.
    if (!env.IsExceptionPending()) {
      Napi::Error::New(env, "iomux: could not create an Int32Array").ThrowAsJavaScriptException();
    }
    return Napi::Value();
  }
  return Napi::Value(env, array);
}

// Frees `memory` now, rather than when the collector gets to the objects
// that hold it (N-API runs their finalizers only after the event loop
// turns: a program that opens and closes many in one go held them all).
// `array`, the Int32Array over it, is detached first, so no JavaScript can
// reach the freed bytes; when `array` is not that view, nothing is freed.
inline void ReleaseSharedInt32Array(napi_env env, napi_value array, Int32Memory* memory) {
  if (memory->data == nullptr) return;
  bool isTyped = false;
  if (napi_is_typedarray(env, array, &isTyped) != napi_ok || !isTyped) return;
  void* data = nullptr;
  napi_value buffer;
  if (napi_get_typedarray_info(env, array, nullptr, nullptr, &data, &buffer, nullptr) != napi_ok ||
      data != memory->data.get()) {
    return;
  }
  if (napi_detach_arraybuffer(env, buffer) != napi_ok) return;
  memory->data.reset();
  memory->length = 0;
}

template <typename Core>
struct Bound {
  Core* core;
  // The function's own reference to the core, for handing copies to threads.
  std::shared_ptr<Core>* hold;
  size_t argc;
  napi_value argv[6];
  napi_value self;
};

// Reads up to 6 arguments and the bound core of a call.
template <typename Core>
inline Bound<Core> Unbind(napi_env env, napi_callback_info info) {
  Bound<Core> b{};
  b.argc = 6;
  void* data = nullptr;
  napi_get_cb_info(env, info, &b.argc, b.argv, &b.self, &data);
  b.hold = static_cast<std::shared_ptr<Core>*>(data);
  b.core = b.hold->get();
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  for (size_t i = b.argc; i < 6; i++) b.argv[i] = undefined;
  return b;
}

template <typename Core>
inline void BindFunction(Napi::Env env, Napi::Object target, const char* name, napi_callback cb,
                         const std::shared_ptr<Core>& core) {
  auto* hold = new std::shared_ptr<Core>(core);
  napi_value fn;
  if (napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, hold, &fn) != napi_ok) {
    delete hold;
    if (!env.IsExceptionPending()) {
      Napi::Error::New(env, "iomux: could not create a function").ThrowAsJavaScriptException();
    }
    return;
  }
  // Until the finalizer is attached, nothing else frees `hold`.
  if (napi_add_finalizer(
          env, fn, hold, [](napi_env, void* data, void*) { delete static_cast<std::shared_ptr<Core>*>(data); },
          nullptr, nullptr) != napi_ok) {
    delete hold;
    if (!env.IsExceptionPending()) {
      Napi::Error::New(env, "iomux: could not attach a finalizer").ThrowAsJavaScriptException();
    }
    return;
  }
  target.Set(name, Napi::Value(env, fn));
}

}  // namespace iomux
