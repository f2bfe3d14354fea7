#include "sandbox/splice.h"

#include <cstring>
#include <memory>

namespace hearth::sandbox {

namespace {
constexpr size_t kReadSize = 64 * 1024;
}

struct Splice::Write {
  uv_write_t req{};
  std::unique_ptr<char[]> data;
  Splice* splice = nullptr;
  Direction* dir = nullptr;
};

void Splice::start(uv_stream_t* a, uv_stream_t* b, std::string a_to_b_first, Ended ended) {
  started_ = true;
  ended_cb_ = std::move(ended);
  dirs_[0].from = a;
  dirs_[0].to = b;
  dirs_[1].from = b;
  dirs_[1].to = a;
  saved_data_[0] = a->data;
  saved_data_[1] = b->data;
  a->data = b->data = this;
  if (!a_to_b_first.empty()) {
    auto copy = std::make_unique<char[]>(a_to_b_first.size());
    std::memcpy(copy.get(), a_to_b_first.data(), a_to_b_first.size());
    forward(dirs_[0], copy.release(), a_to_b_first.size());
    if (ended_) return;
  }
  for (auto& d : dirs_) {
    if (d.paused) continue;
    if (int rc = uv_read_start(d.from, &Splice::on_alloc, &Splice::on_read); rc != 0)
      return finish(Error{std::string("cannot read: ") + uv_strerror(rc)});
  }
}

void Splice::on_alloc(uv_handle_t*, size_t, uv_buf_t* buf) noexcept {
  buf->base = new (std::nothrow) char[kReadSize];
  buf->len = buf->base ? kReadSize : 0;
}

void Splice::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept {
  auto* self = static_cast<Splice*>(s->data);
  std::unique_ptr<char[]> owned(buf->base);
  if (self->ended_ || n == 0) return;
  Direction& d = self->from(s);
  if (n == UV_EOF) {
    d.eof = true;
    uv_read_stop(s);
    d.shutdown.data = self;
    // The shutdown waits for queued writes, then ends the other side's input.
    if (uv_shutdown(&d.shutdown, d.to, &Splice::on_shutdown) != 0) {
      d.done = true;
      if (self->dirs_[0].done && self->dirs_[1].done) self->finish({});
    }
    return;
  }
  if (n < 0) return self->finish(Error{std::string("read failed: ") + uv_strerror(static_cast<int>(n))});
  self->forward(d, owned.release(), static_cast<size_t>(n));
}

void Splice::forward(Direction& d, char* data, size_t len) {
  auto* w = new Write;
  w->data.reset(data);
  w->splice = this;
  w->dir = &d;
  w->req.data = w;
  uv_buf_t b = uv_buf_init(data, static_cast<unsigned>(len));
  if (int rc = uv_write(&w->req, d.to, &b, 1, &Splice::on_written); rc != 0) {
    delete w;
    return finish(Error{std::string("write failed: ") + uv_strerror(rc)});
  }
  total(d) += len;
  if (uv_stream_get_write_queue_size(d.to) > kHighWater && !d.paused) {
    d.paused = true;
    uv_read_stop(d.from);
  }
}

void Splice::on_written(uv_write_t* req, int status) noexcept {
  std::unique_ptr<Write> w(static_cast<Write*>(req->data));
  Splice* self = w->splice;
  if (self->ended_) return;  // cancelled by the owner's close
  if (status < 0) return self->finish(Error{std::string("write failed: ") + uv_strerror(status)});
  Direction& d = *w->dir;
  if (d.paused && !d.eof && uv_stream_get_write_queue_size(d.to) <= kHighWater / 2) {
    d.paused = false;
    if (int rc = uv_read_start(d.from, &Splice::on_alloc, &Splice::on_read); rc != 0)
      self->finish(Error{std::string("cannot read: ") + uv_strerror(rc)});
  }
}

void Splice::on_shutdown(uv_shutdown_t* r, int status) noexcept {
  auto* self = static_cast<Splice*>(r->data);
  if (self->ended_) return;
  // A peer that is already gone cannot be told: the direction is over either way.
  (void)status;
  Direction& d = &self->dirs_[0].shutdown == r ? self->dirs_[0] : self->dirs_[1];
  d.done = true;
  if (self->dirs_[0].done && self->dirs_[1].done) self->finish({});
}

void Splice::cut(const std::string& why) {
  if (started_ && !ended_) finish(Error{why});
}

void Splice::finish(Status s) {
  if (ended_) return;
  ended_ = true;
  uv_read_stop(dirs_[0].from);
  uv_read_stop(dirs_[1].from);
  dirs_[0].from->data = saved_data_[0];
  dirs_[1].from->data = saved_data_[1];
  if (auto cb = std::move(ended_cb_)) cb(s, totals_);
}

}  // namespace hearth::sandbox
