// mgpu::progress_line draws on a terminal and stays silent otherwise. The terminal is a
// pseudo-terminal opened by the test (posix_openpt), read back from its master side.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "mgpu/io/progress_line.hpp"

namespace {

/// A pseudo-terminal pair: `slave` is a terminal for isatty; what is written to it is
/// read from `master`.
struct pty {
  int master = -1;
  int slave = -1;
  pty() {
    master = ::posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0) return;
    char const* name = ::ptsname(master);
    if (name != nullptr) slave = ::open(name, O_RDWR | O_NOCTTY);
  }
  pty(pty const&) = delete;
  pty& operator=(pty const&) = delete;
  ~pty() {
    if (slave >= 0) ::close(slave);
    if (master >= 0) ::close(master);
  }
  [[nodiscard]] std::string drain() const {
    std::string out;
    char buf[4096];
    pollfd p{master, POLLIN, 0};
    while (::poll(&p, 1, 200) > 0 && (p.revents & POLLIN) != 0) {
      auto const n = ::read(master, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }
};

}  // namespace

TEST_CASE("progress_line: on a terminal, a line with count, percent and an end", "[io][progress]") {
  pty t;
  if (t.slave < 0) {
    WARN("skipped: no pseudo-terminal available");
    return;
  }
  mgpu::progress_line line("TF-IDF fit", "documents", t.slave);
  REQUIRE(line.active());
  auto const cb = line.callback();
  REQUIRE(static_cast<bool>(cb));
  cb(0, 200);    // the first call always draws
  cb(50, 200);   // within 100 ms of the last: skipped
  cb(200, 200);  // the end always draws, then the line is finished
  cb(200, 200);
  auto const out = t.drain();
  CHECK(out.find("TF-IDF fit: 0/200 documents (0%)") != std::string::npos);
  CHECK(out.find("50/200") == std::string::npos);
  CHECK(out.find("TF-IDF fit: 200/200 documents (100%)") != std::string::npos);
  // One final line: exactly one newline (a terminal turns it into CR LF).
  CHECK(out.find('\n') == out.rfind('\n'));
  CHECK(out.back() == '\n');
}

TEST_CASE("progress_line: an unknown total shows the count, finish() ends the line", "[io][progress]") {
  pty t;
  if (t.slave < 0) {
    WARN("skipped: no pseudo-terminal available");
    return;
  }
  mgpu::progress_line line("reading", "documents", t.slave);
  line(1000, 0);
  line.finish();
  line.finish();
  auto const out = t.drain();
  CHECK(out.find("reading: 1000 documents") != std::string::npos);
  CHECK(out.find('%') == std::string::npos);
  CHECK(out.find('\n') == out.rfind('\n'));
  CHECK(out.find('\n') != std::string::npos);
}

TEST_CASE("progress_line: nothing at all when the descriptor is not a terminal", "[io][progress]") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  {
    mgpu::progress_line line("search", "queries", fds[1]);
    CHECK_FALSE(line.active());
    CHECK_FALSE(static_cast<bool>(line.callback()));
    line(1, 2);
    line(2, 2);
    line.finish();
  }
  ::close(fds[1]);
  char buf[16];
  CHECK(::read(fds[0], buf, sizeof buf) == 0);  // end of file: nothing was written
  ::close(fds[0]);
}
