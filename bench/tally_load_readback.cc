#include "bench/tally_load_readback.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "bench/tally_load_net.h"

namespace tally::bench {
namespace {

// The value on the line starting with `series ` in Prometheus text; -1 when absent.
int64_t MetricValue(const std::string& text, const std::string& series) {
  size_t at = 0;
  while ((at = text.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') {
      return std::strtoll(text.c_str() + at + series.size() + 1, nullptr, 10);
    }
    at += series.size();
  }
  return -1;
}

std::string AdminHeader(const Options& o) {
  return o.admin_token.empty() ? "" : "Authorization: Bearer " + o.admin_token + "\r\n";
}

Snapshot ReadFloor(const Options& o) {
  Snapshot s;
  std::string error;
  int fd = ConnectTcp(o.floor_control, &error);
  if (fd < 0) {
    s.error = error;
    return s;
  }
  std::string line;
  char buf[512];
  ssize_t n = 0;
  while ((n = read(fd, buf, sizeof buf)) > 0) {
    line.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  int64_t lines = JsonNumber(line, "lines");
  if (lines < 0) {
    s.error = "floor control answered '" + line + "'";
    return s;
  }
  s.lines[0] = static_cast<uint64_t>(lines);
  s.kernel_drops = static_cast<uint64_t>(std::max<int64_t>(0, JsonNumber(line, "drops")));
  s.rcvbuf = JsonNumber(line, "rcvbuf");
  return s;
}

int64_t TargetUdpDrops(const Options& o) {
  if (o.transport != "udp") {
    return -1;
  }
  size_t colon = o.target.rfind(':');
  return ProcUdpDrops(static_cast<uint16_t>(std::atoi(o.target.c_str() + colon + 1)));
}

}  // namespace

int64_t ProcUdpDrops(uint16_t port) {
  int64_t drops = 0;
  char want[8];
  snprintf(want, sizeof want, ":%04X", port);
  for (const char* path : {"/proc/net/udp", "/proc/net/udp6"}) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string f[13];
      for (std::string& x : f) {
        fields >> x;
      }
      // f[1] is local_address "HEXADDR:PORT"; f[12] is drops.
      if (f[1].size() > 5 && f[1].compare(f[1].size() - 5, 5, want) == 0) {
        drops += std::atoll(f[12].c_str());
      }
    }
  }
  return drops;
}

Snapshot ReadCounters(const Options& o) {
  if (o.readback == "floor") {
    Snapshot s = ReadFloor(o);
    s.proc_drops = TargetUdpDrops(o);
    return s;
  }
  Snapshot s;
  s.proc_drops = TargetUdpDrops(o);
  HttpResponse res = HttpCall(o.http, "GET", "/metrics", "");
  if (res.status != 200) {
    s.error = "GET /metrics on " + o.http + " answered " + std::to_string(res.status);
    return s;
  }
  static const char* kResults[] = {"accepted", "ignored", "malformed", "refused"};
  for (int r = 0; r < 4; ++r) {
    std::string series =
        "tallyd_lines_total{transport=\"" + o.transport + "\",result=\"" + kResults[r] + "\"}";
    int64_t v = MetricValue(res.body, series);
    if (v < 0) {
      s.error = "no " + series + " in /metrics";
      return s;
    }
    s.lines[r] = static_cast<uint64_t>(v);
  }
  s.kernel_drops = static_cast<uint64_t>(
      std::max<int64_t>(0, MetricValue(res.body, "tallyd_udp_kernel_drops_total")));
  return s;
}

std::string FlushTallyd(const Options& o) {
  HttpResponse res = HttpCall(o.http, "POST", "/admin/flush", AdminHeader(o));
  if (res.status == 200) {
    return "POST /admin/flush";
  }
  std::string token =
      o.internal_token.empty() ? "" : "X-Internal-Token: " + o.internal_token + "\r\n";
  res = HttpCall(o.http, "POST", "/v1/ingest?wait=flush", token);
  if (res.status == 200) {
    return "POST /v1/ingest?wait=flush (empty body)";
  }
  return "";
}

void ReadSummary(const Options& o, Snapshot* s) {
  HttpResponse res = HttpCall(o.http, "GET", "/admin/apikey-stats/summary", AdminHeader(o));
  if (res.status != 200) {
    s->error = "GET /admin/apikey-stats/summary answered " + std::to_string(res.status);
    return;
  }
  s->total = JsonNumber(res.body, "total_requests");
  s->success = JsonNumber(res.body, "success_requests");
  s->failure = JsonNumber(res.body, "failure_requests");
}

}  // namespace tally::bench
