// Fuzzes both config readers: the first input byte picks TOML (a run's config file, as `moelab train` reads it) or
// JSON (a checkpoint's config.json); either the config loads and validates, or it is refused with moelab::Error.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "fuzz_input_file.h"
#include "model/config.h"

// Seeds: the default config as JSON (first byte 1); scripts/fuzz.sh adds the shipped presets as TOML (first byte 0).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string seeds = moelab::fuzz::seeds_dir();
  if (seeds.empty()) return 0;
  moelab::Config cfg;
  cfg.model.vocab_size = 256;
  const std::string json = "\x01" + moelab::config_to_json(cfg).dump(2);
  moelab::fuzz::write_bytes(seeds + "/default.json", json.data(), json.size());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool toml = data[0] % 2 == 0;
  try {
    moelab::Config cfg;
    if (toml) {
      cfg = moelab::load_config(moelab::fuzz::input_file("config.toml", data + 1, size - 1));
    } else {
      const auto j = nlohmann::json::parse(data + 1, data + size, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) return 0;  // not JSON at all: the checkpoint reader refuses it before this point
      cfg = moelab::config_from_json(j, "config.json");
    }
    if (cfg.model.vocab_size == 0) cfg.model.vocab_size = 256;  // as training fills it from the data
    moelab::validate(cfg);
  } catch (const moelab::Error&) {
  }
  return 0;
}
