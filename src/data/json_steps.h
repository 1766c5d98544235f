// What the parts of a tokenizer.json made of steps (normalizer, pre_tokenizer, decoder) share: each step is an
// object with a string "type", and a "Sequence" step lists others under a key of its own.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace moelab::data {

// The step's type; throws naming `where` (the file) and `part` ("normalizer") when the step has none.
std::string json_step_type(const nlohmann::json& step, const std::string& where, const char* part);

// A Sequence step's steps, under `key` ("normalizers", "pretokenizers", "decoders"); throws naming it when missing.
const nlohmann::json& json_sequence(const nlohmann::json& step, const char* key, const std::string& where,
                                    const char* part);

}  // namespace moelab::data
