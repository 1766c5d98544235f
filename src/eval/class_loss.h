// Loss by class of a label channel (label_channel.h): the mean cross-entropy of the targets of each class, e.g. the
// perplexity of each Brown genre, of each part of speech, or of each value of a researcher's own label. A target's
// class is the class of the token it predicts.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/label_channel.h"

namespace moelab {

struct ClassLoss {
  std::string name;
  double loss = 0;        // mean cross-entropy in nats per target
  double perplexity = 0;  // exp(loss)
  int64_t tokens = 0;     // targets of this class
};

// The losses of one channel's classes, in class order, leaving out classes with no target.
struct ChannelLoss {
  std::string channel;
  std::vector<ClassLoss> classes;
};

// Sums the losses of one channel's targets by class, in the order they are added.
class ClassLossTally {
 public:
  explicit ClassLossTally(const data::LabelChannel& channel);
  // A target of class `label` (kNoLabel and ids past the classes are not counted) with cross-entropy `loss`.
  void add(uint8_t label, double loss) {
    if (label < sum_.size()) sum_[label] += loss, ++count_[label];
  }
  ChannelLoss result() const;

 private:
  data::LabelChannel channel_;
  std::vector<double> sum_;     // [classes]
  std::vector<int64_t> count_;  // [classes]
};

// {"<class>": {"loss", "perplexity", "tokens"}, ...}
nlohmann::json to_json(const ChannelLoss& channel);

}  // namespace moelab
