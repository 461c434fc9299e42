// PgCluster: a throwaway PostgreSQL cluster for tests and benchmarks, from Debian's
// `postgresql` package (scripts/deps.sh).
//
// Start() runs initdb in a fresh temporary directory and starts the server with pg_ctl,
// listening only on a Unix socket in that directory (no TCP port, so clusters of parallel
// tests never collide). PostgreSQL refuses to run as root, and CI runs as root: then every
// server command runs as the unprivileged `postgres` user the package creates (runuser),
// and the directory is handed to it. The superuser is `tally` (trust over the socket); the
// role `tally_pw` must give its password (scram-sha-256), for tests of password options.
// The destructor stops the server (-m immediate) and removes the directory. Built with
// TALLY_PG_TEMPLATE (a path in the build tree), the first cluster's fresh initdb is kept
// there and later clusters copy it instead of running initdb again.
//
// Not thread-safe: one thread drives a cluster (other threads may connect to it).
#pragma once

#include <memory>
#include <string>

namespace tally::testing {

class PgCluster {
 public:
  // Starts a cluster; nullptr (and *error says why) when initdb or the start failed.
  static std::unique_ptr<PgCluster> Start(std::string* error);
  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  // A libpq keyword/value connection string for database `db` as `user`.
  std::string ConnInfo(const std::string& db = "postgres", const std::string& user = "tally") const;
  // Creates database `name` (owned by tally); false on failure.
  bool CreateDatabase(const std::string& name) const;

  // pg_ctl restart -m fast: every session is ended, the server is back when it returns.
  bool Restart() const;
  bool Stop() const;        // pg_ctl stop -m fast
  bool StartAgain() const;  // pg_ctl start, after Stop()

  const std::string& socket_dir() const { return socket_dir_; }
  int port() const { return port_; }
  // The server's log (for a failing test's message).
  std::string Log() const;

 private:
  PgCluster() = default;
  // data_dir_ made by initdb, or copied from the build tree's template (TALLY_PG_TEMPLATE).
  bool MakeDataDir(const std::string& pwfile, std::string* error);
  // Runs a server binary (pg_ctl, initdb, ...) as the cluster's user; true on exit 0.
  bool RunAs(const std::string& command) const;

  std::string dir_;
  std::string data_dir_;
  std::string socket_dir_;
  std::string bin_dir_;
  std::string run_prefix_;  // "runuser -u postgres -- " as root, else empty
  int port_ = 5432;
};

}  // namespace tally::testing
