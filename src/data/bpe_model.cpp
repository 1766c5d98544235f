#include "data/bpe_model.h"

#include <cstdio>
#include <limits>
#include <queue>

#include "core/error.h"
#include "data/json_steps.h"
#include "data/utf8.h"

namespace moelab::data {

namespace {

using json = nlohmann::json;

// A merge's two halves: "a b" (split at its one space) or ["a", "b"].
bool merge_halves(const json& m, std::string& a, std::string& b) {
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
    a = m[0].get<std::string>(), b = m[1].get<std::string>();
    return true;
  }
  if (!m.is_string()) return false;
  const std::string s = m.get<std::string>();
  const size_t space = s.find(' ');
  if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) return false;
  a = s.substr(0, space), b = s.substr(space + 1);
  return true;
}

}  // namespace

BpeModel BpeModel::from_json(const json& model, const std::string& where) {
  const std::string at = where + ": model";
  if (!model.is_object() || model.value("type", std::string()) != "BPE")
    throw_error(at, ": type '", model.is_object() ? model.value("type", std::string("?")) : "?",
                "' is not supported (supported: BPE)");
  if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"].get<double>() != 0.0)
    throw_error(at, ": field 'dropout': BPE dropout is for training; expected null or 0");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (model.contains(key) && !model[key].is_null() && !model[key].get<std::string>().empty())
      throw_error(at, ": field '", key, "' is not supported (expected null or \"\")");
  if (!model.contains("vocab") || !model["vocab"].is_object()) throw_error(at, ": expected an object 'vocab'");
  BpeModel m;
  const auto entries = static_cast<int64_t>(model["vocab"].size());
  for (const auto& [piece, id] : model["vocab"].items()) {
    // Vocabularies are dense: ids number their entries.
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= entries)
      throw_error(at, ": vocab entry '", piece, "': expected an id in [0, ", entries, "), found ", id.dump());
    const auto i = static_cast<int32_t>(id.get<int64_t>());
    m.ids_[piece] = i;
    if (static_cast<size_t>(i) >= m.pieces_.size()) m.pieces_.resize(i + 1);
    m.pieces_[i] = piece;
  }
  if (!model.contains("merges") || !model["merges"].is_array()) throw_error(at, ": expected an array 'merges'");
  int32_t rank = 0;
  for (const json& merge : model["merges"]) {
    std::string a, b;
    if (!merge_halves(merge, a, b))
      throw_error(at, ": merge ", rank, ": expected \"a b\" or [\"a\", \"b\"], found ", merge.dump());
    const int32_t ia = m.id_of(a), ib = m.id_of(b), merged = m.id_of(a + b);
    if (ia < 0 || ib < 0 || merged < 0)
      throw_error(at, ": merge ", rank, " (", merge.dump(), "): '",
                  ia < 0   ? a
                  : ib < 0 ? b
                           : a + b,
                  "' is not in the vocabulary");
    m.merges_[pair_key(ia, ib)] = Merge{rank, merged};  // a pair listed twice keeps its last rank, as in tokenizers
    ++rank;
  }
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    m.unk_id_ = m.id_of(model["unk_token"].get<std::string>());
    if (m.unk_id_ < 0) throw_error(at, ": field 'unk_token' names a piece that is not in the vocabulary");
  }
  m.byte_fallback_ = json_flag(model, "byte_fallback", false, at);
  m.fuse_unk_ = json_flag(model, "fuse_unk", false, at);
  m.ignore_merges_ = json_flag(model, "ignore_merges", false, at);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    m.byte_ids_[b] = m.byte_fallback_ ? m.id_of(name) : -1;
  }
  return m;
}

int32_t BpeModel::id_of(std::string_view piece) const {
  const auto it = ids_.find(std::string(piece));
  return it == ids_.end() ? -1 : it->second;
}

void BpeModel::encode(std::string_view piece, std::vector<BpeToken>& out) const {
  if (piece.empty()) return;
  if (ignore_merges_) {
    if (const int32_t id = id_of(piece); id >= 0) {
      out.push_back({id, 0, static_cast<uint32_t>(piece.size())});
      return;
    }
  }
  // The piece's characters as symbols; a character outside the vocabulary becomes its bytes' <0xNN> pieces, or the
  // unknown token (one for a run of them when fuse_unk).
  std::vector<BpeToken> symbols;
  for (size_t at = 0; at < piece.size();) {
    char32_t c = 0;
    const size_t n = std::max<size_t>(1, decode_utf8(piece, at, c));
    const auto begin = static_cast<uint32_t>(at), end = static_cast<uint32_t>(at + n);
    if (const int32_t id = id_of(piece.substr(at, n)); id >= 0) {
      symbols.push_back({id, begin, end});
    } else {
      bool all_bytes = byte_fallback_;
      for (size_t i = at; i < at + n && all_bytes; ++i)
        all_bytes = byte_ids_[static_cast<unsigned char>(piece[i])] >= 0;
      if (all_bytes) {
        for (size_t i = at; i < at + n; ++i)
          symbols.push_back({byte_ids_[static_cast<unsigned char>(piece[i])], static_cast<uint32_t>(i),
                             static_cast<uint32_t>(i + 1)});
      } else if (unk_id_ < 0) {
        throw_error("tokenizer: the character at byte ", at, " of '", std::string(piece),
                    "' is not in the vocabulary and the model has neither byte fallback nor an unknown token");
      } else if (fuse_unk_ && !symbols.empty() && symbols.back().id == unk_id_) {
        symbols.back().end = end;
      } else {
        symbols.push_back({unk_id_, begin, end});
      }
    }
    at += n;
  }
  // Merge the pair of lowest rank, the leftmost among equals, until none merges: a queue of candidate merges by
  // (rank, position) over a linked list of symbols, so a long piece (a whole document, for a file without a
  // pre-tokenizer) costs n log n. An entry whose pair has changed since it was queued is skipped.
  struct Candidate {
    int32_t rank, merged;
    uint32_t left;  // index of the pair's left symbol
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  const auto n = static_cast<int32_t>(symbols.size());
  std::vector<int32_t> next(n), prev(n);
  std::vector<bool> alive(n, true);
  for (int32_t i = 0; i < n; ++i) next[i] = i + 1 < n ? i + 1 : -1, prev[i] = i - 1;
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  const auto consider = [&](int32_t left) {
    if (left < 0 || next[left] < 0) return;
    const auto it = merges_.find(pair_key(symbols[left].id, symbols[next[left]].id));
    if (it != merges_.end()) queue.push({it->second.rank, it->second.merged, static_cast<uint32_t>(left)});
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    const auto left = static_cast<int32_t>(c.left);
    const int32_t right = alive[left] ? next[left] : -1;
    if (right < 0) continue;
    const auto it = merges_.find(pair_key(symbols[left].id, symbols[right].id));
    if (it == merges_.end() || it->second.merged != c.merged) continue;  // the pair changed since
    symbols[left] = {c.merged, symbols[left].begin, symbols[right].end};
    alive[right] = false;
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    consider(prev[left]);
    consider(left);
  }
  std::vector<BpeToken> merged;
  for (int32_t i = 0; i >= 0 && i < n; i = next[i]) merged.push_back(symbols[i]);
  symbols = std::move(merged);
  out.insert(out.end(), symbols.begin(), symbols.end());
}

}  // namespace moelab::data
