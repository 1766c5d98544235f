#include "data/tokenizer_json.h"

#include <utf8proc.h>

#include <algorithm>

#include "core/error.h"
#include "data/json_steps.h"
#include "data/read_file.h"
#include "data/utf8.h"

namespace moelab::data {

namespace {

using json = nlohmann::json;

// A word character for single_word added tokens: a letter, a number or '_'.
bool is_word_char(char32_t c) {
  if (c == U'_') return true;
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
         (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

// The ids a TemplateProcessing post-processor's "single" template puts before and after the text.
void read_template(const json& post, const std::string& where, const TokenizerJson& tok, std::vector<int32_t>& before,
                   std::vector<int32_t>& after) {
  if (post.is_null() || post.value("type", std::string()) != "TemplateProcessing") return;
  if (!post.contains("single") || !post["single"].is_array())
    throw_error(where, ": post_processor TemplateProcessing: expected an array 'single'");
  bool seen_text = false;
  for (const json& part : post["single"]) {
    if (part.contains("Sequence")) {
      seen_text = true;
    } else if (part.contains("SpecialToken") && part["SpecialToken"].contains("id")) {
      const std::string name = part["SpecialToken"]["id"].get<std::string>();
      std::vector<int32_t> ids;
      const json& specials = post.value("special_tokens", json::object());
      if (specials.contains(name) && specials[name].contains("ids"))
        ids = specials[name]["ids"].get<std::vector<int32_t>>();
      else if (tok.id_of(name) >= 0)
        ids = {tok.id_of(name)};
      else
        throw_error(where, ": post_processor: special token '", name, "' has no id");
      (seen_text ? after : before).insert((seen_text ? after : before).end(), ids.begin(), ids.end());
    }
  }
}

}  // namespace

std::unique_ptr<TokenizerJson> TokenizerJson::load(const std::string& path) {
  json j;
  try {
    j = json::parse(read_file_bytes(path));
  } catch (const json::exception& e) {
    throw_error("file ", path, ": not valid JSON (", e.what(), ")");
  }
  if (!j.is_object() || !j.contains("model")) throw_error("file ", path, ": expected a tokenizer.json with a 'model'");
  try {
    return from_json(j, "file " + path);
  } catch (const json::exception& e) {  // a field of another shape than the reader checks for
    throw_error("file ", path, ": a field does not have the shape a tokenizer.json's has (", e.what(), ")");
  }
}

std::unique_ptr<TokenizerJson> TokenizerJson::from_json(const json& j, const std::string& where) {
  std::unique_ptr<TokenizerJson> t(new TokenizerJson(BpeModel::from_json(j["model"], where),
                                                     TextNormalizer::from_json(j.value("normalizer", json()), where),
                                                     PreTokenizer::from_json(j.value("pre_tokenizer", json()), where),
                                                     TokenDecoder::from_json(j.value("decoder", json()), where)));
  t->pieces_ = t->model_.pieces();
  t->special_.assign(t->pieces_.size(), false);
  const json added = j.value("added_tokens", json::array());
  if (!added.is_array()) throw_error(where, ": added_tokens: expected an array");
  // Ids are dense: an added token's id is below the number of vocabulary entries and added tokens.
  const auto max_ids = static_cast<int64_t>(t->pieces_.size() + added.size());
  for (const json& a : added) {
    if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || a["id"].get<int64_t>() < 0 ||
        a["id"].get<int64_t>() >= max_ids || !a.contains("content") || !a["content"].is_string() ||
        a["content"].get<std::string>().empty())
      throw_error(where, ": added_tokens: expected {\"id\": an id in [0, ", max_ids,
                  "), \"content\": a non-empty string}, found ", a.dump());
    AddedToken tok{static_cast<int32_t>(a["id"].get<int64_t>()),
                   a["content"].get<std::string>(),
                   json_flag(a, "special", false, where + ": added_tokens"),
                   json_flag(a, "lstrip", false, where + ": added_tokens"),
                   json_flag(a, "rstrip", false, where + ": added_tokens"),
                   json_flag(a, "single_word", false, where + ": added_tokens")};
    if (static_cast<size_t>(tok.id) >= t->pieces_.size()) t->pieces_.resize(tok.id + 1), t->special_.resize(tok.id + 1);
    t->pieces_[tok.id] = tok.content;
    t->special_[tok.id] = tok.special;
    t->added_.push_back(std::move(tok));
  }
  std::stable_sort(t->added_.begin(), t->added_.end(),
                   [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
  for (size_t i = 0; i < t->added_.size(); ++i)
    t->added_by_first_byte_[static_cast<unsigned char>(t->added_[i].content[0])].push_back(static_cast<uint32_t>(i));
  read_template(j.value("post_processor", json()), where, *t, t->template_before_, t->template_after_);
  return t;
}

int32_t TokenizerJson::id_of(const std::string& token) const {
  for (const AddedToken& a : added_)
    if (a.content == token) return a.id;
  return model_.id_of(token);
}

std::string TokenizerJson::piece(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < pieces_.size() ? pieces_[id] : std::string();
}

bool TokenizerJson::added_at(std::string_view text, size_t at, const AddedToken*& token, size_t& begin,
                             size_t& end) const {
  for (uint32_t i : added_by_first_byte_[static_cast<unsigned char>(text[at])]) {  // longest first
    const AddedToken& a = added_[i];
    if (text.compare(at, a.content.size(), a.content) != 0) continue;
    begin = at, end = at + a.content.size();
    char32_t c = 0;
    if (a.single_word) {
      const bool word_before = begin > 0 && (decode_utf8_before(text, begin, c), is_word_char(c));
      const bool word_after = end < text.size() && decode_utf8(text, end, c) > 0 && is_word_char(c);
      if (word_before || word_after) continue;
    }
    if (a.lstrip)
      for (size_t n = 0; begin > 0 && (n = decode_utf8_before(text, begin, c), is_unicode_whitespace(c));) begin -= n;
    if (a.rstrip)
      for (size_t n = 0; end < text.size() && (n = decode_utf8(text, end, c)) > 0 && is_unicode_whitespace(c);)
        end += n;
    token = &a;
    return true;
  }
  return false;
}

void TokenizerJson::encode(std::string_view text, uint32_t offset, std::vector<TokenSpan>& out) const {
  size_t done = 0;  // text before this is encoded
  for (size_t at = 0; at < text.size();) {
    const AddedToken* token = nullptr;
    size_t begin = 0, end = 0;
    if (!added_at(text, at, token, begin, end)) {
      ++at;
      continue;
    }
    begin = std::max(begin, done);  // lstrip takes no text of an earlier token
    encode_between(text.substr(done, begin - done), offset + static_cast<uint32_t>(done), out);
    out.push_back({token->id, offset + static_cast<uint32_t>(begin), offset + static_cast<uint32_t>(end)});
    done = at = end;
  }
  encode_between(text.substr(done), offset + static_cast<uint32_t>(done), out);
}

void TokenizerJson::encode_between(std::string_view text, uint32_t offset, std::vector<TokenSpan>& out) const {
  if (text.empty()) return;
  std::vector<BpeToken> tokens;
  for (const AlignedText& piece : pre_tokenizer_.apply(normalizer_.apply(AlignedText::of(text, offset)))) {
    tokens.clear();
    model_.encode(piece.text, tokens);
    for (const BpeToken& t : tokens) {
      // The input bytes the token's bytes come from, in order: from the first's start to the last's end.
      uint32_t begin = piece.from[t.begin], end = piece.to[t.end - 1];
      for (uint32_t i = t.begin; i < t.end; ++i)
        begin = std::min(begin, piece.from[i]), end = std::max(end, piece.to[i]);
      out.push_back({t.id, begin, end});
    }
  }
}

std::vector<int32_t> TokenizerJson::piece_bytes() const {
  std::vector<int32_t> out(pieces_.size(), 0);
  for (size_t id = 0; id < pieces_.size(); ++id)
    if (!special_[id] && !pieces_[id].empty()) out[id] = static_cast<int32_t>(decoder_.piece_bytes(pieces_[id]));
  return out;
}

std::string TokenizerJson::decode(const std::vector<int32_t>& ids) const {
  std::vector<std::string> pieces;
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= pieces_.size())
      throw_error("tokenizer: cannot decode id ", id, " (the vocabulary has ", pieces_.size(), " ids)");
    if (!special_[id]) pieces.push_back(pieces_[id]);
  }
  return decoder_.decode(std::move(pieces));
}

}  // namespace moelab::data
