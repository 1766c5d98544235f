// Hugging Face's tokenizer.json, the format of its `tokenizers` library, as a tokenizer engine: added tokens cut
// out of the text first (the longest at the leftmost place, with their lstrip / rstrip / single_word rules), then
// for the text between them the normalizer (text_normalizer.h), the pre-tokenizer (pre_tokenizer.h) and the BPE
// model (bpe_model.h); ids decode through the decoder (token_decoder.h). This reads the byte-level BPE files of
// Qwen, OLMoE, DeepSeek and GPT-OSS and the SentencePiece-style BPE files of Llama and Mistral; a file using a part
// outside these is refused naming it.
//
// Which ids start and end a document is the model folder's business (tokenizer_config.json, hf_tokenizer.h): the
// engine says what the file's post_processor puts around a text, and takes the beginning and end ids it is given.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "data/bpe_model.h"
#include "data/pre_tokenizer.h"
#include "data/text_normalizer.h"
#include "data/token_decoder.h"
#include "data/tokenizer_engine.h"

namespace moelab::data {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;      // a control token: decodes to nothing
  bool lstrip = false;       // takes the whitespace before it
  bool rstrip = false;       // takes the whitespace after it
  bool single_word = false;  // only where it is not inside a word
};

class TokenizerJson final : public TokenizerEngine {
 public:
  // Reads and checks the file; errors name it and the part.
  static std::unique_ptr<TokenizerJson> load(const std::string& path);

  // The id of a token (an added token's content or a vocabulary piece), or -1.
  int32_t id_of(const std::string& token) const;
  // The ids the post_processor's template puts before and after a single text (TemplateProcessing; none for the
  // other post-processors).
  const std::vector<int32_t>& template_before() const { return template_before_; }
  const std::vector<int32_t>& template_after() const { return template_after_; }
  void set_bos_id(int32_t id) { bos_id_ = id; }
  void set_eod_id(int32_t id) { eod_id_ = id; }

  const char* file_name() const override { return "tokenizer.json"; }
  int64_t vocab_size() const override { return static_cast<int64_t>(pieces_.size()); }
  int32_t eod_id() const override { return eod_id_; }
  int32_t bos_id() const override { return bos_id_; }
  std::string piece(int32_t id) const override;
  void encode(std::string_view text, uint32_t offset, std::vector<TokenSpan>& out) const override;
  std::vector<int32_t> piece_bytes() const override;
  std::string decode(const std::vector<int32_t>& ids) const override;

 private:
  TokenizerJson(BpeModel model, TextNormalizer normalizer, PreTokenizer pre_tokenizer, TokenDecoder decoder)
      : model_(std::move(model)),
        normalizer_(std::move(normalizer)),
        pre_tokenizer_(std::move(pre_tokenizer)),
        decoder_(std::move(decoder)) {}
  static std::unique_ptr<TokenizerJson> from_json(const nlohmann::json& j, const std::string& where);
  // The added token matching at byte `at` of text (the longest), with the range it takes; false if none.
  bool added_at(std::string_view text, size_t at, const AddedToken*& token, size_t& begin, size_t& end) const;
  void encode_between(std::string_view text, uint32_t offset, std::vector<TokenSpan>& out) const;

  BpeModel model_;
  TextNormalizer normalizer_;
  PreTokenizer pre_tokenizer_;
  TokenDecoder decoder_;
  std::vector<AddedToken> added_;                               // longest content first
  std::array<std::vector<uint32_t>, 256> added_by_first_byte_;  // indices into added_, longest first
  std::vector<std::string> pieces_;                             // [vocab] by id: the model's, then added tokens'
  std::vector<bool> special_;                                   // [vocab] special added tokens
  std::vector<int32_t> template_before_, template_after_;
  int32_t bos_id_ = -1, eod_id_ = -1;
};

}  // namespace moelab::data
