// The counting allocator the allocation tests share: the global operator new, replaced
// in this test program only, counts what the thread marked as counting allocates; and a
// client thread that sends keep-alive requests and reads the loop's count at two marks.
#pragma once

#include <atomic>
#include <string_view>

#include "tronada/loop/io_loop.h"

namespace alloc_test {

/// Allocations made by threads with `counting_thread` set, since the program started.
extern std::atomic<long> loop_allocations;
/// Set on the loop's thread while it serves: only its allocations count.
extern thread_local bool counting_thread;
/// After mark_a: trace this many allocations through alloc_traced() (ALLOC_TRACE=N), for
/// `gdb -ex 'break alloc_traced'` to show where they come from.
extern std::atomic<int> trace_budget;

/// Sends `count` keep-alive `request`s one after another to 127.0.0.1:`port`, each
/// answered with `Hello, world` (a 12-byte body); after request `mark_a` and `mark_b`
/// have been answered, records loop_allocations in `at_a` and `at_b`.
bool run_client(std::string_view request, int port, int count, int mark_a, int mark_b, long& at_a,
                long& at_b);

/// Loop-thread allocations per request over `measured` keep-alive `request`s to the
/// server on 127.0.0.1:`port`, after `warmup` requests that fill the pools. Runs `loop`
/// (the server's, on this thread) until the client is done; the test fails if a
/// response was not `200 OK` with `Hello, world`.
double allocations_per_request(tronada::IOLoop& loop, int port, std::string_view request,
                               int warmup = 200, int measured = 2000);

}  // namespace alloc_test
