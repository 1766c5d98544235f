#include "data/json_steps.h"

#include "core/error.h"

namespace moelab::data {

std::string json_step_type(const nlohmann::json& step, const std::string& where, const char* part) {
  if (!step.is_object() || !step.contains("type") || !step["type"].is_string())
    throw_error(where, ": ", part, ": expected an object with a string 'type', found ", step.dump());
  return step["type"].get<std::string>();
}

const nlohmann::json& json_sequence(const nlohmann::json& step, const char* key, const std::string& where,
                                    const char* part) {
  if (!step.contains(key) || !step[key].is_array())
    throw_error(where, ": ", part, " Sequence: expected an array '", key, "'");
  return step[key];
}

}  // namespace moelab::data
