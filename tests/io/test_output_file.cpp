// output_set (one commit for a program's outputs) and the text output helpers:
// RELIABILITY.md rows 21, 22 and 24. Every case works inside its own fresh temporary
// directory; device nodes are made there with mknod (the case is skipped, with a
// warning, where that is not permitted), never opened under /dev.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "mgpu/io/output_file.hpp"
#include "mgpu/io/text_output.hpp"

namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "mgpu-output-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  temp_dir(temp_dir const&) = delete;
  temp_dir& operator=(temp_dir const&) = delete;
  ~temp_dir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  [[nodiscard]] fs::path const& path() const { return path_; }
  fs::path operator/(char const* name) const { return path_ / name; }

 private:
  fs::path path_;
};

// Named temporaries for the duration of a case, as on a file system without O_TMPFILE.
class named_temporaries {
 public:
  explicit named_temporaries(bool on) { mgpu::detail::out::force_named_temporaries = on; }
  named_temporaries(named_temporaries const&) = delete;
  named_temporaries& operator=(named_temporaries const&) = delete;
  ~named_temporaries() { mgpu::detail::out::force_named_temporaries = false; }
};

std::vector<std::string> entries(fs::path const& dir) {
  std::vector<std::string> names;
  for (auto const& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string slurp(fs::path const& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void spit(fs::path const& path, std::string const& text) {
  std::ofstream(path, std::ios::binary) << text;
}

mgpu::output_writer text(std::string s) {
  return [s = std::move(s)](std::ostream& out) { out << s; };
}

bool is_fifo_node(fs::path const& p) { return fs::symlink_status(p).type() == fs::file_type::fifo; }

std::vector<std::string> split(std::string const& s, char sep) {
  std::vector<std::string> parts(1);
  for (char const c : s) {
    if (c == sep) {
      parts.emplace_back();
    } else {
      parts.back() += c;
    }
  }
  return parts;
}

}  // namespace

TEST_CASE("reliability row 21: output_set replaces a regular file, keeping its permission bits", "[io][output]") {
  bool const named = GENERATE(false, true);
  named_temporaries mode(named);
  temp_dir dir;
  spit(dir / "out.txt", "old\n");
  fs::permissions(dir / "out.txt", fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  mgpu::output_set outs;
  outs.add(dir / "out.txt", text("new\n"));
  outs.add(dir / "fresh.txt", text("fresh\n"));
  outs.check();
  outs.commit();
  CHECK(slurp(dir / "out.txt") == "new\n");
  CHECK(slurp(dir / "fresh.txt") == "fresh\n");
  CHECK(fs::status(dir / "out.txt").permissions() ==
        (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read));
  CHECK(entries(dir.path()) == std::vector<std::string>{"fresh.txt", "out.txt"});
}

TEST_CASE("reliability row 21: output_set writes a FIFO in place and leaves it a FIFO", "[io][output]") {
  temp_dir dir;
  REQUIRE(::mkfifo((dir / "pipe").c_str(), 0600) == 0);
  mgpu::output_set outs;
  outs.add(dir / "pipe", text("through the pipe\n"), "--output");
  outs.check();  // no reader yet: the check must not open the FIFO
  std::string received;
  std::thread reader([&] { received = slurp(dir / "pipe"); });
  outs.commit();
  reader.join();
  CHECK(received == "through the pipe\n");
  CHECK(is_fifo_node(dir / "pipe"));
  CHECK(entries(dir.path()) == std::vector<std::string>{"pipe"});
}

TEST_CASE("reliability row 21: output_set writes a symbolic link's target and keeps the link", "[io][output]") {
  temp_dir dir;
  fs::create_directory(dir / "real");
  spit(dir / "real/data.txt", "old\n");
  fs::create_symlink("real/data.txt", dir / "link");
  mgpu::output_set outs;
  outs.add(dir / "link", text("new\n"));
  outs.commit();
  CHECK(fs::is_symlink(dir / "link"));
  CHECK(fs::read_symlink(dir / "link") == fs::path("real/data.txt"));
  CHECK(slurp(dir / "real/data.txt") == "new\n");
  CHECK(entries(dir / "real") == std::vector<std::string>{"data.txt"});
}

TEST_CASE("reliability row 21: output_set creates a dangling symbolic link's target", "[io][output]") {
  temp_dir dir;
  fs::create_symlink("missing.txt", dir / "link");
  mgpu::output_set outs;
  outs.add(dir / "link", text("created\n"));
  outs.commit();
  CHECK(fs::is_symlink(dir / "link"));
  CHECK(fs::is_regular_file(fs::symlink_status(dir / "missing.txt")));
  CHECK(slurp(dir / "missing.txt") == "created\n");
}

TEST_CASE("reliability row 21: output_set writes a character device in place", "[io][output]") {
  temp_dir dir;
  if (::mknod((dir / "null").c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) {
    WARN("skipped: mknod of a character device is not permitted here");
    return;
  }
  mgpu::output_set outs;
  outs.add(dir / "null", text("discarded\n"));
  outs.commit();
  CHECK(fs::is_character_file(fs::symlink_status(dir / "null")));
  CHECK(entries(dir.path()) == std::vector<std::string>{"null"});
}

TEST_CASE("reliability row 22: a device that fails (like /dev/full) changes none of the regular outputs", "[io][output]") {
  temp_dir dir;
  if (::mknod((dir / "full").c_str(), S_IFCHR | 0666, makedev(1, 7)) != 0) {
    WARN("skipped: mknod of a character device is not permitted here");
    return;
  }
  spit(dir / "vocabulary.txt", "old\n");
  mgpu::output_set outs;
  outs.add(dir / "vocabulary.txt", text("new\n"), "--save-vocabulary");
  outs.add(dir / "fresh.mtx", text("fresh\n"), "--save-tfidf");
  outs.add(dir / "full", text("neighbours\n"), "--output");
  outs.check();
  CHECK_THROWS_WITH(outs.commit(), Contains("--output: cannot write") && Contains("No space left on device"));
  CHECK(slurp(dir / "vocabulary.txt") == "old\n");
  CHECK(fs::is_character_file(fs::symlink_status(dir / "full")));
  CHECK(entries(dir.path()) == std::vector<std::string>{"full", "vocabulary.txt"});
}

TEST_CASE("reliability row 21: output_set::check refuses paths that cannot be written", "[io][output]") {
  temp_dir dir;
  fs::create_directory(dir / "sub");
  auto const refused = [](fs::path const& p) {
    mgpu::output_set outs;
    outs.add(p, "--output");
    outs.check();
  };
  CHECK_THROWS_AS(refused(dir / "sub"), mgpu::invalid_argument);
  CHECK_THROWS_WITH(refused(dir / "sub"), Contains("--output: cannot write") && Contains("it is a directory"));
  CHECK_THROWS_WITH(refused(""), Contains("--output: the output path is empty"));
  CHECK_THROWS_WITH(refused(dir / "missing/out.tsv"), Contains("No such file or directory"));
  CHECK_THROWS_AS(refused(dir / "missing/out.tsv"), mgpu::error);

  fs::create_symlink("sub", dir / "link-to-dir");
  CHECK_THROWS_WITH(refused(dir / "link-to-dir"), Contains("a symbolic link to") && Contains("it is a directory"));

  mgpu::output_set twice;
  fs::create_symlink("a.txt", dir / "alias");
  twice.add(dir / "a.txt", "--save-vocabulary");
  twice.add(dir / "alias", "--output");
  CHECK_THROWS_WITH(twice.check(), Contains("--save-vocabulary") && Contains("--output") && Contains("same file"));
  CHECK(entries(dir.path()) == std::vector<std::string>{"alias", "link-to-dir", "sub"});
}

TEST_CASE("reliability row 22: a writer that throws part-way leaves no temporary and the target intact", "[io][output]") {
  bool const named = GENERATE(false, true);
  named_temporaries mode(named);
  temp_dir dir;
  spit(dir / "out.txt", "old\n");
  mgpu::output_set outs;
  outs.add(dir / "out.txt", [](std::ostream& out) {
    out << std::string(1 << 20, 'x');  // past the stream's buffer: bytes reach the file
    throw std::runtime_error("writer failed");
  });
  CHECK_THROWS_WITH(outs.commit(), "writer failed");
  CHECK(entries(dir.path()) == std::vector<std::string>{"out.txt"});
  CHECK(slurp(dir / "out.txt") == "old\n");
}

TEST_CASE("reliability row 22: three outputs whose third fails: none of them changes", "[io][output]") {
  bool const named = GENERATE(false, true);
  named_temporaries mode(named);
  temp_dir dir;
  fs::create_directory(dir / "third");
  spit(dir / "one.txt", "old one\n");
  spit(dir / "two.txt", "old two\n");
  spit(dir / "third/three.txt", "old three\n");
  mgpu::output_set outs;
  outs.add(dir / "one.txt", text("new one\n"));
  outs.add(dir / "two.txt", text("new two\n"));
  auto const third = outs.add(dir / "third/three.txt");
  outs.check();
  std::vector<std::string> expected = {"one.txt", "third", "two.txt"};

  SECTION("its writer throws") {
    outs.set_writer(third, [](std::ostream& out) {
      out << "half";
      throw std::runtime_error("third writer failed");
    });
    CHECK_THROWS_WITH(outs.commit(), "third writer failed");
    CHECK(slurp(dir / "third/three.txt") == "old three\n");
    CHECK(entries(dir / "third") == std::vector<std::string>{"three.txt"});
  }
  SECTION("its directory is removed between check and commit") {
    outs.set_writer(third, text("new three\n"));
    fs::remove_all(dir / "third");
    CHECK_THROWS_WITH(outs.commit(), Contains("third/three.txt") && Contains("No such file or directory"));
    expected = {"one.txt", "two.txt"};
  }
  SECTION("its rename fails after the first two were renamed (rolled back)") {
    // The writer turns its target into a non-empty directory: renaming a file over it
    // fails with EISDIR, after one.txt and two.txt are already in place.
    outs.set_writer(third, [&](std::ostream& out) {
      out << "new three\n";
      fs::remove(dir / "third/three.txt");
      fs::create_directories(dir / "third/three.txt/inside");
    });
    CHECK_THROWS_WITH(outs.commit(), Contains("cannot rename"));
    CHECK(entries(dir / "third") == std::vector<std::string>{"three.txt"});
  }
  CHECK(slurp(dir / "one.txt") == "old one\n");
  CHECK(slurp(dir / "two.txt") == "old two\n");
  CHECK(entries(dir.path()) == expected);
}

TEST_CASE("reliability row 22: a rename failing part-way restores the replaced file and removes the created one",
          "[io][output]") {
  bool const named = GENERATE(false, true);
  named_temporaries mode(named);
  temp_dir dir;
  spit(dir / "existing.txt", "old\n");
  spit(dir / "blocker", "old blocker\n");
  mgpu::output_set outs;
  outs.add(dir / "existing.txt", text("new\n"));
  outs.add(dir / "created.txt", text("created\n"));
  outs.add(dir / "blocker", [&](std::ostream& out) {
    out << "new blocker\n";
    fs::remove(dir / "blocker");
    fs::create_directories(dir / "blocker/inside");  // renaming a file over it: EISDIR
  });
  CHECK_THROWS_WITH(outs.commit(), Contains("blocker") && Contains("cannot rename"));
  CHECK(slurp(dir / "existing.txt") == "old\n");
  CHECK(entries(dir.path()) == std::vector<std::string>{"blocker", "existing.txt"});
}

TEST_CASE("reliability row 22: SIGTERM during a commit removes the named temporary and keeps the old target", "[io][output]") {
  temp_dir dir;
  spit(dir / "out.txt", "old\n");
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  pid_t const child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Catch2 handles SIGTERM itself; the child starts from the default action.
    ::signal(SIGTERM, SIG_DFL);
    mgpu::remove_temporaries_on_signal();
    mgpu::detail::out::force_named_temporaries = true;
    mgpu::output_set outs;
    outs.add(dir / "out.txt", [&](std::ostream& out) {
      out << "partial";
      out.flush();
      char const c = 'x';
      (void)!::write(ready[1], &c, 1);
      for (;;) ::pause();
    });
    try {
      outs.commit();
    } catch (...) {
    }
    ::_exit(3);
  }
  ::close(ready[1]);
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  ::close(ready[0]);
  auto const during = entries(dir.path());
  REQUIRE(during.size() == 2);
  CHECK_THAT(during[0], Catch::Matchers::StartsWith(".out.txt.tmp-" + std::to_string(child) + "-"));
  CHECK(slurp(dir.path() / during[0]) == "partial");
  REQUIRE(::kill(child, SIGTERM) == 0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGTERM);
  CHECK(entries(dir.path()) == std::vector<std::string>{"out.txt"});
  CHECK(slurp(dir / "out.txt") == "old\n");
}

TEST_CASE("reliability row 22: SIGKILL while writing an O_TMPFILE temporary leaves nothing named", "[io][output]") {
  temp_dir dir;
  spit(dir / "out.txt", "old\n");
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  pid_t const child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    mgpu::output_set outs;
    outs.add(dir / "out.txt", [&](std::ostream& out) {
      out << std::string(1 << 20, 'x');
      char const c = 'x';
      (void)!::write(ready[1], &c, 1);
      for (;;) ::pause();
    });
    try {
      outs.commit();
    } catch (...) {
    }
    ::_exit(3);
  }
  ::close(ready[1]);
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  ::close(ready[0]);
  CHECK(entries(dir.path()) == std::vector<std::string>{"out.txt"});
  REQUIRE(::kill(child, SIGKILL) == 0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(entries(dir.path()) == std::vector<std::string>{"out.txt"});
  CHECK(slurp(dir / "out.txt") == "old\n");
}

TEST_CASE("reliability row 24: TSV escaping round-trips and keeps a row's fields apart", "[io][text_output]") {
  std::vector<std::string> const ids = {"plain", "tab\there", "line\nfeed", "cr\rlf\r\n",
                                        "back\\slash", "\\t literal", "", "é UTF-8 ✓"};
  for (auto const& id : ids) CHECK(mgpu::unescape_tsv_field(mgpu::escape_tsv_field(id)) == id);
  CHECK(mgpu::escape_tsv_field("a\tb\nc\\d\re") == "a\\tb\\nc\\\\d\\re");
  CHECK(mgpu::escape_tsv_field("\\t literal") == "\\\\t literal");
  CHECK_THROWS_AS(mgpu::unescape_tsv_field("bad\\x"), mgpu::invalid_argument);
  CHECK_THROWS_AS(mgpu::unescape_tsv_field("end\\"), mgpu::invalid_argument);

  std::ostringstream out;
  mgpu::neighbor_writer rows(out, mgpu::text_format::tsv);
  rows.write("q\tone", "n\ntwo", 0.5);
  std::string const line = out.str();
  CHECK(line == "q\\tone\tn\\ntwo\t0.5\n");
  auto const fields = split(line.substr(0, line.size() - 1), '\t');
  REQUIRE(fields.size() == 3);
  CHECK(mgpu::unescape_tsv_field(fields[0]) == "q\tone");
  CHECK(mgpu::unescape_tsv_field(fields[1]) == "n\ntwo");
}

TEST_CASE("reliability row 24: NDJSON rows escape ids as JSON strings", "[io][text_output]") {
  std::string s;
  mgpu::append_json_string(s, std::string("q\"\\/\b\f\n\r\t\x01\x1f\x7f", 12) + std::string(1, '\0') + "é");
  CHECK(s == "\"q\\\"\\\\/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\\u0000é\"");

  std::ostringstream out;
  mgpu::neighbor_writer rows(out, mgpu::text_format::ndjson);
  rows.write("a\tb", "c\"d", 0.25);
  rows.write("x", "y", std::numeric_limits<double>::infinity());
  mgpu::neighbor_writer numbered(out, mgpu::text_format::ndjson, {"query", "train", "distance"});
  numbered.write(std::int64_t{3}, std::int64_t{17}, 1.5);
  CHECK(out.str() ==
        "{\"query\":\"a\\tb\",\"neighbor\":\"c\\\"d\",\"score\":0.25}\n"
        "{\"query\":\"x\",\"neighbor\":\"y\",\"score\":null}\n"
        "{\"query\":3,\"train\":17,\"distance\":1.5}\n");
  CHECK(mgpu::parse_text_format("ndjson") == mgpu::text_format::ndjson);
  CHECK_THROWS_WITH(mgpu::parse_text_format("csv"), Contains("\"csv\": expected tsv or ndjson"));
}

TEST_CASE("reliability row 24: duplicate ids are counted", "[io][text_output]") {
  std::vector<std::string> const ids = {"a", "b", "a", "c", "b", "a"};
  auto const d = mgpu::find_duplicate_ids(ids);
  CHECK(d.count == 3);
  CHECK(d.first == "a");
  CHECK(mgpu::find_duplicate_ids(std::vector<std::string>{"x", "y"}).count == 0);
}
