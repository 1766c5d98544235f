#include "train/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/error.h"
#include "hf/hf_config.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "model/check_finite.h"
#include "model/config.h"
#include "model/memory_estimate.h"

namespace moelab {

namespace fs = std::filesystem;

namespace {

constexpr const char* kPrefix = "step-";

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%08lld", kPrefix, static_cast<long long>(step));
  return buf;
}

// "step-" and up to 18 digits: a complete checkpoint folder's name (not "step-00000600.tmp", not anything else).
bool is_step_name(const std::string& name) {
  const size_t prefix = std::strlen(kPrefix);
  return name.rfind(kPrefix, 0) == 0 && name.size() > prefix && name.size() <= prefix + 18 &&
         name.find_first_not_of("0123456789", prefix) == std::string::npos;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error("cannot read ", path.string(), ": file missing or unreadable");
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

nlohmann::json read_json(const fs::path& path) {
  const std::string text = read_text(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw_error(path.string(), ": not valid JSON (", e.what(), ")");
  }
}

// Which tensors a file holds: every parameter (the model file), or only the trained ones (the optimizer file:
// frozen and resampled routers have no optimizer state).
enum class Tensors { All, Trainable };

std::vector<TensorView> tensor_views(const Model& model, const float* base, const std::string& prefix, Tensors which) {
  std::vector<TensorView> views;
  for (const auto& spec : model.table().specs())
    if (which == Tensors::All || spec.trainable)
      views.push_back({prefix + spec.name, DType::F32, spec.shape, base + spec.offset});
  return views;
}

// Reads, for each (name prefix, flat buffer) pair, every tensor of the table into the buffer. A tensor the table
// does not have means the checkpoint belongs to another architecture or config: refused rather than ignored.
void read_tensors(const SafetensorsFile& file, const Model& model,
                  const std::vector<std::pair<std::string, float*>>& targets, Tensors which) {
  std::set<std::string> expected;
  for (const auto& [prefix, base] : targets) {
    for (const auto& spec : model.table().specs()) {
      if (which == Tensors::Trainable && !spec.trainable) continue;
      file.read(prefix + spec.name, DType::F32, spec.shape, base + spec.offset);
      expected.insert(prefix + spec.name);
    }
  }
  for (const auto& name : file.names())
    if (!expected.count(name))
      throw_error(file.path(), ": unexpected tensor '", name,
                  "' (this model has no such parameter: the checkpoint belongs to another architecture or config)");
}

}  // namespace

std::string checkpoint_folder(const std::string& run_dir, int64_t step) {
  return (fs::path(run_dir) / "checkpoints" / step_name(step)).string();
}

std::vector<int64_t> checkpoint_steps(const std::string& run_dir) {
  std::vector<int64_t> steps;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(fs::path(run_dir) / "checkpoints", ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && is_step_name(name)) steps.push_back(std::stoll(name.substr(std::strlen(kPrefix))));
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

std::string save_checkpoint(const std::string& run_dir, const Model& model, const OptimizerState& opt,
                            const TrainState& state) {
  const fs::path root = fs::path(run_dir) / "checkpoints";
  const fs::path final_dir = root / step_name(state.step);
  const fs::path tmp_dir = root / (step_name(state.step) + ".tmp");
  std::error_code ec;
  fs::remove_all(tmp_dir, ec);
  fs::create_directories(tmp_dir, ec);
  if (ec) throw_error("cannot create checkpoint folder ", tmp_dir.string(), ": ", ec.message());

  const std::map<std::string, std::string> meta = {{"format", "moelab"}, {"step", std::to_string(state.step)}};
  write_safetensors((tmp_dir / "model.safetensors").string(),
                    tensor_views(model, model.params().data(), "", Tensors::All), meta);
  auto opt_views = tensor_views(model, opt.exp_avg.data(), "exp_avg.", Tensors::Trainable);
  auto sq_views = tensor_views(model, opt.exp_avg_sq.data(), "exp_avg_sq.", Tensors::Trainable);
  opt_views.insert(opt_views.end(), sq_views.begin(), sq_views.end());
  write_safetensors((tmp_dir / "optimizer.safetensors").string(), opt_views, meta);
  write_file_atomic((tmp_dir / "config.json").string(),
                    config_to_json(with_absolute_paths(model.config())).dump(2) + "\n");
  const nlohmann::json st = {{"step", state.step}, {"tokens_seen", state.tokens_seen}};
  write_file_atomic((tmp_dir / "state.json").string(), st.dump(2) + "\n");

  fs::remove_all(final_dir, ec);
  fs::rename(tmp_dir, final_dir, ec);
  if (ec) throw_error("cannot rename ", tmp_dir.string(), " to ", final_dir.string(), ": ", ec.message());
  write_file_atomic((root / "latest").string(), step_name(state.step) + "\n");

  return final_dir.string();
}

std::string resolve_checkpoint(const std::string& path) {
  const fs::path p(path);
  if (hf::is_hf_model_dir(path))
    throw_error(path, ": a Hugging Face model folder (its config.json has a model_type), not a moelab checkpoint: ",
                "eval, generate and analyze open it; training does not resume from it (docs/import.md)");
  if (fs::exists(p / "model.safetensors")) return p.string();
  for (const fs::path& root : {p / "checkpoints", p}) {
    if (fs::exists(root / "latest")) {
      std::string name = read_text(root / "latest");
      name.erase(name.find_last_not_of(" \n\r\t") + 1);
      if (!is_step_name(name))
        throw_error((root / "latest").string(), ": expected the name of a checkpoint folder (", kPrefix,
                    "NNNNNNNN), found '", name, "'");
      const fs::path dir = root / name;
      if (!fs::exists(dir / "model.safetensors"))
        throw_error(path, ": 'latest' names ", dir.string(), " which holds no model.safetensors");
      return dir.string();
    }
  }
  throw_error(path, ": not a checkpoint (no model.safetensors) nor a run folder (no checkpoints/latest)");
}

std::string run_folder_of(const std::string& checkpoint_dir) {
  fs::path p = fs::path(checkpoint_dir).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();  // a trailing '/'
  const fs::path parent = p.parent_path();
  if (parent.filename() == "checkpoints") return parent.parent_path().empty() ? "." : parent.parent_path().string();
  return parent.empty() ? "." : parent.string();
}

data::TokenData open_checkpoint_data(const Config& cfg, const std::string& checkpoint_dir) {
  auto data = data::TokenData::open(cfg.data.dir);
  if (data.vocab_size() != cfg.model.vocab_size)
    throw_error("vocab mismatch: checkpoint ", checkpoint_dir, " was trained with vocab_size ", cfg.model.vocab_size,
                " but the tokenizer of ", cfg.data.dir, " has ", data.vocab_size(), " tokens");
  return data;
}

LoadedCheckpoint load_checkpoint(const std::string& path, const std::string& data_dir) {
  const std::string ckpt = resolve_checkpoint(path);
  Config cfg = load_checkpoint_config(ckpt);
  if (!data_dir.empty()) cfg.data.dir = data_dir;
  // A run moved to another folder or machine keeps the data folder it was trained on in its config: say how to name
  // the folder now, where the data loader could only say that this one is missing.
  if (data_dir.empty() && !fs::is_directory(cfg.data.dir))
    throw_error("checkpoint ", ckpt, ": its data folder ", cfg.data.dir,
                " (data.dir in its config.json) does not exist; pass --data DIR to name the data folder it was "
                "trained on");
  check_memory_fits(cfg, MemoryUse::Inference);  // what its users (eval, traces, analyses) run on it
  auto model = std::make_unique<Model>(cfg, ModelUse::Inference);
  load_model_weights(ckpt, *model);
  data::TokenData data = open_checkpoint_data(cfg, ckpt);
  return {ckpt, cfg, std::move(model), std::move(data)};
}

Config load_checkpoint_config(const std::string& checkpoint_dir) {
  const fs::path path = fs::path(checkpoint_dir) / "config.json";
  Config cfg = config_from_json(read_json(path), path.string());
  validate(cfg);
  if (cfg.model.vocab_size <= 0)
    throw_error(path.string(), ": model.vocab_size must be set in a checkpoint config, found ", cfg.model.vocab_size);
  return cfg;
}

void load_model_weights(const std::string& checkpoint_dir, Model& model) {
  const auto file = SafetensorsFile::open((fs::path(checkpoint_dir) / "model.safetensors").string());
  read_tensors(file, model, {{"", model.mutable_params().data()}}, Tensors::All);
  check_finite(model, checkpoint_dir);  // every use of a checkpoint's weights comes through here
}

void load_training_state(const std::string& checkpoint_dir, const Model& model, OptimizerState& opt,
                         TrainState& state) {
  const auto file = SafetensorsFile::open((fs::path(checkpoint_dir) / "optimizer.safetensors").string());
  opt.exp_avg.assign(model.table().total_numel(), 0.0f);
  opt.exp_avg_sq.assign(model.table().total_numel(), 0.0f);
  read_tensors(file, model, {{"exp_avg.", opt.exp_avg.data()}, {"exp_avg_sq.", opt.exp_avg_sq.data()}},
               Tensors::Trainable);
  state = read_training_state(checkpoint_dir);
}

TrainState read_training_state(const std::string& checkpoint_dir) {
  const fs::path path = fs::path(checkpoint_dir) / "state.json";
  const nlohmann::json st = read_json(path);
  for (const char* key : {"step", "tokens_seen"})
    if (!st.contains(key) || !st[key].is_number_integer() || st[key].get<int64_t>() < 0)
      throw_error(path.string(), ": field '", key, "' must be an integer of at least 0");
  return {st["step"].get<int64_t>(), st["tokens_seen"].get<int64_t>()};
}

}  // namespace moelab
