#include "cli/bind_address.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace tronada::cli {
namespace {

using Kind = BindAddress::Kind;

BindAddress tcp(std::string host, uint16_t port) {
  return BindAddress{Kind::tcp, std::move(host), port, ""};
}
BindAddress unix_socket(std::string path) {
  return BindAddress{Kind::unix_socket, "", 0, path};
}

// The message must quote the input, so a user with several -b flags knows which one is wrong.
void expect_error(const std::string& input, const std::string& reason_fragment) {
  try {
    BindAddress addr = parse_bind_address(input);
    ADD_FAILURE() << "'" << input << "' was accepted as " << addr.to_string();
  } catch (const std::invalid_argument& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("'" + input + "'"), std::string::npos) << what;
    EXPECT_NE(what.find(reason_fragment), std::string::npos) << what;
  }
}

TEST(BindAddress, HostAndPort) {
  EXPECT_EQ(parse_bind_address("127.0.0.1:8000"), tcp("127.0.0.1", 8000));
  EXPECT_EQ(parse_bind_address("0.0.0.0:80"), tcp("0.0.0.0", 80));
  EXPECT_EQ(parse_bind_address("localhost:8000"), tcp("localhost", 8000));
  EXPECT_EQ(parse_bind_address("example.com:443"), tcp("example.com", 443));
  EXPECT_EQ(parse_bind_address("example.com.:443"), tcp("example.com.", 443));
  EXPECT_EQ(parse_bind_address("my_service-1:9000"), tcp("my_service-1", 9000));
}

TEST(BindAddress, PortBounds) {
  EXPECT_EQ(parse_bind_address("127.0.0.1:0"), tcp("127.0.0.1", 0));  // ephemeral
  EXPECT_EQ(parse_bind_address("127.0.0.1:65535"), tcp("127.0.0.1", 65535));
  EXPECT_EQ(parse_bind_address("127.0.0.1:08080"), tcp("127.0.0.1", 8080));
}

TEST(BindAddress, BracketedIPv6) {
  EXPECT_EQ(parse_bind_address("[::1]:8000"), tcp("::1", 8000));
  EXPECT_EQ(parse_bind_address("[::]:8000"), tcp("::", 8000));
  EXPECT_EQ(parse_bind_address("[2001:db8::1]:443"), tcp("2001:db8::1", 443));
  EXPECT_EQ(parse_bind_address("[::ffff:127.0.0.1]:80"), tcp("::ffff:127.0.0.1", 80));
  EXPECT_EQ(parse_bind_address("[fe80::1%eth0]:80"), tcp("fe80::1%eth0", 80));
}

TEST(BindAddress, EmptyHostMeansEveryInterface) {
  EXPECT_EQ(parse_bind_address(":8000"), tcp("", 8000));
  EXPECT_EQ(parse_bind_address("*:8000"), tcp("", 8000));
  EXPECT_EQ(parse_bind_address(":0"), tcp("", 0));
}

TEST(BindAddress, HostWithoutPortUsesDefault) {
  EXPECT_EQ(parse_bind_address("localhost"), tcp("localhost", kDefaultPort));
  EXPECT_EQ(parse_bind_address("127.0.0.1"), tcp("127.0.0.1", 8888));
  EXPECT_EQ(parse_bind_address("[::1]"), tcp("::1", 8888));
}

TEST(BindAddress, TcpScheme) {
  EXPECT_EQ(parse_bind_address("tcp://127.0.0.1:9000"), tcp("127.0.0.1", 9000));
  EXPECT_EQ(parse_bind_address("tcp://[::1]:9000"), tcp("::1", 9000));
  EXPECT_EQ(parse_bind_address("tcp://:9000"), tcp("", 9000));
}

TEST(BindAddress, UnixSocket) {
  EXPECT_EQ(parse_bind_address("unix:/run/tronada.sock"), unix_socket("/run/tronada.sock"));
  EXPECT_EQ(parse_bind_address("unix:relative.sock"), unix_socket("relative.sock"));
  // gunicorn strips `//`: three slashes give an absolute path, two a relative one.
  EXPECT_EQ(parse_bind_address("unix:///run/tronada.sock"), unix_socket("/run/tronada.sock"));
  EXPECT_EQ(parse_bind_address("unix://run/tronada.sock"), unix_socket("run/tronada.sock"));
  EXPECT_EQ(parse_bind_address("unix:/" + std::string(106, 'a')),
            unix_socket("/" + std::string(106, 'a')));
}

TEST(BindAddress, ToStringIsCanonicalAndRoundTrips) {
  EXPECT_EQ(tcp("127.0.0.1", 8000).to_string(), "127.0.0.1:8000");
  EXPECT_EQ(tcp("localhost", 0).to_string(), "localhost:0");
  EXPECT_EQ(tcp("::1", 8000).to_string(), "[::1]:8000");
  EXPECT_EQ(tcp("", 8000).to_string(), ":8000");
  EXPECT_EQ(unix_socket("/run/t.sock").to_string(), "unix:/run/t.sock");
  EXPECT_EQ(unix_socket("//run/t.sock").to_string(), "unix:////run/t.sock");
  // A host named "unix" must not read back as a socket path (found by fuzzing).
  EXPECT_EQ(tcp("unix", 8888).to_string(), "tcp://unix:8888");
  for (const char* input :
       {"127.0.0.1:8000", "[::1]:1", ":8000", "*:8000", "localhost", "[fe80::1%eth0]:80",
        "unix:/run/t.sock", "unix:////x", "tcp://h:1", "unix", "unix:8000x"}) {
    BindAddress addr = parse_bind_address(input);
    EXPECT_EQ(parse_bind_address(addr.to_string()), addr) << input;
  }
}

TEST(BindAddress, RejectsEmpty) {
  expect_error("", "empty");
  expect_error("tcp://", "empty");
  expect_error("unix:", "path is empty");
  expect_error("unix://", "path is empty");
}

TEST(BindAddress, RejectsBadPorts) {
  expect_error("127.0.0.1:", "missing port");
  expect_error(":", "missing port");
  expect_error("[::1]:", "missing port");
  expect_error("127.0.0.1:65536", "out of range");
  expect_error("127.0.0.1:99999999999999999999999", "out of range");
  expect_error("127.0.0.1:http", "not a number");
  expect_error("127.0.0.1:-1", "not a number");
  expect_error("127.0.0.1:+80", "not a number");
  expect_error("127.0.0.1:80 ", "not a number");
  expect_error("127.0.0.1:8o", "not a number");
}

TEST(BindAddress, RejectsBareNumber) {
  expect_error("8000", "did you mean ':8000'");
}

TEST(BindAddress, RejectsUnbalancedBrackets) {
  expect_error("[::1:8000", "without a matching ']'");
  expect_error("::1]:8000", "unbalanced");
  expect_error("[[::1]]:80", "unbalanced");
  expect_error("host]:80", "unbalanced");
  expect_error("[::1]8000", "after ']'");
  expect_error("[::1]]:80", "after ']'");
}

TEST(BindAddress, RejectsBadIPv6) {
  expect_error("[]:80", "empty IPv6");
  expect_error("[127.0.0.1]:80", "not a valid IPv6");
  expect_error("[localhost]:80", "not a valid IPv6");
  expect_error("[::g]:80", "not a valid IPv6");
  expect_error("[fe80::1%]:80", "not a valid IPv6");
  expect_error("[fe80::1%eth 0]:80", "not a valid IPv6");
}

TEST(BindAddress, RejectsIPv6WithoutBrackets) {
  expect_error("::1", "in brackets");
  expect_error("::1:8000", "in brackets");
  expect_error("2001:db8::1:443", "in brackets");
  expect_error("::", "in brackets");
}

TEST(BindAddress, RejectsBadIPv4) {
  expect_error("256.0.0.1:80", "not a valid IPv4");
  expect_error("1.2.3:80", "not a valid IPv4");
  expect_error("1.2.3.4.5:80", "not a valid IPv4");
  expect_error("127.0.0.01:80", "not a valid IPv4");
  expect_error("...:80", "not a valid IPv4");
}

TEST(BindAddress, RejectsBadHostNames) {
  expect_error("exa mple.com:80", "not a valid host name");
  expect_error(" localhost:80", "not a valid host name");
  expect_error("-bad.example:80", "not a valid host name");
  expect_error("bad-.example:80", "not a valid host name");
  expect_error("a..b:80", "not a valid host name");
  expect_error(".example:80", "not a valid host name");
  expect_error("example..:80", "not a valid host name");
  expect_error("h\xC3\xA9llo:80", "not a valid host name");
  expect_error(std::string(64, 'a') + ":80", "not a valid host name");
  expect_error("**:80", "not a valid host name");
  expect_error("http://localhost:80", "not a URL");
  expect_error("tcp://unix:/x", "not a number");
}

TEST(BindAddress, RejectsBadUnixPaths) {
  expect_error("unix:/" + std::string(107, 'a'), "longer than the 107");
  try {
    parse_bind_address(std::string("unix:/run/\0x", 12));
    ADD_FAILURE() << "a path with a NUL was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'unix:/run/\\x00x'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("NUL"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tronada::cli
