#include "tronada/gateway/tunnel.h"

#include <unordered_set>
#include <vector>

#include "tronada/loop/timeout_list.h"
#include "tronada/net/iostream.h"
#include "tronada/websocket/frame_boundary.h"
#include "tronada/websocket/frame_codec.h"

namespace tronada {

namespace {

class Tunnel;

// The tunnels of this thread's loop, for drain_tunnels and open_tunnels. A tunnel is
// in it from start() until both its streams closed: a tunnel that ended but still
// writes out what was queued (a close frame, the end of a message) is still open, or a
// drain that counts it would exit the process under those bytes.
std::unordered_set<Tunnel*>& live_tunnels() {
  thread_local std::unordered_set<Tunnel*> tunnels;
  return tunnels;
}

class Tunnel : public std::enable_shared_from_this<Tunnel> {
 public:
  Tunnel(std::shared_ptr<IOStream> a, std::shared_ptr<IOStream> b, TunnelOptions options)
      : a_(std::move(a)),
        b_(std::move(b)),
        options_(std::move(options)),
        idle_(&Tunnel::on_idle, this) {}
  ~Tunnel() {
    if (!released_) live_tunnels().erase(this);
  }

  void start(std::string to_b, std::string to_a) {
    auto self = shared_from_this();
    live_tunnels().insert(this);
    a_->set_close_callback([self] { self->on_closed(self->a_gone_, self->b_); });
    b_->set_close_callback([self] { self->on_closed(self->b_gone_, self->a_); });
    a_->set_data_handler([self](std::string_view data) { self->pass(self->up_, data); });
    b_->set_data_handler([self](std::string_view data) { self->pass(self->down_, data); });
    touch();
    if (!to_b.empty()) pass(up_, to_b);
    if (!to_a.empty()) pass(down_, to_a);
  }

  void drain(std::chrono::milliseconds timeout) {
    if (ended_ || draining_) return;
    if (!options_.websocket) {
      close_now();
      return;
    }
    draining_ = true;
    for (Direction* d : {&up_, &down_}) {
      if (d->relaying && d->frames.at_boundary()) say_goodbye(*d);
    }
    finish_if_closed();
    if (ended_) return;
    std::weak_ptr<Tunnel> weak = weak_from_this();
    drain_timer_ = a_->loop().call_later(timeout, [weak] {
      if (auto t = weak.lock(); t && !t->ended_) {
        t->drain_timer_ = {};
        t->close_now();
      }
    });
  }

 private:
  /// One way through the tunnel. For a WebSocket it follows the frames going past.
  struct Direction {
    IOStream* from;
    IOStream* to;
    bool to_client;  // `to` is the client (we speak as the server) or the upstream
    ws::FrameBoundaryTracker frames;
    bool relaying = true;  // false once a close went ahead of whatever follows
  };

  void touch() {
    if (options_.idle_timeouts && !ended_) options_.idle_timeouts->arm(idle_);
  }

  void pass(Direction& d, std::string_view data) {
    if (ended_) return;
    touch();
    if (!options_.websocket) {
      relay(d, data);
      return;
    }
    if (d.relaying) {
      // Draining: only up to the end of the frame in progress, then the close.
      std::size_t n = d.frames.feed(data, draining_);
      relay(d, data.substr(0, n));
      data.remove_prefix(n);
      if (draining_ && d.frames.at_boundary()) say_goodbye(d);
    }
    if (!d.relaying) d.frames.feed(data);  // dropped, but watched for the sender's close
    if (draining_) finish_if_closed();
  }

  void relay(Direction& d, std::string_view data) {
    if (data.empty() || d.to->closed()) return;
    d.to->write_pieces(&data, 1);
    if (d.to->write_buffer_size() > options_.high_water) {
      d.from->pause_reading();
      std::weak_ptr<Tunnel> weak = weak_from_this();
      IOStream* reader = d.from;
      d.to->write_pieces(nullptr, 0, [weak, reader] {
        if (auto t = weak.lock(); t && !t->ended_) reader->resume_reading();
      });
    }
  }

  // At a frame boundary while draining: `d.to` gets a 1001 close unless the sender's
  // own close went to it already, and nothing more of `d.from`'s.
  void say_goodbye(Direction& d) {
    d.relaying = false;
    if (d.frames.close_seen() || d.to->closed()) return;
    // Toward the client we are its server (unmasked frames); toward the upstream its
    // client, whose frames must be masked (RFC 6455 section 5.1).
    ws::FrameWriter writer(d.to_client ? ws::Role::kServer : ws::Role::kClient);
    std::string frame = writer.close(ws::close_code::kGoingAway,
                                     d.to_client ? "server shutting down" : "proxy shutting down");
    std::string_view piece = frame;
    d.to->write_pieces(&piece, 1);
  }

  // Draining, both senders' closes seen: the handshake is over on both sides.
  void finish_if_closed() {
    if (ended_ || !up_.frames.close_seen() || !down_.frames.close_seen()) return;
    end();
    close_after_flush(a_);
    close_after_flush(b_);
  }

  static void close_after_flush(const std::shared_ptr<IOStream>& s) {
    if (s->closed()) return;
    if (s->write_buffer_size() == 0) {
      s->close();
    } else {
      s->write_pieces(nullptr, 0, [keep = s] { keep->close(); });
    }
  }

  // A stream closed (its close callback, which runs once, whoever closed it). The
  // first to close ends the tunnel: the other goes once its queued bytes are out.
  void on_closed(bool& gone, const std::shared_ptr<IOStream>& other) {
    gone = true;
    if (!ended_) {
      end();
      close_after_flush(other);
    }
    if (a_gone_ && b_gone_) {
      live_tunnels().erase(this);
      released_ = true;
    }
  }

  static void on_idle(void* context) {
    auto* t = static_cast<Tunnel*>(context);
    auto self = t->shared_from_this();
    t->close_now();
  }

  void close_now() {
    auto self = shared_from_this();
    end();
    a_->close();
    b_->close();
  }

  void end() {
    if (ended_) return;
    ended_ = true;
    idle_.disarm();
    if (drain_timer_) a_->loop().remove_timeout(drain_timer_);
    drain_timer_ = {};
    // Dropping the data handlers drops the references they hold to this tunnel; the
    // close callbacks hold the last ones, until both streams closed (every way to end
    // closes both, some after a flush).
    a_->set_data_handler(nullptr);
    b_->set_data_handler(nullptr);
  }

  std::shared_ptr<IOStream> a_, b_;  // the client, the upstream
  TunnelOptions options_;            // holds the timeout list: declared before the entry on it,
  TimeoutEntry idle_;                // so the entry leaves the list before the list can go
  Direction up_{a_.get(), b_.get(), false};
  Direction down_{b_.get(), a_.get(), true};
  bool ended_ = false;
  bool draining_ = false;
  bool a_gone_ = false, b_gone_ = false;  // their close callbacks ran
  bool released_ = false;                 // out of live_tunnels()
  TimeoutHandle drain_timer_;
};

}  // namespace

void start_tunnel(std::shared_ptr<IOStream> client, std::string to_upstream,
                  std::shared_ptr<IOStream> upstream, std::string to_client,
                  TunnelOptions options) {
  auto tunnel =
      std::make_shared<Tunnel>(std::move(client), std::move(upstream), std::move(options));
  tunnel->start(std::move(to_upstream), std::move(to_client));
}

std::size_t open_tunnels() {
  return live_tunnels().size();
}

void drain_tunnels(std::chrono::milliseconds timeout) {
  // Draining one may end it (and so leave the set): hold them all first.
  std::vector<std::shared_ptr<Tunnel>> all;
  for (Tunnel* t : live_tunnels()) all.push_back(t->shared_from_this());
  for (auto& t : all) t->drain(timeout);
}

}  // namespace tronada
