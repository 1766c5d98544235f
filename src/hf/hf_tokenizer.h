// A Hugging Face model folder's tokenizer, as transformers loads it: tokenizer.json (Hugging Face's tokenizers
// format: the byte-level BPE of Qwen, OLMoE, DeepSeek and GPT-OSS, the SentencePiece-style BPE of Llama and Mistral)
// when the folder has one, else SentencePiece's tokenizer.model (Llama, Mistral, Mixtral, Grok-1). Documents are
// framed as tokenizer_config.json says: add_bos_token and add_eos_token where it sets them, otherwise what
// tokenizer.json's post_processor puts around a text (for tokenizer.model, Llama's defaults: <s> first, no </s>);
// its bos_token and eos_token name the ids (the end id also stops generation and pads a last window).
#pragma once

#include <cstdint>
#include <string>

#include "data/tokenizer.h"

namespace moelab::hf {

// Throws moelab::Error naming the file and field when the folder has no tokenizer, when a tokenizer file or
// tokenizer_config.json is malformed or uses what moelab does not implement, or when the tokenizer has more ids than
// the model's vocab_size (the model's vocabulary may be larger: padded rows no text encodes to).
data::Tokenizer open_hf_tokenizer(const std::string& dir, int64_t vocab_size);

}  // namespace moelab::hf
