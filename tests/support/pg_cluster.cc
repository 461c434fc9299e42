#include "tests/support/pg_cluster.h"

#include <pwd.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace tally::testing {
namespace {

namespace fs = std::filesystem;

// The newest Debian server binaries: /usr/lib/postgresql/<version>/bin.
std::string FindBinDir() {
  std::vector<std::pair<int, std::string>> found;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    fs::path bin = e.path() / "bin";
    if (fs::exists(bin / "initdb", ec) && fs::exists(bin / "pg_ctl", ec)) {
      found.emplace_back(std::atoi(e.path().filename().c_str()), bin.string());
    }
  }
  if (found.empty()) {
    return "";
  }
  std::sort(found.begin(), found.end());
  return found.back().second;
}

bool WriteFile(const std::string& path, const std::string& text, bool append) {
  std::ofstream out(path, append ? std::ios::app : std::ios::trunc);
  out << text;
  return static_cast<bool>(out);
}

}  // namespace

std::unique_ptr<PgCluster> PgCluster::Start(std::string* error) {
  std::unique_ptr<PgCluster> c(new PgCluster());
  c->bin_dir_ = FindBinDir();
  if (c->bin_dir_.empty()) {
    *error = "no PostgreSQL server under /usr/lib/postgresql (scripts/deps.sh installs it)";
    return nullptr;
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp != 0 ? tmp : "/tmp") + "/tally-pg-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    *error = "mkdtemp failed";
    return nullptr;
  }
  c->dir_ = buf.data();
  c->data_dir_ = c->dir_ + "/data";
  c->socket_dir_ = c->dir_ + "/sock";
  fs::create_directory(c->socket_dir_);
  // The socket's file name carries the port; the directory is the cluster's own, so the
  // default port collides with nothing.
  c->port_ = 5432;
  if (geteuid() == 0) {
    passwd* pw = getpwnam("postgres");
    if (pw == nullptr) {
      *error = "running as root and no `postgres` user to run the server as";
      return nullptr;
    }
    for (const std::string& d : {c->dir_, c->socket_dir_}) {
      if (chown(d.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        *error = "chown " + d + " failed";
        return nullptr;
      }
    }
    c->run_prefix_ = "runuser -u postgres -- ";
  }
  std::string pwfile = c->dir_ + "/pw";
  WriteFile(pwfile, "tally\n", false);
  if (geteuid() == 0) {
    passwd* pw = getpwnam("postgres");
    (void)!chown(pwfile.c_str(), pw->pw_uid, pw->pw_gid);
  }
  if (!c->MakeDataDir(pwfile, error)) {
    return nullptr;
  }
  // Small, fast and local: a socket only, few connections, short deadlock detection.
  WriteFile(c->data_dir_ + "/postgresql.conf",
            "\nlisten_addresses = ''\n"
            "port = " +
                std::to_string(c->port_) +
                "\n"
                "unix_socket_directories = '" +
                c->socket_dir_ +
                "'\n"
                "max_connections = 40\n"
                "shared_buffers = 64MB\n"
                "deadlock_timeout = 50ms\n"
                "fsync = on\n"
                "logging_collector = off\n",
            true);
  WriteFile(c->data_dir_ + "/pg_hba.conf",
            "local all tally_pw scram-sha-256\n"
            "local all all trust\n",
            false);
  if (!c->StartAgain()) {
    *error = "pg_ctl start failed: " + c->Log();
    return nullptr;
  }
  return c;
}

bool PgCluster::MakeDataDir(const std::string& pwfile, std::string* error) {
  // initdb takes seconds, a copy a fraction of one: the first cluster of a build tree leaves
  // its fresh data directory (before any setting of its own) as a template beside the
  // binaries, per server version, made whole by a rename; later ones copy it. cp -a keeps
  // the owner (the postgres user when run as root).
#ifdef TALLY_PG_TEMPLATE
  std::string version = fs::path(bin_dir_).parent_path().filename().string();
  std::string templ = std::string(TALLY_PG_TEMPLATE) + "-" + version;
  std::error_code ec;
  if (fs::exists(templ + "/PG_VERSION", ec)) {
    if (std::system(("cp -a " + templ + " " + data_dir_).c_str()) != 0) {
      *error = "cannot copy " + templ;
      return false;
    }
    return true;
  }
#endif
  if (!RunAs(bin_dir_ + "/initdb -D " + data_dir_ +
             " -U tally -A trust -E UTF8 --locale=C.UTF-8 --no-sync --pwfile=" + pwfile + " >" +
             dir_ + "/initdb.log 2>&1")) {
    std::ifstream in(dir_ + "/initdb.log");
    std::stringstream s;
    s << in.rdbuf();
    *error = "initdb failed: " + s.str();
    return false;
  }
#ifdef TALLY_PG_TEMPLATE
  std::string staging = templ + ".tmp." + std::to_string(getpid());
  if (std::system(("cp -a " + data_dir_ + " " + staging).c_str()) == 0) {
    fs::rename(staging, templ, ec);  // another process may have won: then ours goes
  }
  fs::remove_all(staging, ec);
#endif
  return true;
}

PgCluster::~PgCluster() {
  if (!data_dir_.empty()) {
    RunAs(bin_dir_ + "/pg_ctl -D " + data_dir_ + " -m immediate -w stop >/dev/null 2>&1");
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

bool PgCluster::RunAs(const std::string& command) const {
  std::string full = run_prefix_ + command;
  return std::system(full.c_str()) == 0;
}

std::string PgCluster::ConnInfo(const std::string& db, const std::string& user) const {
  return "host=" + socket_dir_ + " port=" + std::to_string(port_) + " dbname=" + db +
         " user=" + user;
}

bool PgCluster::CreateDatabase(const std::string& name) const {
  return RunAs(bin_dir_ + "/createdb -h " + socket_dir_ + " -p " + std::to_string(port_) +
               " -U tally " + name + " >>" + dir_ + "/server.log 2>&1");
}

bool PgCluster::Restart() const {
  return RunAs(bin_dir_ + "/pg_ctl -D " + data_dir_ + " -l " + dir_ +
               "/server.log -m fast -w restart >/dev/null 2>&1");
}

bool PgCluster::Stop() const {
  return RunAs(bin_dir_ + "/pg_ctl -D " + data_dir_ + " -m fast -w stop >/dev/null 2>&1");
}

bool PgCluster::StartAgain() const {
  return RunAs(bin_dir_ + "/pg_ctl -D " + data_dir_ + " -l " + dir_ +
               "/server.log -w start >/dev/null 2>&1");
}

std::string PgCluster::Log() const {
  std::ifstream in(dir_ + "/server.log");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace tally::testing
