// mgpu/io/progress_line.hpp — a progress line on a terminal, for mgpu's progress callbacks.
//
//   auto progress = mgpu::progress_line("cosine top-k", "queries");
//   options.progress = progress.callback();
//
// draws, on standard error when it is a terminal,
//   cosine top-k: 41000/117659 queries (35%), 52100 queries/s, ETA 1.5 s
// rewriting the line in place (carriage return) at most every 100 ms, and ends it with a
// newline when done == total. A total <= 0 means "not known yet" (a streamed corpus):
// the line then shows the count and the rate only, and finish() ends it. When standard
// error is not a terminal (a file, a pipe, a CI log) it prints nothing at all, so outputs
// and logs stay as they were.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "mgpu/core/progress.hpp"

namespace mgpu {

/// Draws progress on a terminal (see the file comment). Copies share one line.
class progress_line {
 public:
  /// @param label  what is running ("TF-IDF fit"); @param unit  what is counted ("documents").
  /// @param fd     the file descriptor to draw on (standard error by default); nothing is
  ///               drawn unless it is a terminal.
  explicit progress_line(std::string label, std::string unit = {}, int fd = STDERR_FILENO)
      : state_(std::make_shared<state>(std::move(label), std::move(unit), fd, ::isatty(fd) == 1)) {}

  /// Whether anything will be drawn (the descriptor is a terminal).
  [[nodiscard]] bool active() const noexcept { return state_->tty; }

  /// A callback for an operation's options; empty when nothing would be drawn.
  [[nodiscard]] progress_callback callback() const {
    if (!state_->tty) return {};
    return [s = state_](std::int64_t done, std::int64_t total) { s->update(done, total); };
  }

  /// Draws (done, total) now if due; the callbacks call this.
  void operator()(std::int64_t done, std::int64_t total) const { state_->update(done, total); }

  /// Ends a line left open (an unknown total, or work stopped early): draws the last
  /// count and a newline. Does nothing if nothing was drawn or the line already ended.
  void finish() const { state_->finish(); }

 private:
  using clock = std::chrono::steady_clock;

  struct state {
    state(std::string l, std::string u, int f, bool t) : label(std::move(l)), unit(std::move(u)), fd(f), tty(t) {}
    std::string label;
    std::string unit;
    int fd;
    bool tty;
    clock::time_point start = clock::now();
    clock::time_point last{};
    bool finished = false;
    bool drawn = false;
    std::int64_t last_done = 0;
    std::int64_t last_total = 0;

    void finish() {
      if (!tty || finished || !drawn) return;
      last = clock::time_point{};
      draw(last_done, last_total, true);
    }

    void update(std::int64_t done, std::int64_t total) {
      if (!tty || finished) return;
      last_done = done;
      last_total = total;
      auto const now = clock::now();
      bool const end = total > 0 && done >= total;
      if (!end && last != clock::time_point{} && now - last < std::chrono::milliseconds(100)) return;
      draw(done, total, end);
    }

    void draw(std::int64_t done, std::int64_t total, bool end) {
      auto const now = clock::now();
      last = now;
      drawn = true;
      double const seconds = std::chrono::duration<double>(now - start).count();
      double const rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
      char line[512];
      int n = total > 0 ? std::snprintf(line, sizeof line, "\r%s: %lld/%lld%s%s", label.c_str(),
                                        static_cast<long long>(done), static_cast<long long>(total),
                                        unit.empty() ? "" : " ", unit.c_str())
                        : std::snprintf(line, sizeof line, "\r%s: %lld%s%s", label.c_str(), static_cast<long long>(done),
                                        unit.empty() ? "" : " ", unit.c_str());
      auto append = [&](char const* fmt, auto... args) {
        if (n >= 0 && static_cast<std::size_t>(n) < sizeof line) {
          n += std::snprintf(line + n, sizeof line - static_cast<std::size_t>(n), fmt, args...);
        }
      };
      if (total > 0) append(" (%d%%)", static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total)));
      if (rate > 0) append(", %.0f%s%s/s", rate, unit.empty() ? "" : " ", unit.c_str());
      if (end) {
        append(", %.1f s\x1b[K\n", seconds);
        finished = true;
      } else if (rate > 0 && total > done) {
        append(", ETA %.1f s\x1b[K", static_cast<double>(total - done) / rate);
      } else {
        append("\x1b[K");
      }
      if (n > 0) {
        auto const len = std::min<std::size_t>(static_cast<std::size_t>(n), sizeof line - 1);
        [[maybe_unused]] auto const w = ::write(fd, line, len);
      }
    }
  };

  std::shared_ptr<state> state_;
};

}  // namespace mgpu
