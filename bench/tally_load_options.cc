#include "bench/tally_load_options.h"

#include <cstdlib>
#include <functional>
#include <map>

namespace tally::bench {
namespace {

bool ToDouble(const std::string& s, double* out) {
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);
  return !s.empty() && end == s.c_str() + s.size() && *out >= 0;
}

bool ToU64(const std::string& s, uint64_t* out) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 19) {
    return false;
  }
  *out = std::strtoull(s.c_str(), nullptr, 10);
  return true;
}

}  // namespace

const char* Usage() {
  return R"(usage: tally-load [options]
Sends pre-rendered statsd counter lines (apikey.<id>.success|failure:1|c) to tallyd (or a
peer), then reads back what the receiver counted and prints one JSON line on stdout.
  --transport udp|unix|http   (udp)
  --target HOST:PORT|PATH     udp: 127.0.0.1:8125, http: 127.0.0.1:8126, unix: /tmp/tallyd.sock
  --rate N                    offered events/s in total; 0 = flat out (0)
  --duration S                seconds of sending (5)
  --keys N                    distinct key ids 1..N; every one appears in the pool (100000)
  --skew uniform|zipf         key popularity (uniform); --zipf-s S exponent (1.0)
  --success-ratio R           share of success lines, 0..1 (0.9)
  --lines N                   lines per datagram or HTTP body (1)
  --connections N             HTTP keep-alive connections, one thread each (2)
  --pipeline N                HTTP requests in flight per connection (1)
  --batch N                   datagrams per sendmmsg call (32)
  --wait-flush                HTTP: POST /v1/ingest?wait=flush; report p50/p99 latency
  --readback tallyd|floor|none  what to read the received counts from (tallyd)
  --http HOST:PORT            tallyd's HTTP API for the read-back (127.0.0.1:8126)
  --floor-control HOST:PORT   the floor's control port (127.0.0.1:8129)
  --internal-token T          X-Internal-Token (or TALLYD_INTERNAL_TOKEN)
  --admin-token T             admin bearer token (or TALLYD_ADMIN_TOKEN)
  --prefix P                  metric prefix (apikey)
  --label L                   copied into the JSON line
  --seed N                    payload randomness (42)
  --settle S                  longest wait for the receiver to catch up (10)
)";
}

std::string ParseOptions(int argc, char** argv, Options* o) {
  if (const char* t = std::getenv("TALLYD_INTERNAL_TOKEN")) {
    o->internal_token = t;
  }
  if (const char* t = std::getenv("TALLYD_ADMIN_TOKEN")) {
    o->admin_token = t;
  }
  auto str = [](std::string* dst) {
    return [dst](const std::string& v) {
      *dst = v;
      return true;
    };
  };
  auto dbl = [](double* dst) { return [dst](const std::string& v) { return ToDouble(v, dst); }; };
  auto u64 = [](uint64_t* dst) { return [dst](const std::string& v) { return ToU64(v, dst); }; };
  auto u32 = [](uint32_t* dst) {
    return [dst](const std::string& v) {
      uint64_t x = 0;
      if (!ToU64(v, &x) || x == 0 || x > 1000000) {
        return false;
      }
      *dst = static_cast<uint32_t>(x);
      return true;
    };
  };
  std::map<std::string, std::function<bool(const std::string&)>> valued = {
      {"--transport", str(&o->transport)},
      {"--target", str(&o->target)},
      {"--http", str(&o->http)},
      {"--rate", dbl(&o->rate)},
      {"--duration", dbl(&o->duration_s)},
      {"--keys", u64(&o->keys)},
      {"--skew", str(&o->skew)},
      {"--zipf-s", dbl(&o->zipf_s)},
      {"--success-ratio", dbl(&o->success_ratio)},
      {"--lines", u32(&o->lines)},
      {"--connections", u32(&o->connections)},
      {"--pipeline", u32(&o->pipeline)},
      {"--batch", u32(&o->batch)},
      {"--readback", str(&o->readback)},
      {"--floor-control", str(&o->floor_control)},
      {"--internal-token", str(&o->internal_token)},
      {"--admin-token", str(&o->admin_token)},
      {"--prefix", str(&o->prefix)},
      {"--label", str(&o->label)},
      {"--seed", u64(&o->seed)},
      {"--settle", dbl(&o->settle_s)},
  };
  bool http_set = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      return "help";
    }
    if (arg == "--wait-flush") {
      o->wait_flush = true;
      continue;
    }
    std::string value;
    size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (valued.count(arg) != 0 && i + 1 < argc) {
      value = argv[++i];
    }
    http_set = http_set || arg == "--http";
    auto it = valued.find(arg);
    if (it == valued.end()) {
      return "unknown option " + arg;
    }
    if (!it->second(value)) {
      return "bad value '" + value + "' for " + arg;
    }
  }
  if (o->transport != "udp" && o->transport != "unix" && o->transport != "http") {
    return "--transport must be udp, unix or http";
  }
  if (o->skew != "uniform" && o->skew != "zipf") {
    return "--skew must be uniform or zipf";
  }
  if (o->readback != "tallyd" && o->readback != "floor" && o->readback != "none") {
    return "--readback must be tallyd, floor or none";
  }
  if (o->keys == 0 || o->keys > 100000000) {
    return "--keys must be 1..100000000";
  }
  if (o->success_ratio > 1) {
    return "--success-ratio must be 0..1";
  }
  if (o->duration_s <= 0 || o->duration_s > 3600) {
    return "--duration must be in (0, 3600]";
  }
  if (o->wait_flush && o->transport != "http") {
    return "--wait-flush needs --transport http";
  }
  if (o->transport == "http" && !o->target.empty() && !http_set) {
    o->http = o->target;  // one address serves both the ingest and the read-back
  }
  if (o->target.empty()) {
    o->target = o->transport == "udp"    ? "127.0.0.1:8125"
                : o->transport == "http" ? o->http
                                         : "/tmp/tallyd.sock";
  }
  return "";
}

}  // namespace tally::bench
