// `hearth ci`: the GitHub Actions step (hearth::run_actions_step, public API)
// with the repository and state database the shared options name.
#include "cli.h"
#include "hearth/actions.h"

namespace hearth::cli {

int command_ci(const Globals& g, const CiArgs& args) {
  ActionsStepOptions o;
  o.repo = resolve_repo(g);
  o.state_path = resolve_state(g, o.repo);
  o.workflow = args.workflow;
  o.payload = args.payload;
  o.state_dir = args.state_path;
  o.resume = args.resume;
  o.model = args.model;
  o.jobs = args.jobs;
  return run_actions_step(o);
}

}  // namespace hearth::cli
