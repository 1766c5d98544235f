#include "hf/hf_weights.h"

#include <set>
#include <vector>

#include "core/error.h"
#include "io/decode_dtype.h"

namespace moelab::hf {
namespace {

// Reads folder tensors into the model's parameters, remembering which folder tensors it used.
class WeightReader {
 public:
  WeightReader(const SafetensorsFolder& folder, Model& model)
      : folder_(folder), table_(model.table()), params_(model.mutable_params()) {}

  // Decodes `source` ([rows, cols] of a tensor of `shape`, at element `first`) into moelab's tensor `target`.
  // The whole tensor when rows x cols is its size.
  void read(const std::string& target, const std::string& source, const std::vector<int64_t>& shape,
            int64_t first = 0) {
    const ParamSpec& spec = table_.find(target);
    const TensorInfo& info = folder_.info(source);
    const std::string what = "file " + folder_.file_of(source).path() + ": tensor '" + source + "'";
    if (info.shape != shape)
      throw_error(what, ": expected shape ", shape_text(shape), " for moelab's ", target, ", found ",
                  shape_text(info.shape));
    const size_t elem = dtype_size(info.dtype);
    decode_to_f32(info.dtype, folder_.bytes(source).subspan(first * elem, spec.numel * elem), spec.numel,
                  params_.data() + spec.offset, what);
    used_.insert(source);
  }

  // Every folder tensor was read, or a left-over one is named.
  void check_all_used() const {
    for (const auto& name : folder_.names())
      if (!used_.count(name))
        throw_error("file ", folder_.file_of(name).path(), ": tensor '", name,
                    "' is not one of the model's: refused rather than ignored (is config.json for these weights?)");
  }

  bool has(const std::string& name) const { return folder_.contains(name); }

  [[noreturn]] void missing(const ParamSpec& spec, const std::string& alternative = "") const {
    throw_error("folder ", folder_.dir(), ": no tensor '", spec.name, "' (shape ", shape_text(spec.shape), ")",
                alternative.empty() ? "" : ", nor " + alternative);
  }

 private:
  const SafetensorsFolder& folder_;
  const ParamTable& table_;
  std::vector<float>& params_;
  std::set<std::string> used_;
};

// Mixtral, per expert (moelab's own names) or with the experts fused (transformers v5).
void load_mixtral(WeightReader& r, const Model& model) {
  const Config& cfg = model.config();
  const int64_t E = cfg.moe.n_experts, I = cfg.moe.expert_hidden, H = cfg.model.d_model;
  for (const ParamSpec& spec : model.table().specs()) {
    const std::string& name = spec.name;
    const auto moe = name.find(".block_sparse_moe.");
    if (r.has(name)) {  // stored under moelab's own name
      r.read(name, name, spec.shape);
      continue;
    }
    if (moe == std::string::npos) r.missing(spec);
    // model.layers.{i}.block_sparse_moe.<rest> -> model.layers.{i}.mlp.<fused layout>
    const std::string layer = name.substr(0, moe), rest = name.substr(moe + std::string(".block_sparse_moe.").size());
    if (rest == "gate.weight") {
      const std::string router = layer + ".mlp.gate.weight";
      if (!r.has(router)) r.missing(spec, "'" + router + "'");
      r.read(name, router, spec.shape);
      continue;
    }
    // experts.{j}.w{1,2,3}.weight: w1 (gate) and w3 (up) are rows of gate_up_proj, w2 (down) a slice of down_proj.
    const std::string prefix = "experts.";
    const auto dot = rest.find('.', prefix.size());
    const int64_t j = std::stoll(rest.substr(prefix.size(), dot - prefix.size()));
    const std::string w = rest.substr(dot + 1);
    const std::string fused = layer + (w == "w2.weight" ? ".mlp.experts.down_proj" : ".mlp.experts.gate_up_proj");
    if (!r.has(fused)) r.missing(spec, "the fused '" + fused + "'");
    if (w == "w1.weight") r.read(name, fused, {E, 2 * I, H}, (j * 2 * I) * H);
    if (w == "w3.weight") r.read(name, fused, {E, 2 * I, H}, (j * 2 * I + I) * H);
    if (w == "w2.weight") r.read(name, fused, {E, H, I}, j * H * I);
  }
}

// The original DeepSeekMoE: its MoE layers name the router mlp.gate, the experts mlp.experts.{j}.{gate,up,down}_proj
// and the fused shared experts mlp.shared_experts.*; dense layers and attention use moelab's (Llama's) names.
std::string deepseek_name(const std::string& name) {
  const std::string moe = ".block_sparse_moe.";
  const auto at = name.find(moe);
  if (at == std::string::npos) return name;
  const std::string layer = name.substr(0, at), rest = name.substr(at + moe.size());
  if (rest.rfind("experts.", 0) == 0) {
    const auto dot = rest.find('.', 8);
    const std::string w = rest.substr(dot + 1);
    const std::string proj = w == "w1.weight" ? "gate_proj" : w == "w3.weight" ? "up_proj" : "down_proj";
    return layer + ".mlp." + rest.substr(0, dot) + "." + proj + ".weight";
  }
  return layer + ".mlp." + rest;  // gate.weight, shared_experts.*
}

void load_deepseek(WeightReader& r, const Model& model) {
  for (const ParamSpec& spec : model.table().specs()) {
    const std::string source = deepseek_name(spec.name);
    if (!r.has(source)) r.missing(spec, source == spec.name ? "" : "its DeepSeek name '" + source + "'");
    r.read(spec.name, source, spec.shape);
  }
}

}  // namespace

void load_hf_weights(const SafetensorsFolder& folder, const std::string& model_type, Model& model) {
  WeightReader reader(folder, model);
  if (model_type == "mixtral")
    load_mixtral(reader, model);
  else if (model_type == "deepseek")
    load_deepseek(reader, model);
  else
    MOELAB_ASSERT(false, "load_hf_weights: an architecture read_hf_config does not map");
  reader.check_all_used();
}

}  // namespace moelab::hf
