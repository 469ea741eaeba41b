// An engine error: the status the C API reports (lamina_status of
// include/lamina/lamina.h) and its message. Engine calls that can fail in
// more than one way fill one, so no caller has to classify a message.
#pragma once

#include <string>

#include "lamina/lamina.h"

namespace lamina::engine {

struct Status {
  lamina_status code = LAMINA_OK;
  std::string msg;

  bool ok() const { return code == LAMINA_OK; }
  /// Sets code and message; returns false (for `return st->Fail(...)`).
  bool Fail(lamina_status c, std::string m) {
    code = c;
    msg = std::move(m);
    return false;
  }
};

}  // namespace lamina::engine
