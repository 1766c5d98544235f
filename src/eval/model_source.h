// What eval, generate and the analyses run on, opened from the path a user gives: a moelab checkpoint (a checkpoint
// folder, or a run folder's latest) with its data folder and the data folder's tokenizer, or a Hugging Face model
// folder (docs/import.md) with the model's own tokenizer. A Hugging Face folder has no data folder of its own: its
// text comes from files (--text), encoded and framed as the model's tokenizer does (tokenizer.h), or from a data
// folder encoded with that same tokenizer (`moelab data ... --model-tokenizer`), whose labels the analyses use.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "data/token_file.h"
#include "data/token_stream.h"
#include "data/tokenizer.h"
#include "model/model.h"
#include "moelab/config.h"

namespace moelab {

struct ModelSource {
  std::string path;           // the checkpoint folder (resolved from a run folder), or the Hugging Face folder
  std::string hf_model_type;  // the Hugging Face architecture ("mixtral"); empty for a moelab checkpoint
  Config config;
  std::unique_ptr<Model> model;
  std::optional<data::TokenData> data;  // a checkpoint's data folder, or --data; a Hugging Face folder may have none
  data::Tokenizer tokenizer;            // the data folder's, or the Hugging Face folder's

  bool is_hf() const { return !hf_model_type.empty(); }
  // Score and trace in windows of `seq_len` tokens instead of the config's train.seq_len (0: keep it): a pretrained
  // model reads a longer context than moelab's default window. Throws naming --seq-len when it is longer than the
  // model's context (model.max_seq_len).
  void set_window(int64_t seq_len);
  // The first max_tokens tokens of a data split (0: all) with its labels. Without a data folder (a Hugging Face
  // folder without --data) throws saying what to pass.
  data::TokenStream split_stream(const std::string& split, int64_t max_tokens) const;
  // A text file encoded with the tokenizer (token_stream.h).
  data::TokenStream text_stream(const std::string& file, int64_t max_tokens) const;
};

// Opens `path`: a Hugging Face model folder (a config.json with a model_type) or a moelab checkpoint
// (train/checkpoint.h: load_checkpoint). data_dir replaces a checkpoint's data folder; for a Hugging Face folder it
// must have been encoded with the model's own tokenizer (its tokenizer file the same bytes), else it is refused. A
// model whose inference does not fit this machine's memory is refused before its weights are read.
ModelSource open_model_source(const std::string& path, const std::string& data_dir);

// Where an analysis of `path` is written by default: <run folder>/analysis/<name> for a checkpoint, and
// analysis/<model folder's name>/<name> under the current folder for a Hugging Face folder (which may be read-only).
// Opens nothing but the folder's config.json and `latest`.
std::string default_analysis_folder(const std::string& path, const std::string& name);

}  // namespace moelab
