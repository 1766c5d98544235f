#include "data/brown_corpus.h"

#include <cctype>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/error.h"
#include "core/resources.h"
#include "data/read_file.h"

namespace moelab::data {
namespace {

constexpr std::string_view kGenreLetters = "abcdefghjklmnpr";

std::string upper(std::string_view s) {
  std::string u(s);
  for (char& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return u;
}

// Upper-cased Brown tag -> universal class id, built once from the embedded resource.
const std::unordered_map<std::string, int>& universal_tag_table() {
  static const std::unordered_map<std::string, int> table = [] {
    const auto text = find_resource("brown/universal-tags.json");
    if (!text) throw_error("resource brown/universal-tags.json is missing from this build");
    std::unordered_map<std::string, int> class_of_name;
    for (int i = 0; i < kNumPosClasses; ++i) class_of_name.emplace(pos_class_names()[i], i);
    std::unordered_map<std::string, int> t;
    const nlohmann::json mapping = nlohmann::json::parse(*text);
    for (const auto& entry : mapping.items()) {
      const auto it =
          entry.value().is_string() ? class_of_name.find(entry.value().get<std::string>()) : class_of_name.end();
      if (it == class_of_name.end())
        throw_error("resource brown/universal-tags.json: tag ", entry.key(), ": expected one of the 12 class names");
      t.emplace(entry.key(), it->second);
    }
    // Absent from the published mapping but present in the corpus (314 times): proper nouns in titles.
    t.emplace("NR-TL", 0);
    t.emplace("NR-TL-HL", 0);
    return t;
  }();
  return table;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// The corpus writes a sentence-final ? ! ; : twice ("?/. ?/."); a reader sees it once.
bool is_duplicated_final(std::string_view last, std::string_view before) {
  if (last != before || last.size() < 3 || last[1] != '/' || last[2] != '.') return false;
  return last[0] == '?' || last[0] == '!' || last[0] == ';' || last[0] == ':';
}

}  // namespace

const std::array<std::string_view, kNumGenres>& brown_genre_names() {
  static const std::array<std::string_view, kNumGenres> names = {
      "news",    "editorial", "reviews", "religion",        "hobbies",   "lore",    "belles_lettres", "government",
      "learned", "fiction",   "mystery", "science_fiction", "adventure", "romance", "humor"};
  return names;
}

const std::array<std::string_view, kNumPosClasses>& pos_class_names() {
  static const std::array<std::string_view, kNumPosClasses> names = {"NOUN", "VERB", "ADJ",  "ADV", "PRON", "DET",
                                                                     "ADP",  "NUM",  "CONJ", "PRT", ".",    "X"};
  return names;
}

int brown_genre_of_letter(char letter) {
  const size_t at = kGenreLetters.find(letter);
  return at == std::string_view::npos ? -1 : static_cast<int>(at);
}

bool is_brown_file_name(std::string_view name) {
  return name.size() == 4 && name[0] == 'c' && brown_genre_of_letter(name[1]) >= 0 &&
         std::isdigit(static_cast<unsigned char>(name[2])) && std::isdigit(static_cast<unsigned char>(name[3]));
}

int universal_pos_class(std::string_view tag) {
  const auto& table = universal_tag_table();
  const auto it = table.find(upper(tag));
  return it == table.end() ? -1 : it->second;
}

Document parse_brown_document(std::string_view content, const std::string& source, int genre) {
  Document doc;
  doc.name = source;
  doc.labels = {genre >= 0 ? std::string(brown_genre_names().at(genre)) : ""};
  doc.text.reserve(content.size());
  std::vector<std::string_view> tokens;
  int64_t line_no = 0;
  size_t line_start = 0;
  while (line_start < content.size()) {
    size_t line_end = content.find('\n', line_start);
    if (line_end == std::string_view::npos) line_end = content.size();
    const std::string_view line = content.substr(line_start, line_end - line_start);
    line_start = line_end + 1;
    ++line_no;

    tokens.clear();
    for (size_t i = 0; i < line.size();) {
      while (i < line.size() && is_space(line[i])) ++i;
      size_t j = i;
      while (j < line.size() && !is_space(line[j])) ++j;
      if (j > i) tokens.push_back(line.substr(i, j - i));
      i = j;
    }
    if (tokens.empty()) continue;  // paragraph break
    if (tokens.size() >= 2 && is_duplicated_final(tokens.back(), tokens[tokens.size() - 2])) tokens.pop_back();

    for (size_t k = 0; k < tokens.size(); ++k) {
      const std::string_view token = tokens[k];
      const size_t slash = token.rfind('/');
      if (slash == std::string_view::npos || slash == 0 || slash + 1 == token.size())
        throw_error("brown file ", source, " line ", line_no, ": token '", token, "' is not word/tag");
      std::string_view word = token.substr(0, slash);
      const std::string_view tag = token.substr(slash + 1);
      const int pos = universal_pos_class(tag);
      if (pos < 0) throw_error("brown file ", source, " line ", line_no, ": unknown tag '", tag, "' in '", token, "'");
      if (word == "``" || word == "''") word = "\"";
      if (k > 0) doc.text += ' ';
      Word w;
      w.begin = static_cast<uint32_t>(doc.text.size());
      doc.text += word;
      w.end = static_cast<uint32_t>(doc.text.size());
      w.pos = static_cast<uint8_t>(pos);
      w.tag = tag;
      doc.words.push_back(std::move(w));
    }
    doc.text += '\n';
  }
  return doc;
}

Document parse_brown_file(const std::string& path) {
  const std::string name = std::filesystem::path(path).filename().string();
  if (!is_brown_file_name(name))
    throw_error("brown file ", path, ": name is not c<genre letter><two digits> (e.g. ca01)");
  Document doc = parse_brown_document(read_file_bytes(path), path, brown_genre_of_letter(name[1]));
  doc.name = name;
  return doc;
}

std::vector<std::pair<std::string, int>> parse_brown_split_list(std::string_view tsv, const std::string& source) {
  std::vector<std::pair<std::string, int>> entries;
  int64_t line_no = 0;
  size_t start = 0;
  while (start < tsv.size()) {
    size_t end = tsv.find('\n', start);
    if (end == std::string_view::npos) end = tsv.size();
    std::string_view line = tsv.substr(start, end - start);
    start = end + 1;
    ++line_no;
    while (!line.empty() && is_space(line.back())) line.remove_suffix(1);
    if (line.empty()) continue;
    const size_t sep = line.find_first_of(" \t");
    const size_t value = sep == std::string_view::npos ? sep : line.find_first_not_of(" \t", sep);
    if (value == std::string_view::npos)
      throw_error("split list ", source, " line ", line_no, ": expected '<file><TAB><train|valid|test>'");
    const std::string_view name = line.substr(0, sep), split = line.substr(value);
    int index;
    if (split == "train") {
      index = 0;
    } else if (split == "valid" || split == "val") {
      index = 1;
    } else if (split == "test") {
      index = 2;
    } else {
      throw_error("split list ", source, " line ", line_no, ": split '", split, "' is not train, valid or test");
    }
    entries.emplace_back(std::string(name), index);
  }
  return entries;
}

}  // namespace moelab::data
