#include "tronada/net/worker_supervisor.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace tronada {
namespace {

int status_of_child(void (*body)()) {
  pid_t pid = fork();
  if (pid == 0) {
    body();
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

TEST(WorkerSupervisorTest, DescribesExitsInWords) {
  EXPECT_EQ(describe_exit(status_of_child([] { _exit(3); })), "exited with status 3");
  EXPECT_EQ(describe_exit(status_of_child([] {
              signal(SIGSEGV, SIG_DFL);
              // No core file from a test.
              raise(SIGTERM);
            })),
            "was killed by signal 15 (Terminated)");
  EXPECT_EQ(describe_exit(status_of_child([] { raise(SIGKILL); })),
            "was killed by signal 9 (Killed — often the kernel's OOM killer; see dmesg)");
}

TEST(WorkerSupervisorTest, ClassifiesDeathsForRestartCounts) {
  EXPECT_EQ(death_cause(status_of_child([] { raise(SIGKILL); })), metrics::RestartCause::signal);
  EXPECT_EQ(death_cause(status_of_child([] { _exit(3); })), metrics::RestartCause::exit);
  // A worker that exits 0 on its own while it should serve is restarted all the same.
  EXPECT_EQ(death_cause(status_of_child([] { _exit(0); })), metrics::RestartCause::exit);
  EXPECT_EQ(metrics::restart_cause_label(metrics::RestartCause::max_requests), "max_requests");
}

TEST(WorkerSupervisorTest, DescribesSizes) {
  EXPECT_EQ(describe_bytes(512), "512 B");
  EXPECT_EQ(describe_bytes(12 * 1024), "12 KiB");
  EXPECT_EQ(describe_bytes(300ull * 1024 * 1024), "300 MiB");
  EXPECT_EQ(describe_bytes(256ull * 1024 * 1024), "256 MiB");
  EXPECT_EQ(describe_bytes(3ull * 1024 * 1024 * 1024), "3072 MiB");
}

TEST(WorkerSupervisorTest, ReadsResidentSetSize) {
  EXPECT_GT(process_rss(getpid()), 0u);
  EXPECT_EQ(process_rss(0x7ffffff0), 0u);  // no such process
}

TEST(WorkerSupervisorTest, StatusWithoutAMasterIsANoOp) {
  WorkerStatus status;  // not forked by a supervisor: publishing goes nowhere
  status.call_started(0);
  status.call_ended(0);
  status.ready();
  EXPECT_EQ(status.id(), -1);
}

}  // namespace
}  // namespace tronada
