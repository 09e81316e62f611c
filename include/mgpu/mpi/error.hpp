// mgpu/mpi/error.hpp — MPI failures as exceptions, and the agreement step that makes every
// distributed operation end the same way on every rank.
//
// A rank that throws inside a distributed operation while the others go on to exchange
// data would leave them waiting for it for ever. So every entry point of the mpi
// component agrees before it exchanges data (and again after its local work):
//
//   agree(comm, "mpi::broadcast", {{"rows", rows}, {"cols", cols}, {"root", root}}, error);
//
// is one MPI_Allgather of a fixed-size record per rank: the rank's status (whether its
// local checks or work threw, and what), a hash of the operation's name and up to eight
// named values. Then, on every rank and in the same order:
//   1. if any rank failed, the lowest-numbered failing rank broadcasts its exception
//      (type, message, and the fields of parse_error / out_of_memory) and every rank
//      throws the same exception, its message prefixed "rank R of N: ";
//   2. if the ranks are in different operations (the hashes differ), every rank throws
//      invalid_argument saying so;
//   3. if a named value differs between ranks (a global shape, k, a root, an option),
//      every rank throws invalid_argument naming the value and two ranks that disagree.
// Cost: one allgather of 11 int64 per rank (plus a broadcast of the message on failure).
//
// What it cannot catch: a rank that never reaches the next distributed call (it threw in
// the program's own code, or it crashed) — its process must end the job, which
// main_guard and the environment arrange (environment.hpp); a call from a thread MPI
// does not allow (below MPI_THREAD_SERIALIZED, another thread than the one that
// initialised MPI), which throws on that rank before any message; ranks whose programs
// call different sequences of MPI operations outside this component.
//
// MPI calls themselves: the component's communicators use MPI_ERRORS_RETURN, and
// MGPU_MPI_TRY turns a failed call into `mpi_error` (status name, call, file:line).
#pragma once

#include <mpi.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <limits>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mgpu/core/error.hpp"

namespace mgpu::mpi {

namespace detail {

/// The name of an MPI error class ("MPI_ERR_TRUNCATE", ...), for messages.
inline std::string error_class_name(int code) {
  int cls = code;
  MPI_Error_class(code, &cls);
  switch (cls) {
    case MPI_SUCCESS: return "MPI_SUCCESS";
    case MPI_ERR_BUFFER: return "MPI_ERR_BUFFER";
    case MPI_ERR_COUNT: return "MPI_ERR_COUNT";
    case MPI_ERR_TYPE: return "MPI_ERR_TYPE";
    case MPI_ERR_TAG: return "MPI_ERR_TAG";
    case MPI_ERR_COMM: return "MPI_ERR_COMM";
    case MPI_ERR_RANK: return "MPI_ERR_RANK";
    case MPI_ERR_REQUEST: return "MPI_ERR_REQUEST";
    case MPI_ERR_ROOT: return "MPI_ERR_ROOT";
    case MPI_ERR_GROUP: return "MPI_ERR_GROUP";
    case MPI_ERR_OP: return "MPI_ERR_OP";
    case MPI_ERR_ARG: return "MPI_ERR_ARG";
    case MPI_ERR_TRUNCATE: return "MPI_ERR_TRUNCATE";
    case MPI_ERR_OTHER: return "MPI_ERR_OTHER";
    case MPI_ERR_INTERN: return "MPI_ERR_INTERN";
    case MPI_ERR_PENDING: return "MPI_ERR_PENDING";
    case MPI_ERR_IN_STATUS: return "MPI_ERR_IN_STATUS";
    case MPI_ERR_NO_MEM: return "MPI_ERR_NO_MEM";
    default: return "MPI error class " + std::to_string(cls);
  }
}

/// MPI's own description of an error code.
inline std::string error_string(int code) {
  std::array<char, MPI_MAX_ERROR_STRING> text{};
  int length = 0;
  if (MPI_Error_string(code, text.data(), &length) != MPI_SUCCESS) return {};
  return std::string(text.data(), static_cast<std::size_t>(length));
}

}  // namespace detail

/// A failed MPI call: the error class's name, the call as written, its file:line and
/// MPI's description. Thrown by MGPU_MPI_TRY.
class mpi_error : public device_call_error {
 public:
  mpi_error(int code, std::string call, std::string file, int line)
      : device_call_error("MPI", detail::error_class_name(code), std::move(call), std::move(file), line,
                          detail::error_string(code)),
        code_(code) {}
  /// The MPI error code the call returned.
  [[nodiscard]] int code() const noexcept { return code_; }

 private:
  int code_;
};

}  // namespace mgpu::mpi

/// Runs an MPI call and throws mgpu::mpi::mpi_error unless it returns MPI_SUCCESS.
#define MGPU_MPI_TRY(call)                                                       \
  do {                                                                           \
    int const mgpu_mpi_status_ = (call);                                         \
    if (mgpu_mpi_status_ != MPI_SUCCESS) {                                       \
      throw ::mgpu::mpi::mpi_error(mgpu_mpi_status_, #call, __FILE__, __LINE__); \
    }                                                                            \
  } while (false)

namespace mgpu::mpi::detail {

using ::mgpu::detail::message;

/// A value every rank must pass equal to an agreement (a global shape, a root, an option).
struct named_value {
  char const* name = "";
  std::int64_t value = 0;
  bool floating = false;  ///< `value` holds a double's bits (printed as a number)
};

/// A double as a named_value (compared bitwise: ranks must pass the same number).
inline named_value floating_value(char const* name, double v) noexcept {
  return {name, std::bit_cast<std::int64_t>(v), true};
}

inline constexpr std::size_t max_agreed_values = 8;

/// FNV-1a over bytes: names of operations and hashes of arrays (bounds) for agreements.
inline std::uint64_t fnv1a(void const* data, std::size_t bytes, std::uint64_t h = 1469598103934665603ull) noexcept {
  auto const* p = static_cast<unsigned char const*>(data);
  for (std::size_t i = 0; i < bytes; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

/// The exception types an agreement carries from one rank to the others.
enum class failure_kind : std::int64_t {
  none = 0,
  error,
  invalid_argument,
  dimension_mismatch,
  format_error,
  index_overflow,
  file_format_error,
  parse_error,
  out_of_memory,
  numerical_error,
  device_error,
  other,
};

/// One rank's exception, in a form that crosses processes.
struct failure {
  failure_kind kind = failure_kind::none;
  std::uint64_t requested = 0;  // out_of_memory
  std::uint64_t available = 0;  // out_of_memory
  std::int64_t line = 0;        // parse_error
  std::string file;             // parse_error
  std::string message;          // what()
};

inline failure describe(std::exception_ptr e) {
  failure f;
  auto const set = [&f](failure_kind kind, char const* what) {
    f.kind = kind;
    f.message = what;
  };
  try {
    std::rethrow_exception(std::move(e));
  } catch (parse_error const& x) {
    set(failure_kind::parse_error, x.what());
    f.file = x.file();
    f.line = static_cast<std::int64_t>(x.line());
  } catch (out_of_memory const& x) {
    set(failure_kind::out_of_memory, x.what());
    f.requested = x.requested_bytes();
    f.available = x.available_bytes();
  } catch (invalid_argument const& x) {
    set(failure_kind::invalid_argument, x.what());
  } catch (dimension_mismatch const& x) {
    set(failure_kind::dimension_mismatch, x.what());
  } catch (format_error const& x) {
    set(failure_kind::format_error, x.what());
  } catch (index_overflow const& x) {
    set(failure_kind::index_overflow, x.what());
  } catch (file_format_error const& x) {
    set(failure_kind::file_format_error, x.what());
  } catch (numerical_error const& x) {
    set(failure_kind::numerical_error, x.what());
  } catch (device_error const& x) {
    set(failure_kind::device_error, x.what());
  } catch (mgpu::error const& x) {
    set(failure_kind::error, x.what());
  } catch (std::bad_alloc const&) {
    set(failure_kind::other, "out of memory (std::bad_alloc)");
  } catch (std::exception const& x) {
    set(failure_kind::other, x.what());
  } catch (...) {
    set(failure_kind::other, "an exception of a type that is not a std::exception");
  }
  return f;
}

/// The last exception an agreement threw on this process (see is_agreed).
inline std::exception_ptr& last_agreed_failure() noexcept {
  static std::exception_ptr e;
  return e;
}

/// True if `e` is the exception the last agreement threw on every rank (the same object,
/// caught and rethrown unchanged); main_guard (environment.hpp) then ends the rank
/// normally instead of aborting the job.
inline bool is_agreed(std::exception_ptr const& e) noexcept { return e && e == last_agreed_failure(); }

/// `f` as an exception of the type it came from, its message prefixed by `where`.
inline std::exception_ptr rebuild(failure const& f, std::string const& where) {
  auto const text = where + f.message;
  switch (f.kind) {
    case failure_kind::invalid_argument: return std::make_exception_ptr(invalid_argument(text));
    case failure_kind::dimension_mismatch: return std::make_exception_ptr(dimension_mismatch(text));
    case failure_kind::format_error: return std::make_exception_ptr(format_error(text));
    case failure_kind::index_overflow: return std::make_exception_ptr(index_overflow(text));
    case failure_kind::file_format_error: return std::make_exception_ptr(file_format_error(text));
    case failure_kind::numerical_error: return std::make_exception_ptr(numerical_error(text));
    case failure_kind::device_error: return std::make_exception_ptr(device_error(text));
    case failure_kind::parse_error: {
      // what() is "file:line: rest"; keep file() and line() and put the rank before rest.
      auto const prefix = f.file + ":" + std::to_string(f.line) + ": ";
      auto const rest = f.message.starts_with(prefix) ? f.message.substr(prefix.size()) : f.message;
      return std::make_exception_ptr(parse_error(f.file, static_cast<std::size_t>(f.line), where + rest));
    }
    case failure_kind::out_of_memory: {
      // what() is "where: cannot allocate ..."; the constructor rebuilds that tail.
      auto const tail = f.message.rfind(": cannot allocate ");
      auto const place = tail == std::string::npos ? f.message : f.message.substr(0, tail);
      return std::make_exception_ptr(out_of_memory(static_cast<std::size_t>(f.requested),
                                                   static_cast<std::size_t>(f.available), where + place));
    }
    default: return std::make_exception_ptr(mgpu::error(text));
  }
}

/// Throws `f` (rebuilt) and remembers it as agreed.
[[noreturn]] inline void raise(failure const& f, std::string const& where) {
  auto e = rebuild(f, where);
  last_agreed_failure() = e;
  std::rethrow_exception(std::move(e));
}

/// Throws an agreed invalid_argument (every rank throws it).
[[noreturn]] inline void raise_invalid(std::string const& text) {
  raise({failure_kind::invalid_argument, 0, 0, 0, {}, text}, {});
}

/// Sends rank `from`'s failure to every rank (called by all; `mine` is read on `from`).
inline failure broadcast_failure(MPI_Comm comm, int rank, int from, failure const& mine) {
  constexpr std::size_t max_text = std::size_t{1} << 16;
  std::array<std::int64_t, 6> head{};
  if (rank == from) {
    head = {static_cast<std::int64_t>(mine.kind), static_cast<std::int64_t>(mine.requested),
            static_cast<std::int64_t>(mine.available), mine.line,
            static_cast<std::int64_t>(std::min(mine.file.size(), max_text)),
            static_cast<std::int64_t>(std::min(mine.message.size(), max_text))};
  }
  MGPU_MPI_TRY(MPI_Bcast(head.data(), static_cast<int>(head.size()), MPI_INT64_T, from, comm));
  failure f;
  f.kind = static_cast<failure_kind>(head[0]);
  f.requested = static_cast<std::uint64_t>(head[1]);
  f.available = static_cast<std::uint64_t>(head[2]);
  f.line = head[3];
  auto const file_size = static_cast<std::size_t>(head[4]);
  auto const message_size = static_cast<std::size_t>(head[5]);
  std::string text = rank == from ? mine.file.substr(0, file_size) + mine.message.substr(0, message_size)
                                  : std::string(file_size + message_size, '\0');
  MGPU_MPI_TRY(MPI_Bcast(text.data(), static_cast<int>(text.size()), MPI_CHAR, from, comm));
  f.file = text.substr(0, file_size);
  f.message = text.substr(file_size);
  return f;
}

inline std::string format_value(named_value const& v, std::int64_t bits) {
  return v.floating ? message(std::bit_cast<double>(bits)) : std::to_string(bits);
}

/// The agreement of every distributed entry point (see the file comment). Collective over
/// `comm`: every rank calls it with the same `what` and the same names, `local` being the
/// exception its own checks or work ended with (null if none).
/// @throws the failing rank's exception (prefixed "rank R of N: "), or invalid_argument
///         (different operations, a value that differs between ranks), or mpi_error.
inline void agree(MPI_Comm comm, std::string_view what, std::initializer_list<named_value> values,
                  std::exception_ptr local) {
  MGPU_EXPECTS(values.size() <= max_agreed_values, what, ": at most ", max_agreed_values,
               " values per agreement, got ", values.size());
  int level = MPI_THREAD_SINGLE;
  MGPU_MPI_TRY(MPI_Query_thread(&level));
  if (level < MPI_THREAD_SERIALIZED) {
    int is_main = 0;
    MGPU_MPI_TRY(MPI_Is_thread_main(&is_main));
    MGPU_EXPECTS(is_main != 0, what, ": called from a thread that did not initialise MPI, whose thread level is ",
                 level, " (below MPI_THREAD_SERIALIZED = ", MPI_THREAD_SERIALIZED,
                 "); call from the main thread or initialise with MPI_THREAD_SERIALIZED");
  }
  int rank = 0;
  int ranks = 1;
  MGPU_MPI_TRY(MPI_Comm_rank(comm, &rank));
  MGPU_MPI_TRY(MPI_Comm_size(comm, &ranks));
  failure const mine = local ? describe(local) : failure{};

  constexpr std::size_t width = 3 + max_agreed_values;
  std::array<std::int64_t, width> record{};
  record[0] = static_cast<std::int64_t>(mine.kind);
  record[1] = std::bit_cast<std::int64_t>(fnv1a(what.data(), what.size()));
  record[2] = static_cast<std::int64_t>(values.size());
  std::size_t slot = 3;
  for (auto const& v : values) record[slot++] = v.value;
  std::vector<std::int64_t> all(width * static_cast<std::size_t>(ranks));
  MGPU_MPI_TRY(MPI_Allgather(record.data(), static_cast<int>(width), MPI_INT64_T, all.data(),
                             static_cast<int>(width), MPI_INT64_T, comm));
  auto const at = [&](int r, std::size_t i) { return all[static_cast<std::size_t>(r) * width + i]; };

  int first_failed = -1;
  int failed = 0;
  for (int r = 0; r < ranks; ++r) {
    if (at(r, 0) == 0) continue;
    ++failed;
    if (first_failed < 0) first_failed = r;
  }
  if (first_failed >= 0) {
    auto const f = broadcast_failure(comm, rank, first_failed, mine);
    auto where = message("rank ", first_failed, " of ", ranks);
    if (failed > 1) where += message(" (the first of ", failed, " ranks that failed)");
    raise(f, where + ": ");
  }
  for (int r = 1; r < ranks; ++r) {
    if (at(r, 1) != at(0, 1) || at(r, 2) != at(0, 2)) {
      raise_invalid(message(
          what, ": rank ", r, " is in another distributed operation than rank 0 (this rank is in ", what,
          "); every rank must call the distributed operations in the same order"));
    }
  }
  slot = 3;
  for (auto const& v : values) {
    for (int r = 1; r < ranks; ++r) {
      if (at(r, slot) != at(0, slot)) {
        raise_invalid(message(what, ": the ranks disagree on ", v.name, ": rank 0 has ",
                                       format_value(v, at(0, slot)), " but rank ", r, " has ",
                                       format_value(v, at(r, slot)), "; every rank must pass the same value"));
      }
    }
    ++slot;
  }
}

/// Runs `f()` and returns the exception it threw (null if none): the local step before an
/// agreement.
template <class F>
std::exception_ptr capture(F&& f) noexcept {
  try {
    std::forward<F>(f)();
  } catch (...) {
    return std::current_exception();
  }
  return nullptr;
}

/// @throws index_overflow unless `n` fits an MPI count (int).
inline int mpi_count(std::int64_t n, char const* what) {
  if (n < 0 || n > std::numeric_limits<int>::max()) {
    throw index_overflow(message(what, ": ", n, " does not fit an MPI count (int)"));
  }
  return static_cast<int>(n);
}

}  // namespace mgpu::mpi::detail
