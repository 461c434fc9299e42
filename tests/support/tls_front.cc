#include "tests/support/tls_front.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <cstdlib>
#include <stdexcept>

#include "tests/support/tallyd_process.h"

namespace tally::testing {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

TestCa MakeTestCa(const std::string& dir) {
  const std::string cmd =
      "cd '" + dir +
      "' && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 "
      "-subj /CN=tallyd-test-ca 2>/dev/null"
      " && openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
      "-subj /CN=localhost 2>/dev/null"
      " && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext"
      " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
      "-out server.pem -days 1 -extfile san.ext 2>/dev/null";
  if (std::system(cmd.c_str()) != 0) {
    throw std::runtime_error("openssl could not make the test CA");
  }
  return {dir + "/ca.pem", dir + "/server.pem", dir + "/server.key"};
}

struct TlsFront::Impl {
  asio::io_context io;
  asio::ssl::context ssl{asio::ssl::context::tls_server};
  tcp::acceptor acceptor{io};
  uint16_t upstream = 0;
  std::atomic<bool> stop{false};
  std::thread acceptor_thread;
  std::mutex mu;
  std::vector<std::thread> workers;
};

namespace {

// Reads one HTTP message (headers, then a Content-Length body) from `s`.
template <typename Stream>
bool ReadMessage(Stream& s, std::string* out) {
  asio::streambuf buf;
  boost::system::error_code ec;
  size_t head = asio::read_until(s, buf, "\r\n\r\n", ec);
  if (ec) {
    return false;
  }
  std::string data(asio::buffers_begin(buf.data()), asio::buffers_end(buf.data()));
  std::string lower = data.substr(0, head);
  for (char& c : lower) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  size_t length = 0;
  if (size_t cl = lower.find("content-length:"); cl != std::string::npos) {
    length = std::stoul(lower.substr(cl + 15));
  }
  if (data.size() < head + length) {
    std::string rest(head + length - data.size(), '\0');
    asio::read(s, asio::buffer(rest), ec);
    if (ec) {
      return false;
    }
    data += rest;
  }
  *out = data.substr(0, head + length);
  return true;
}

}  // namespace

TlsFront::TlsFront(const TestCa& ca, uint16_t upstream_port) : impl_(new Impl) {
  impl_->upstream = upstream_port;
  impl_->ssl.use_certificate_chain_file(ca.cert_pem);
  impl_->ssl.use_private_key_file(ca.key_pem, asio::ssl::context::pem);
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen();
  port_ = impl_->acceptor.local_endpoint().port();
  impl_->acceptor_thread = std::thread([this] {
    while (!impl_->stop.load()) {
      boost::system::error_code ec;
      tcp::socket socket(impl_->io);
      impl_->acceptor.accept(socket, ec);
      if (ec || impl_->stop.load()) {
        continue;
      }
      std::lock_guard lock(impl_->mu);
      impl_->workers.emplace_back([this, s = std::move(socket)]() mutable {
        asio::ssl::stream<tcp::socket> tls(std::move(s), impl_->ssl);
        boost::system::error_code hec;
        tls.handshake(asio::ssl::stream_base::server, hec);
        if (hec) {
          return;
        }
        handshakes_.fetch_add(1);
        std::string request;
        std::string answer;
        if (!ReadMessage(tls, &request)) {
          return;
        }
        asio::io_context io;
        tcp::socket up(io);
        boost::system::error_code uec;
        up.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), impl_->upstream), uec);
        if (uec) {
          return;
        }
        asio::write(up, asio::buffer(request), uec);
        if (uec || !ReadMessage(up, &answer)) {
          return;
        }
        asio::write(tls, asio::buffer(answer), uec);
        tls.shutdown(uec);
      });
    }
  });
}

TlsFront::~TlsFront() {
  impl_->stop.store(true);
  // Wake the blocking accept with a connection of our own.
  int fd = ConnectLoopback(SOCK_STREAM, port_);
  if (fd >= 0) {
    close(fd);
  }
  impl_->acceptor_thread.join();
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(impl_->mu);
    workers.swap(impl_->workers);
  }
  for (auto& t : workers) {
    t.join();
  }
  delete impl_;
}

}  // namespace tally::testing
