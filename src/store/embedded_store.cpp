#include "store/embedded_store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "core/log.h"
#include "core/util.h"

namespace gh::store {

namespace {
std::atomic<uint64_t> g_next_id{1};

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Every open store's connections, so that the store can close them all when it goes away.
std::mutex g_conns_mu;
}  // namespace

struct EmbeddedStore::Conn {
  sqlite3* db = nullptr;
  sqlite3_stmt* get = nullptr;
  sqlite3_stmt* set = nullptr;
  sqlite3_stmt* del = nullptr;
  sqlite3_stmt* scan = nullptr;
  sqlite3_stmt* begin = nullptr;
  sqlite3_stmt* commit = nullptr;
  sqlite3_stmt* rollback = nullptr;

  ~Conn() {
    for (auto* s : {get, set, del, scan, begin, commit, rollback}) sqlite3_finalize(s);
    if (db) sqlite3_close_v2(db);
  }
};

namespace {
struct Registry {
  std::unordered_map<uint64_t, std::vector<std::unique_ptr<EmbeddedStore::Conn>>> by_store;
};
Registry& registry() {
  static Registry r;
  return r;
}
thread_local std::unordered_map<uint64_t, EmbeddedStore::Conn*> t_conns;

void exec(sqlite3* db, const char* sql, const std::string& path) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw std::runtime_error(path + ": " + msg);
  }
}

sqlite3_stmt* prepare(sqlite3* db, const char* sql, const std::string& path) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK)
    throw std::runtime_error(path + ": " + sqlite3_errmsg(db));
  return s;
}

std::unique_ptr<EmbeddedStore::Conn> open_conn(const std::string& path) {
  auto c = std::make_unique<EmbeddedStore::Conn>();
  int rc =
      sqlite3_open_v2(path.c_str(), &c->db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK)
    throw std::runtime_error(path + ": cannot open the embedded store: " +
                             (c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc)));
  sqlite3_busy_timeout(c->db, 10000);
  exec(c->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", path);
  exec(c->db,
       "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB NOT NULL, "
       "exp INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;",
       path);
  c->get = prepare(c->db, "SELECT v, exp FROM kv WHERE k = ?1", path);
  c->set = prepare(c->db, "INSERT OR REPLACE INTO kv (k, v, exp) VALUES (?1, ?2, ?3)", path);
  c->del = prepare(c->db, "DELETE FROM kv WHERE k = ?1 AND (exp = 0 OR exp > ?2)", path);
  c->scan = prepare(c->db,
                    "SELECT k FROM kv WHERE k >= ?1 AND k < ?2 AND (exp = 0 OR exp > ?3) "
                    "ORDER BY k",
                    path);
  c->begin = prepare(c->db, "BEGIN IMMEDIATE", path);
  c->commit = prepare(c->db, "COMMIT", path);
  c->rollback = prepare(c->db, "ROLLBACK", path);
  return c;
}

bool step_done(sqlite3_stmt* s) {
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  return rc == SQLITE_DONE;
}
}  // namespace

EmbeddedStore::EmbeddedStore(std::string path) : path_(std::move(path)), id_(g_next_id++) {
  auto c = open_conn(path_);     // creates the file and the schema, or fails loudly here
  ::chmod(path_.c_str(), 0600);  // hashed keys and sessions: not for other users
  std::lock_guard<std::mutex> lock(g_conns_mu);
  t_conns[id_] = c.get();
  registry().by_store[id_].push_back(std::move(c));
}

EmbeddedStore::~EmbeddedStore() {
  std::lock_guard<std::mutex> lock(g_conns_mu);
  registry().by_store.erase(id_);  // other threads' cached pointers carry our unique id only
  t_conns.erase(id_);
}

EmbeddedStore::Conn& EmbeddedStore::conn() {
  auto it = t_conns.find(id_);
  if (it != t_conns.end()) return *it->second;
  auto c = open_conn(path_);
  Conn* raw = c.get();
  std::lock_guard<std::mutex> lock(g_conns_mu);
  registry().by_store[id_].push_back(std::move(c));
  t_conns[id_] = raw;
  return *raw;
}

std::optional<std::string> EmbeddedStore::get_sync(const std::string& key) {
  auto e = get_entry_sync(key);
  if (!e) return std::nullopt;
  return std::move(e->value);
}

std::optional<Store::Entry> EmbeddedStore::get_entry_sync(const std::string& key) {
  Conn& c = conn();
  sqlite3_bind_text(c.get, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
  std::optional<Entry> out;
  if (sqlite3_step(c.get) == SQLITE_ROW) {
    int64_t exp = sqlite3_column_int64(c.get, 1);
    if (exp == 0 || exp > now_s()) {
      const void* b = sqlite3_column_blob(c.get, 0);
      int n = sqlite3_column_bytes(c.get, 0);
      out.emplace(Entry{std::string(static_cast<const char*>(b), static_cast<size_t>(n)), exp});
    }
  }
  sqlite3_reset(c.get);
  sqlite3_clear_bindings(c.get);
  return out;
}

bool EmbeddedStore::set_sync(const std::string& key, const std::string& value,
                             int64_t ttl_seconds) {
  Conn& c = conn();
  sqlite3_bind_text(c.set, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
  sqlite3_bind_blob(c.set, 2, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
  sqlite3_bind_int64(c.set, 3, ttl_seconds > 0 ? now_s() + ttl_seconds : 0);
  bool ok = step_done(c.set);
  sqlite3_clear_bindings(c.set);
  if (!ok) log::error("embedded store write failed", {{"error", sqlite3_errmsg(c.db)}});
  return ok;
}

bool EmbeddedStore::set_many_sync(const std::vector<Write>& writes) {
  if (writes.empty()) return true;
  Conn& c = conn();
  if (!step_done(c.begin)) return false;
  int64_t now = now_s();
  bool ok = true;
  for (const auto& w : writes) {
    sqlite3_bind_text(c.set, 1, w.key.data(), static_cast<int>(w.key.size()), SQLITE_STATIC);
    sqlite3_bind_blob(c.set, 2, w.value.data(), static_cast<int>(w.value.size()), SQLITE_STATIC);
    sqlite3_bind_int64(c.set, 3, w.ttl_seconds > 0 ? now + w.ttl_seconds : 0);
    ok = step_done(c.set);
    sqlite3_clear_bindings(c.set);
    if (!ok) break;
  }
  if (!ok || !step_done(c.commit)) {
    log::error("embedded store write failed", {{"error", sqlite3_errmsg(c.db)}});
    step_done(c.rollback);
    return false;
  }
  return true;
}

bool EmbeddedStore::del_sync(const std::string& key) {
  Conn& c = conn();
  sqlite3_bind_text(c.del, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
  sqlite3_bind_int64(c.del, 2, now_s());
  bool ok = step_done(c.del);
  sqlite3_clear_bindings(c.del);
  return ok && sqlite3_changes(c.db) > 0;
}

std::vector<std::string> EmbeddedStore::scan_sync(const std::string& prefix) {
  Conn& c = conn();
  std::string upper = prefix;
  upper.push_back('\xff');  // keys are text; nothing sorts above 0xff after the prefix
  sqlite3_bind_text(c.scan, 1, prefix.data(), static_cast<int>(prefix.size()), SQLITE_STATIC);
  sqlite3_bind_text(c.scan, 2, upper.data(), static_cast<int>(upper.size()), SQLITE_STATIC);
  sqlite3_bind_int64(c.scan, 3, now_s());
  std::vector<std::string> out;
  while (sqlite3_step(c.scan) == SQLITE_ROW) {
    out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(c.scan, 0)),
                     static_cast<size_t>(sqlite3_column_bytes(c.scan, 0)));
  }
  sqlite3_reset(c.scan);
  sqlite3_clear_bindings(c.scan);
  return out;
}

std::optional<int64_t> EmbeddedStore::incr_sync(const std::string& key, int64_t by,
                                                int64_t ttl_seconds) {
  Conn& c = conn();
  if (!step_done(c.begin)) return std::nullopt;
  int64_t now = now_s();
  int64_t value = 0, exp = 0;
  bool live = false;
  sqlite3_bind_text(c.get, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
  if (sqlite3_step(c.get) == SQLITE_ROW) {
    exp = sqlite3_column_int64(c.get, 1);
    if (exp == 0 || exp > now) {
      live = true;
      auto text = std::string(static_cast<const char*>(sqlite3_column_blob(c.get, 0)),
                              static_cast<size_t>(sqlite3_column_bytes(c.get, 0)));
      value = std::strtoll(text.c_str(), nullptr, 10);
    }
  }
  sqlite3_reset(c.get);
  sqlite3_clear_bindings(c.get);
  if (!live) exp = ttl_seconds > 0 ? now + ttl_seconds : 0;
  value += by;
  std::string text = std::to_string(value);
  sqlite3_bind_text(c.set, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
  sqlite3_bind_blob(c.set, 2, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
  sqlite3_bind_int64(c.set, 3, exp);
  bool ok = step_done(c.set);
  sqlite3_clear_bindings(c.set);
  if (!ok || !step_done(c.commit)) {
    step_done(c.rollback);
    return std::nullopt;
  }
  return value;
}

bool EmbeddedStore::healthy() {
  try {
    conn();
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

boost::asio::awaitable<std::optional<std::string>> EmbeddedStore::get(std::string key) {
  co_return get_sync(key);
}
boost::asio::awaitable<bool> EmbeddedStore::set(std::string key, std::string value,
                                                int64_t ttl_seconds) {
  co_return set_sync(key, value, ttl_seconds);
}
boost::asio::awaitable<bool> EmbeddedStore::del(std::string key) { co_return del_sync(key); }
boost::asio::awaitable<std::optional<Store::Entry>> EmbeddedStore::get_entry(std::string key) {
  co_return get_entry_sync(key);
}
boost::asio::awaitable<LimitResult> EmbeddedStore::take_limits(LimitRequest) {
  co_return LimitResult{};
}
boost::asio::awaitable<void> EmbeddedStore::announce_key_change() { co_return; }
boost::asio::awaitable<bool> EmbeddedStore::set_many(std::vector<Write> writes) {
  co_return set_many_sync(writes);
}
boost::asio::awaitable<std::vector<std::string>> EmbeddedStore::scan(std::string prefix) {
  co_return scan_sync(prefix);
}
boost::asio::awaitable<std::optional<int64_t>> EmbeddedStore::incr(std::string key, int64_t by,
                                                                   int64_t ttl_seconds) {
  co_return incr_sync(key, by, ttl_seconds);
}

}  // namespace gh::store
