// Plain-text corpora (`moelab data text FILE...`): each file is one unlabelled document, split into train / val /
// test deterministically:
//  - 20 documents or more: by document, in the order given. Document i goes to val when i % 10 == 8, to test
//    when i % 10 == 9, to train otherwise (80/10/10, and every stretch of ten files contributes to each split).
//  - fewer: every document is cut into contiguous line ranges, its first ~90% of lines to train, the next ~5% to
//    val, the last ~5% to test (val and test get at least one line each once a document has 3 lines or more;
//    a shorter document goes wholly to train). Each range becomes a document of its split.
#pragma once

#include <string>
#include <vector>

#include "data/document.h"

namespace moelab::data {

inline constexpr size_t kMinDocumentsForDocumentSplit = 20;

// Reads one file as a document named after its path (no words, no genre).
Document read_text_document(const std::string& path);

// Splits the documents as described above.
SplitDocuments split_text_corpus(std::vector<Document> documents);

}  // namespace moelab::data
