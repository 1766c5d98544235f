// Ctrl-C (SIGINT) and SIGTERM as requests that a training run takes at a step boundary.
//
// No signal handler ever runs: both signals are blocked in every thread of the process and taken by one watcher
// thread with sigwait. An asynchronous handler runs on the stack of whichever thread the signal interrupts, on top
// of whatever that thread was doing; when a handler ran during a training step, about one Ctrl-C in five corrupted
// the heap (glibc's "corrupted size vs. prev_size"), where a handler on an alternate signal stack never did: some
// code in the step keeps live data below its stack pointer. Taking the signals on a thread of their own makes that
// impossible by construction.
//
// The first signal requests a stop: the trainer finishes the step, saves a checkpoint and exits with 128 + the
// signal (130 for SIGINT, 143 for SIGTERM, a scheduler's stop). A second signal stops the process at once with the
// same status, without saving; every checkpoint already written stays complete (they are written atomically).
#pragma once

namespace moelab {

// Blocks SIGINT and SIGTERM and starts the watcher. Call from the main thread before any other thread exists (the
// first thing `moelab train` does): threads inherit the blocked set when they are created, so an OpenMP or oneDNN
// thread made earlier could still be interrupted. Asserts that it is the only thread. Once per process.
void take_stop_signals_on_a_watcher_thread();

// The signal of the first stop request (SIGINT or SIGTERM), or 0 while none has arrived (always 0 in a process that
// did not call take_stop_signals_on_a_watcher_thread()).
int stop_requested();

}  // namespace moelab
