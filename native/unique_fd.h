// RAII owner of one file descriptor: every fd the addon creates lives in one of
// these until it is handed to JavaScript (release()) or closed.
#pragma once

#include <unistd.h>

#include "syscount.h"

namespace iomux {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }

  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) Reset(other.Release());
    return *this;
  }

  int Get() const { return fd_; }
  bool Valid() const { return fd_ >= 0; }

  // Gives up ownership without closing.
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

  // Closes the owned fd (if any) and takes `fd`. Returns close(2)'s result.
  // close(2) is never retried: on Linux the fd is released even when it
  // reports EINTR, and a retry could close an fd another thread just opened.
  int Reset(int fd = -1) {
    int rc = 0;
    if (fd_ >= 0) rc = IOMUX_SYSCALL(::close(fd_));
    fd_ = fd;
    return rc;
  }

 private:
  int fd_ = -1;
};

}  // namespace iomux
