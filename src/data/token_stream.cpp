#include "data/token_stream.h"

#include <algorithm>

#include "core/error.h"
#include "data/read_file.h"
#include "data/text_corpus.h"

namespace moelab::data {

TokenStream token_stream_from_split(const TokenData& data, const std::string& split, int64_t max_tokens) {
  const int64_t total = data.split_tokens(split);
  const int64_t n = max_tokens > 0 ? std::min(total, max_tokens) : total;
  TokenStream s;
  s.description = "the " + split + " split of " + data.dir();
  s.split = split;
  s.eod_id = data.eod_id();
  s.tokens.resize(n);
  data.copy_tokens(split, 0, n, s.tokens.data());
  s.channels = data.label_channels();
  for (size_t c = 0; c < s.channels.size(); ++c) {
    const uint8_t* labels = data.labels(split, c);
    s.labels.emplace_back(labels, labels + n);
  }
  return s;
}

TokenStream token_stream_from_text(const Tokenizer& tokenizer, const std::string& path, int64_t max_tokens) {
  const std::vector<Document> documents = read_text_documents(path);  // a plain file, or a JSONL corpus's texts
  TokenStream s;
  s.description = "text file " + path;
  s.eod_id = tokenizer.eod_id();
  for (const Document& doc : documents) {
    const std::vector<int32_t> ids = tokenizer.encode_document(doc.text);
    s.tokens.insert(s.tokens.end(), ids.begin(), ids.end());
  }
  if (s.tokens.empty()) throw_error("text file ", path, ": no tokens (the file has no text)");
  if (max_tokens > 0 && static_cast<int64_t>(s.tokens.size()) > max_tokens) s.tokens.resize(max_tokens);
  return s;
}

}  // namespace moelab::data
