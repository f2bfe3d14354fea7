// The Actions step's engine on its own loop (actions_session.h).
#include "api/actions_session.h"

#include <signal.h>

#include <iostream>

namespace hearth::detail {

CiSession::CiSession(engine::Store& store, engine::Observer* observer) {
  uv_loop_init(&loop_);
  // Workflows run in the namespace sandbox unless they choose
  // [sandbox] kind = "local". Where namespaces are unavailable (Ubuntu 24.04's
  // AppArmor default, a container without them) those workflows are refused
  // with the reason and what to do; they never fall back to the host.
  sandbox_ = sandbox::make_local_sandbox();
  namespace_ = sandbox::make_default_sandbox();
  engine_ = std::make_unique<engine::Engine>(&loop_, store, *namespace_);
  engine_->add_sandbox(*sandbox_);
  engine_->add_observer(observer);
  // Signal handles never keep the loop alive on their own.
  for (auto* s : {&sigint_, &sigterm_}) {
    uv_signal_init(&loop_, s);
    s->data = engine_.get();
    uv_unref(reinterpret_cast<uv_handle_t*>(s));
  }
  uv_signal_start(&sigint_, &CiSession::on_signal, SIGINT);
  uv_signal_start(&sigterm_, &CiSession::on_signal, SIGTERM);
}

void CiSession::on_signal(uv_signal_t* h, int signum) noexcept {
  static_cast<engine::Engine*>(h->data)->cancel_all(std::string("interrupted by ") +
                                                    (signum == SIGINT ? "SIGINT" : "SIGTERM"));
}

std::function<void(const hearth::RunResult&)> CiSession::on_finished() {
  return [this](const hearth::RunResult& o) { outcomes_.push_back(o); };
}

int CiSession::wait() {
  uv_run(&loop_, UV_RUN_DEFAULT);
  int rc = kExitOk;
  for (auto& o : outcomes_) {
    if (!o.error.empty()) std::cerr << "run " << o.run_id << " failed: " << o.error << "\n";
    if (o.status == hearth::RunStatus::cancelled) rc = kExitCancelled;
    else if (o.status != hearth::RunStatus::succeeded && rc == kExitOk) rc = kExitRunFailed;
  }
  return rc;
}

CiSession::~CiSession() {
  uv_close(reinterpret_cast<uv_handle_t*>(&sigint_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigterm_), nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  engine_.reset();
  uv_loop_close(&loop_);
}

}  // namespace hearth::detail
