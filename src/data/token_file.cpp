#include "data/token_file.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <system_error>

#include "core/error.h"
#include "data/read_file.h"
#include "io/atomic_file.h"

namespace moelab::data {

// Token files are little-endian and written straight from memory.
static_assert(std::endian::native == std::endian::little, "token files are written in the host byte order");

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string join_path(const std::string& dir, std::string_view file) { return (fs::path(dir) / file).string(); }

std::string bin_name(std::string_view split) { return std::string(split) + ".bin"; }
std::string label_file_name(std::string_view split, const std::string& channel) {
  return std::string(split) + "." + channel + ".u8";
}

void remove_if_present(const std::string& path) {
  std::error_code ec;
  fs::remove(path, ec);
  if (ec) throw_error("file ", path, ": cannot remove it (", ec.message(), ")");
}

// Removes the side files <split>.*.u8 of channels the folder no longer has (from an earlier preparation).
void remove_stale_label_files(const std::string& dir, std::string_view split, const std::vector<LabelChannel>& keep) {
  const std::string prefix = std::string(split) + ".";
  std::error_code ec;
  std::vector<fs::path> stale;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string file = entry.path().filename().string();
    if (file.size() <= prefix.size() + 3 || file.compare(0, prefix.size(), prefix) != 0 ||
        file.compare(file.size() - 3, 3, ".u8") != 0)
      continue;
    const std::string channel = file.substr(prefix.size(), file.size() - prefix.size() - 3);
    if (find_channel(keep, channel) < 0) stale.push_back(entry.path());
  }
  if (ec) throw_error("data folder ", dir, ": cannot list it (", ec.message(), ")");
  for (const auto& path : stale) remove_if_present(path.string());
}

template <typename T>
void write_vector(const std::string& path, const std::vector<T>& v) {
  write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T)));
}

// Typed access to meta.json fields; every failure names the file and the field.
class MetaReader {
 public:
  explicit MetaReader(std::string file) : file_(std::move(file)) {}

  const json& member(const json& obj, const std::string& key, const std::string& field) const {
    if (!obj.is_object()) fail(field.substr(0, field.rfind('.')), "an object");
    const auto it = obj.find(key);
    if (it == obj.end()) throw_error(file_, ": field '", field, "' is missing");
    return *it;
  }
  int64_t integer(const json& obj, const std::string& key, const std::string& field, int64_t lo, int64_t hi) const {
    const json& v = member(obj, key, field);
    if (!v.is_number_integer()) fail(field, "an integer");
    // Unsigned values above the int64 range read back as negative and are rejected by the range check.
    const int64_t x = v.get<int64_t>();
    if (x < lo || x > hi) fail(field, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return x;
  }
  std::string string(const json& obj, const std::string& key, const std::string& field) const {
    const json& v = member(obj, key, field);
    if (!v.is_string()) fail(field, "a string");
    return v.get<std::string>();
  }
  bool boolean(const json& obj, const std::string& key, const std::string& field) const {
    const json& v = member(obj, key, field);
    if (!v.is_boolean()) fail(field, "true or false");
    return v.get<bool>();
  }
  std::vector<std::string> names(const json& obj, const std::string& key, const std::string& field) const {
    const json& v = member(obj, key, field);
    if (!v.is_array() || v.size() >= kNoLabel) fail(field, "an array of at most 254 strings");
    std::vector<std::string> out;
    for (const json& s : v) {
      if (!s.is_string()) fail(field, "an array of strings");
      out.push_back(s.get<std::string>());
    }
    return out;
  }
  const std::string& file() const { return file_; }
  [[noreturn]] void fail(const std::string& field, const std::string& expected) const {
    throw_error(file_, ": field '", field, "': expected ", expected);
  }

 private:
  std::string file_;
};

// Reads a side file and checks its length and that every label is a class id of the channel or kNoLabel.
std::vector<uint8_t> read_labels(const std::string& path, int64_t tokens, const LabelChannel& channel) {
  const std::string& what = channel.name;
  if (!fs::exists(path)) throw_error(path, ": missing (meta.json announces the label channel '", what, "')");
  const std::string bytes = read_file_bytes(path);
  if (static_cast<int64_t>(bytes.size()) != tokens)
    throw_error(path, ": ", bytes.size(), " bytes, expected one '", what, "' label per token (", tokens, ")");
  std::vector<uint8_t> labels(bytes.begin(), bytes.end());
  const size_t n_classes = channel.classes.size();
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] != kNoLabel && labels[i] >= n_classes)
      throw_error(path, ": label ", int(labels[i]), " at offset ", i, " is not a '", what, "' class id (there are ",
                  n_classes, ") nor ", int(kNoLabel));
  }
  return labels;
}

// meta.json's label channels: the "labels" array, or format 1's pos_names and genre_names.
std::vector<LabelChannel> read_channels(const json& meta, const MetaReader& r, int64_t format_version) {
  std::vector<LabelChannel> channels;
  if (format_version == 1) {
    const auto pos = r.names(meta, "pos_names", "pos_names"), genre = r.names(meta, "genre_names", "genre_names");
    if (!pos.empty()) channels.push_back({"pos", LabelScope::word, pos});
    if (!genre.empty()) channels.push_back({"genre", LabelScope::document, genre});
    return channels;
  }
  const json& labels = r.member(meta, "labels", "labels");
  if (!labels.is_array()) r.fail("labels", "an array of label channels");
  for (size_t c = 0; c < labels.size(); ++c) {
    const std::string field = "labels[" + std::to_string(c) + "]";
    LabelChannel ch;
    ch.name = r.string(labels[c], "name", field + ".name");
    check_channel_name(ch.name, r.file() + ": field '" + field + ".name'");
    if (find_channel(channels, ch.name) >= 0) r.fail(field + ".name", "a name no other channel has");
    const std::string per = r.string(labels[c], "per", field + ".per");
    if (per != "word" && per != "document") r.fail(field + ".per", "\"word\" or \"document\"");
    ch.scope = per == "word" ? LabelScope::word : LabelScope::document;
    ch.classes = r.names(labels[c], "classes", field + ".classes");
    channels.push_back(std::move(ch));
  }
  return channels;
}

}  // namespace

std::string token_dtype(int64_t vocab_size) { return vocab_size <= 65535 ? "uint16" : "uint32"; }

void write_data_folder(const std::string& dir, const DataDescription& d,
                       const std::array<SplitTokens, kNumSplits>& splits, const std::string& tokenizer_bytes) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw_error("data folder ", dir, ": cannot create it (", ec.message(), ")");
  const std::string meta_path = join_path(dir, "meta.json");
  remove_if_present(meta_path);  // from here on, no meta.json describes a half-written folder

  const std::string dtype = token_dtype(d.vocab_size);
  json meta = {{"format_version", kDataFormatVersion},
               {"corpus", d.corpus},
               {"vocab_size", d.vocab_size},
               {"dtype", dtype},
               {"eod_id", d.eod_id},
               {"tokenizer", d.tokenizer_file},
               {"labels", json::array()}};
  if (d.whole_text || d.bos_id >= 0) meta["framing"] = {{"whole_text", d.whole_text}, {"bos_id", d.bos_id}};
  for (const LabelChannel& ch : d.labels)
    meta["labels"].push_back({{"name", ch.name}, {"per", scope_name(ch.scope)}, {"classes", ch.classes}});
  for (int s = 0; s < kNumSplits; ++s) {
    const SplitTokens& sp = splits[s];
    const std::string_view name = kSplitNames[s];
    MOELAB_ASSERT(sp.labels.size() == d.labels.size(), "one label vector per channel");
    for (const auto& labels : sp.labels)
      MOELAB_ASSERT(labels.size() == sp.tokens.size(), "labels not aligned with tokens");
    MOELAB_ASSERT(std::all_of(sp.tokens.begin(), sp.tokens.end(), [&](uint32_t t) { return t < d.vocab_size; }),
                  "token id outside the vocabulary");
    if (dtype == "uint16") {
      write_vector(join_path(dir, bin_name(name)), std::vector<uint16_t>(sp.tokens.begin(), sp.tokens.end()));
    } else {
      write_vector(join_path(dir, bin_name(name)), sp.tokens);
    }
    for (size_t c = 0; c < d.labels.size(); ++c)
      write_vector(join_path(dir, label_file_name(name, d.labels[c].name)), sp.labels[c]);
    remove_stale_label_files(dir, name, d.labels);
    meta["splits"][std::string(name)] = {{"tokens", sp.tokens.size()}, {"documents", sp.documents}};
  }
  for (const char* other : {"tokenizer.model", "tokenizer.json"})  // a tokenizer of an earlier run is stale
    if (d.tokenizer_file != other) remove_if_present(join_path(dir, other));
  write_file_atomic(join_path(dir, d.tokenizer_file), tokenizer_bytes);
  write_file_atomic(meta_path, meta.dump(2) + "\n");
}

TokenData TokenData::open(const std::string& dir) {
  const std::string meta_path = join_path(dir, "meta.json");
  if (!fs::exists(meta_path))
    throw_error("data folder ", dir, ": meta.json not found (prepare the folder with `moelab data brown` or ",
                "`moelab data text`)");
  json meta;
  try {
    meta = json::parse(read_file_bytes(meta_path));
  } catch (const json::exception& e) {  // a syntax error, or a number too large for any type (out_of_range)
    throw_error(meta_path, ": not valid JSON (", e.what(), ")");
  }
  const MetaReader r(meta_path);
  if (!meta.is_object()) r.fail("(top level)", "an object");

  TokenData data;
  data.dir_ = dir;
  const int64_t format_version = r.integer(meta, "format_version", "format_version", 1, kDataFormatVersion);
  data.corpus_ = r.string(meta, "corpus", "corpus");
  data.vocab_size_ = r.integer(meta, "vocab_size", "vocab_size", 1, int64_t{1} << 32);
  const std::string dtype = r.string(meta, "dtype", "dtype");
  if (dtype != "uint16" && dtype != "uint32") r.fail("dtype", "\"uint16\" or \"uint32\"");
  if (dtype == "uint16" && data.vocab_size_ > 65535) r.fail("dtype", "\"uint32\" for a vocabulary above 65535");
  data.eod_id_ = static_cast<int32_t>(r.integer(meta, "eod_id", "eod_id", 0, data.vocab_size_ - 1));
  data.tokenizer_file_ = r.string(meta, "tokenizer", "tokenizer");
  if (data.tokenizer_file_ != "tokenizer.model" && data.tokenizer_file_ != "tokenizer.json")
    r.fail("tokenizer", "\"tokenizer.model\" or \"tokenizer.json\"");
  if (meta.contains("framing")) {
    const json& framing = r.member(meta, "framing", "framing");
    data.whole_text_ = r.boolean(framing, "whole_text", "framing.whole_text");
    data.bos_id_ = static_cast<int32_t>(r.integer(framing, "bos_id", "framing.bos_id", -1, data.vocab_size_ - 1));
  }
  data.channels_ = read_channels(meta, r, format_version);
  const json& splits = r.member(meta, "splits", "splits");

  const size_t width = dtype == "uint16" ? 2 : 4;
  for (int s = 0; s < kNumSplits; ++s) {
    const std::string name(kSplitNames[s]);
    const std::string field = "splits." + name;
    const json& info = r.member(splits, name, field);
    Split& sp = data.splits_[s];
    sp.tokens = r.integer(info, "tokens", field + ".tokens", 0, int64_t{1} << 40);
    sp.documents = r.integer(info, "documents", field + ".documents", 0, sp.tokens);
    if (format_version == 1) {  // a channel with names is in every split
      const bool has_pos = r.boolean(info, "has_pos", field + ".has_pos");
      const bool has_genre = r.boolean(info, "has_genre", field + ".has_genre");
      if (has_pos != (find_channel(data.channels_, "pos") >= 0))
        r.fail(field + ".has_pos", has_pos ? "false, as pos_names is empty" : "true, as pos_names is not empty");
      if (has_genre != (find_channel(data.channels_, "genre") >= 0))
        r.fail(field + ".has_genre",
               has_genre ? "false, as genre_names is empty" : "true, as genre_names is not empty");
    }

    const std::string bin_path = join_path(dir, bin_name(name));
    if (!fs::exists(bin_path)) throw_error(bin_path, ": missing (meta.json describes ", sp.tokens, " tokens)");
    const std::string bytes = read_file_bytes(bin_path);
    if (bytes.size() % width != 0)
      throw_error(bin_path, ": size ", bytes.size(), " bytes is not a multiple of ", width, " (", dtype, " tokens)");
    if (static_cast<int64_t>(bytes.size() / width) != sp.tokens)
      throw_error(bin_path, ": holds ", bytes.size() / width, " tokens but meta.json says ", sp.tokens,
                  " (truncated, or from another run)");
    auto check_ids = [&](const auto& ids) {
      int64_t eods = 0;
      for (size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] >= data.vocab_size_)
          throw_error(bin_path, ": token id ", ids[i], " at token offset ", i, " (byte ", i * width,
                      ") is not below vocab_size ", data.vocab_size_, " (corrupt file)");
        eods += ids[i] == static_cast<uint32_t>(data.eod_id_);
      }
      if (eods != sp.documents || (!ids.empty() && ids.back() != static_cast<uint32_t>(data.eod_id_)))
        throw_error(bin_path, ": ", eods, " end-of-document tokens (id ", data.eod_id_, "), expected one closing ",
                    "each of the ", sp.documents, " documents");
    };
    if (width == 2) {
      sp.ids16.resize(sp.tokens);
      std::memcpy(sp.ids16.data(), bytes.data(), bytes.size());
      check_ids(sp.ids16);
    } else {
      sp.ids32.resize(sp.tokens);
      std::memcpy(sp.ids32.data(), bytes.data(), bytes.size());
      check_ids(sp.ids32);
    }
    for (const LabelChannel& ch : data.channels_)
      sp.labels.push_back(read_labels(join_path(dir, label_file_name(name, ch.name)), sp.tokens, ch));
  }
  return data;
}

std::string TokenData::tokenizer_path() const { return join_path(dir_, tokenizer_file_); }

const TokenData::Split& TokenData::split(const std::string& name) const {
  for (int s = 0; s < kNumSplits; ++s)
    if (kSplitNames[s] == name) return splits_[s];
  throw_error("data folder ", dir_, ": no split '", name, "' (expected train, val or test)");
}

int64_t TokenData::split_tokens(const std::string& name) const { return split(name).tokens; }

int64_t TokenData::split_documents(const std::string& name) const { return split(name).documents; }

void TokenData::copy_tokens(const std::string& name, int64_t start, int64_t count, int32_t* out /*[count]*/) const {
  const Split& sp = split(name);
  MOELAB_ASSERT(start >= 0 && count >= 0 && start + count <= sp.tokens, "token range outside the split");
  if (!sp.ids16.empty()) {
    std::copy_n(sp.ids16.data() + start, count, out);
  } else {
    std::copy_n(sp.ids32.data() + start, count, out);
  }
}

const uint8_t* TokenData::labels(const std::string& name, size_t channel) const {
  const Split& sp = split(name);
  MOELAB_ASSERT(channel < sp.labels.size(), "label channel index out of range");
  return sp.labels[channel].data();
}

}  // namespace moelab::data
