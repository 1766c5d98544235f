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
std::string pos_name(std::string_view split) { return std::string(split) + ".pos.u8"; }
std::string genre_name(std::string_view split) { return std::string(split) + ".genre.u8"; }

template <typename T>
void write_vector(const std::string& path, const std::vector<T>& v) {
  write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T)));
}

void remove_if_present(const std::string& path) {
  std::error_code ec;
  fs::remove(path, ec);
  if (ec) throw_error("file ", path, ": cannot remove it (", ec.message(), ")");
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
  [[noreturn]] void fail(const std::string& field, const std::string& expected) const {
    throw_error(file_, ": field '", field, "': expected ", expected);
  }

 private:
  std::string file_;
};

// Reads a side file and checks its length and that every label is a known id or kNoLabel.
std::vector<uint8_t> read_labels(const std::string& path, int64_t tokens, size_t n_names, const char* what) {
  if (!fs::exists(path)) throw_error(path, ": missing (meta.json announces ", what, " labels for this split)");
  const std::string bytes = read_file_bytes(path);
  if (static_cast<int64_t>(bytes.size()) != tokens)
    throw_error(path, ": ", bytes.size(), " bytes, expected one ", what, " label per token (", tokens, ")");
  std::vector<uint8_t> labels(bytes.begin(), bytes.end());
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] != kNoLabel && labels[i] >= n_names)
      throw_error(path, ": label ", int(labels[i]), " at offset ", i, " is not a ", what, " id (there are ", n_names,
                  ") nor ", int(kNoLabel));
  }
  return labels;
}

}  // namespace

std::string token_dtype(int64_t vocab_size) { return vocab_size <= 65535 ? "uint16" : "uint32"; }

void write_data_folder(const std::string& dir, const DataDescription& d,
                       const std::array<SplitTokens, kNumSplits>& splits, const std::string& tokenizer_model) {
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
               {"tokenizer", "tokenizer.model"},
               {"genre_names", d.genre_names},
               {"pos_names", d.pos_names}};
  for (int s = 0; s < kNumSplits; ++s) {
    const SplitTokens& sp = splits[s];
    const std::string_view name = kSplitNames[s];
    const bool has_pos = !d.pos_names.empty(), has_genre = !d.genre_names.empty();
    MOELAB_ASSERT(sp.pos.size() == (has_pos ? sp.tokens.size() : 0), "POS labels not aligned with tokens");
    MOELAB_ASSERT(sp.genre.size() == (has_genre ? sp.tokens.size() : 0), "genre labels not aligned with tokens");
    MOELAB_ASSERT(std::all_of(sp.tokens.begin(), sp.tokens.end(), [&](uint32_t t) { return t < d.vocab_size; }),
                  "token id outside the vocabulary");
    if (dtype == "uint16") {
      write_vector(join_path(dir, bin_name(name)), std::vector<uint16_t>(sp.tokens.begin(), sp.tokens.end()));
    } else {
      write_vector(join_path(dir, bin_name(name)), sp.tokens);
    }
    if (has_pos) {
      write_vector(join_path(dir, pos_name(name)), sp.pos);
    } else {
      remove_if_present(join_path(dir, pos_name(name)));
    }
    if (has_genre) {
      write_vector(join_path(dir, genre_name(name)), sp.genre);
    } else {
      remove_if_present(join_path(dir, genre_name(name)));
    }
    meta["splits"][std::string(name)] = {
        {"tokens", sp.tokens.size()}, {"documents", sp.documents}, {"has_pos", has_pos}, {"has_genre", has_genre}};
  }
  write_file_atomic(join_path(dir, "tokenizer.model"), tokenizer_model);
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
  r.integer(meta, "format_version", "format_version", kDataFormatVersion, kDataFormatVersion);
  data.corpus_ = r.string(meta, "corpus", "corpus");
  data.vocab_size_ = r.integer(meta, "vocab_size", "vocab_size", 1, int64_t{1} << 32);
  const std::string dtype = r.string(meta, "dtype", "dtype");
  if (dtype != "uint16" && dtype != "uint32") r.fail("dtype", "\"uint16\" or \"uint32\"");
  if (dtype == "uint16" && data.vocab_size_ > 65535) r.fail("dtype", "\"uint32\" for a vocabulary above 65535");
  data.eod_id_ = static_cast<int32_t>(r.integer(meta, "eod_id", "eod_id", 0, data.vocab_size_ - 1));
  data.tokenizer_file_ = r.string(meta, "tokenizer", "tokenizer");
  data.genre_names_ = r.names(meta, "genre_names", "genre_names");
  data.pos_names_ = r.names(meta, "pos_names", "pos_names");
  const json& splits = r.member(meta, "splits", "splits");

  const size_t width = dtype == "uint16" ? 2 : 4;
  for (int s = 0; s < kNumSplits; ++s) {
    const std::string name(kSplitNames[s]);
    const std::string field = "splits." + name;
    const json& info = r.member(splits, name, field);
    Split& sp = data.splits_[s];
    sp.tokens = r.integer(info, "tokens", field + ".tokens", 0, int64_t{1} << 40);
    sp.documents = r.integer(info, "documents", field + ".documents", 0, sp.tokens);
    const bool has_pos = r.boolean(info, "has_pos", field + ".has_pos");
    const bool has_genre = r.boolean(info, "has_genre", field + ".has_genre");
    if (has_pos && data.pos_names_.empty()) r.fail("pos_names", "names for the POS labels that " + field + " has");
    if (has_genre && data.genre_names_.empty())
      r.fail("genre_names", "names for the genre labels that " + field + " has");

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
    if (has_pos) sp.pos = read_labels(join_path(dir, pos_name(name)), sp.tokens, data.pos_names_.size(), "POS");
    if (has_genre)
      sp.genre = read_labels(join_path(dir, genre_name(name)), sp.tokens, data.genre_names_.size(), "genre");
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

const uint8_t* TokenData::pos_labels(const std::string& name) const {
  const Split& sp = split(name);
  return sp.pos.empty() ? nullptr : sp.pos.data();
}

const uint8_t* TokenData::genre_labels(const std::string& name) const {
  const Split& sp = split(name);
  return sp.genre.empty() ? nullptr : sp.genre.data();
}

}  // namespace moelab::data
