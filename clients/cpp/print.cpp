// SPDX-License-Identifier: Apache-2.0
#include "qocnet_client/print.hpp"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace qocnet::client {

namespace {

// "12", "0.05", "-3", "1.5e+06", "12.3%".
bool numeric(const std::string& s) {
  if (s.empty() || !(std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-' || s[0] == '.'))
    return false;
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  if (end == s.c_str()) return false;
  return *end == '\0' || (end[0] == '%' && end[1] == '\0');
}

}  // namespace

Table::Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}

void Table::add(std::vector<std::string> row) {
  row.resize(headers_.size());
  rows_.push_back(std::move(row));
}

std::string Table::str() const {
  std::vector<std::size_t> width(headers_.size());
  for (std::size_t c = 0; c < headers_.size(); ++c) width[c] = headers_[c].size();
  for (const auto& r : rows_)
    for (std::size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], r[c].size());
  auto line = [&](const std::vector<std::string>& r, bool header) {
    std::string out;
    for (std::size_t c = 0; c < r.size(); ++c) {
      const std::string pad(width[c] - r[c].size(), ' ');
      const bool last = c + 1 == r.size();
      if (!header && numeric(r[c])) out += pad + r[c];
      else out += r[c] + (last ? std::string() : pad);
      if (!last) out += "  ";
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line(headers_, true);
  for (const auto& r : rows_) out += line(r, false);
  return out;
}

void Table::print(std::FILE* out) const { std::fputs(str().c_str(), out); }

std::string to_json(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  options.always_print_primitive_fields = true;
  options.always_print_enums_as_ints = false;
  options.preserve_proto_field_names = true;
  std::string out;
  auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) return "{\"error\":\"" + std::string(status.message()) + "\"}";
  return out;
}

std::string num(std::uint64_t v) { return std::to_string(v); }

std::string num(double v, int digits) {
  char b[48];
  std::snprintf(b, sizeof b, "%.*g", digits, v);
  return b;
}

std::string percent(double fraction) {
  char b[48];
  std::snprintf(b, sizeof b, "%.1f%%", 100.0 * fraction);
  return b;
}

std::string bytes(double v) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char b[48];
  if (u == 0) std::snprintf(b, sizeof b, "%.0f B", v);
  else std::snprintf(b, sizeof b, "%.1f %s", v, units[u]);
  return b;
}

}  // namespace qocnet::client
