// What the parts of a tokenizer.json share: each step of a normalizer, pre_tokenizer or decoder is an object with a
// string "type", a "Sequence" step lists others under a key of its own, and every field is read with its type
// checked, so that a malformed file is an error naming the field.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace moelab::data {

// The step's type; throws naming `where` (the file) and `part` ("normalizer") when the step has none.
std::string json_step_type(const nlohmann::json& step, const std::string& where, const char* part);

// A field of a step: its value, or `fallback` when the field is missing or null; throws naming `where` and the
// field when it has another type.
bool json_flag(const nlohmann::json& obj, const char* key, bool fallback, const std::string& where);
std::string json_text(const nlohmann::json& obj, const char* key, const std::string& fallback,
                      const std::string& where);
int64_t json_whole(const nlohmann::json& obj, const char* key, int64_t fallback, const std::string& where);

// A Sequence step's steps, under `key` ("normalizers", "pretokenizers", "decoders"); throws naming it when missing.
const nlohmann::json& json_sequence(const nlohmann::json& step, const char* key, const std::string& where,
                                    const char* part);

}  // namespace moelab::data
