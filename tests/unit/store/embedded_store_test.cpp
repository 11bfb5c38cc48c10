#include "store/embedded_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "store/keyspace.h"

using gh::store::EmbeddedStore;

namespace {
std::string temp_db(const char* name) {
  auto p = std::filesystem::temp_directory_path() /
           (std::string("gh-store-") + name + "-" + std::to_string(::getpid()) + ".db");
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(p.string() + suffix);
  return p.string();
}
}  // namespace

TEST(EmbeddedStore, GetSetDeleteScan) {
  EmbeddedStore s(temp_db("basic"));
  EXPECT_FALSE(s.get_sync("apikey-a"));
  ASSERT_TRUE(s.set_sync("apikey-a", std::string("v\0a", 3), 0));
  ASSERT_TRUE(s.set_sync("apikey-b", "vb", 0));
  ASSERT_TRUE(s.set_sync("quota-a", "1", 0));
  EXPECT_EQ(*s.get_sync("apikey-a"), std::string("v\0a", 3));
  EXPECT_EQ(s.scan_sync("apikey-"), (std::vector<std::string>{"apikey-a", "apikey-b"}));
  EXPECT_TRUE(s.del_sync("apikey-a"));
  EXPECT_FALSE(s.del_sync("apikey-a"));
  EXPECT_FALSE(s.get_sync("apikey-a"));
  EXPECT_EQ(s.scan_sync("apikey-"), (std::vector<std::string>{"apikey-b"}));
  EXPECT_TRUE(s.healthy());
}

TEST(EmbeddedStore, ExpiryAndCounters) {
  EmbeddedStore s(temp_db("expiry"));
  ASSERT_TRUE(s.set_sync("k", "v", 1));
  EXPECT_TRUE(s.get_sync("k"));
  EXPECT_EQ(*s.incr_sync("quota-x", 1, 1), 1);
  EXPECT_EQ(*s.incr_sync("quota-x", 2, 1), 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  EXPECT_FALSE(s.get_sync("k"));
  EXPECT_TRUE(s.scan_sync("k").empty());
  EXPECT_EQ(*s.incr_sync("quota-x", 1, 0), 1);  // expired counter starts again
}

TEST(EmbeddedStore, ConcurrentThreads) {
  EmbeddedStore s(temp_db("threads"));
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&s, t] {
      for (int i = 0; i < 50; ++i) {
        std::string k = "apikey-" + std::to_string(t) + "-" + std::to_string(i);
        ASSERT_TRUE(s.set_sync(k, "v", 0));
        ASSERT_TRUE(s.get_sync(k));
        ASSERT_TRUE(s.incr_sync("counter", 1, 0));
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(s.scan_sync("apikey-").size(), 200u);
  EXPECT_EQ(*s.get_sync("counter"), "200");
}

// A writer is killed with SIGKILL at an arbitrary moment: every write it acknowledged is there
// afterwards and the file passes SQLite's integrity check.
TEST(EmbeddedStore, SurvivesSigkill) {
  std::string path = temp_db("kill");
  for (int round = 0; round < 3; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      EmbeddedStore s(path);
      for (int i = 0;; ++i) {
        std::string k = gh::store::apikey_key(std::to_string(round) + "-" + std::to_string(i));
        if (!s.set_sync(k, std::string(200, 'x'), 0)) _exit(3);
        if (::write(fds[1], &i, sizeof i) != sizeof i) _exit(4);
      }
    }
    ::close(fds[1]);
    int acked = -1, v;
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300 + 200 * round);
    while (std::chrono::steady_clock::now() < until && ::read(fds[0], &v, sizeof v) == sizeof v)
      acked = v;
    ::kill(pid, SIGKILL);
    while (::read(fds[0], &v, sizeof v) == sizeof v) acked = v;  // acks sent before the kill
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status));
    ASSERT_GT(acked, 0);
    EmbeddedStore s(path);
    for (int i = 0; i <= acked; ++i) {
      ASSERT_TRUE(
          s.get_sync(gh::store::apikey_key(std::to_string(round) + "-" + std::to_string(i))))
          << "acknowledged key " << i << " of round " << round << " lost";
    }
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "ok");
    sqlite3_finalize(st);
    sqlite3_close(db);
  }
}
