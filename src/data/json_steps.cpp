#include "data/json_steps.h"

#include "core/error.h"

namespace moelab::data {

std::string json_step_type(const nlohmann::json& step, const std::string& where, const char* part) {
  if (!step.is_object() || !step.contains("type") || !step["type"].is_string())
    throw_error(where, ": ", part, ": expected an object with a string 'type', found ", step.dump());
  return step["type"].get<std::string>();
}

namespace {

// obj[key] when present and not null, checked by `is`; else nullptr.
template <typename Is>
const nlohmann::json* typed(const nlohmann::json& obj, const char* key, Is is, const char* expected,
                            const std::string& where) {
  if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) return nullptr;
  if (!is(obj[key])) throw_error(where, ": field '", key, "': expected ", expected, ", found ", obj[key].dump());
  return &obj[key];
}

}  // namespace

bool json_flag(const nlohmann::json& obj, const char* key, bool fallback, const std::string& where) {
  const auto* v = typed(
      obj, key, [](const nlohmann::json& j) { return j.is_boolean(); }, "true or false", where);
  return v ? v->get<bool>() : fallback;
}

std::string json_text(const nlohmann::json& obj, const char* key, const std::string& fallback,
                      const std::string& where) {
  const auto* v = typed(
      obj, key, [](const nlohmann::json& j) { return j.is_string(); }, "a string", where);
  return v ? v->get<std::string>() : fallback;
}

int64_t json_whole(const nlohmann::json& obj, const char* key, int64_t fallback, const std::string& where) {
  const auto* v = typed(
      obj, key, [](const nlohmann::json& j) { return j.is_number_integer(); }, "a whole number", where);
  return v ? v->get<int64_t>() : fallback;
}

const nlohmann::json& json_sequence(const nlohmann::json& step, const char* key, const std::string& where,
                                    const char* part) {
  if (!step.contains(key) || !step[key].is_array())
    throw_error(where, ": ", part, " Sequence: expected an array '", key, "'");
  return step[key];
}

}  // namespace moelab::data
