// Tunnel: copies bytes both ways between two streams, for connections that switched
// protocols through the proxy (WebSocket and other Upgrades).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "tronada/loop/io_loop.h"

namespace tronada {

class IOStream;
class TimeoutList;

struct TunnelOptions {
  /// A side whose peer has this many bytes queued stops being read until they left.
  std::size_t high_water = 1024 * 1024;
  /// Closes both sides after this long without a byte either way; null: never. Shared:
  /// the tunnel outlives the request, and so the route (and the route table a reload
  /// drops) that made the list.
  std::shared_ptr<TimeoutList> idle_timeouts;
};

/// Joins `client` and `upstream`: what one sends is written to the other, with
/// backpressure (a slow reader pauses the fast writer's side). `to_upstream` and
/// `to_client` are bytes already read past the handshake on each side. When either
/// side closes, the other is closed once what was queued for it is written.
///
/// Lifetime: the tunnel's state is owned by the two streams' data handlers and close
/// callbacks, which it clears when it ends, so it is freed with the last of them. The
/// caller hands over both streams and keeps nothing; the tunnel borrows nothing either
/// (it holds its timeout list), so it may outlive whatever started it.
void start_tunnel(std::shared_ptr<IOStream> client, std::string to_upstream,
                  std::shared_ptr<IOStream> upstream, std::string to_client,
                  TunnelOptions options = {});

}  // namespace tronada
