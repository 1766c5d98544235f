#include "train/stop_requests.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "core/error.h"

namespace moelab {

namespace {

std::atomic<int> g_first_signal{0};

// The "Threads:" line of /proc/self/status.
int threads_in_process() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  return -1;
}

const char* signal_name(int sig) { return sig == SIGINT ? "Ctrl-C (SIGINT)" : "SIGTERM"; }

void watch(sigset_t signals) {
  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    int expected = 0;
    if (g_first_signal.compare_exchange_strong(expected, sig)) {
      std::fprintf(stderr,
                   "\nmoelab: %s: stopping after this step and saving a checkpoint (Ctrl-C again: stop now, without "
                   "saving)\n",
                   signal_name(sig));
      continue;
    }
    std::fprintf(stderr, "\nmoelab: %s again: stopping now, without saving; the checkpoints written so far are kept\n",
                 signal_name(sig));
    std::fflush(stderr);
    _exit(128 + g_first_signal.load());
  }
}

}  // namespace

void take_stop_signals_on_a_watcher_thread() {
  MOELAB_ASSERT(threads_in_process() == 1, "stop signals must be blocked before any other thread is started");
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  MOELAB_ASSERT(pthread_sigmask(SIG_BLOCK, &signals, nullptr) == 0, "pthread_sigmask failed");
  std::thread(watch, signals).detach();
}

int stop_requested() { return g_first_signal.load(std::memory_order_relaxed); }

}  // namespace moelab
