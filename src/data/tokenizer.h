// The tokenizer: text to token ids and back, with each token's byte range in the text. Its engine is a
// SentencePiece BPE model (the file is SentencePiece's own format, so any SentencePiece tool can read it), which is
// what moelab trains and what Llama-family models ship as tokenizer.model, or a Hugging Face tokenizer.json
// (tokenizer_json.h).
//
// Training is deterministic for the same sentences and vocabulary size: every sentence is used (no sampling), and
// byte_fallback is on, so any byte sequence encodes without an unknown token. Reserved ids: 0 <unk>, 1 <s>,
// 2 </s>; the end-of-document id is SentencePiece's eos (</s>), which encoding never produces from text.
//
// Two conventions turn text into ids (TextConvention): moelab's own, for the tokenizers it trains, encodes line by
// line ('\n' separates sentences, as in training) and ends every document with the end-of-document id; a
// pretrained model's (a Hugging Face folder's tokenizer) encodes the whole text at once, newlines included, and
// frames every document as the model's tokenizer_config.json says (Llama's: beginning-of-sequence first).
// Encoding keeps each token's byte range in the input, so tokens can be matched to labelled words. A token's range
// covers the space SentencePiece folds into it ("▁cat" spans " cat"); of a character split into byte-fallback
// tokens, the last token spans the character and the ones before it are empty ranges at its start.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/tokenizer_engine.h"

namespace moelab::data {

struct TextConvention {
  bool by_line = true;      // encode each line on its own (else the whole text at once)
  bool bos_before = false;  // a document starts with the beginning-of-sequence id
  bool eod_after = true;    // a document ends with the end-of-document id
};
// moelab's own corpora, and a pretrained model's text as Hugging Face's Llama tokenizer frames it by default.
inline constexpr TextConvention kMoelabText{};
inline constexpr TextConvention kPretrainedText{.by_line = false, .bos_before = true, .eod_after = false};

class Tokenizer {
 public:
  // Trains a BPE model of vocab_size pieces on the sentences (one sentence each; empty ones are skipped).
  static Tokenizer train(const std::vector<std::string>& sentences, int64_t vocab_size);
  // Loads a model file; errors name the file.
  static Tokenizer load(const std::string& path, TextConvention convention = kMoelabText);
  // Another engine (a tokenizer.json); `file_bytes` is the file it was read from.
  Tokenizer(std::unique_ptr<const TokenizerEngine> engine, std::string file_bytes, TextConvention convention);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // The serialized model (the content of tokenizer.model, or of tokenizer.json).
  const std::string& model_bytes() const { return model_; }
  // The name that file goes by: "tokenizer.model" or "tokenizer.json".
  const char* file_name() const;
  int64_t vocab_size() const;
  int32_t eod_id() const;
  int32_t bos_id() const;
  const TextConvention& convention() const { return convention_; }
  // The piece an id stands for, as the model file spells it ("▁the", "<0x0A>", "<s>").
  std::string piece(int32_t id) const;

  // Appends the tokens of text with their byte ranges, without the document's framing ids.
  void encode(std::string_view text, std::vector<TokenSpan>& out) const;
  std::vector<int32_t> encode_ids(std::string_view text) const;
  // The ids of a whole document: its tokens framed by the convention's beginning and end ids; none for a text that
  // has no tokens.
  std::vector<int32_t> encode_document(std::string_view text) const;
  // The ids a continuation of `text` is generated after: the document's beginning id, if any, and its tokens.
  std::vector<int32_t> encode_prompt(std::string_view text) const;
  // [vocab] the UTF-8 bytes each id stands for in running text, for bits per byte: a piece's length with its
  // word-boundary mark "▁" counted as the one space it stands for (a line's first piece carries one too, where the
  // line-by-line encoding consumed the newline before it; under the whole-text convention a document's first piece
  // counts one byte more than the document has), 1 for a byte-fallback piece, 0 for control and unknown ids
  // (end-of-document, beginning-of-sequence).
  std::vector<int32_t> piece_bytes() const;
  // Text of the ids (end-of-document and other control ids decode to nothing).
  std::string decode(const std::vector<int32_t>& ids) const;
  // The text `continuation` adds after `context`: decoded together with it, so that a first piece that starts a
  // word keeps its space ("The jury said" + "▁the" gives " the", where decoding it alone gives "the").
  std::string decode_continuation(const std::vector<int32_t>& context, const std::vector<int32_t>& continuation) const;

 private:
  Tokenizer(std::string model, const std::string& source, TextConvention convention);

  std::string model_;
  TextConvention convention_;
  std::unique_ptr<const TokenizerEngine> engine_;
};

}  // namespace moelab::data
