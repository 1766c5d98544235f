// The tokenizer a data folder was encoded with, framed as its documents are: moelab's own tokenizer.model (line by
// line), or the tokenizer of the pretrained model the folder was prepared for (`moelab data ... --model-tokenizer`:
// tokenizer.model or tokenizer.json, whole documents, the folder's start id first). Every document of a data folder
// ends with its end-of-document id.
#pragma once

#include "data/token_file.h"
#include "data/tokenizer.h"

namespace moelab::data {

// Throws moelab::Error naming the file when the tokenizer cannot be read or does not have the folder's ids.
Tokenizer open_data_tokenizer(const TokenData& data);

}  // namespace moelab::data
