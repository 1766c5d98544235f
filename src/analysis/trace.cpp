#include "analysis/trace.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/npy.h"

namespace moelab::analysis {

namespace {

// The slots of every traced token of one MoE layer, gathered batch by batch before K is known.
struct LayerSlots {
  std::vector<int32_t> count;   // [N] slots of each token
  std::vector<int16_t> expert;  // [sum count] in token order, slot order within a token
  std::vector<float> weight;    // [sum count]
};

// One array of a written trace: its .npy file and its entry in trace.json.
struct ArrayEntry {
  std::string name;
  DType dtype;
  std::string numpy_dtype;  // as numpy spells it: "int16"
  std::vector<int64_t> shape;
  std::vector<std::string> axes;  // one name per dimension
  const void* data;
  std::string meaning;
};

// Every array file a trace may hold beside label_<channel>.npy: the ones this trace lacks are removed from the
// folder.
const char* const kArrayNames[] = {"experts", "weights", "n_selected", "token_id", "position", "loss", "probs"};
constexpr std::string_view kLabelArrayPrefix = "label_";

}  // namespace

RoutingTrace collect_trace(Model& model, const data::TokenStream& source, const TraceOptions& options,
                           const std::function<void(int64_t, int64_t)>& on_progress) {
  const Model::InferenceMode inference(model);
  const Config& cfg = model.config();
  const int64_t T = options.seq_len, n = static_cast<int64_t>(source.tokens.size());
  const int64_t E = cfg.moe.n_experts, d = cfg.model.d_model, V = cfg.model.vocab_size;
  if (T <= 0 || options.batch_size <= 0)
    throw_error("trace: seq_len and batch_size must be positive, got ", T, " and ", options.batch_size);
  if (n == 0) throw_error(source.description, ": no tokens to trace");
  MOELAB_ASSERT(source.labels.size() == source.channels.size(), "one label vector per channel");
  for (const auto& labels : source.labels)
    MOELAB_ASSERT(static_cast<int64_t>(labels.size()) == n, "one label per token in every channel");
  for (int64_t i = 0; i < n; ++i)
    if (source.tokens[i] < 0 || source.tokens[i] >= V)
      throw_error(source.description, ": token ", i, " has id ", source.tokens[i],
                  ", outside the model's vocabulary of ", V, " ids");
  if (E > std::numeric_limits<int16_t>::max())
    throw_error("trace: ", E, " experts do not fit the trace's int16 expert ids");
  const bool sequence = cfg.routing.granularity == Granularity::Sequence;

  RoutingTrace tr;
  tr.n_tokens = n, tr.n_experts = E, tr.d_model = d;
  tr.token_id = source.tokens;
  tr.channels = source.channels, tr.labels = source.labels;
  tr.position.resize(n);
  for (int64_t i = 0; i < n; ++i) tr.position[i] = static_cast<int32_t>(i % T);
  tr.loss.assign(n, std::numeric_limits<float>::quiet_NaN());
  tr.sample_tokens = std::min(std::max<int64_t>(options.sample_tokens, 0), n);
  const int64_t S = tr.sample_tokens;

  std::vector<LayerSlots> slots;         // [L]
  bool has_probs = false;                // the router has probabilities (not a hash router)
  std::vector<int32_t> inputs, targets;  // [B,T]
  const int64_t n_windows = (n + T - 1) / T;
  for (int64_t first = 0; first < n_windows; first += options.batch_size) {
    const int64_t B = std::min(options.batch_size, n_windows - first);
    inputs.assign(B * T, source.eod_id), targets.assign(B * T, -1);
    const int64_t begin = first * T, end = std::min(n, (first + B) * T);  // tokens [begin, end) are traced
    std::copy(source.tokens.begin() + begin, source.tokens.begin() + end, inputs.begin());
    for (int64_t g = begin; g + 1 < n && g < end; ++g) targets[g - begin] = source.tokens[g + 1];
    model.forward(inputs.data(), targets.data(), B, T);

    const auto routing = model.layer_routing();
    if (slots.empty()) {
      if (routing.empty()) throw_error("trace: the model has no MoE layer, so there is no routing to trace");
      const int64_t L = static_cast<int64_t>(routing.size());
      slots.resize(L);
      for (auto& s : slots) s.count.reserve(n);
      for (const auto& r : routing) tr.layers.push_back(r.layer);
      has_probs = routing[0].probs != nullptr;
      if (has_probs && options.with_probs) tr.probs.resize(L * n * E);
      tr.sample_input.resize(L * S * d);
      if (has_probs) tr.sample_probs.resize(L * S * E);
    }
    MOELAB_ASSERT(routing.size() == slots.size(), "the MoE layers are the same in every forward");

    const auto& rows = model.row_losses();
    for (int64_t g = begin; g < end; ++g)
      if (targets[g - begin] >= 0) tr.loss[g] = rows[g - begin];
    for (size_t l = 0; l < routing.size(); ++l) {
      const auto& r = routing[l];
      const auto& plan = *r.token_plan;
      MOELAB_ASSERT(plan.n_tokens == B * T, "the token plan covers every token of the batch");
      LayerSlots& ls = slots[l];
      for (int64_t g = begin; g < end; ++g) {
        const int64_t i = g - begin;
        const int32_t s0 = plan.token_offsets[i], s1 = plan.token_offsets[i + 1];
        ls.count.push_back(s1 - s0);
        for (int32_t s = s0; s < s1; ++s) {
          ls.expert.push_back(static_cast<int16_t>(plan.slot_expert[s]));
          ls.weight.push_back(plan.slot_weight[s]);
        }
      }
      // Router rows: one per sequence under sequence granularity, else one per token.
      auto prob_row = [&](int64_t i) { return r.probs + (sequence ? i / T : i) * E; };
      if (!tr.probs.empty())
        for (int64_t g = begin; g < end; ++g)
          std::copy_n(prob_row(g - begin), E, tr.probs.begin() + (static_cast<int64_t>(l) * n + g) * E);
      for (int64_t g = begin; g < std::min(end, S); ++g) {
        const int64_t row = static_cast<int64_t>(l) * S + g;
        std::copy_n(r.ffn_input + (g - begin) * d, d, tr.sample_input.begin() + row * d);
        if (has_probs) std::copy_n(prob_row(g - begin), E, tr.sample_probs.begin() + row * E);
      }
    }
    if (on_progress) on_progress(end, n);
  }

  int32_t K = 1;
  for (const auto& ls : slots) K = std::max(K, *std::max_element(ls.count.begin(), ls.count.end()));
  if (K > std::numeric_limits<uint8_t>::max())
    throw_error("trace: a token used ", K, " experts, more than the trace's uint8 n_selected can count");
  const int64_t L = static_cast<int64_t>(slots.size());
  tr.max_slots = K;
  tr.experts.assign(L * n * K, -1);
  tr.weights.assign(L * n * K, 0.0f);
  tr.n_selected.resize(L * n);
  for (int64_t l = 0; l < L; ++l) {
    const LayerSlots& ls = slots[l];
    int64_t s = 0;  // next slot of the layer's flat lists
    for (int64_t g = 0; g < n; ++g) {
      const int64_t row = (l * n + g) * K;
      std::copy_n(ls.expert.begin() + s, ls.count[g], tr.experts.begin() + row);
      std::copy_n(ls.weight.begin() + s, ls.count[g], tr.weights.begin() + row);
      tr.n_selected[l * n + g] = static_cast<uint8_t>(ls.count[g]);
      s += ls.count[g];
    }
  }
  return tr;
}

void write_trace(const std::string& dir, const RoutingTrace& trace, const nlohmann::json& about) {
  MOELAB_ASSERT(about.is_object(), "the trace's `about` is a JSON object");
  const int64_t L = static_cast<int64_t>(trace.layers.size()), N = trace.n_tokens, K = trace.max_slots;
  const int64_t E = trace.n_experts;
  std::vector<ArrayEntry> arrays = {
      {"experts",
       DType::I16,
       "int16",
       {L, N, K},
       {"layer", "token", "slot"},
       trace.experts.data(),
       "selected experts of each token in each MoE layer, in slot order; -1 pads tokens that used fewer than "
       "max_slots"},
      {"weights",
       DType::F32,
       "float32",
       {L, N, K},
       {"layer", "token", "slot"},
       trace.weights.data(),
       "combine weight of each selected expert (what multiplies its output); 0 where experts is -1"},
      {"n_selected",
       DType::U8,
       "uint8",
       {L, N},
       {"layer", "token"},
       trace.n_selected.data(),
       "number of experts each token used in each MoE layer"},
      {"token_id",
       DType::I32,
       "int32",
       {N},
       {"token"},
       trace.token_id.data(),
       "token id (the data folder's tokenizer)"},
      {"position",
       DType::I32,
       "int32",
       {N},
       {"token"},
       trace.position.data(),
       "position of the token inside its evaluation window (0 .. seq_len-1)"},
      {"loss",
       DType::F32,
       "float32",
       {N},
       {"token"},
       trace.loss.data(),
       "cross-entropy (nats) of predicting the next token from this position; NaN for the last token, which has "
       "no next token"},
  };
  for (size_t c = 0; c < trace.channels.size(); ++c) {
    const auto& ch = trace.channels[c];
    arrays.push_back(
        {std::string(kLabelArrayPrefix) + ch.name,
         DType::U8,
         "uint8",
         {N},
         {"token"},
         trace.labels[c].data(),
         "class of the token in the label channel '" + ch.name + "' (index into its classes: " +
             (ch.scope == data::LabelScope::word ? "of the word the token starts in" : "of the token's document") +
             "); 255 = none"});
  }
  if (!trace.probs.empty())
    arrays.push_back({"probs",
                      DType::F32,
                      "float32",
                      {L, N, E},
                      {"layer", "token", "expert"},
                      trace.probs.data(),
                      "router probabilities over all experts (under sequence granularity, the token's sequence's "
                      "row)"});

  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw_error("trace folder ", dir, ": cannot create it (", ec.message(), ")");
  const fs::path folder(dir);
  fs::remove(folder / "trace.json", ec);
  if (ec) throw_error("trace folder ", dir, ": cannot remove the old trace.json (", ec.message(), ")");
  std::vector<std::string> known(std::begin(kArrayNames), std::end(kArrayNames));
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    const std::string file = entry.path().filename().string();
    if (file.rfind(kLabelArrayPrefix, 0) == 0 && file.size() > 4 && file.compare(file.size() - 4, 4, ".npy") == 0)
      known.push_back(file.substr(0, file.size() - 4));
  }
  if (ec) throw_error("trace folder ", dir, ": cannot list it (", ec.message(), ")");
  for (const std::string& name : known) {
    if (std::any_of(arrays.begin(), arrays.end(), [&](const ArrayEntry& a) { return a.name == name; })) continue;
    fs::remove(folder / (name + ".npy"), ec);
    if (ec) throw_error("trace folder ", dir, ": cannot remove the stale ", name, ".npy (", ec.message(), ")");
  }

  nlohmann::ordered_json index;
  index["format"] = "moelab-trace";
  index["format_version"] = 2;
  index["n_tokens"] = N, index["n_layers"] = L, index["n_experts"] = E, index["max_slots"] = K;
  index["layers"] = trace.layers;
  index["labels"] = nlohmann::ordered_json::array();
  for (const auto& ch : trace.channels)
    index["labels"].push_back({{"name", ch.name},
                               {"per", data::scope_name(ch.scope)},
                               {"classes", ch.classes},
                               {"array", std::string(kLabelArrayPrefix) + ch.name}});
  nlohmann::ordered_json files = nlohmann::ordered_json::object();
  for (const auto& a : arrays) {
    const std::string file = a.name + ".npy";
    write_npy((folder / file).string(), a.dtype, a.shape, a.data);
    files[a.name] = {
        {"file", file}, {"dtype", a.numpy_dtype}, {"shape", a.shape}, {"axes", a.axes}, {"meaning", a.meaning}};
  }
  index["arrays"] = files;
  for (const auto& [key, value] : about.items()) {
    MOELAB_ASSERT(!index.contains(key), "`about` does not redefine a key of the trace index");
    index[key] = nlohmann::ordered_json(value);
  }
  write_file_atomic((folder / "trace.json").string(), index.dump(2) + "\n");
}

}  // namespace moelab::analysis
