// mgpu/core/error.hpp — the exception hierarchy and the precondition macros.
//
// Every check in mgpu throws, in every build type (no assert that vanishes under
// NDEBUG). Messages say what was wrong and where: the sizes that disagree, the row or
// position of a malformed entry, the file and line of a parse failure.
#pragma once

#include <cstddef>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace mgpu {

/// Base of every exception mgpu throws.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// An argument outside its documented domain (k <= 0, a bad device string, ...).
class invalid_argument : public error {
 public:
  using error::error;
};

/// Sizes or shapes that must agree do not; the message gives both.
class dimension_mismatch : public error {
 public:
  using error::error;
};

/// A structurally invalid sparse matrix (bad offsets, column out of range, ...);
/// the message names the row or position.
class format_error : public error {
 public:
  using error::error;
};

/// A size, product of sizes or count that does not fit the index type in use.
class index_overflow : public error {
 public:
  using error::error;
};

/// A saved index or model that cannot be loaded: not an mgpu file, another kind or an
/// unsupported version, truncated, or corrupted (a checksum that does not match). The
/// message names the file, the byte offset and what was expected there.
class file_format_error : public error {
 public:
  using error::error;
};

/// Malformed input file or stream; the message starts with `file:line:`.
class parse_error : public error {
 public:
  parse_error(std::string const& file, std::size_t line, std::string const& what)
      : error(file + ":" + std::to_string(line) + ": " + what), file_(file), line_(line) {}
  [[nodiscard]] std::string const& file() const noexcept { return file_; }
  /// 1-based line number; 0 when the error is not tied to a line (e.g. empty file).
  [[nodiscard]] std::size_t line() const noexcept { return line_; }

 private:
  std::string file_;
  std::size_t line_;
};

/// An allocation failed or a job cannot fit even in one batch.
class out_of_memory : public error {
 public:
  out_of_memory(std::size_t requested, std::size_t available, std::string const& where)
      : error(where + ": cannot allocate " + std::to_string(requested) + " bytes (" +
              std::to_string(available) + " bytes free)"),
        requested_(requested),
        available_(available) {}
  [[nodiscard]] std::size_t requested_bytes() const noexcept { return requested_; }
  [[nodiscard]] std::size_t available_bytes() const noexcept { return available_; }

 private:
  std::size_t requested_;
  std::size_t available_;
};

/// A failure reported by a device runtime or a vendor library.
class device_error : public error {
 public:
  using error::error;
};

/// A failed call into a GPU runtime or vendor library: the library's status name
/// (e.g. "cudaErrorMemoryAllocation"), the call as written in the source, and the
/// file:line of the call. The vendor subclasses below are thrown by the MGPU_*_TRY
/// macros of the CUDA backend; this header stays free of vendor headers.
class device_call_error : public device_error {
 public:
  device_call_error(std::string const& library, std::string status_name, std::string call,
                    std::string file, int line, std::string const& description = {})
      : device_error(library + " call " + call + " failed: " + status_name +
                     (description.empty() ? std::string() : " (" + description + ")") + " at " +
                     file + ":" + std::to_string(line)),
        status_name_(std::move(status_name)),
        call_(std::move(call)),
        file_(std::move(file)),
        line_(line) {}
  [[nodiscard]] std::string const& status_name() const noexcept { return status_name_; }
  [[nodiscard]] std::string const& call() const noexcept { return call_; }
  [[nodiscard]] std::string const& file() const noexcept { return file_; }
  [[nodiscard]] int line() const noexcept { return line_; }

 private:
  std::string status_name_;
  std::string call_;
  std::string file_;
  int line_;
};

/// A CUDA runtime call failed (cudaError_t).
class cuda_error : public device_call_error {
 public:
  cuda_error(std::string status_name, std::string call, std::string file, int line,
             std::string const& description = {})
      : device_call_error("CUDA", std::move(status_name), std::move(call), std::move(file), line,
                          description) {}
};

/// A cuSPARSE call failed (cusparseStatus_t).
class cusparse_error : public device_call_error {
 public:
  cusparse_error(std::string status_name, std::string call, std::string file, int line,
                 std::string const& description = {})
      : device_call_error("cuSPARSE", std::move(status_name), std::move(call), std::move(file),
                          line, description) {}
};

/// A cuBLAS call failed (cublasStatus_t).
class cublas_error : public device_call_error {
 public:
  cublas_error(std::string status_name, std::string call, std::string file, int line,
               std::string const& description = {})
      : device_call_error("cuBLAS", std::move(status_name), std::move(call), std::move(file), line,
                          description) {}
};

/// A cuSOLVER call failed (cusolverStatus_t).
class cusolver_error : public device_call_error {
 public:
  cusolver_error(std::string status_name, std::string call, std::string file, int line,
                 std::string const& description = {})
      : device_call_error("cuSOLVER", std::move(status_name), std::move(call), std::move(file),
                          line, description) {}
};

/// A numerical failure, e.g. a system that is not symmetric positive definite.
class numerical_error : public error {
 public:
  using error::error;
};

namespace detail {

/// Builds a message from streamable pieces: `message("row ", r, " has ", n)`.
template <class... Parts>
[[nodiscard]] std::string message(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

}  // namespace detail
}  // namespace mgpu

/// Throws `mgpu::invalid_argument` built from the message pieces when `cond` is false.
/// Active in every build type.
#define MGPU_EXPECTS(cond, ...)                                              \
  do {                                                                       \
    if (!(cond)) {                                                           \
      throw ::mgpu::invalid_argument(::mgpu::detail::message(__VA_ARGS__)); \
    }                                                                        \
  } while (false)
