#include "data/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <unordered_map>

#include "core/error.h"
#include "data/read_file.h"

namespace moelab::data {
namespace {

// Feeds the training sentences to SentencePiece without a temporary file.
class SentenceFeed : public sentencepiece::SentenceIterator {
 public:
  explicit SentenceFeed(const std::vector<std::string>& sentences) : sentences_(sentences) { skip_empty(); }
  bool done() const override { return i_ >= sentences_.size(); }
  const std::string& value() const override { return sentences_[i_]; }
  void Next() override {
    ++i_;
    skip_empty();
  }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  void skip_empty() {
    while (i_ < sentences_.size() && sentences_[i_].empty()) ++i_;
  }
  const std::vector<std::string>& sentences_;
  size_t i_ = 0;
};

// A SentencePiece model as a tokenizer engine.
class SentencePieceEngine final : public TokenizerEngine {
 public:
  SentencePieceEngine(const std::string& model, const std::string& source) {
    const auto status = sp_.LoadFromSerializedProto(model);
    if (!status.ok()) throw_error("tokenizer ", source, ": not a SentencePiece model (", status.ToString(), ")");
    if (sp_.eos_id() < 0) throw_error("tokenizer ", source, ": the model has no end-of-sentence piece </s>");
  }
  const char* file_name() const override { return "tokenizer.model"; }
  int64_t vocab_size() const override { return sp_.GetPieceSize(); }
  int32_t eod_id() const override { return sp_.eos_id(); }
  int32_t bos_id() const override { return sp_.bos_id(); }
  std::string piece(int32_t id) const override { return sp_.IdToPiece(id); }

  void encode(std::string_view text, uint32_t offset, std::vector<TokenSpan>& out) const override {
    const auto spt = sp_.EncodeAsImmutableProto(text);
    for (const auto& piece : spt.pieces())
      out.push_back({static_cast<int32_t>(piece.id()), offset + static_cast<uint32_t>(piece.begin()),
                     offset + static_cast<uint32_t>(piece.end())});
  }

  std::vector<int32_t> piece_bytes() const override {
    static const std::string_view kWordMark = "\xe2\x96\x81";  // U+2581, 3 bytes in UTF-8
    std::vector<int32_t> out(vocab_size(), 0);
    for (int id = 0; id < static_cast<int>(out.size()); ++id) {
      if (sp_.IsControl(id) || sp_.IsUnknown(id) || sp_.IsUnused(id)) continue;
      if (sp_.IsByte(id)) {
        out[id] = 1;
        continue;
      }
      const std::string& piece = sp_.IdToPiece(id);
      int32_t bytes = static_cast<int32_t>(piece.size());
      for (size_t at = piece.find(kWordMark); at != std::string::npos;
           at = piece.find(kWordMark, at + kWordMark.size()))
        bytes -= static_cast<int32_t>(kWordMark.size()) - 1;
      out[id] = bytes;
    }
    return out;
  }

  std::string decode(const std::vector<int32_t>& ids) const override {
    const std::vector<int> as_int(ids.begin(), ids.end());
    std::string text;
    const auto status = sp_.Decode(as_int, &text);
    if (!status.ok()) throw_error("tokenizer: cannot decode ids (", status.ToString(), ")");
    return text;
  }

 private:
  sentencepiece::SentencePieceProcessor sp_;
};

}  // namespace

Tokenizer::Tokenizer(std::string model, const std::string& source, TextConvention convention)
    : model_(std::move(model)),
      convention_(convention),
      engine_(std::make_unique<SentencePieceEngine>(model_, source)) {
  if (convention_.bos_before && bos_id() < 0)
    throw_error("tokenizer ", source, ": the model has no beginning-of-sequence piece <s>, which starts a document");
}

Tokenizer::Tokenizer(std::unique_ptr<const TokenizerEngine> engine, std::string file_bytes, TextConvention convention)
    : model_(std::move(file_bytes)), convention_(convention), engine_(std::move(engine)) {}

Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::train(const std::vector<std::string>& sentences, int64_t vocab_size) {
  const std::unordered_map<std::string, std::string> options = {
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(vocab_size)},
      {"byte_fallback", "true"},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      {"input_sentence_size", "0"},      // use every sentence: no random sampling
      {"max_sentence_length", "65536"},  // plain-text corpora may have long lines; the default drops them
      {"minloglevel", "2"},              // SentencePiece logs every merge step otherwise
  };
  SentenceFeed feed(sentences);
  std::string model;
  const auto status = sentencepiece::SentencePieceTrainer::Train(options, &feed, &model);
  if (!status.ok())
    throw_error("tokenizer training (BPE, vocab ", vocab_size, ", ", sentences.size(),
                " sentences) failed: ", status.ToString());
  return Tokenizer(std::move(model), "(just trained)", kMoelabText);
}

Tokenizer Tokenizer::load(const std::string& path, TextConvention convention) {
  return Tokenizer(read_file_bytes(path), path, convention);
}

const char* Tokenizer::file_name() const { return engine_->file_name(); }

int64_t Tokenizer::vocab_size() const { return engine_->vocab_size(); }

int32_t Tokenizer::eod_id() const { return engine_->eod_id(); }

int32_t Tokenizer::bos_id() const { return engine_->bos_id(); }

std::string Tokenizer::piece(int32_t id) const { return engine_->piece(id); }

void Tokenizer::encode(std::string_view text, std::vector<TokenSpan>& out) const {
  for (size_t start = 0; start < text.size();) {
    size_t end = convention_.by_line ? text.find('\n', start) : text.size();
    if (end == std::string_view::npos) end = text.size();
    if (end > start) engine_->encode(text.substr(start, end - start), static_cast<uint32_t>(start), out);
    start = end + 1;
  }
}

std::vector<int32_t> Tokenizer::encode_ids(std::string_view text) const {
  std::vector<TokenSpan> spans;
  encode(text, spans);
  std::vector<int32_t> ids(spans.size());
  for (size_t i = 0; i < spans.size(); ++i) ids[i] = spans[i].id;
  return ids;
}

std::vector<int32_t> Tokenizer::encode_document(std::string_view text) const {
  std::vector<int32_t> ids = encode_prompt(text);
  if (ids.size() == (convention_.bos_before ? 1u : 0u)) return {};  // no text: no document
  if (convention_.eod_after) ids.push_back(eod_id());
  return ids;
}

std::vector<int32_t> Tokenizer::encode_prompt(std::string_view text) const {
  std::vector<int32_t> ids;
  if (convention_.bos_before) ids.push_back(bos_id());
  const std::vector<int32_t> tokens = encode_ids(text);
  ids.insert(ids.end(), tokens.begin(), tokens.end());
  return ids;
}

std::vector<int32_t> Tokenizer::piece_bytes() const { return engine_->piece_bytes(); }

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const { return engine_->decode(ids); }

std::string Tokenizer::decode_continuation(const std::vector<int32_t>& context,
                                           const std::vector<int32_t>& continuation) const {
  std::vector<int32_t> all = context;
  all.insert(all.end(), continuation.begin(), continuation.end());
  const std::string whole = decode(all), head = decode(context);
  // A tokenizer decodes a prefix of ids to a prefix of the text; anything else falls back to the piece alone.
  return whole.rfind(head, 0) == 0 ? whole.substr(head.size()) : decode(continuation);
}

}  // namespace moelab::data
