// Loading, overriding, validating and serialising the run configuration (the struct is include/moelab/config.h).
//
// One table, config_fields(), describes every field once: section, key (the C++ member names), type, meaning,
// and for fields naming a design (a typed enum) the names of its values. TOML loading, --set
// overrides, JSON in and out, equality, and docs/config.md are all derived from it, so they cannot drift apart.
//
// Strictness: an unknown table or key, or a value of the wrong type, is an error naming the source (file:line:column
// for TOML, "--set section.key=value" for overrides, the source name for JSON), the key, and what was expected; an
// unknown key within edit distance 2 of a valid one gets a "did you mean" suggestion. A missing key keeps its
// default. An integer is accepted for a float field; a float is not accepted for an integer field. A design is
// written as one of its names; any other name is refused where it is read, with the valid names.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "moelab/config.h"

namespace moelab {

// A field holding a design (RouterKind, Gating, ...), seen through its names: how the config's readers and writers
// handle every design enum alike.
struct ChoiceRef {
  void* field;
  size_t (*get)(const void* field);         // the enumerator's index
  void (*set)(void* field, size_t index);   // index < names.size()
  std::span<const std::string_view> names;  // [n] in enumerator order

  std::string_view name() const { return names[get(field)]; }
};

template <class Design>
ChoiceRef choice_ref(Design* field) {
  return {field, [](const void* f) { return static_cast<size_t>(*static_cast<const Design*>(f)); },
          [](void* f, size_t index) { *static_cast<Design*>(f) = static_cast<Design>(index); },
          DesignNames<Design>::names};
}

// The index of `name` among a design's names; throws moelab::Error "<what> = '<name>' is not a valid value (did you
// mean '...'?); valid values: ..." for any other name.
size_t design_index(std::span<const std::string_view> names, std::string_view name, const std::string& what);

// The design a name stands for: parse_design<SelectionRule>("top_p", "routing.rule") is SelectionRule::TopP.
template <class Design>
Design parse_design(std::string_view name, const std::string& what) {
  return static_cast<Design>(design_index(DesignNames<Design>::names, name, what));
}

// Where one field lives inside a Config; the alternative held says the field's type.
using ConfigFieldRef =
    std::variant<int64_t*, uint64_t*, double*, bool*, std::string*, std::vector<int64_t>*, ChoiceRef>;

// The reference to a field of any of the types above.
template <class T>
ConfigFieldRef field_ref(T* field) {
  if constexpr (std::is_enum_v<T>)
    return choice_ref(field);
  else
    return field;
}

struct ConfigField {
  std::string_view section;        // "train"
  std::string_view key;            // "lr"
  ConfigFieldRef (*ref)(Config&);  // the field inside a given Config
  std::string_view doc;            // meaning and trade-off, as docs/config.md shows it
  bool path = false;  // a file or folder: relative, read against the folder of the config file that writes it

  std::string name() const { return std::string(section) + "." + std::string(key); }  // "train.lr"
};

// Every field, grouped by section in the order of include/moelab/config.h.
const std::vector<ConfigField>& config_fields();

// Reads a TOML file (tables [data] [model] [moe] [routing] [train]) over the defaults, then applies `overrides`
// ("section.key=value", as given to --set). Sets Config::source to `path`. A relative path the file writes (a path
// field) is read against the file's folder and kept relative to the current directory when `path` is relative
// ("configs/x.toml" writing "../data/brown" gives "data/brown"), so the file works from any directory; a path from
// an override or a default stays relative to the current directory. Does not validate: the caller fills what comes
// from the data (vocab_size 0) as it sees fit, then calls validate().
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Applies "section.key=value" assignments in order. The value is read as a TOML value (3e-4, true, "x", 12); text
// that is not valid TOML is taken as a string, so routing.rule=top_k works without quotes.
void apply_overrides(Config& cfg, const std::vector<std::string>& overrides);

// Checks every field and the rules between fields; throws moelab::Error naming cfg.source, the key(s) and the rule.
// Values that name a design this build does not implement yet are refused with the values it does implement.
void validate(const Config& cfg);

// {"data": {...}, "model": {...}, ...} with the C++ field names as keys; Config::source is not stored.
nlohmann::json config_to_json(const Config& cfg);
// The inverse, as strict as TOML loading; `source` (e.g. "runs/x/config.json") names it in errors and becomes
// Config::source.
Config config_from_json(const nlohmann::json& j, const std::string& source);

// The config with every relative path made absolute against the current directory: what a checkpoint stores, so
// that it finds its data from any directory.
Config with_absolute_paths(Config cfg);

// Whether every field of a and b is equal, paths compared by where they lead from the current directory
// (Config::source is not a setting and is ignored).
bool same_settings(const Config& a, const Config& b);

// The text of docs/config.md, generated from config_fields() (a test keeps the file in step with it).
std::string config_reference_markdown();

}  // namespace moelab
