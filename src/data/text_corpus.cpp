#include "data/text_corpus.h"

#include <algorithm>

#include "data/read_file.h"

namespace moelab::data {
namespace {

// The document's lines, each keeping its '\n' (the last one may lack it).
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    end = end == std::string::npos ? text.size() : end + 1;
    lines.emplace_back(text, start, end - start);
    start = end;
  }
  return lines;
}

Document part_of(const Document& doc, const std::vector<std::string>& lines, size_t begin, size_t end,
                 const char* split) {
  Document part;
  part.name = doc.name + " [" + split + "]";
  for (size_t i = begin; i < end; ++i) part.text += lines[i];
  return part;
}

}  // namespace

Document read_text_document(const std::string& path) {
  Document doc;
  doc.name = path;
  doc.text = read_file_bytes(path);
  return doc;
}

SplitDocuments split_text_corpus(std::vector<Document> documents) {
  SplitDocuments splits;
  if (documents.size() >= kMinDocumentsForDocumentSplit) {
    for (size_t i = 0; i < documents.size(); ++i) {
      const int split = i % 10 == 8 ? 1 : i % 10 == 9 ? 2 : 0;
      splits[split].push_back(std::move(documents[i]));
    }
    return splits;
  }
  for (const Document& doc : documents) {
    const auto lines = lines_of(doc.text);
    const size_t n = lines.size();
    const size_t held_out = n >= 3 ? std::max<size_t>(1, n / 20) : 0;  // lines for val, and as many for test
    const size_t n_train = n - 2 * held_out;
    splits[0].push_back(part_of(doc, lines, 0, n_train, "train"));
    if (held_out == 0) continue;
    splits[1].push_back(part_of(doc, lines, n_train, n_train + held_out, "val"));
    splits[2].push_back(part_of(doc, lines, n_train + held_out, n, "test"));
  }
  return splits;
}

}  // namespace moelab::data
