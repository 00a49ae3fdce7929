// The pinned edge's state file as a pure function (lib/state_file.hpp): what
// format_state writes, parse_state reads back; every corrupt file of
// test/support/state_cases.hpp is refused with failed_precondition, and a
// file cut at any byte is refused as incomplete.
#include <catch2/catch.hpp>

#include "../support/check.hpp"
#include "../support/state_cases.hpp"
#include "state_file.hpp"

using namespace qocnet;
using namespace qocnet::detail;

namespace {

SavedState example() {
  SavedState s;
  s.pin_dir = "/sys/fs/bpf/qocnet/edge";
  s.netns_inode = 4026531840ull;
  s.source_hash = 0x0123456789abcdefull;
  s.ports = {{"e0", 2, true}, {"e1", 3, false}};
  s.processes = {{{"proc0", "e1", "02:71:00:00:01:01", "10.77.1.1", 6000}, 0, 3},
                 {{"null", "e2", "02:71:00:00:01:02", "", 0}, 1, 4}};
  s.streams = {{{"10.77.0.1", 40000, 5000}, {{"proc0", Policy::keep()}, {"null", Policy::differential(0.5)}}},
               {{"fd00::1", 1, 65535}, {{"null", Policy::frame_aware(1.0)}}}};
  return s;
}

}  // namespace

TEST_CASE("a state file reads back what was written", "[state]") {
  const SavedState s = example();
  const std::string text = format_state(s);
  auto r = parse_state(text);
  REQUIRE_OK(r);
  CHECK(r->pin_dir == s.pin_dir);
  CHECK(r->netns_inode == s.netns_inode);
  CHECK(r->source_hash == s.source_hash);
  REQUIRE(r->ports.size() == 2);
  CHECK(r->ports[0].name == "e0");
  CHECK(r->ports[0].created_clsact);
  CHECK(r->ports[1].ifindex == 3);
  REQUIRE(r->processes.size() == 2);
  CHECK(r->processes[1].spec.name == "null");  // a name YAML would read as null, quoted
  CHECK(r->processes[1].spec.ip.empty());
  CHECK(r->processes[0].spec.udp_port == 6000);
  REQUIRE(r->streams.size() == 2);
  CHECK(r->streams[1].id.source == "fd00::1");
  CHECK(r->streams[1].id.destination_port == 65535);
  CHECK(r->streams[0].targets[1].policy == Policy::differential(0.5));
  CHECK(r->streams[1].targets[0].policy == Policy::frame_aware(1.0));
  CHECK(format_state(*r) == text);
}

TEST_CASE("corrupt state files are refused with failed_precondition and the fix", "[state]") {
  const auto cases = test::corrupt_states(format_state(example()));
  CHECK(cases.size() > 60);
  for (const auto& c : cases) {
    INFO("case: " << c.name << "\n" << c.text.substr(0, 3000));
    auto r = parse_state(c.text);
    REQUIRE_FALSE(r.ok());
    INFO("error: " << r.error().to_string());
    CHECK(r.error().code == Errc::failed_precondition);
    CHECK(r.error().message.find(c.why) != std::string::npos);
    CHECK(r.error().fix.find("qocnetctl cleanup") != std::string::npos);
  }
}

TEST_CASE("a state file cut at any byte is refused as incomplete", "[state]") {
  const std::string text = format_state(example());
  for (std::size_t n = 0; n < text.size(); ++n) {
    auto r = parse_state(text.substr(0, n));
    INFO("cut to " << n << " of " << text.size() << " bytes");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::failed_precondition);
  }
  // Every single-byte change of the body is caught by the checksum.
  for (std::size_t i = 0; i < text.size(); i += 7) {
    std::string t = text;
    t[i] = static_cast<char>(t[i] ^ 0x01);
    INFO("byte " << i << " changed");
    CHECK_FALSE(parse_state(t).ok());
  }
}
