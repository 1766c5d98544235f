#include "data/text_corpus.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <string_view>

#include "core/error.h"
#include "core/rng.h"
#include "data/read_file.h"
#include "data/utf8.h"

namespace moelab::data {
namespace {

void require_utf8(std::string_view text, const std::string& where) {
  const size_t bad = first_invalid_utf8(text);
  if (bad != std::string_view::npos)
    throw_error(where, ": not UTF-8 (byte ", bad, " is 0x", std::hex,
                static_cast<int>(static_cast<unsigned char>(text[bad])), std::dec,
                "); convert it first, e.g. iconv -f latin1 -t utf-8 FILE > FILE.utf8");
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int split_index(const std::string& name) {
  for (int s = 0; s < kNumSplits; ++s)
    if (name == kSplitNames[s]) return s;
  return -1;
}

// Calls fn(line, "FILE:N") for each line of the file that is not blank, without its line ending.
template <typename Fn>
void for_each_line(const std::string& path, Fn fn) {
  const std::string bytes = read_file_bytes(path);
  int64_t number = 0;
  for (size_t start = 0; start < bytes.size();) {
    size_t end = bytes.find('\n', start);
    if (end == std::string::npos) end = bytes.size();
    std::string_view line(bytes.data() + start, end - start);
    start = end + 1;
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") != std::string_view::npos) fn(line, path + ":" + std::to_string(number));
  }
}

std::vector<Document> read_jsonl(const std::string& path, const TextReadOptions& options) {
  std::vector<Document> documents;
  for_each_line(path, [&](std::string_view line, const std::string& where) {
    const auto record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!record.is_object() || !record.contains("text") || !record["text"].is_string())
      throw_error(where, ": expected a JSON object with a string field \"text\"");
    Document doc;
    doc.text = record["text"].get<std::string>();
    require_utf8(doc.text, where);
    doc.name = record.contains("id")
                   ? (record["id"].is_string() ? record["id"].get<std::string>() : record["id"].dump())
                   : where;
    for (const std::string& field : options.label_fields) {
      const auto it = record.find(field);
      if (it == record.end() || it->is_null()) {  // a document without a value has no class in this channel
        doc.labels.emplace_back();
        continue;
      }
      if (!it->is_string() && !it->is_number() && !it->is_boolean())
        throw_error(where, ": field \"", field, "\" must be a string, a number or a boolean");
      doc.labels.push_back(it->is_string() ? it->get<std::string>() : it->dump());
    }
    if (!options.split_field.empty()) {
      const auto it = record.find(options.split_field);
      if (it == record.end() || !it->is_string() || split_index(it->get<std::string>()) < 0)
        throw_error(where, ": field \"", options.split_field, "\" must be \"train\", \"val\" or \"test\"");
      doc.split = it->get<std::string>();
    }
    documents.push_back(std::move(doc));
  });
  if (documents.empty()) throw_error(path, ": no documents (expected one JSON object per line)");
  return documents;
}

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
  part.labels = doc.labels;
  for (size_t i = begin; i < end; ++i) part.text += lines[i];
  return part;
}

// Each document's split index, by the list file.
std::vector<int> splits_from_list(const std::vector<Document>& documents, const std::string& list_file) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < documents.size(); ++i)
    if (!index.emplace(documents[i].name, i).second)
      throw_error("--split-list ", list_file, ": two documents are named '", documents[i].name,
                  "' (give JSONL documents distinct \"id\" fields)");
  std::vector<int> split(documents.size(), -1);
  for_each_line(list_file, [&](std::string_view line, const std::string& where) {
    const size_t tab = line.rfind('\t');
    if (tab == std::string::npos) throw_error(where, ": expected DOCUMENT<TAB>SPLIT");
    const std::string name(line.substr(0, tab)), split_name(line.substr(tab + 1));
    const int s = split_index(split_name);
    if (s < 0) throw_error(where, ": split '", split_name, "' is not train, val or test");
    const auto it = index.find(name);
    if (it == index.end()) throw_error(where, ": no document is named '", name, "'");
    if (split[it->second] >= 0) throw_error(where, ": document '", name, "' is listed twice");
    split[it->second] = s;
  });
  for (size_t i = 0; i < documents.size(); ++i)
    if (split[i] < 0) throw_error("--split-list ", list_file, ": document '", documents[i].name, "' is not listed");
  return split;
}

}  // namespace

std::vector<Document> read_text_documents(const std::string& path, const TextReadOptions& options) {
  if (ends_with(path, ".jsonl")) return read_jsonl(path, options);
  if (!options.label_fields.empty() || !options.split_field.empty())
    throw_error(path, ": labels and split fields are read from JSONL files (FILE.jsonl) only");
  Document doc;
  doc.name = path;
  doc.text = read_file_bytes(path);
  require_utf8(doc.text, path);
  return {std::move(doc)};
}

SplitDocuments split_text_corpus(std::vector<Document> documents, const TextSplitRule& rule) {
  SplitDocuments splits;
  const bool by_fraction = rule.val_fraction > 0 || rule.test_fraction > 0;
  if (!rule.list_file.empty() || rule.by_field || by_fraction) {
    if (by_fraction && (rule.val_fraction < 0 || rule.test_fraction < 0 || rule.val_fraction + rule.test_fraction >= 1))
      throw_error("split fractions: val ", rule.val_fraction, " and test ", rule.test_fraction,
                  " must be at least 0 and add up to less than 1");
    const std::vector<int> listed =
        rule.list_file.empty() ? std::vector<int>{} : splits_from_list(documents, rule.list_file);
    for (size_t i = 0; i < documents.size(); ++i) {
      int s = 0;
      if (!listed.empty()) {
        s = listed[i];
      } else if (rule.by_field) {
        s = split_index(documents[i].split);
      } else {
        const double u = Rng(rule.seed, name_hash(documents[i].name)).uniform();
        s = u < rule.val_fraction ? 1 : u < rule.val_fraction + rule.test_fraction ? 2 : 0;
      }
      splits[s].push_back(std::move(documents[i]));
    }
    return splits;
  }
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
