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
      // Built from literal formats only (no format string passes through a variable).
      std::string line = "\r" + label + ": " + std::to_string(done);
      if (total > 0) line += "/" + std::to_string(total);
      if (!unit.empty()) line += " " + unit;
      char number[64];
      if (total > 0) {
        std::snprintf(number, sizeof number, " (%d%%)",
                      static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total)));
        line += number;
      }
      if (rate > 0) {
        std::snprintf(number, sizeof number, ", %.0f", rate);
        line += number;
        line += unit.empty() ? std::string("/s") : " " + unit + "/s";
      }
      if (end) {
        std::snprintf(number, sizeof number, ", %.1f s", seconds);
        line += number;
        line += "\x1b[K\n";
        finished = true;
      } else if (rate > 0 && total > done) {
        std::snprintf(number, sizeof number, ", ETA %.1f s", static_cast<double>(total - done) / rate);
        line += number;
        line += "\x1b[K";
      } else {
        line += "\x1b[K";
      }
      [[maybe_unused]] auto const w = ::write(fd, line.data(), line.size());
    }
  };

  std::shared_ptr<state> state_;
};

}  // namespace mgpu
