// Helpers shared by qocnet's benchmark programs: statistics, JSON output (the
// common JSON-lines format of scripts/bench) and a description of the machine
// a run was made on.
#pragma once

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
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

// Results in the common line format of scripts/bench, one JSON object a line:
//   {"bench":B,"metric":M,"value":V,"unit":U}
//   {"bench":B,"metric":M,"value":V,"unit":U,"vs":P,"ratio":R}
// The second form repeats metric M of bench B and compares it with metric P
// of the same bench: R = V / P's value (a line per comparison, so a metric
// compared with two peers has two such lines). Values that could not be
// measured are null.
class JsonLines {
 public:
  // A figure, `precision` decimals.
  void add(std::string bench, std::string metric, double value, std::string unit, int precision) {
    lines_.push_back({std::move(bench), std::move(metric), value, std::move(unit), precision, {}, NAN});
  }
  // A comparison of two figures added before (NaN ratio if either is missing).
  void compare(const std::string& bench, const std::string& metric, const std::string& vs) {
    const Line* a = find(bench, metric);
    const Line* b = find(bench, vs);
    Line l = a ? *a : Line{bench, metric, NAN, "", 0, {}, NAN};
    l.vs = vs;
    l.ratio = a && b && b->value != 0 ? a->value / b->value : NAN;
    lines_.push_back(std::move(l));
  }
  double value(const std::string& bench, const std::string& metric) const {
    const Line* l = find(bench, metric);
    return l ? l->value : NAN;
  }
  void print(std::FILE* to) const {
    for (const auto& l : lines_) {
      std::string s = "{\"bench\":" + json_str(l.bench) + ",\"metric\":" + json_str(l.metric) +
                      ",\"value\":" + num(l.value, l.precision) + ",\"unit\":" + json_str(l.unit);
      if (!l.vs.empty()) s += ",\"vs\":" + json_str(l.vs) + ",\"ratio\":" + num(l.ratio, 4);
      std::fprintf(to, "%s}\n", s.c_str());
    }
    std::fflush(to);
  }

 private:
  struct Line {
    std::string bench, metric;
    double value;
    std::string unit;
    int precision;
    std::string vs;
    double ratio;
  };
  const Line* find(const std::string& bench, const std::string& metric) const {
    for (const auto& l : lines_)
      if (l.vs.empty() && l.bench == bench && l.metric == metric) return &l;
    return nullptr;
  }
  std::vector<Line> lines_;
};

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
