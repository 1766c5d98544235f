#include "train/metrics_log.h"

#include <cerrno>
#include <cstring>
#include <sstream>

#include "core/error.h"
#include "io/atomic_file.h"

namespace moelab {

MetricsLog::MetricsLog(const std::string& path, int64_t resume_step) : path_(path) {
  std::ostringstream kept;
  if (resume_step > 0) {
    std::ifstream in(path);
    std::string line;
    for (int64_t number = 1; std::getline(in, line); ++number) {
      if (line.empty()) continue;
      auto record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (record.is_discarded()) continue;  // a line cut short by the interruption
      // Whatever else a line says, its step decides whether it stays: it must be there to be read.
      const auto step = record.is_object() ? record.find("step") : record.end();
      if (step == record.end() || !step->is_number_integer())
        throw_error("metrics log ", path, ", line ", number,
                    ": expected a JSON object with an integer \"step\", found ",
                    step == record.end() ? record.dump() : "\"step\": " + step->dump(),
                    "; correct or remove the line to resume");
      if (step->get<int64_t>() <= resume_step) kept << line << '\n';
    }
  }
  write_file_atomic(path, kept.str());
  out_.open(path, std::ios::app);
  if (!out_) throw_error("cannot open metrics log ", path, " for appending");
}

void MetricsLog::write(const nlohmann::json& record) {
  out_ << record.dump() << '\n';
  out_.flush();
  // A record that cannot be written stops the run: a log that silently ends is a lie about the run.
  if (!out_)
    throw_error("cannot write to the metrics log ", path_, " (", std::strerror(errno), ") at step ",
                record.value("step", int64_t{-1}),
                ": training stopped; the last checkpoint is kept, --resume continues");
}

}  // namespace moelab
