// mgpu/io/output_file.hpp — a program's output files written as one commit.
//
// A program that writes several files (a result, a saved matrix, a vocabulary) should
// leave either all of them new or all of them as they were: never a half-written file,
// never one new file beside an old one, never a temporary. `output_set` does that:
//
//   mgpu::output_set outs;
//   auto const result = outs.add(result_path, "--output");     // before the long work
//   outs.check();                                               // bad paths fail here
//   ... the long work ...
//   outs.set_writer(result, [&](std::ostream& out) { ... });    // any std::ostream writer
//   outs.commit();                                              // all or nothing
//
// What a target may be (RELIABILITY.md rows 21 and 22):
//   - absent, or a regular file: written to a temporary in the target's directory and
//     renamed over it (atomic replace). The temporary is an unnamed O_TMPFILE file, so
//     nothing named exists while it is written and a `kill -9` leaves nothing behind; it
//     is linked to a hidden name `.<name>.tmp-<pid>-<n>` just before the renames. Where
//     O_TMPFILE (or /proc) is unavailable, the hidden name is created up front. An
//     existing file must be writable by the caller (a read-only file is refused, not
//     replaced behind its permissions). A replaced file keeps its permission bits (not
//     its owner); other hard links to it keep the old contents.
//   - a symbolic link (chains included): its final target is what gets written, as
//     above; the link itself stays. A dangling link creates its target.
//   - a character device or a FIFO (/dev/null, /dev/stdout, a pipe): written in place,
//     opened only at commit time (a FIFO's reader is not needed by check()). These are
//     written after every temporary is complete and before any rename, so a failure
//     there (e.g. /dev/full: ENOSPC) changes none of the regular files. What was already
//     written to a device cannot be taken back.
//   - a directory, a block device or a socket, an empty path, a path ending in '/': refused.
// Two outputs naming the same file (after links) are refused, except character devices.
//
// commit() writes every temporary (all fsync'ed once written) and every device output, then renames
// the temporaries over their targets in the order they were added, then fsyncs the
// directories. Before the renames, every existing regular target gets a hard-link
// backup (`.<name>.bak-<pid>-<n>`); if a rename fails part-way the earlier ones are
// undone from those backups (or the new file removed when there was none before), so
// the set is still all-or-nothing. Residual window: a crash or SIGKILL during the
// rename phase (a few system calls, after all writing is done) can leave some targets
// new and the others old, plus hidden `.tmp-`/`.bak-` names.
//
// Signals: `remove_temporaries_on_signal()` (opt-in) makes SIGINT, SIGTERM, SIGHUP and
// SIGPIPE (a FIFO's reader gone) unlink the named temporaries and backups of every
// commit in progress before the process dies with the signal's default action.
//
// Errors: check() and commit() throw mgpu::invalid_argument for a path that can never be
// written (empty, a directory, a block device, a socket, two outputs on one file) and
// mgpu::error naming the path and the system's reason for everything else; an exception
// thrown by a writer propagates unchanged unless the write to the file itself failed,
// in which case mgpu::error names the file and the reason (e.g. "No space left on
// device"). Whatever is thrown, no temporary is left and no regular target is changed.
//
// Thread safety: an output_set is used by one thread at a time. Different output_sets
// may commit concurrently (temporary names are unique per process and commit).
//
// Formatting on several threads: `write_in_order(out, chunks, format)` has the host's
// threads (backend/cpu/parallel.hpp) format chunks of an output into large buffers
// (`text_buffer`), a few chunks per thread in flight, while the thread that completes
// the lowest unwritten chunk writes the ready ones to `out` in chunk order; through an
// output_set the stream's own writer thread then hands the bytes to write(2). The bytes
// written are those of a serial run whatever the number of threads and chunks (see
// write_in_order).
// The text writers (mgpu/io/text_output.hpp's write_neighbor_rows, Matrix Market's
// coordinate writer) use it.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <streambuf>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "mgpu/backend/cpu/parallel.hpp"
#include "mgpu/core/error.hpp"

namespace mgpu {

/// Writes one output's contents to the stream it is given.
using output_writer = std::function<void(std::ostream&)>;

namespace detail::out {

inline std::string reason(int code) { return std::error_code(code, std::generic_category()).message(); }

/// A std::streambuf over a file descriptor, double-buffered: the caller formats into one
/// buffer of `buffer_bytes` while a writer thread (started when the first buffer fills, so
/// small outputs never start one) hands the other to write(2); every write(2) is checked
/// and retried on EINTR and short writes. A failure in the writer thread is kept (its errno
/// in error()) and makes the next overflow, xsputn or sync fail on the caller's thread, so
/// the stream goes bad there; after a failure no further output is written. sync() returns
/// only once everything put so far is written. A block of direct_bytes or more given to
/// xsputn (write_in_order's chunks) is written from the caller's memory on the caller's
/// thread, after the buffered text and without a copy.
/// With `start_writeback` (a regular file written from offset 0), the writer thread asks
/// the kernel to start writing each further `writeback_bytes` to the disk
/// (sync_file_range(SYNC_FILE_RANGE_WRITE), which does not wait for it), so that the
/// fsync(2) at the end of a large file waits only for its last part; a failure there is
/// ignored (fsync reports the real errors).
class fd_streambuf : public std::streambuf {
 public:
  static constexpr std::size_t buffer_bytes = std::size_t{1} << 20;
  static constexpr std::size_t writeback_bytes = std::size_t{8} << 20;
  /// Blocks from this size up are written straight from the caller's memory (xsputn).
  static constexpr std::size_t direct_bytes = std::size_t{64} << 10;

  explicit fd_streambuf(int fd, bool start_writeback = false)
      : fd_(fd), start_writeback_(start_writeback), front_(buffer_bytes), back_(buffer_bytes) {
    setp(front_.data(), front_.data() + front_.size());
  }
  fd_streambuf(fd_streambuf const&) = delete;
  fd_streambuf& operator=(fd_streambuf const&) = delete;
  ~fd_streambuf() override {
    if (writer_.joinable()) {
      {
        std::lock_guard lock(mutex_);
        stop_ = true;
      }
      wake_.notify_all();
      writer_.join();
    }
  }

  /// The errno of the first failed write, 0 if none.
  [[nodiscard]] int error() const noexcept { return error_.load(); }

 protected:
  int_type overflow(int_type ch) override {
    if (!drain()) return traits_type::eof();
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(ch);
      pbump(1);
    }
    return traits_type::not_eof(ch);
  }

  std::streamsize xsputn(char const* s, std::streamsize n) override {
    if (n <= 0) return 0;  // an empty write may pass a null pointer
    if (static_cast<std::size_t>(n) >= direct_bytes) {
      // A large block (write_in_order's chunks): the buffered text goes first, then the
      // block is written from the caller's memory on the caller's thread, without a copy.
      if (!drain()) return 0;
      wait_idle();
      if (!write_all(s, static_cast<std::size_t>(n))) return 0;
      started_writeback(static_cast<std::size_t>(n));
      return n;
    }
    auto left = static_cast<std::size_t>(n);
    while (left > 0) {
      auto const room = static_cast<std::size_t>(epptr() - pptr());
      if (room == 0) {
        if (!drain()) return n - static_cast<std::streamsize>(left);
        continue;
      }
      auto const take = std::min(room, left);
      std::memcpy(pptr(), s, take);
      pbump(static_cast<int>(take));
      s += take;
      left -= take;
    }
    return n;
  }

  int sync() override {
    if (!drain()) return -1;
    wait_idle();
    return error() == 0 ? 0 : -1;
  }

 private:
  bool write_all(char const* p, std::size_t n) noexcept {
    if (error_.load() != 0) return false;
    while (n > 0) {
      ssize_t const w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        error_.store(errno);
        return false;
      }
      if (w == 0) {
        error_.store(EIO);
        return false;
      }
      p += w;
      n -= static_cast<std::size_t>(w);
    }
    return true;
  }

  // Counts `size` bytes written and starts the writeback of each further writeback_bytes
  // (with start_writeback). Called by one thread at a time: the writer thread, or the
  // caller's once the writer is idle.
  void started_writeback(std::size_t size) noexcept {
    if (!start_writeback_) return;
    written_ += size;
    if (written_ - started_ >= writeback_bytes) {
      ::sync_file_range(fd_, static_cast<off_t>(started_), static_cast<off_t>(written_ - started_),
                        SYNC_FILE_RANGE_WRITE);
      started_ = written_;
    }
  }

  void wait_idle() {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [&] { return pending_ == 0; });
  }

  // Hands the filled part of the front buffer to the writer thread and continues in the
  // other one, after the writer has finished with it.
  bool drain() {
    auto const size = static_cast<std::size_t>(pptr() - pbase());
    if (size == 0) return error() == 0;
    wait_idle();
    if (error() != 0) return false;
    if (!writer_.joinable()) writer_ = std::thread([this] { write_loop(); });
    front_.swap(back_);
    {
      std::lock_guard lock(mutex_);
      pending_ = size;
    }
    wake_.notify_one();
    setp(front_.data(), front_.data() + front_.size());
    return true;
  }

  void write_loop() noexcept {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return pending_ != 0 || stop_; });
      if (pending_ == 0) return;
      auto const size = pending_;
      lock.unlock();
      if (write_all(back_.data(), size)) started_writeback(size);
      lock.lock();
      pending_ = 0;
      idle_.notify_all();
    }
  }

  int fd_;
  bool start_writeback_;
  std::size_t written_ = 0;  // bytes written (started_writeback's thread only)
  std::size_t started_ = 0;  // bytes whose writeback was started (likewise)
  // The caller fills front_; the writer thread writes back_[0, pending_) while pending_ > 0.
  std::vector<char> front_;
  std::vector<char> back_;
  std::atomic<int> error_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::size_t pending_ = 0;
  bool stop_ = false;
  std::thread writer_;
};

// The names a signal handler removes: a fixed table in static storage, filled and read
// with atomics only, so that the handler neither allocates nor locks. A slot is
// 0 free, 1 being filled, 2 live.
inline constexpr int registry_slots = 64;
inline constexpr std::size_t registry_name_bytes = 256;
struct registry_slot {
  std::atomic<int> state{0};
  int dirfd = -1;
  char name[registry_name_bytes] = {};
};
inline registry_slot registry[registry_slots];

/// The slot holding (dirfd, name), or -1 when the table is full or the name too long
/// (then a signal leaves that name behind; a normal failure still removes it).
inline int register_name(int dirfd, std::string const& name) noexcept {
  if (name.size() >= registry_name_bytes) return -1;
  for (int i = 0; i < registry_slots; ++i) {
    int expected = 0;
    if (registry[i].state.compare_exchange_strong(expected, 1, std::memory_order_acquire)) {
      registry[i].dirfd = dirfd;
      std::memcpy(registry[i].name, name.c_str(), name.size() + 1);
      registry[i].state.store(2, std::memory_order_release);
      return i;
    }
  }
  return -1;
}

inline void unregister_name(int& slot) noexcept {
  if (slot >= 0) registry[slot].state.store(0, std::memory_order_release);
  slot = -1;
}

/// Test hook: true makes commits create named temporaries up front, as on a file
/// system without O_TMPFILE.
inline std::atomic<bool> force_named_temporaries{false};

/// Benchmark hook: false makes commits write temporaries without starting their
/// writeback early (fd_streambuf's start_writeback), as before issue 21.
inline std::atomic<bool> early_writeback{true};

inline std::atomic<unsigned long long> name_counter{0};

/// `.<name><kind>-<pid>-<n>`, the name shortened so the whole stays within NAME_MAX.
inline std::string hidden_name(std::string const& name, char const* kind) {
  std::string const suffix =
      message(kind, "-", static_cast<long long>(::getpid()), "-", name_counter.fetch_add(1));
  return "." + name.substr(0, std::min<std::size_t>(name.size(), 200)) + suffix;
}

/// How a target is written.
enum class target_kind { absent, regular, in_place };

/// Where an output really goes: its symbolic links followed, its directory checked.
struct resolved {
  std::filesystem::path path;  // after symbolic links
  std::filesystem::path dir;   // its directory ("." for a bare name)
  std::string name;            // its file name in `dir`
  target_kind kind = target_kind::absent;
  struct stat st {};      // the target's, unless absent
  struct stat dir_st {};  // the directory's
};

inline std::string who(std::string const& label, std::filesystem::path const& path) {
  return (label.empty() ? std::string() : label + ": ") + "cannot write '" + path.string() + "'";
}

/// Follows `path`'s symbolic links and classifies the final target.
/// @throws invalid_argument for an unwritable kind of path, mgpu::error otherwise.
inline resolved resolve(std::filesystem::path const& path, std::string const& label) {
  namespace fs = std::filesystem;
  if (path.empty()) {
    throw invalid_argument((label.empty() ? std::string() : label + ": ") +
                           "the output path is empty");
  }
  resolved r;
  r.path = path;
  bool exists = true;
  for (int links = 0;; ++links) {
    if (links > 40) throw error(who(label, path) + ": too many levels of symbolic links");
    if (::lstat(r.path.c_str(), &r.st) != 0) {
      if (errno != ENOENT) throw error(who(label, path) + ": " + reason(errno));
      exists = false;
      break;
    }
    if (!S_ISLNK(r.st.st_mode)) break;
    std::string target(static_cast<std::size_t>(r.st.st_size > 0 ? r.st.st_size : 4095) + 1, '\0');
    ssize_t const n = ::readlink(r.path.c_str(), target.data(), target.size());
    if (n < 0) throw error(who(label, path) + ": " + reason(errno));
    target.resize(static_cast<std::size_t>(n));
    fs::path const t(target);
    r.path = t.is_absolute() ? t : r.path.parent_path() / t;
  }
  std::string const shown =
      r.path == path ? std::string() : " (a symbolic link to '" + r.path.string() + "')";
  if (exists) {
    mode_t const m = r.st.st_mode;
    if (S_ISREG(m)) {
      r.kind = target_kind::regular;
    } else if (S_ISCHR(m) || S_ISFIFO(m)) {
      r.kind = target_kind::in_place;
    } else {
      char const* what = S_ISDIR(m) ? "a directory" : S_ISBLK(m) ? "a block device" : S_ISSOCK(m) ? "a socket" : "not a file";
      throw invalid_argument(who(label, path) + shown + ": it is " + what +
                             "; give the path of a file to write");
    }
  }
  r.name = r.path.filename().string();
  if (r.name.empty() || r.name == "." || r.name == "..") {
    throw invalid_argument(who(label, path) + ": it names a directory; give the path of a file to write");
  }
  r.dir = r.path.parent_path();
  if (r.dir.empty()) r.dir = ".";
  if (::stat(r.dir.c_str(), &r.dir_st) != 0) {
    throw error(who(label, path) + shown + ": directory '" + r.dir.string() + "': " + reason(errno));
  }
  if (!S_ISDIR(r.dir_st.st_mode)) {
    throw error(who(label, path) + shown + ": '" + r.dir.string() + "' is not a directory");
  }
  if (r.kind == target_kind::in_place || r.kind == target_kind::regular) {
    if (::faccessat(AT_FDCWD, r.path.c_str(), W_OK, AT_EACCESS) != 0) {
      throw error(who(label, path) + shown + ": " + reason(errno));
    }
  }
  if (r.kind != target_kind::in_place &&
      ::faccessat(AT_FDCWD, r.dir.c_str(), W_OK | X_OK, AT_EACCESS) != 0) {
    throw error(who(label, path) + shown + ": cannot create files in directory '" + r.dir.string() +
                "': " + reason(errno));
  }
  return r;
}

inline bool same_file(resolved const& a, resolved const& b) {
  if (a.kind == target_kind::in_place && S_ISCHR(a.st.st_mode)) return false;
  if (b.kind == target_kind::in_place && S_ISCHR(b.st.st_mode)) return false;
  if (a.kind != target_kind::absent && b.kind != target_kind::absent &&
      a.st.st_dev == b.st.st_dev && a.st.st_ino == b.st.st_ino) {
    return true;
  }
  return a.dir_st.st_dev == b.dir_st.st_dev && a.dir_st.st_ino == b.dir_st.st_ino && a.name == b.name;
}

/// Closes a descriptor, retrying nothing (a failed close(2) must not be retried on Linux).
inline int close_fd(int& fd) noexcept {
  int rc = 0;
  if (fd >= 0) rc = ::close(fd);
  fd = -1;
  return rc == 0 ? 0 : errno;
}

/// One output's state during a commit; the destructor removes whatever is left.
struct pending {
  int dirfd = -1;
  int fd = -1;
  std::string temp;    // hidden name of the temporary once it has one
  std::string backup;  // hidden hard link to the previous target, if made
  int temp_slot = -1;
  int backup_slot = -1;

  pending() = default;
  pending(pending const&) = delete;
  pending& operator=(pending const&) = delete;
  ~pending() {
    close_fd(fd);
    if (!temp.empty()) ::unlinkat(dirfd, temp.c_str(), 0);
    if (!backup.empty()) ::unlinkat(dirfd, backup.c_str(), 0);
    unregister_name(temp_slot);
    unregister_name(backup_slot);
    close_fd(dirfd);
  }
};

inline void handle_signal(int sig) {
  int const saved = errno;
  for (auto& slot : registry) {
    if (slot.state.load(std::memory_order_acquire) == 2) ::unlinkat(slot.dirfd, slot.name, 0);
  }
  errno = saved;
  // SA_RESETHAND restored the default action; it runs once this handler returns.
  ::raise(sig);
}

}  // namespace detail::out

/// Removes the named temporaries and backups of every commit in progress. Async-signal-
/// safe: for a program's own SIGINT/SIGTERM/SIGHUP handler (or an atexit hook); the
/// unnamed O_TMPFILE temporaries need nothing.
inline void remove_output_temporaries() noexcept {
  for (auto& slot : detail::out::registry) {
    if (slot.state.load(std::memory_order_acquire) == 2) ::unlinkat(slot.dirfd, slot.name, 0);
  }
}

/// Opt-in: installs handlers for SIGINT, SIGTERM, SIGHUP and SIGPIPE that call
/// remove_output_temporaries() and then let the signal take its default action (the
/// process ends as it would have without the handler, with the same wait status). A
/// signal that is ignored or already handled is left alone. Idempotent and thread-safe;
/// call it early in main(), before starting threads. @throws nothing.
inline void remove_temporaries_on_signal() noexcept {
  static std::once_flag once;
  std::call_once(once, [] {
    for (int const sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) {
      struct sigaction old {};
      if (::sigaction(sig, nullptr, &old) != 0) continue;
      if ((old.sa_flags & SA_SIGINFO) != 0 || old.sa_handler != SIG_DFL) continue;
      struct sigaction sa {};
      sa.sa_handler = detail::out::handle_signal;
      ::sigemptyset(&sa.sa_mask);
      ::sigaddset(&sa.sa_mask, SIGINT);
      ::sigaddset(&sa.sa_mask, SIGTERM);
      ::sigaddset(&sa.sa_mask, SIGHUP);
      ::sigaddset(&sa.sa_mask, SIGPIPE);
      sa.sa_flags = static_cast<int>(SA_RESETHAND);
      ::sigaction(sig, &sa, nullptr);
    }
  });
}

/// A set of output files written as one commit; see the file comment for the
/// guarantees. Typical use: add() every output before the long work, check(), then
/// set_writer() once the results exist and commit().
class output_set {
 public:
  /// Index of an output in its set.
  using output_id = std::size_t;

  /// Adds an output whose writer is given later with set_writer(). `label` names the
  /// output in error messages, e.g. the command-line option ("--output"). Nothing is
  /// checked or touched until check() or commit().
  output_id add(std::filesystem::path path, std::string label = {}) {
    outputs_.push_back({std::move(path), std::move(label), {}});
    return outputs_.size() - 1;
  }

  /// Adds an output together with its writer.
  output_id add(std::filesystem::path path, output_writer write, std::string label = {}) {
    outputs_.push_back({std::move(path), std::move(label), std::move(write)});
    return outputs_.size() - 1;
  }

  /// Sets (or replaces) the writer of output `id`. @throws invalid_argument for a bad id.
  void set_writer(output_id id, output_writer write) {
    MGPU_EXPECTS(id < outputs_.size(), "output_set::set_writer: no output ", id, " (", outputs_.size(),
                 " added)");
    outputs_[id].write = std::move(write);
  }

  [[nodiscard]] std::size_t size() const noexcept { return outputs_.size(); }
  [[nodiscard]] std::filesystem::path const& path(output_id id) const { return outputs_.at(id).path; }

  /// Checks that every output can be written now: the path is not empty, not a
  /// directory, block device or socket; its directory exists and is writable (for a
  /// file that is created or replaced); an existing target is writable; no two outputs
  /// name the same file. Opens nothing (a FIFO without a reader does not block) and
  /// changes nothing. O(outputs²).
  /// @throws invalid_argument or mgpu::error (see the file comment) for the first bad output.
  void check() const { (void)resolve_all(); }

  /// Writes every output as one commit (see the file comment); the set can be committed
  /// again afterwards. Blocks while a FIFO target has no reader.
  /// @throws invalid_argument when an output has no writer or its path is refused;
  ///         mgpu::error naming the path and reason when it cannot be written; whatever a
  ///         writer throws. In every case no temporary remains and no regular target changed.
  void commit() {
    using namespace detail::out;
    for (auto const& o : outputs_) {
      MGPU_EXPECTS(static_cast<bool>(o.write), who(o.label, o.path), ": output_set::commit: no writer was set");
    }
    auto const targets = resolve_all();
    std::vector<pending> work(outputs_.size());
    for (std::size_t i = 0; i < outputs_.size(); ++i) {
      if (targets[i].kind != target_kind::in_place) write_temporary(i, targets[i], work[i]);
    }
    // Each temporary's writeback was started when it was written (write_temporary): the
    // disk writes of one output overlap the formatting of the next; now wait for all.
    for (std::size_t i = 0; i < outputs_.size(); ++i) {
      if (targets[i].kind != target_kind::in_place && ::fsync(work[i].fd) != 0) fail(i, "", errno);
    }
    for (std::size_t i = 0; i < outputs_.size(); ++i) {
      if (targets[i].kind == target_kind::in_place) write_in_place(i, targets[i]);
    }
    for (std::size_t i = 0; i < outputs_.size(); ++i) {
      if (targets[i].kind != target_kind::in_place) name_temporary(i, targets[i], work[i]);
    }
    rename_all(targets, work);
  }

 private:
  struct output {
    std::filesystem::path path;
    std::string label;
    output_writer write;
  };

  [[nodiscard]] std::vector<detail::out::resolved> resolve_all() const {
    std::vector<detail::out::resolved> targets;
    targets.reserve(outputs_.size());
    for (std::size_t i = 0; i < outputs_.size(); ++i) {
      targets.push_back(detail::out::resolve(outputs_[i].path, outputs_[i].label));
      for (std::size_t j = 0; j < i; ++j) {
        if (detail::out::same_file(targets[j], targets[i])) {
          auto const name = [&](std::size_t k) {
            return (outputs_[k].label.empty() ? std::string("output") : outputs_[k].label) + " '" +
                   outputs_[k].path.string() + "'";
          };
          throw invalid_argument(name(j) + " and " + name(i) +
                                 " are the same file; give each output its own path");
        }
      }
    }
    return targets;
  }

  [[noreturn]] void fail(std::size_t i, std::string const& what, int code) const {
    throw error(detail::out::who(outputs_[i].label, outputs_[i].path) + ": " + what +
                (code != 0 ? detail::out::reason(code) : std::string()));
  }

  /// Runs output i's writer into `fd`; a failed write(2) becomes mgpu::error with its errno.
  void run_writer(std::size_t i, int fd, bool start_writeback) const {
    detail::out::fd_streambuf buffer(fd, start_writeback);
    std::ostream stream(&buffer);
    try {
      outputs_[i].write(stream);
      stream.flush();
    } catch (...) {
      if (buffer.error() != 0) fail(i, "", buffer.error());
      throw;
    }
    if (buffer.error() != 0) fail(i, "", buffer.error());
    if (!stream) fail(i, "the writer left its stream in a failed state", 0);
  }

  void write_temporary(std::size_t i, detail::out::resolved const& t, detail::out::pending& p) const {
    using namespace detail::out;
    p.dirfd = ::open(t.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (p.dirfd < 0) fail(i, "directory '" + t.dir.string() + "': ", errno);
    if (!force_named_temporaries.load() && ::access("/proc/self/fd", X_OK) == 0) {
      p.fd = ::openat(p.dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
    }
    for (int attempt = 0; p.fd < 0 && attempt < 100; ++attempt) {
      std::string name = hidden_name(t.name, ".tmp");
      int const slot = register_name(p.dirfd, name);
      p.fd = ::openat(p.dirfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (p.fd >= 0) {
        p.temp = std::move(name);
        p.temp_slot = slot;
        break;
      }
      int const code = errno;
      int dropped = slot;
      unregister_name(dropped);
      if (code != EEXIST) fail(i, "cannot create a temporary in '" + t.dir.string() + "': ", code);
    }
    if (p.fd < 0) fail(i, "cannot create a temporary in '" + t.dir.string() + "': ", EEXIST);
    run_writer(i, p.fd, early_writeback.load());
    if (t.kind == target_kind::regular && ::fchmod(p.fd, t.st.st_mode & 07777) != 0) {
      fail(i, "cannot copy the permissions of the file it replaces: ", errno);
    }
    // Start the writeback of what is left (commit fsyncs every temporary once all are
    // written); a failure here is ignored: the fsync reports the real errors.
    if (early_writeback.load()) ::sync_file_range(p.fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  }

  void write_in_place(std::size_t i, detail::out::resolved const& t) const {
    int fd = ::open(t.path.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) fail(i, "", errno);
    try {
      run_writer(i, fd, false);
    } catch (...) {
      detail::out::close_fd(fd);
      throw;
    }
    if (int const code = detail::out::close_fd(fd); code != 0) fail(i, "", code);
  }

  /// Gives an unnamed temporary its hidden name, and the current target a backup link.
  void name_temporary(std::size_t i, detail::out::resolved const& t, detail::out::pending& p) const {
    using namespace detail::out;
    for (int attempt = 0; p.temp.empty(); ++attempt) {
      std::string name = hidden_name(t.name, ".tmp");
      int const slot = register_name(p.dirfd, name);
      std::string const proc = "/proc/self/fd/" + std::to_string(p.fd);
      if (::linkat(AT_FDCWD, proc.c_str(), p.dirfd, name.c_str(), AT_SYMLINK_FOLLOW) == 0) {
        p.temp = std::move(name);
        p.temp_slot = slot;
        break;
      }
      int const code = errno;
      int dropped = slot;
      unregister_name(dropped);
      if (code != EEXIST || attempt == 100) fail(i, "cannot link the temporary into '" + t.dir.string() + "': ", code);
    }
    if (int const code = close_fd(p.fd); code != 0) fail(i, "", code);
    if (t.kind != target_kind::regular) return;
    // A backup is what makes a failed rename undoable; without one (no hard links on
    // this file system) the rename is still atomic, only the rollback is lost.
    for (int attempt = 0; attempt < 100; ++attempt) {
      std::string name = hidden_name(t.name, ".bak");
      int const slot = register_name(p.dirfd, name);
      if (::linkat(p.dirfd, t.name.c_str(), p.dirfd, name.c_str(), 0) == 0) {
        p.backup = std::move(name);
        p.backup_slot = slot;
        break;
      }
      int dropped = slot;
      unregister_name(dropped);
      if (errno != EEXIST) break;
    }
  }

  void rename_all(std::vector<detail::out::resolved> const& targets,
                  std::vector<detail::out::pending>& work) const {
    using namespace detail::out;
    std::vector<std::size_t> done;
    for (std::size_t i = 0; i < outputs_.size(); ++i) {
      if (targets[i].kind == target_kind::in_place) continue;
      auto& p = work[i];
      if (::renameat(p.dirfd, p.temp.c_str(), p.dirfd, targets[i].name.c_str()) != 0) {
        int const code = errno;
        for (std::size_t k : done) undo(targets[k], work[k]);
        fail(i, "cannot rename the temporary into place: ", code);
      }
      p.temp.clear();
      unregister_name(p.temp_slot);
      done.push_back(i);
    }
    for (std::size_t i : done) {
      ::fsync(work[i].dirfd);  // durability of the renames; the commit has happened either way
    }
  }

  static void undo(detail::out::resolved const& t, detail::out::pending& p) noexcept {
    if (!p.backup.empty()) {
      if (::renameat(p.dirfd, p.backup.c_str(), p.dirfd, t.name.c_str()) == 0) p.backup.clear();
    } else if (t.kind == detail::out::target_kind::absent) {
      ::unlinkat(p.dirfd, t.name.c_str(), 0);
    }
  }

  std::vector<output> outputs_;
};

/// A growable byte buffer that text formatters write into directly: room(n) gives at
/// least n writable bytes after the current end (the pointer stays valid until the next
/// call that may grow the buffer), advance(end) keeps what was written up to `end`.
/// Unlike std::string, growing does not zero the new bytes. Amortised O(1) per byte.
/// @throws std::bad_alloc when it cannot grow.
class text_buffer {
 public:
  text_buffer() = default;
  explicit text_buffer(std::size_t capacity) { reserve(capacity); }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] char const* data() const noexcept { return data_.get(); }
  [[nodiscard]] std::string_view view() const noexcept { return {data_.get(), size_}; }
  void clear() noexcept { size_ = 0; }
  void reserve(std::size_t n) {
    if (n > capacity_) grow_to(n);
  }

  /// At least `n` writable bytes at the end of the text.
  [[nodiscard]] char* room(std::size_t n) {
    if (capacity_ - size_ < n) grow_to(std::max(size_ + n, capacity_ * 2));
    return data_.get() + size_;
  }
  /// Keeps the bytes written from the end of the text up to `end` (a pointer given by room()).
  void advance(char* end) noexcept { size_ = static_cast<std::size_t>(end - data_.get()); }

  void append(char const* s, std::size_t n) {
    if (n == 0) return;
    std::memcpy(room(n), s, n);
    size_ += n;
  }
  void append(std::string_view s) { append(s.data(), s.size()); }
  text_buffer& operator+=(std::string_view s) {
    append(s);
    return *this;
  }
  text_buffer& operator+=(char c) {
    *room(1) = c;
    ++size_;
    return *this;
  }

 private:
  void grow_to(std::size_t n) {
    n = std::max<std::size_t>(n, 256);
    auto bigger = std::make_unique_for_overwrite<char[]>(n);
    if (size_ > 0) std::memcpy(bigger.get(), data_.get(), size_);
    data_ = std::move(bigger);
    capacity_ = n;
  }

  std::unique_ptr<char[]> data_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

/// How the parallel text writers cut their work (0 = the writer's default).
struct parallel_write_options {
  /// Entries (rows of a neighbour file, nonzeros of a matrix) per chunk of text.
  std::int64_t entries_per_chunk = 0;
  /// Chunks formatted or waiting to be written at a time (the chunk buffers); 0: 4 per
  /// host thread (backend::cpu::host_threads()).
  std::int64_t chunks_in_flight = 0;
};

namespace detail::out {

/// A chunk buffer of write_in_order: it holds chunk `chunk` once `ready`. One cache line
/// (or more) each: a thread formatting into its slot updates the text's size at every
/// append, which must not invalidate the line another thread's slot is on.
struct alignas(64) chunk_slot {
  text_buffer text;
  std::exception_ptr error;
  std::int64_t chunk = 0;  // the chunk this buffer is for (now or next)
  bool ready = false;      // formatted, not yet written
};

}  // namespace detail::out

/// Writes chunks [0, chunks) of an output to `out` in order, formatting them on the host's
/// threads: `format(text_buffer& text, std::int64_t chunk)` appends chunk `chunk`'s text
/// to an empty `text` and is called concurrently from several threads for different
/// chunks (it must be safe to call so: it should only read shared data).
///
/// How: every thread of a backend::cpu::parallel_for claims the next chunk (in increasing
/// order), formats it into one of `options.chunks_in_flight` buffers (chunk c uses buffer
/// c mod that number, once chunk c - that number is written; a thread waits on a
/// condition variable, without spinning, until then), and the thread that completes the
/// lowest chunk not yet written writes it and every chunk after it that is ready, in
/// order, while the others go on formatting. Through an output_set, those writes go to
/// the stream's own writer thread (fd_streambuf), which calls write(2).
///
/// The bytes written are those of calling format for chunks 0, 1, ... in order into one
/// stream, whatever the threads and buffers, as long as a chunk's text depends on the
/// chunk alone. If format throws for chunk c, the text of chunks [0, c) and what chunk c
/// appended before throwing are written, nothing after, and that exception is rethrown on
/// the calling thread: the first one in chunk order, as in a serial run.
///
/// O(total bytes) work spread over the threads; memory: the text of chunks_in_flight chunks.
/// @throws what format throws (see above); mgpu::error "<what> failed: the output stream
///         is in a failed state" when `out` fails.
template <class Format>
void write_in_order(std::ostream& out, std::int64_t chunks, Format&& format,
                    parallel_write_options const& options = {}, std::string_view what = "writing text") {
  if (chunks <= 0) return;
  std::int64_t const threads = backend::cpu::host_threads();
  std::int64_t const slots =
      std::min(chunks, options.chunks_in_flight > 0 ? options.chunks_in_flight : 4 * threads);
  std::vector<detail::out::chunk_slot> slot(static_cast<std::size_t>(slots));
  for (std::int64_t i = 0; i < slots; ++i) slot[static_cast<std::size_t>(i)].chunk = i;
  std::atomic<std::int64_t> next_claim{0};
  std::mutex mutex;
  std::condition_variable freed;
  std::int64_t next_write = 0;  // the lowest chunk not yet written (under `mutex`)
  bool writing = false;         // a thread is writing (under `mutex`)
  bool failed = false;          // a write or a chunk failed: stop (under `mutex`)
  auto const slot_of = [&](std::int64_t c) -> detail::out::chunk_slot& {
    return slot[static_cast<std::size_t>(c % slots)];
  };

  backend::cpu::parallel_for(std::min(threads, chunks), [&](std::int64_t) {
    for (;;) {
      std::int64_t const c = next_claim.fetch_add(1);
      if (c >= chunks) return;
      auto& mine = slot_of(c);
      {
        std::unique_lock lock(mutex);
        freed.wait(lock, [&] { return mine.chunk == c || failed; });
        if (failed) return;
      }
      mine.text.clear();
      mine.error = nullptr;
      try {
        format(mine.text, c);
      } catch (...) {
        mine.error = std::current_exception();
      }
      std::unique_lock lock(mutex);
      mine.ready = true;
      if (writing || failed) continue;  // the thread writing takes it, in its turn
      writing = true;
      while (!failed && next_write < chunks && slot_of(next_write).ready) {
        auto& w = slot_of(next_write);
        lock.unlock();
        try {
          if (!w.text.empty()) out.write(w.text.data(), static_cast<std::streamsize>(w.text.size()));
          if (!out) throw error(std::string(what) + " failed: the output stream is in a failed state");
          if (w.error) std::rethrow_exception(w.error);
        } catch (...) {
          lock.lock();
          failed = true;
          writing = false;
          freed.notify_all();
          throw;
        }
        lock.lock();
        w.ready = false;
        w.chunk = next_write + slots;
        ++next_write;
        freed.notify_all();
      }
      writing = false;
    }
  });
}

/// Cuts rows [0, rows) into consecutive ranges of about `entries` entries each by CSR
/// row offsets (`offsets`: rows + 1 non-decreasing values; a row's entries are
/// [offsets[r], offsets[r + 1])): returns the boundaries b_0 = 0 < b_1 < ... < b_m = rows,
/// range i being rows [b_i, b_{i+1}). Every range but the last holds at least `entries`
/// entries and at most `entries - 1` more than its last row's. O(m log rows).
/// @throws invalid_argument when entries < 1.
template <class Offset>
[[nodiscard]] std::vector<std::int64_t> split_rows_by_entries(std::span<Offset const> offsets, std::int64_t entries) {
  MGPU_EXPECTS(entries >= 1, "split_rows_by_entries: entries per range must be >= 1, got ", entries);
  std::vector<std::int64_t> bounds{0};
  if (offsets.size() < 2) return bounds;
  auto const rows = static_cast<std::int64_t>(offsets.size()) - 1;
  auto const last = static_cast<std::int64_t>(offsets.back());
  std::int64_t r = 0;
  while (r < rows) {
    // The first row boundary at or past `entries` entries from row r's start.
    auto const want = static_cast<std::int64_t>(offsets[static_cast<std::size_t>(r)]) + entries;
    std::int64_t next = rows;
    if (want < last) {
      auto const it = std::lower_bound(offsets.begin() + r + 1, offsets.end(), want,
                                       [](Offset a, std::int64_t b) { return static_cast<std::int64_t>(a) < b; });
      next = std::min(rows, static_cast<std::int64_t>(it - offsets.begin()));
    }
    bounds.push_back(next);
    r = next;
  }
  return bounds;
}

}  // namespace mgpu
