// SPDX-License-Identifier: Apache-2.0
#include <catch2/catch.hpp>

#include "qocnet/edge.hpp"

using namespace qocnet;

TEST_CASE("stream ids parse what to_string prints", "[unit][stream]") {
  for (const StreamId& s : {StreamId{"10.0.0.1", 40000, 5000}, StreamId{"fd00::1", 1, 65535}}) {
    auto back = parse_stream_id(to_string(s));
    REQUIRE(back.ok());
    CHECK(back->source == s.source);
    CHECK(back->source_port == s.source_port);
    CHECK(back->destination_port == s.destination_port);
  }
  auto colon = parse_stream_id("10.0.0.2:1234:5000");
  REQUIRE(colon.ok());
  CHECK(colon->source_port == 1234);
  CHECK(colon->destination_port == 5000);
}

TEST_CASE("malformed stream ids name the wrong part", "[unit][stream]") {
  struct Case { const char* text; const char* says; };
  for (auto c : {Case{"10.0.0.1", "no ':'"}, Case{"10.0.0.1:40000", "->:DPORT"},
                 Case{"10.0.0.1:x->:5000", "source port 'x'"},
                 Case{"10.0.0.1:40000->:0", "destination port 0 is not in 1..65535"},
                 Case{"10.0.0.1:40000->:70000", "not in 1..65535"},
                 Case{"[fd00::1:40000->:5000", "no ']'"},
                 Case{"host:40000->:5000", "not an IPv4 or IPv6 address"}}) {
    auto r = parse_stream_id(c.text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::invalid_argument);
    CHECK_THAT(r.error().message, Catch::Contains(c.says));
  }
}

TEST_CASE("one source address written several ways parses to one stream id", "[unit][stream]") {
  // The canonical form is what inet_ntop prints; IPv4-mapped IPv6 is IPv4.
  struct Case { const char* text; const char* source; };
  for (auto c : {Case{"[2001:0db8:0:0::1]:40000->:5000", "2001:db8::1"},
                 Case{"[2001:DB8:0000:0000:0000:0000:0000:0001]:40000->:5000", "2001:db8::1"},
                 Case{"[::ffff:10.0.0.1]:40000->:5000", "10.0.0.1"},
                 Case{"[::FFFF:0a00:0001]:40000->:5000", "10.0.0.1"},
                 Case{"10.0.0.1:40000->:5000", "10.0.0.1"}}) {
    auto r = parse_stream_id(c.text);
    INFO(c.text);
    REQUIRE(r.ok());
    CHECK(r->source == c.source);
    CHECK(r->source_port == 40000);
    CHECK(r->destination_port == 5000);
  }
}
