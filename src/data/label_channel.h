// A label channel of a data folder: one class per token, from one source. Brown has two, "pos" (the universal POS
// class of the word a token starts in) and "genre" (its document's genre); a researcher's corpus has one per label
// field it is prepared with (`moelab data text --label year --label party`). Every analysis that measures routing
// or loss against labels (specialisation, experts per token by label, loss by label) runs once per channel.
//
// Classes are ids 0..n-1 into the channel's class names, at most 254 of them: a side file stores one byte per
// token, and 255 (kNoLabel) means the token has no class in this channel (a token with no word, a document with no
// value for the field).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace moelab::data {

// What a channel's classes belong to: every token of a document shares its document's class; a word's class goes
// to the tokens that start in it.
enum class LabelScope { word, document };

struct LabelChannel {
  std::string name;  // names the side files <split>.<name>.u8; letters, digits, '_' and '-'
  LabelScope scope = LabelScope::document;
  std::vector<std::string> classes;  // [n_classes] class names in id order, n_classes <= 254
};

// "word" | "document"
std::string_view scope_name(LabelScope scope);

// Throws moelab::Error, naming `what` (e.g. "--label \"year\""), unless `name` can name a channel: 1 to 64 letters,
// digits, '_' or '-' (it becomes part of file names).
void check_channel_name(const std::string& name, const std::string& what);

// The index of the channel called `name`, or -1.
int find_channel(const std::vector<LabelChannel>& channels, std::string_view name);

}  // namespace moelab::data
