{
  "targets": [
    {
      "target_name": "iomux",
      "sources": [
        "native/addon.cc",
        "native/args.cc",
        "native/constants.cc",
        "native/errors.cc",
        "native/epoll.cc",
        "native/fdops.cc",
        "native/mmsg.cc",
        "native/msg.cc",
        "native/poll.cc",
        "native/resolver.cc",
        "native/select.cc",
        "native/signals.cc",
        "native/sockaddr.cc",
        "native/socket.cc",
        "native/tls_conn.cc",
        "native/tls_context.cc",
        "native/tls_errors.cc",
        "native/uring.cc",
        "native/uring_ops.cc",
        "native/watcher.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "libraries": ["-pthread"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-fvisibility=hidden", "-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-pthread", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden", "-fno-exceptions"],
      "conditions": [
        ["OS!='linux'", { "type": "none" }]
      ]
    }
  ]
}
