// Helpers shared by qocnet's benchmark programs: statistics, JSON output and
// a description of the machine a run was made on.
#pragma once

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace qocnet::bench {

// Median of the values (NaN for none: printed as null by num()).
inline double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

inline std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// A JSON string literal of s (control characters become spaces).
inline std::string json_str(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += c;
    else if (static_cast<unsigned char>(c) < 0x20) o += ' ';
    else o += c;
  }
  return o + "\"";
}

// A JSON number with `precision` decimals, or null when not finite.
inline std::string num(double v, int precision) {
  if (!std::isfinite(v)) return "null";
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", precision, v);
  return b;
}

struct Machine {
  unsigned nproc = 0;
  std::string kernel, cpu, loadavg;
};

inline Machine machine() {
  Machine m;
  m.nproc = static_cast<unsigned>(::sysconf(_SC_NPROCESSORS_ONLN));
  utsname u{};
  if (::uname(&u) == 0) m.kernel = u.release;
  std::ifstream ci("/proc/cpuinfo");
  std::string line;
  while (std::getline(ci, line))
    if (line.rfind("model name", 0) == 0) {
      auto c = line.find(':');
      if (c != std::string::npos) m.cpu = trim(line.substr(line.find_first_not_of(" \t", c + 1)));
      break;
    }
  std::ifstream la("/proc/loadavg");
  std::string a, b, c;
  la >> a >> b >> c;
  m.loadavg = a + " " + b + " " + c;
  return m;
}

}  // namespace qocnet::bench
