// A tokenizer.json BPE model: a vocabulary, a ranked list of merges, and the rules for what is not in the
// vocabulary (byte fallback to <0xNN> pieces, or an unknown token, consecutive unknowns fused into one). A piece of
// pre-tokenized text starts as its characters and the adjacent pair of lowest merge rank is merged, the leftmost
// first among equals, until no pair has a merge, as Hugging Face's tokenizers does (without dropout). With
// ignore_merges, a piece that is itself in the vocabulary is that one token.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace moelab::data {

struct BpeToken {
  int32_t id = 0;
  uint32_t begin = 0, end = 0;  // byte range in the piece encoded
};

class BpeModel {
 public:
  // The "model" object of a tokenizer.json; `where` names the file in errors.
  static BpeModel from_json(const nlohmann::json& model, const std::string& where);

  // Appends the tokens of one pre-tokenized piece.
  void encode(std::string_view piece, std::vector<BpeToken>& out) const;
  // The id of a vocabulary entry, or -1.
  int32_t id_of(std::string_view piece) const;
  const std::vector<std::string>& pieces() const { return pieces_; }  // [vocab] by id ("" where an id has none)
  bool byte_fallback() const { return byte_fallback_; }

 private:
  struct PairHash {
    size_t operator()(uint64_t key) const { return std::hash<uint64_t>()(key * 0x9E3779B97F4A7C15ull); }
  };
  struct Merge {
    int32_t rank, merged;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  std::unordered_map<std::string, int32_t> ids_;
  std::vector<std::string> pieces_;
  std::unordered_map<uint64_t, Merge, PairHash> merges_;  // (left id, right id) -> rank and merged id
  int32_t unk_id_ = -1;
  bool byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
  std::array<int32_t, 256> byte_ids_{};  // <0xNN> pieces' ids under byte fallback (-1: none)
};

}  // namespace moelab::data
