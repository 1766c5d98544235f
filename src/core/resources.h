// Files shipped inside the binary (everything under resources/, embedded at build time), e.g.
// "brown/split.tsv" and "brown/universal-tags.json".
#pragma once

#include <optional>
#include <string_view>

namespace moelab {

// The file's bytes, or nullopt when no resource has that name.
std::optional<std::string_view> find_resource(std::string_view name);

}  // namespace moelab
