// tally-pg-bench: the PostgreSQL sink's apply rate against a throwaway local cluster
// (tests/support/pg_cluster.h), next to ez-api's approach measured in the same run.
//
// Seeds --keys keys in 100 groups (ez-api's tables as gorm creates them), then:
//   sink:   --rounds batches of every key (one DeltaBatch, one transaction each), and
//           --rounds * 10 batches of a tenth of the keys; median seconds per batch and
//           key-deltas per second;
//   ez-api: one UPDATE of the key and one of its group per request, autocommitted (what a
//           per-request counter update through gorm does), for --ezapi-seconds; requests per
//           second.
// Prints the load average before and after. Figures: docs/performance.md, "PostgreSQL".
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <pqxx/pqxx>
#include <random>
#include <string>
#include <vector>

#include "core/delta_batch.h"
#include "daemon/metrics.h"
#include "daemon/upstream/pg_sink.h"
#include "tests/support/pg_cluster.h"

namespace {

using Clock = std::chrono::steady_clock;

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// CPU seconds (user + system) process `pid` has used: the PostgreSQL backend's own work,
// which the machine's other load does not inflate the way it inflates wall time.
double CpuSeconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string field;
  for (int i = 1; i <= 13 && in >> field; ++i) {
    if (field.back() == ')') {
      continue;  // the command may hold spaces; its fields end with ')'
    }
  }
  unsigned long long utime = 0, stime = 0;
  in >> utime >> stime;
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

int Arg(int argc, char** argv, const std::string& name, int def) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == "--" + name) {
      return std::atoi(argv[i + 1]);
    }
  }
  return def;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tally;
  const int keys = Arg(argc, argv, "keys", 100'000);
  const int rounds = Arg(argc, argv, "rounds", 5);
  const int ezapi_seconds = Arg(argc, argv, "ezapi-seconds", 5);
  // 100: gorm's tables as created; below, room on each page for HOT updates (docs).
  const int fillfactor = Arg(argc, argv, "fillfactor", 100);
  std::printf("keys %d, rounds %d, fillfactor %d; load average before: %s\n", keys, rounds,
              fillfactor, LoadAverage().c_str());
  std::string error;
  std::unique_ptr<testing::PgCluster> cluster = testing::PgCluster::Start(&error);
  if (!cluster) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  cluster->CreateDatabase("bench");
  std::string conninfo = cluster->ConnInfo("bench");
  daemon::PostgresSinkMetrics metrics;
  daemon::PgSink sink(conninfo, &metrics);
  if (core::Status s = sink.Open(true); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  pqxx::connection conn(conninfo);
  {
    pqxx::work tx(conn);
    tx.exec(
        "INSERT INTO provider_groups (id, name, type, base_url, created_at, updated_at) "
        "SELECT g, 'g' || g, 'openai', 'https://x', now(), now() FROM generate_series(1, 100) g");
    tx.exec(
        "INSERT INTO api_keys (id, group_id, api_key, created_at, updated_at) SELECT k, "
        "(k - 1) % 100 + 1, 'sk-' || k, now(), now() FROM generate_series(1, " +
        std::to_string(keys) + ") k");
    tx.commit();
  }
  {
    pqxx::nontransaction tx(conn);
    tx.exec("VACUUM ANALYZE api_keys");
    tx.exec("VACUUM ANALYZE provider_groups");
  }

  std::mt19937 rng(1);
  uint64_t seq = 0;
  auto batch_of = [&](int first, int count) {
    core::DeltaBatch b{"bench", ++seq, seq, {}};
    b.deltas.reserve(static_cast<size_t>(count));
    for (int k = first; k < first + count; ++k) {
      b.deltas.push_back({static_cast<uint64_t>(k), rng() % 50, rng() % 5});
    }
    return b;
  };
  auto run = [&](int batch_keys, int batches) {
    std::vector<double> times;
    std::vector<double> cpu;
    for (int i = 0; i < batches; ++i) {
      int first = 1 + (i * batch_keys) % keys;
      first = std::min(first, keys - batch_keys + 1);
      core::DeltaBatch b = batch_of(first, batch_keys);
      int backend = sink.BackendPid();
      double cpu0 = CpuSeconds(backend);
      Clock::time_point t0 = Clock::now();
      core::StatusOr<daemon::PgApplyResult> r = sink.Apply(b);
      times.push_back(Seconds(t0));
      cpu.push_back(CpuSeconds(backend) - cpu0);
      if (!r.ok() || r->deltas_applied != static_cast<uint64_t>(batch_keys)) {
        std::fprintf(stderr, "apply failed: %s\n",
                     r.ok() ? "keys skipped" : r.status().ToString().c_str());
        std::exit(1);
      }
    }
    double median = Median(times);
    double median_cpu = Median(cpu);
    std::printf(
        "sink: batch of %d keys: median %.3f s (min %.3f, max %.3f), %.0f key-deltas/s; "
        "backend CPU median %.3f s, %.0f key-deltas per CPU second\n",
        batch_keys, median, *std::min_element(times.begin(), times.end()),
        *std::max_element(times.begin(), times.end()), batch_keys / median, median_cpu,
        median_cpu > 0 ? batch_keys / median_cpu : 0.0);
  };
  run(keys, rounds);
  run(keys / 10, rounds * 10);

  // ez-api's approach: every request updates its key and the key's group, each statement
  // committed on its own (gorm without an explicit transaction).
  conn.prepare("key",
               "UPDATE api_keys SET total_requests = total_requests + 1, success_requests = "
               "success_requests + $2, failure_requests = failure_requests + (1 - $2), "
               "success_rate = (success_requests + $2)::double precision / (total_requests + 1), "
               "failure_rate = (failure_requests + 1 - $2)::double precision / "
               "(total_requests + 1), updated_at = now() WHERE id = $1 AND deleted_at IS NULL");
  conn.prepare("group",
               "UPDATE provider_groups SET total_requests = total_requests + 1, "
               "success_requests = success_requests + $2, failure_requests = failure_requests + "
               "(1 - $2), success_rate = (success_requests + $2)::double precision / "
               "(total_requests + 1), failure_rate = (failure_requests + 1 - $2)::double "
               "precision / (total_requests + 1), updated_at = now() WHERE id = $1");
  uint64_t requests = 0;
  int backend = conn.backendpid();
  double cpu0 = CpuSeconds(backend);
  Clock::time_point t0 = Clock::now();
  while (Seconds(t0) < ezapi_seconds) {
    int key = static_cast<int>(rng() % static_cast<uint32_t>(keys)) + 1;
    int success = rng() % 10 != 0 ? 1 : 0;
    pqxx::nontransaction tx(conn);
    tx.exec_prepared("key", key, success);
    tx.exec_prepared("group", (key - 1) % 100 + 1, success);
    ++requests;
  }
  double elapsed = Seconds(t0);
  double cpu = CpuSeconds(backend) - cpu0;
  std::printf(
      "ez-api approach: %llu requests in %.1f s, %.0f requests (key-deltas of 1) /s; backend "
      "CPU %.2f s, %.0f requests per CPU second\n",
      static_cast<unsigned long long>(requests), elapsed, requests / elapsed, cpu,
      cpu > 0 ? requests / cpu : 0.0);
  std::printf("load average after: %s\n", LoadAverage().c_str());
  return 0;
}
