#include "eval/class_loss.h"

#include <cmath>

namespace moelab {

ClassLossTally::ClassLossTally(const data::LabelChannel& channel)
    : channel_(channel), sum_(channel.classes.size(), 0.0), count_(channel.classes.size(), 0) {}

ChannelLoss ClassLossTally::result() const {
  ChannelLoss out{channel_.name, {}};
  for (size_t c = 0; c < sum_.size(); ++c) {
    if (count_[c] == 0) continue;
    const double loss = sum_[c] / count_[c];
    out.classes.push_back({channel_.classes[c], loss, std::exp(loss), count_[c]});
  }
  return out;
}

nlohmann::json to_json(const ChannelLoss& channel) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& c : channel.classes)
    j[c.name] = {{"loss", c.loss}, {"perplexity", c.perplexity}, {"tokens", c.tokens}};
  return j;
}

}  // namespace moelab
