// The stand-in for an isolating backend this host cannot run: it keeps the
// backend's kind, so workflows that need it are refused with the reason
// instead of running somewhere weaker.
#include "sandbox/sandbox.h"

namespace hearth::sandbox {
namespace {

class UnavailableSandbox final : public Sandbox {
 public:
  UnavailableSandbox(std::string kind, std::string why) : kind_(std::move(kind)), why_(std::move(why)) {}
  Result<Process*> spawn(uv_loop_t*, const ExecSpec&, ExecCallbacks) override { return Error{why_}; }
  Result<std::unique_ptr<SandboxSession>> open_session(uv_loop_t*, const ExecSpec&) override { return Error{why_}; }
  std::string_view kind() const override { return kind_; }
  std::string_view unavailable() const override { return why_; }

 private:
  std::string kind_;
  std::string why_;
};

}  // namespace

std::unique_ptr<Sandbox> make_default_sandbox() {
  auto ns = make_namespace_sandbox();
  if (ns) return std::move(*ns);
  return std::make_unique<UnavailableSandbox>("namespace", ns.message());
}

}  // namespace hearth::sandbox
