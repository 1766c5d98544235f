#include "data/label_channel.h"

#include <algorithm>

#include "core/error.h"

namespace moelab::data {

std::string_view scope_name(LabelScope scope) { return scope == LabelScope::word ? "word" : "document"; }

void check_channel_name(const std::string& name, const std::string& what) {
  const bool ok = !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
  if (!ok)
    throw_error(what, ": a label channel's name must be 1 to 64 letters, digits, '_' or '-' (it names the side ",
                "files <split>.<name>.u8), got \"", name, "\"");
}

int find_channel(const std::vector<LabelChannel>& channels, std::string_view name) {
  for (size_t c = 0; c < channels.size(); ++c)
    if (channels[c].name == name) return static_cast<int>(c);
  return -1;
}

}  // namespace moelab::data
