// mgpu/core/progress.hpp — the one progress interface of every long operation.
//
// Long operations (tfidf_vectorizer::fit / fit_transform, cosine_topk, knn, als::fit,
// index builds and searches) take a `progress_callback` in their options. It is called
// on the calling thread (never from a device worker), after each unit of work, with
// (done, total) in units the operation documents (documents, queries, iterations), done
// non-decreasing and the last call with done == total. An empty callback costs nothing.
// A callback that throws aborts the operation: the exception propagates to the caller
// after the work in flight is joined.
//
// mgpu/io/progress_line.hpp has a ready-made callback that draws a line with rate and
// ETA on a terminal.
#pragma once

#include <cstdint>
#include <functional>

namespace mgpu {

/// Progress of a long operation: called with (work done, total work); see the file comment.
using progress_callback = std::function<void(std::int64_t done, std::int64_t total)>;

/// Calls `callback(done, total)` when it is set.
inline void report_progress(progress_callback const& callback, std::int64_t done, std::int64_t total) {
  if (callback) callback(done, total);
}

}  // namespace mgpu
