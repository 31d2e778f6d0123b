/*
 * Marks for counting instructions under callgrind from JavaScript: the
 * driver of `npm run bench -- calls` (bench/src/calls-driver.ts) runs with
 * --collect-atstart=no and turns collection on around each counted batch of
 * calls, so the untimed set-up around a batch (filling and draining queues,
 * connecting clients) is not counted; then dumps the counts under a label.
 * Outside valgrind these are no-ops. Needs valgrind's callgrind.h.
 */
#include <stddef.h>

#include <node_api.h>
#include <valgrind/callgrind.h>

/* toggle(): collection on if it was off, off if it was on. */
static napi_value Toggle(napi_env env, napi_callback_info info) {
  (void)env;
  (void)info;
  CALLGRIND_TOGGLE_COLLECT;
  return NULL;
}

/* dump(label): writes the counts since the last dump and zeroes them. */
static napi_value Dump(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value label;
  char text[128];
  size_t len;
  if (napi_get_cb_info(env, info, &argc, &label, NULL, NULL) != napi_ok ||
      napi_get_value_string_utf8(env, label, text, sizeof text, &len) != napi_ok)
    text[0] = '\0';
  CALLGRIND_DUMP_STATS_AT(text);
  return NULL;
}

/* onValgrind(): whether the process runs under valgrind. */
static napi_value OnValgrind(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  napi_get_boolean(env, RUNNING_ON_VALGRIND != 0, &out);
  return out;
}

#define FUNCTION(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL}

NAPI_MODULE_INIT() {
  const napi_property_descriptor functions[] = {
      FUNCTION("toggle", Toggle),
      FUNCTION("dump", Dump),
      FUNCTION("onValgrind", OnValgrind),
  };
  if (napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions) != napi_ok) return NULL;
  return exports;
}
