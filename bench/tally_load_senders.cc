#include "bench/tally_load_senders.h"

#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

#include "bench/tally_load_net.h"

namespace tally::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void SleepUntil(Clock::time_point start, double at_s) {
  std::this_thread::sleep_until(
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(at_s)));
}

void Count(const Chunk& c, SendTotals* t) {
  t->messages += 1;
  t->events += c.lines();
  t->successes += c.successes;
  t->failures += c.failures;
}

}  // namespace

SendTotals SendDatagrams(int fd, const Pool& pool, const Options& o) {
  prctl(PR_SET_TIMERSLACK, 1UL);  // pacing sleeps as short as the timer allows
  const uint32_t batch = o.batch;
  std::vector<mmsghdr> msgs(batch);
  std::vector<iovec> iovs(batch);
  SendTotals t;
  const size_t n_chunks = pool.chunks.size();
  size_t next = 0;
  // Offered datagrams per second; each chunk holds exactly o.lines lines.
  const double dgram_rate = o.rate / o.lines;
  const Clock::time_point start = Clock::now();
  while (true) {
    double elapsed = Since(start);
    if (elapsed >= o.duration_s) {
      break;
    }
    uint32_t n = batch;
    if (o.rate > 0) {
      double due = std::floor(elapsed * dgram_rate) - static_cast<double>(t.messages);
      if (due < 1) {
        SleepUntil(start, (static_cast<double>(t.messages) + 1) / dgram_rate);
        continue;
      }
      n = static_cast<uint32_t>(std::min<double>(due, batch));
    }
    for (uint32_t i = 0; i < n; ++i) {
      const Chunk& c = pool.chunks[(next + i) % n_chunks];
      iovs[i] = {const_cast<char*>(pool.bytes.data() + c.offset), c.size};
      msgs[i].msg_hdr = {};
      msgs[i].msg_hdr.msg_iov = &iovs[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int sent = sendmmsg(fd, msgs.data(), n, 0);
    if (sent < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == ENOBUFS || errno == EAGAIN || errno == ECONNREFUSED) {
        // Not sent, so not counted as sent; the receiver is not charged with it.
        t.send_errors += 1;
        continue;
      }
      t.error = std::string("sendmmsg: ") + std::strerror(errno);
      break;
    }
    for (int i = 0; i < sent; ++i) {
      Count(pool.chunks[(next + i) % n_chunks], &t);
    }
    next = (next + static_cast<size_t>(sent)) % n_chunks;
  }
  t.seconds = Since(start);
  return t;
}

namespace {

void HttpWorker(const Pool& pool, const Options& o, uint32_t index, SendTotals* t) {
  std::string error;
  int fd = ConnectTcp(o.target, &error);
  if (fd < 0) {
    t->error = error;
    return;
  }
  const size_t n_chunks = pool.chunks.size();
  size_t next = (n_chunks / o.connections) * index;  // connections start at different chunks
  const double request_rate = o.rate / o.lines / o.connections;  // per connection
  std::string buffer;
  std::string out;
  HttpResponse res;
  std::vector<size_t> in_flight;
  std::vector<Clock::time_point> sent_at;
  uint64_t requests = 0;
  const Clock::time_point start = Clock::now();
  while (Since(start) < o.duration_s) {
    if (request_rate > 0) {
      SleepUntil(start, static_cast<double>(requests) / request_rate);
    }
    out.clear();
    in_flight.clear();
    sent_at.clear();
    for (uint32_t p = 0; p < o.pipeline; ++p) {
      const Chunk& c = pool.chunks[next];
      out.append(pool.bytes, c.offset, c.size);
      in_flight.push_back(next);
      next = (next + 1) % n_chunks;
    }
    Clock::time_point sent = Clock::now();
    if (!SendAll(fd, out.data(), out.size())) {
      t->error = std::string("http send: ") + std::strerror(errno);
      break;
    }
    requests += o.pipeline;
    bool broken = false;
    for (size_t chunk : in_flight) {
      if (!ReadHttpResponse(fd, &buffer, &res)) {
        t->send_errors += 1;
        broken = true;
        break;
      }
      if (res.status / 100 != 2) {
        t->send_errors += 1;
        continue;
      }
      Count(pool.chunks[chunk], t);
      t->http_accepted +=
          static_cast<uint64_t>(std::max<int64_t>(0, JsonNumber(res.body, "accepted")));
      for (const char* k : {"ignored", "malformed", "refused"}) {
        t->http_rejected += static_cast<uint64_t>(std::max<int64_t>(0, JsonNumber(res.body, k)));
      }
      if (o.wait_flush) {
        t->latencies_ms.push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - sent).count());
      }
    }
    if (broken) {
      t->error = "http connection broken or bad response";
      break;
    }
  }
  t->seconds = Since(start);
  close(fd);
}

}  // namespace

SendTotals SendHttp(const Pool& pool, const Options& o) {
  std::vector<SendTotals> parts(o.connections);
  std::vector<std::thread> threads;
  for (uint32_t i = 0; i < o.connections; ++i) {
    threads.emplace_back(HttpWorker, std::cref(pool), std::cref(o), i, &parts[i]);
  }
  SendTotals t;
  for (uint32_t i = 0; i < o.connections; ++i) {
    threads[i].join();
    const SendTotals& p = parts[i];
    t.messages += p.messages;
    t.events += p.events;
    t.successes += p.successes;
    t.failures += p.failures;
    t.send_errors += p.send_errors;
    t.http_accepted += p.http_accepted;
    t.http_rejected += p.http_rejected;
    t.seconds = std::max(t.seconds, p.seconds);
    t.latencies_ms.insert(t.latencies_ms.end(), p.latencies_ms.begin(), p.latencies_ms.end());
    if (t.error.empty()) {
      t.error = p.error;
    }
  }
  return t;
}

}  // namespace tally::bench
