#include "hf/hf_tokenizer.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/error.h"
#include "data/read_file.h"
#include "data/tokenizer_json.h"

namespace moelab::hf {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// tokenizer_config.json, or an empty object when the folder has none.
json read_tokenizer_config(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return json::object();
  json j;
  try {
    j = json::parse(data::read_file_bytes(path.string()));
  } catch (const json::exception& e) {
    throw_error("file ", path.string(), ": not valid JSON (", e.what(), ")");
  }
  if (!j.is_object()) throw_error("file ", path.string(), ": expected a JSON object, found ", j.type_name());
  return j;
}

// A boolean field, absent when missing or null.
std::optional<bool> flag(const json& config, const char* key, const fs::path& path) {
  if (!config.contains(key) || config[key].is_null()) return std::nullopt;
  if (!config[key].is_boolean())
    throw_error("file ", path.string(), ": field '", key, "': expected true or false, found ", config[key].dump());
  return config[key].get<bool>();
}

// A special token's text: a string, or an object with a "content" string (transformers' AddedToken); absent when
// missing or null.
std::optional<std::string> token_name(const json& config, const char* key, const fs::path& path) {
  if (!config.contains(key) || config[key].is_null()) return std::nullopt;
  const json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  throw_error("file ", path.string(), ": field '", key, "': expected a token (a string or {\"content\": ...}), found ",
              v.dump());
}

data::Tokenizer open_tokenizer_json(const fs::path& file, const json& config, const fs::path& config_path) {
  std::unique_ptr<data::TokenizerJson> engine = data::TokenizerJson::load(file.string());
  const auto id_named = [&](const char* key) -> int32_t {
    const std::optional<std::string> name = token_name(config, key, config_path);
    if (!name) return -1;
    const int32_t id = engine->id_of(*name);
    if (id < 0)
      throw_error("file ", config_path.string(), ": field '", key, "': '", *name, "' is not a token of ",
                  file.string());
    return id;
  };
  int32_t bos = id_named("bos_token"), eos = id_named("eos_token");
  if (bos < 0 && !engine->template_before().empty()) bos = engine->template_before().front();
  if (eos < 0 && !engine->template_after().empty()) eos = engine->template_after().back();
  if (eos < 0)
    throw_error(config_path.string(), ": no eos_token, and ", file.string(),
                " puts none after a text: moelab needs the id that ends a document");
  engine->set_bos_id(bos), engine->set_eod_id(eos);
  data::TextConvention c{
      .by_line = false,
      .bos_before = flag(config, "add_bos_token", config_path).value_or(!engine->template_before().empty()),
      .eod_after = flag(config, "add_eos_token", config_path).value_or(!engine->template_after().empty())};
  if (c.bos_before && bos < 0)
    throw_error(config_path.string(), ": add_bos_token is set but no bos_token names the id to put first");
  return data::Tokenizer(std::move(engine), data::read_file_bytes(file.string()), c);
}

}  // namespace

data::Tokenizer open_hf_tokenizer(const std::string& dir, int64_t vocab_size) {
  const fs::path folder(dir);
  const fs::path config_path = folder / "tokenizer_config.json";
  const json config = read_tokenizer_config(config_path);
  std::error_code ec;
  std::optional<data::Tokenizer> tokenizer;
  std::string file;
  if (fs::is_regular_file(folder / "tokenizer.json", ec)) {
    file = (folder / "tokenizer.json").string();
    tokenizer.emplace(open_tokenizer_json(file, config, config_path));
  } else if (fs::is_regular_file(folder / "tokenizer.model", ec)) {
    file = (folder / "tokenizer.model").string();
    data::TextConvention c = data::kPretrainedText;
    c.bos_before = flag(config, "add_bos_token", config_path).value_or(c.bos_before);
    c.eod_after = flag(config, "add_eos_token", config_path).value_or(c.eod_after);
    tokenizer.emplace(data::Tokenizer::load(file, c));
  } else {
    throw_error(dir, ": no tokenizer.json or tokenizer.model in the model folder; moelab needs the model's tokenizer ",
                "to encode text");
  }
  if (tokenizer->vocab_size() > vocab_size)
    throw_error(file, ": the tokenizer has ", tokenizer->vocab_size(),
                " ids but the model's vocab_size (config.json) is ", vocab_size,
                ": ids past the model's vocabulary would have no embedding");
  return std::move(*tokenizer);
}

}  // namespace moelab::hf
