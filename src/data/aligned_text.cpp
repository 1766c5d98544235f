#include "data/aligned_text.h"

namespace moelab::data {

AlignedText AlignedText::of(std::string_view input, uint32_t offset) {
  AlignedText a;
  a.text = std::string(input);
  a.from.resize(input.size()), a.to.resize(input.size());
  for (size_t i = 0; i < input.size(); ++i)
    a.from[i] = offset + static_cast<uint32_t>(i), a.to[i] = offset + static_cast<uint32_t>(i) + 1;
  return a;
}

AlignedText AlignedText::slice(size_t begin, size_t end) const {
  AlignedText a;
  a.append(*this, begin, end);
  return a;
}

void AlignedText::append(const AlignedText& other, size_t begin, size_t end) {
  text.append(other.text, begin, end - begin);
  from.insert(from.end(), other.from.begin() + static_cast<std::ptrdiff_t>(begin),
              other.from.begin() + static_cast<std::ptrdiff_t>(end));
  to.insert(to.end(), other.to.begin() + static_cast<std::ptrdiff_t>(begin),
            other.to.begin() + static_cast<std::ptrdiff_t>(end));
}

void AlignedText::append_from(std::string_view bytes, uint32_t begin, uint32_t end) {
  text.append(bytes);
  from.insert(from.end(), bytes.size(), begin);
  to.insert(to.end(), bytes.size(), end);
}

void AlignedText::prepend_from(std::string_view bytes, uint32_t begin, uint32_t end) {
  text.insert(0, bytes);
  from.insert(from.begin(), bytes.size(), begin);
  to.insert(to.begin(), bytes.size(), end);
}

}  // namespace moelab::data
