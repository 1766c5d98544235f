#include "data/data_tokenizer.h"

#include "core/error.h"
#include "data/read_file.h"
#include "data/tokenizer_json.h"

namespace moelab::data {

Tokenizer open_data_tokenizer(const TokenData& data) {
  const TextConvention convention{.by_line = !data.whole_text(), .bos_before = data.bos_id() >= 0, .eod_after = true};
  const std::string path = data.tokenizer_path();
  if (path.ends_with(".json")) {
    std::unique_ptr<TokenizerJson> engine = TokenizerJson::load(path);
    engine->set_bos_id(data.bos_id()), engine->set_eod_id(data.eod_id());
    return Tokenizer(std::move(engine), read_file_bytes(path), convention);
  }
  Tokenizer tokenizer = Tokenizer::load(path, convention);
  // A folder encoded with a pretrained model's tokenizer.model framed its documents with that model's ids.
  if (data.whole_text() &&
      (tokenizer.eod_id() != data.eod_id() || (data.bos_id() >= 0 && tokenizer.bos_id() != data.bos_id())))
    throw_error("data folder ", data.dir(), ": meta.json's eod_id ", data.eod_id(), " and framing.bos_id ",
                data.bos_id(), " are not the ids of ", path, " (", tokenizer.eod_id(), ", ", tokenizer.bos_id(), ")");
  return tokenizer;
}

}  // namespace moelab::data
