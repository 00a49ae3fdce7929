// SPDX-License-Identifier: Apache-2.0
// Output of qocnet's clients: aligned text tables for people, one line of
// JSON per message for programs.
#pragma once

#include <google/protobuf/message.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace qocnet::client {

// Columns padded to their widest cell; cells that look like numbers are
// right-aligned, the rest left-aligned.
class Table {
 public:
  explicit Table(std::vector<std::string> headers);
  void add(std::vector<std::string> row);
  bool empty() const { return rows_.empty(); }
  std::string str() const;
  void print(std::FILE* out = stdout) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// The message as one line of JSON (protobuf's canonical mapping: field names
// as in the .proto, zero values printed, enums by name, 64-bit integers as
// strings).
std::string to_json(const google::protobuf::Message& message);

// 1234567 -> "1234567"; for the tables.
std::string num(std::uint64_t v);
// A double with up to `digits` significant digits: "0.05", "1.5e+06".
std::string num(double v, int digits = 4);
// A fraction as a percentage with one decimal: 0.1234 -> "12.3%".
std::string percent(double fraction);
// Bytes with a binary unit: "512 B", "1.5 MiB".
std::string bytes(double v);

}  // namespace qocnet::client
