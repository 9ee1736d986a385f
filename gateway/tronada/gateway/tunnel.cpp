#include "tronada/gateway/tunnel.h"

#include "tronada/loop/timeout_list.h"
#include "tronada/net/iostream.h"

namespace tronada {

namespace {

class Tunnel : public std::enable_shared_from_this<Tunnel> {
 public:
  Tunnel(std::shared_ptr<IOStream> a, std::shared_ptr<IOStream> b, TunnelOptions options)
      : a_(std::move(a)),
        b_(std::move(b)),
        options_(std::move(options)),
        idle_(&Tunnel::on_idle, this) {}

  void start(std::string to_b, std::string to_a) {
    auto self = shared_from_this();
    a_->set_close_callback([self] { self->on_close(*self->b_); });
    b_->set_close_callback([self] { self->on_close(*self->a_); });
    a_->set_data_handler([self](std::string_view data) { self->pass(*self->a_, *self->b_, data); });
    b_->set_data_handler([self](std::string_view data) { self->pass(*self->b_, *self->a_, data); });
    touch();
    if (!to_b.empty()) pass(*a_, *b_, to_b);
    if (!to_a.empty()) pass(*b_, *a_, to_a);
  }

 private:
  void touch() {
    if (options_.idle_timeouts && !ended_) options_.idle_timeouts->arm(idle_);
  }

  void pass(IOStream& from, IOStream& to, std::string_view data) {
    if (ended_) return;
    touch();
    to.write_pieces(&data, 1);
    if (to.write_buffer_size() > options_.high_water && !to.closed()) {
      from.pause_reading();
      std::weak_ptr<Tunnel> weak = weak_from_this();
      IOStream* reader = &from;
      to.write_pieces(nullptr, 0, [weak, reader] {
        if (auto t = weak.lock(); t && !t->ended_) reader->resume_reading();
      });
    }
  }

  // One side closed: the other goes once its queued bytes are out.
  void on_close(IOStream& other) {
    if (ended_) return;
    end();
    if (other.closed()) return;
    if (other.write_buffer_size() == 0) {
      other.close();
    } else {
      std::shared_ptr<IOStream> keep = &other == a_.get() ? a_ : b_;
      other.write_pieces(nullptr, 0, [keep] { keep->close(); });
    }
  }

  static void on_idle(void* context) {
    auto* t = static_cast<Tunnel*>(context);
    auto self = t->shared_from_this();
    t->end();
    t->a_->close();
    t->b_->close();
  }

  void end() {
    ended_ = true;
    idle_.disarm();
    // Dropping the callbacks drops the references they hold to this tunnel; the
    // streams stay alive through the copies taken here until the close completes.
    auto a = a_, b = b_;
    a->set_data_handler(nullptr);
    b->set_data_handler(nullptr);
    a->set_close_callback(nullptr);
    b->set_close_callback(nullptr);
  }

  std::shared_ptr<IOStream> a_, b_;
  TunnelOptions options_;  // holds the timeout list: declared before the entry on it,
  TimeoutEntry idle_;      // so the entry leaves the list before the list can go
  bool ended_ = false;
};

}  // namespace

void start_tunnel(std::shared_ptr<IOStream> client, std::string to_upstream,
                  std::shared_ptr<IOStream> upstream, std::string to_client,
                  TunnelOptions options) {
  auto tunnel =
      std::make_shared<Tunnel>(std::move(client), std::move(upstream), std::move(options));
  tunnel->start(std::move(to_upstream), std::move(to_client));
}

}  // namespace tronada
