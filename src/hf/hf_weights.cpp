#include "hf/hf_weights.h"

#include <optional>
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
    const std::span<const std::byte> bytes = folder_.bytes(source).subspan(first * elem, spec.numel * elem);
    decode_to_f32(info.dtype, bytes, spec.numel, params_.data() + spec.offset, what);
    SafetensorsFile::release(bytes);  // read once: the decoded copy is what the model keeps
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

// moelab's name of a routed expert's weight, split: "model.layers.{i}", expert j, and "w1.weight" (gate), "w3.weight"
// (up) or "w2.weight" (down); nullopt for any other tensor.
struct ExpertWeightName {
  std::string layer;
  int64_t expert;
  std::string weight;
};
std::optional<ExpertWeightName> expert_weight_name(const std::string& name) {
  const std::string moe = ".block_sparse_moe.experts.";
  const auto at = name.find(moe);
  if (at == std::string::npos) return std::nullopt;
  const std::string rest = name.substr(at + moe.size());  // "{j}.w1.weight"
  const auto dot = rest.find('.');
  return ExpertWeightName{name.substr(0, at), std::stoll(rest.substr(0, dot)), rest.substr(dot + 1)};
}

// The name an architecture stores one of moelab's tensors under (per-expert layout). moelab's names are Mixtral's;
// DeepSeekMoE, OLMoE and Qwen name the MoE block mlp, its experts' projections gate/up/down_proj, and Qwen2-MoE its
// one shared expert mlp.shared_expert.
std::string hf_name(const std::string& model_type, const std::string& name) {
  const std::string moe = ".block_sparse_moe.";
  const auto at = name.find(moe);
  if (model_type == "mixtral" || at == std::string::npos) return name;
  const std::string layer = name.substr(0, at), rest = name.substr(at + moe.size());
  if (const auto e = expert_weight_name(name)) {
    const std::string proj = e->weight == "w1.weight"   ? "gate_proj"
                             : e->weight == "w3.weight" ? "up_proj"
                                                        : "down_proj";
    return layer + ".mlp.experts." + std::to_string(e->expert) + "." + proj + ".weight";
  }
  if (model_type == "qwen2_moe" && rest.rfind("shared_experts.", 0) == 0)
    return layer + ".mlp.shared_expert." + rest.substr(std::string("shared_experts.").size());
  return layer + ".mlp." + rest;  // gate.weight, shared_experts.*, shared_expert_gate.weight
}

// Reads every tensor of the model: under its architecture's name, or, for Mixtral's router, under transformers v5's
// mlp.gate.weight; a routed expert's weight from the fused layout when the folder has no per-expert tensor.
void load_tensors(WeightReader& r, const Model& model, const std::string& model_type) {
  const Config& cfg = model.config();
  const int64_t E = cfg.moe.n_experts, I = cfg.moe.expert_hidden, H = cfg.model.d_model;
  for (const ParamSpec& spec : model.table().specs()) {
    const std::string source = hf_name(model_type, spec.name);
    if (r.has(source)) {
      r.read(spec.name, source, spec.shape);
      continue;
    }
    const std::string also = source == spec.name ? "" : "its " + model_type + " name '" + source + "'";
    if (const auto router = spec.name.find(".block_sparse_moe.gate.weight"); router != std::string::npos) {
      const std::string v5 = spec.name.substr(0, router) + ".mlp.gate.weight";
      if (!r.has(v5)) r.missing(spec, also.empty() ? "'" + v5 + "'" : also);
      r.read(spec.name, v5, spec.shape);
      continue;
    }
    const auto e = expert_weight_name(spec.name);
    if (!e) r.missing(spec, also);
    // The fused layout: gate (w1) and up (w3) are rows of gate_up_proj, down (w2) a slice of down_proj.
    const bool down = e->weight == "w2.weight";
    const std::string fused = e->layer + (down ? ".mlp.experts.down_proj" : ".mlp.experts.gate_up_proj");
    if (!r.has(fused)) r.missing(spec, (also.empty() ? "" : also + ", nor ") + "the fused '" + fused + "'");
    if (down)
      r.read(spec.name, fused, {E, H, I}, e->expert * H * I);
    else
      r.read(spec.name, fused, {E, 2 * I, H}, (e->expert * 2 * I + (e->weight == "w3.weight" ? I : 0)) * H);
  }
}

}  // namespace

void load_hf_weights(const SafetensorsFolder& folder, const std::string& model_type, Model& model) {
  WeightReader reader(folder, model);
  load_tensors(reader, model, model_type);
  reader.check_all_used();
}

}  // namespace moelab::hf
