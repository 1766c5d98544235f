// The report of `moelab analyze report`: the numbers of a CheckpointAnalysis arranged as the sections a reader
// expects (overview; training; routing and load; paper 1's specialisation; paper 2's dynamic routing; paper 3's
// static and dynamic expert analyses; expert health; configuration), each with a short text saying what to look
// for, a table of the headline numbers and its charts.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "analysis/checkpoint_analysis.h"
#include "analysis/loss_history.h"
#include "report/html_report.h"

namespace moelab::analysis {

// history: the loss curves of the checkpoint's run (read_loss_history); nullopt when its run folder has no
// metrics log, which the training section then says.
report::ReportDoc build_report(const CheckpointAnalysis& a, const std::optional<LossHistory>& history);

// Every chart of the report, in order (what the PNG figures are made of).
std::vector<report::Chart> report_charts(const report::ReportDoc& doc);

// Parts of the report with rules of their own.

// Training loss per logged step and validation loss per evaluation, on one step axis.
report::Chart loss_chart(const LossHistory& history, int64_t checkpoint_step);

// Every setting of a config ({"section": {"key": value}}, as config.json holds it) as a table: a header row, then
// one row {"section.key", value} per setting, in the config's order (nlohmann::json's: alphabetical, as config.json
// lists them); strings without their quotes, other values as compact JSON.
std::vector<std::vector<std::string>> config_table(const nlohmann::json& config);

// Where each class of a label (a POS class, a genre) is routed: per layer, for each class, the share of its slots
// each expert receives. Colours diverge from the uniform share 1/E (white) to the largest deviation in any layer
// (not below 0), so that small departures from uniform show; every class is labelled.
report::Chart label_routing_chart(const std::string& id, const std::string& title, const std::string& label_title,
                                  const std::vector<Contingency>& tables /*[L] of one label*/,
                                  const std::vector<std::string>& class_names /*[C]*/,
                                  const std::vector<std::string>& layer_titles /*[L]*/);

}  // namespace moelab::analysis
