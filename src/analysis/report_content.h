// The report of `moelab analyze report`: the numbers of a CheckpointAnalysis arranged as the sections a reader
// expects (overview; routing and load; paper 1's specialisation; paper 2's dynamic routing; paper 3's static and
// dynamic expert analyses; expert health), each with a short text saying what to look for, a table of the
// headline numbers and its charts.
#pragma once

#include <vector>

#include "analysis/checkpoint_analysis.h"
#include "report/html_report.h"

namespace moelab::analysis {

report::ReportDoc build_report(const CheckpointAnalysis& a);

// Every chart of the report, in order (what the PNG figures are made of).
std::vector<report::Chart> report_charts(const report::ReportDoc& doc);

}  // namespace moelab::analysis
