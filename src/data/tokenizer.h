// The tokenizer: a thin wrapper over a SentencePiece BPE model (the model file is SentencePiece's own format, so
// any SentencePiece tool can read it).
//
// Training is deterministic for the same sentences and vocabulary size: every sentence is used (no sampling), and
// byte_fallback is on, so any byte sequence encodes without an unknown token. Reserved ids: 0 <unk>, 1 <s>,
// 2 </s>; the end-of-document id is SentencePiece's eos (</s>), which encoding never produces from text.
//
// Encoding works line by line ('\n' separates sentences, as in training) and keeps each token's byte range in the
// input, so tokens can be matched to labelled words. A token's range covers the space SentencePiece folds into it
// ("▁cat" spans " cat"); of a character split into byte-fallback tokens, the last token spans the character and
// the ones before it are empty ranges at its start.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace moelab::data {

struct TokenSpan {
  int32_t id = 0;
  uint32_t begin = 0, end = 0;  // byte range [begin, end) in the encoded text
};

class Tokenizer {
 public:
  // Trains a BPE model of vocab_size pieces on the sentences (one sentence each; empty ones are skipped).
  static Tokenizer train(const std::vector<std::string>& sentences, int64_t vocab_size);
  // Loads a model file; errors name the file.
  static Tokenizer load(const std::string& path);
  // Loads a model from its serialized bytes; `source` names them in errors.
  static Tokenizer from_model_bytes(std::string bytes, const std::string& source);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // The serialized model (the content of tokenizer.model).
  const std::string& model_bytes() const { return model_; }
  int64_t vocab_size() const;
  int32_t eod_id() const;

  // Appends the tokens of text (every line of it) with their byte ranges.
  void encode(std::string_view text, std::vector<TokenSpan>& out) const;
  std::vector<int32_t> encode_ids(std::string_view text) const;
  // [vocab] the UTF-8 bytes each id stands for in running text, for bits per byte: a piece's length with its
  // word-boundary mark "▁" counted as the one space it stands for (a line's first piece carries one too, where the
  // line-by-line encoding consumed the newline before it), 1 for a byte-fallback piece, 0 for control and unknown
  // ids (end-of-document).
  std::vector<int32_t> piece_bytes() const;
  // Text of the ids (end-of-document and other control ids decode to nothing).
  std::string decode(const std::vector<int32_t>& ids) const;
  // The text `continuation` adds after `context`: decoded together with it, so that a first piece that starts a
  // word keeps its space ("The jury said" + "▁the" gives " the", where decoding it alone gives "the").
  std::string decode_continuation(const std::vector<int32_t>& context, const std::vector<int32_t>& continuation) const;

 private:
  Tokenizer(std::string model, const std::string& source);

  std::string model_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

}  // namespace moelab::data
