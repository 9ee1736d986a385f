// Tunnel: copies bytes both ways between two streams, for connections that switched
// protocols through the proxy (WebSocket and other Upgrades).
#pragma once

#include <chrono>
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
  /// The tunnel carries a WebSocket (a 101 to `Upgrade: websocket`): a drain closes it
  /// with a close handshake, not by closing the sockets (drain_tunnels).
  bool websocket = false;
};

/// Joins `client` and `upstream`: what one sends is written to the other, with
/// backpressure (a slow reader pauses the fast writer's side). `to_upstream` and
/// `to_client` are bytes already read past the handshake on each side. When either
/// side closes, the other is closed once what was queued for it is written.
///
/// Lifetime: the tunnel's state is owned by the two streams' data handlers, which it
/// clears when it ends, and their close callbacks, so it is freed once both streams
/// closed. The
/// caller hands over both streams and keeps nothing; the tunnel borrows nothing either
/// (it holds its timeout list), so it may outlive whatever started it.
void start_tunnel(std::shared_ptr<IOStream> client, std::string to_upstream,
                  std::shared_ptr<IOStream> upstream, std::string to_client,
                  TunnelOptions options = {});

/// Tunnels on this thread (a process's loop) with a stream not closed yet, counting
/// those still writing out their last bytes: a draining server waits for them.
std::size_t open_tunnels();

/// Ends every tunnel open on this thread, for a server that drains (SIGTERM, or the old
/// side of a binary upgrade); open_tunnels() falls to 0 as they end.
///
/// A WebSocket tunnel gets a close handshake, as a WebSocket the server itself holds
/// does: a close frame with 1001 (going away) to the client and, masked as a client's
/// must be, to the upstream, which would otherwise only see its connection drop in the
/// middle of the protocol. A frame can only go between two frames, so each direction
/// first relays the frame it is in the middle of (ws::FrameBoundaryTracker knows where
/// it ends); after its close, a direction relays nothing more and only watches for
/// the peer's answering close. With both closes in, or either side gone, both
/// connections close once what was queued for them is written. No direction sends a
/// second close: one whose sender closed already has its close on the way.
///
/// `timeout` bounds all of it (a frame that never ends, a peer that never answers):
/// then both connections just close. Any other upgraded protocol has no frames to put
/// a goodbye between: its connections close now.
void drain_tunnels(std::chrono::milliseconds timeout);

}  // namespace tronada
