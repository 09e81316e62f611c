// Specification of host streams and events (mgpu/core/stream.hpp): in-order
// execution, real concurrency between streams, cross-stream ordering by events, and
// sticky errors as CUDA streams have them.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <omp.h>

#include "core_test_support.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/core/stream.hpp"

using namespace std::chrono_literals;

namespace {

/// A gate that tasks block on until the test opens it.
class gate {
 public:
  void open() { promise_.set_value(); }
  void pass() const { opened_.wait(); }

 private:
  std::promise<void> promise_;
  std::shared_future<void> opened_ = promise_.get_future().share();
};

}  // namespace

TEST_CASE("a stream runs its tasks in the order they were enqueued", "[core][stream]") {
  mgpu::stream<mgpu::cpu> s;
  std::vector<int> order;
  for (int i = 0; i < 200; ++i) s.enqueue([&order, i] { order.push_back(i); });
  s.synchronize();
  REQUIRE(order.size() == 200);
  for (int i = 0; i < 200; ++i) CHECK(order[static_cast<std::size_t>(i)] == i);
}

TEST_CASE("a stream runs its tasks on one thread other than the caller's", "[core][stream]") {
  mgpu::stream<mgpu::cpu> s;
  std::thread::id first;
  std::thread::id second;
  s.enqueue([&] { first = std::this_thread::get_id(); });
  s.enqueue([&] { second = std::this_thread::get_id(); });
  s.synchronize();
  CHECK(first == second);
  CHECK(first != std::this_thread::get_id());
}

TEST_CASE("two streams run their tasks concurrently", "[core][stream]") {
  mgpu::stream<mgpu::cpu> a;
  mgpu::stream<mgpu::cpu> b;
  // Each task waits for the other; only truly concurrent streams let both arrive.
  mgpu_test::rendezvous meet(2);
  bool a_met = false;
  bool b_met = false;
  a.enqueue([&] { a_met = meet.arrive_and_wait(); });
  b.enqueue([&] { b_met = meet.arrive_and_wait(); });
  a.synchronize();
  b.synchronize();
  CHECK(a_met);
  CHECK(b_met);
}

TEST_CASE("tasks may be enqueued on one stream from several threads", "[core][stream]") {
  mgpu::stream<mgpu::cpu> s;
  long count = 0;  // touched only by the stream's worker
  std::vector<std::thread> producers;
  for (int t = 0; t < 4; ++t) {
    producers.emplace_back([&] {
      for (int i = 0; i < 500; ++i) s.enqueue([&count] { ++count; });
    });
  }
  for (auto& p : producers) p.join();
  s.synchronize();
  CHECK(count == 2000);
}

TEST_CASE("an event completes when its stream reaches the point where it was recorded",
          "[core][stream][event]") {
  mgpu::stream<mgpu::cpu> s;
  gate g;
  bool ran = false;
  s.enqueue([&] {
    g.pass();
    ran = true;
  });
  mgpu::event<mgpu::cpu> e;
  e.record(s);
  std::this_thread::sleep_for(20ms);
  CHECK_FALSE(e.query());
  g.open();
  e.synchronize();
  CHECK(e.query());
  CHECK(ran);
  s.synchronize();
}

TEST_CASE("an event that was never recorded counts as complete", "[core][stream][event]") {
  mgpu::event<mgpu::cpu> e;
  CHECK(e.query());
  CHECK_NOTHROW(e.synchronize());
}

TEST_CASE("re-recording an event tracks the latest recording", "[core][stream][event]") {
  mgpu::stream<mgpu::cpu> s;
  mgpu::event<mgpu::cpu> e;
  e.record(s);
  e.synchronize();
  gate g;
  s.enqueue([&] { g.pass(); });
  e.record(s);
  std::this_thread::sleep_for(20ms);
  CHECK_FALSE(e.query());
  g.open();
  e.synchronize();
  CHECK(e.query());
}

TEST_CASE("stream.wait(event) orders work across streams", "[core][stream][event]") {
  mgpu::stream<mgpu::cpu> producer;
  mgpu::stream<mgpu::cpu> consumer;
  std::mutex log_mutex;
  std::vector<std::string> log;
  auto append = [&](std::string what) {
    std::lock_guard lock(log_mutex);
    log.push_back(std::move(what));
  };
  gate g;
  producer.enqueue([&] {
    g.pass();
    append("produced");
  });
  mgpu::event<mgpu::cpu> ready;
  ready.record(producer);
  consumer.wait(ready);
  consumer.enqueue([&] { append("consumed"); });
  mgpu::event<mgpu::cpu> consumed;
  consumed.record(consumer);

  // While the producer is held, the consumer must not get past its wait.
  std::this_thread::sleep_for(30ms);
  CHECK_FALSE(consumed.query());
  {
    std::lock_guard lock(log_mutex);
    CHECK(log.empty());
  }
  g.open();
  consumer.synchronize();
  producer.synchronize();
  CHECK(log == std::vector<std::string>{"produced", "consumed"});
}

TEST_CASE("synchronize rethrows a task's exception and the stream skips later tasks",
          "[core][stream][errors]") {
  mgpu::stream<mgpu::cpu> s;
  bool before = false;
  bool after = false;
  s.enqueue([&] { before = true; });
  s.enqueue([] { throw mgpu::format_error("task failed"); });
  s.enqueue([&] { after = true; });
  CHECK_THROWS_AS(s.synchronize(), mgpu::format_error);
  CHECK(before);
  CHECK_FALSE(after);
}

TEST_CASE("only the first exception of a stream is reported", "[core][stream][errors]") {
  mgpu::stream<mgpu::cpu> s;
  s.enqueue([] { throw std::runtime_error("first"); });
  s.enqueue([] { throw std::runtime_error("second"); });
  CHECK_THROWS_WITH(s.synchronize(), "first");
}

TEST_CASE("synchronize clears the stream's error", "[core][stream][errors]") {
  mgpu::stream<mgpu::cpu> s;
  s.enqueue([] { throw std::runtime_error("boom"); });
  CHECK_THROWS_WITH(s.synchronize(), "boom");
  bool ran = false;
  s.enqueue([&] { ran = true; });
  CHECK_NOTHROW(s.synchronize());
  CHECK(ran);
}

TEST_CASE("an event recorded after a failed task rethrows its exception",
          "[core][stream][event][errors]") {
  mgpu::stream<mgpu::cpu> s;
  s.enqueue([] { throw mgpu::dimension_mismatch("sizes differ"); });
  mgpu::event<mgpu::cpu> e;
  e.record(s);
  CHECK_THROWS_AS(e.synchronize(), mgpu::dimension_mismatch);
  CHECK(e.query());
  // The event reports the error without clearing it: the stream still holds it.
  CHECK_THROWS_AS(s.synchronize(), mgpu::dimension_mismatch);
  CHECK_NOTHROW(s.synchronize());
}

TEST_CASE("an event recorded before a failed task does not report it",
          "[core][stream][event][errors]") {
  mgpu::stream<mgpu::cpu> s;
  mgpu::event<mgpu::cpu> e;
  e.record(s);
  s.enqueue([] { throw std::runtime_error("later"); });
  CHECK_NOTHROW(e.synchronize());
  CHECK_THROWS_WITH(s.synchronize(), "later");
}

TEST_CASE("waiting on a failed event passes the error to the waiting stream",
          "[core][stream][event][errors]") {
  mgpu::stream<mgpu::cpu> producer;
  mgpu::stream<mgpu::cpu> consumer;
  producer.enqueue([] { throw std::runtime_error("producer failed"); });
  mgpu::event<mgpu::cpu> e;
  e.record(producer);
  consumer.wait(e);
  bool consumed = false;
  consumer.enqueue([&] { consumed = true; });
  CHECK_THROWS_WITH(consumer.synchronize(), "producer failed");
  CHECK_FALSE(consumed);
  CHECK_THROWS_WITH(producer.synchronize(), "producer failed");
}

TEST_CASE("tasks on a stream see its OpenMP thread count", "[core][stream][openmp]") {
  mgpu::stream<mgpu::cpu> three(3);
  mgpu::stream<mgpu::cpu> five(5);
  CHECK(three.threads() == 3);
  CHECK(five.threads() == 5);
  int seen_three = 0;
  int seen_five = 0;
  int team_three = 0;
  three.enqueue([&] { seen_three = omp_get_max_threads(); });
  five.enqueue([&] { seen_five = omp_get_max_threads(); });
  three.enqueue([&] {
#pragma omp parallel
    {
#pragma omp single
      team_three = omp_get_num_threads();
    }
  });
  three.synchronize();
  five.synchronize();
  CHECK(seen_three == 3);
  CHECK(seen_five == 5);
  // The runtime may give fewer threads (OMP_THREAD_LIMIT), never more.
  CHECK(team_three >= 1);
  CHECK(team_three <= 3);
}

TEST_CASE("a stream needs at least one thread", "[core][stream]") {
  CHECK_THROWS_AS(mgpu::stream<mgpu::cpu>(0), mgpu::invalid_argument);
  CHECK_THROWS_AS(mgpu::stream<mgpu::cpu>(-2), mgpu::invalid_argument);
}

TEST_CASE("destroying a stream runs every task still queued", "[core][stream]") {
  std::atomic<int> done{0};
  {
    mgpu::stream<mgpu::cpu> s;
    for (int i = 0; i < 50; ++i) {
      s.enqueue([&done] {
        std::this_thread::sleep_for(1ms);
        done.fetch_add(1);
      });
    }
  }
  CHECK(done.load() == 50);
}

TEST_CASE("a moved-to stream keeps the queue and the worker", "[core][stream]") {
  mgpu::stream<mgpu::cpu> a(2);
  std::vector<int> order;
  a.enqueue([&] { order.push_back(1); });
  mgpu::stream<mgpu::cpu> b = std::move(a);
  b.enqueue([&] { order.push_back(2); });
  b.synchronize();
  CHECK(b.threads() == 2);
  CHECK(order == std::vector<int>{1, 2});

  mgpu::stream<mgpu::cpu> c;
  c = std::move(b);
  c.enqueue([&] { order.push_back(3); });
  c.synchronize();
  CHECK(order == std::vector<int>{1, 2, 3});
}

TEST_CASE("waiting on a stream from its own task is refused, not a deadlock", "[core][stream][reliability]") {
  mgpu::stream<mgpu::cpu> s;
  mgpu::event<mgpu::cpu> later;
  std::promise<std::string> sync_message;
  std::promise<std::string> event_message;
  s.enqueue([&] {
    try {
      s.synchronize();  // would wait for this very task
      sync_message.set_value("no exception");
    } catch (mgpu::invalid_argument const& e) {
      sync_message.set_value(e.what());
    }
    later.record(s);  // completes only after this task
    try {
      later.synchronize();
      event_message.set_value("no exception");
    } catch (mgpu::invalid_argument const& e) {
      event_message.set_value(e.what());
    }
  });
  auto sync_future = sync_message.get_future();
  auto event_future = event_message.get_future();
  REQUIRE(sync_future.wait_for(5s) == std::future_status::ready);
  REQUIRE(event_future.wait_for(5s) == std::future_status::ready);
  CHECK_THAT(sync_future.get(), Catch::Contains("stream::synchronize was called from inside a task"));
  CHECK_THAT(event_future.get(), Catch::Contains("event::synchronize was called from inside a task"));
  s.synchronize();  // from outside: fine
  later.synchronize();
}
