// SPDX-License-Identifier: Apache-2.0
// YAML scalars written by hand for the state files that are rewritten on
// every change (the edge's, lib/edge_pin.cpp; qocnetd's,
// lib/control/daemon_state.cpp): yaml-cpp's emitter costs milliseconds a
// save (docs/BENCHMARKS.md, State file cost). yaml-cpp reads them back
// exactly.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

namespace qocnet::detail {

// A YAML double-quoted scalar holding exactly the bytes of `v`: `"` and `\`
// escaped, control bytes (and DEL) as \xNN, every other byte as it is
// (yaml-cpp's reader passes bytes >= 0x80 through unchanged, so a name that
// is not valid UTF-8 still reads back as itself).
inline void put_quoted(std::string& o, std::string_view v) {
  static constexpr char kHex[] = "0123456789abcdef";
  o += '"';
  for (const char ch : v) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      o += '\\';
      o += ch;
    } else if (c < 0x20 || c == 0x7f) {
      o += "\\x";
      o += kHex[c >> 4];
      o += kHex[c & 0xf];
    } else {
      o += ch;
    }
  }
  o += '"';
}

inline void put_uint(std::string& o, std::uint64_t v) {
  char b[24];
  const auto r = std::to_chars(b, b + sizeof b, v);
  o.append(b, r.ptr);
}

// The shortest text strtod reads back as exactly `v`; YAML's .nan/.inf for
// values a state never holds (the readers refuse them).
inline void put_real(std::string& o, double v) {
  if (std::isnan(v)) {
    o += ".nan";
    return;
  }
  if (std::isinf(v)) {
    o += v < 0 ? "-.inf" : ".inf";
    return;
  }
  char b[32];
  const auto r = std::to_chars(b, b + sizeof b, v);
  o.append(b, r.ptr);
}

}  // namespace qocnet::detail
