#include "eval/model_source.h"

#include <filesystem>

#include "core/error.h"
#include "data/data_tokenizer.h"
#include "data/read_file.h"
#include "hf/hf_config.h"
#include "hf/hf_tokenizer.h"
#include "hf/hf_weights.h"
#include "io/safetensors_folder.h"
#include "model/check_finite.h"
#include "model/memory_estimate.h"
#include "train/checkpoint.h"

namespace moelab {

namespace fs = std::filesystem;

namespace {

// A data folder for a Hugging Face model: one encoded with that model's own tokenizer (`moelab data ...
// --model-tokenizer`), whose tokenizer file is byte for byte the model's.
data::TokenData open_model_data(const std::string& data_dir, const std::string& model_dir,
                                const data::Tokenizer& tokenizer, int64_t vocab_size) {
  data::TokenData data = data::TokenData::open(data_dir);
  const bool same = data.tokenizer_path().ends_with(tokenizer.file_name()) &&
                    data::read_file_bytes(data.tokenizer_path()) == tokenizer.model_bytes();
  if (!same || data.vocab_size() > vocab_size)
    throw_error("--data ", data_dir, ": not encoded with the tokenizer of ", model_dir, " (its ", data.tokenizer_path(),
                " is not the model's ", tokenizer.file_name(),
                "); prepare one with `moelab data brown|text --model-tokenizer ", model_dir, "`, or pass --text FILE");
  return data;
}

ModelSource open_hf_folder(const std::string& dir, const std::string& data_dir) {
  hf::HfConfig hf = hf::read_hf_config((fs::path(dir) / "config.json").string());
  data::Tokenizer tokenizer = hf::open_hf_tokenizer(dir, hf.config.model.vocab_size);
  std::optional<data::TokenData> data;
  if (!data_dir.empty()) data = open_model_data(data_dir, dir, tokenizer, hf.config.model.vocab_size);
  check_memory_fits(hf.config, MemoryUse::Inference);
  auto model = std::make_unique<Model>(hf.config, ModelUse::Inference);
  hf::load_hf_weights(SafetensorsFolder::open(dir), hf.model_type, *model);
  check_finite(*model, dir);
  return {dir, hf.model_type, hf.config, std::move(model), std::move(data), std::move(tokenizer)};
}

}  // namespace

ModelSource open_model_source(const std::string& path, const std::string& data_dir) {
  if (hf::is_hf_model_dir(path)) return open_hf_folder(path, data_dir);
  LoadedCheckpoint loaded = load_checkpoint(path, data_dir);
  data::Tokenizer tokenizer = data::open_data_tokenizer(loaded.data);
  if (tokenizer.vocab_size() != loaded.config.model.vocab_size)
    throw_error("vocab mismatch: checkpoint ", loaded.path, " was trained with vocab_size ",
                loaded.config.model.vocab_size, " but the tokenizer ", loaded.data.tokenizer_path(), " has ",
                tokenizer.vocab_size(), " tokens");
  return {loaded.path, "", loaded.config, std::move(loaded.model), std::move(loaded.data), std::move(tokenizer)};
}

void ModelSource::set_window(int64_t seq_len) {
  if (seq_len == 0) return;
  if (seq_len < 1 || seq_len > config.model.max_seq_len)
    throw_error("--seq-len ", seq_len, ": expected a window of 1 to ", config.model.max_seq_len,
                " tokens (model.max_seq_len of ", path, ")");
  config.train.seq_len = seq_len;
  check_memory_fits(config, MemoryUse::Inference);  // a longer window needs more activation memory
  model->set_pack_weights_for_inference(inference_packing_fits(config));
}

data::TokenStream ModelSource::split_stream(const std::string& split, int64_t max_tokens) const {
  if (!data)
    throw_error(path,
                ": a Hugging Face model has no data folder of its own; pass --text FILE, or --data DIR with a "
                "folder encoded with its tokenizer (`moelab data brown --model-tokenizer ",
                path, "`)");
  return data::token_stream_from_split(*data, split, max_tokens);
}

data::TokenStream ModelSource::text_stream(const std::string& file, int64_t max_tokens) const {
  return data::token_stream_from_text(tokenizer, file, max_tokens);
}

std::string default_analysis_folder(const std::string& path, const std::string& name) {
  if (hf::is_hf_model_dir(path)) {
    fs::path folder = fs::absolute(path).lexically_normal();
    if (!folder.has_filename()) folder = folder.parent_path();  // a trailing '/'
    return (fs::path("analysis") / folder.filename() / name).string();
  }
  return (fs::path(run_folder_of(resolve_checkpoint(path))) / "analysis" / name).string();
}

}  // namespace moelab
