// A researcher's own corpus (`moelab data text FILE...`): reading it and splitting it into train / val / test.
//
// Reading. A file ending in .jsonl holds one document per line: a JSON object with a string field "text", an
// optional "id" (its name; "FILE:LINE" otherwise) and any other fields, of which the `label_fields` (strings,
// numbers or booleans; a document may lack one) become the document's labels and `split_field` ("train", "val" or
// "test") its split. Any other file is
// one document, named by its path. Text must be UTF-8: anything else is refused naming the file and the byte.
//
// Splitting, by the first rule that is set:
//  - a split list: a TSV file of "DOCUMENT<TAB>SPLIT" lines naming every document exactly once;
//  - the documents' own split field;
//  - fractions: each document goes to val with probability val_fraction and to test with test_fraction, drawn from
//    a hash of (seed, its name), so a document's split depends on neither the order of the files nor the others;
//  - by default, deterministically:
//    - 20 documents or more: by document, in the order given. Document i goes to val when i % 10 == 8, to test when
//      i % 10 == 9, to train otherwise (80/10/10, and every stretch of ten documents contributes to each split).
//    - fewer: every document is cut into contiguous line ranges, its first ~90% of lines to train, the next ~5% to
//      val, the last ~5% to test (val and test get at least one line each once a document has 3 lines or more; a
//      shorter document goes wholly to train). Each range becomes a document of its split.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/document.h"

namespace moelab::data {

inline constexpr size_t kMinDocumentsForDocumentSplit = 20;

struct TextReadOptions {
  std::vector<std::string> label_fields;  // JSONL fields to take as each document's labels, in order
  std::string split_field;                // JSONL field that gives each document's split; empty: none
};

// Reads one file: a .jsonl file as one document per line, any other file as one document named after its path.
std::vector<Document> read_text_documents(const std::string& path, const TextReadOptions& options = {});

struct TextSplitRule {
  std::string list_file;                       // TSV "DOCUMENT<TAB>SPLIT"; empty: not used
  bool by_field = false;                       // use each document's own split (TextReadOptions::split_field)
  double val_fraction = 0, test_fraction = 0;  // either > 0: split at random by document
  uint64_t seed = 0;                           // for the fractions
};

// Splits the documents by the rule (see above); throws naming what is wrong with a list, a field or the fractions.
SplitDocuments split_text_corpus(std::vector<Document> documents, const TextSplitRule& rule = {});

}  // namespace moelab::data
