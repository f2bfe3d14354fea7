// libgit2, opened on the first checkout (a step's workspace from a commit),
// with its own TLS and SSH libraries. The functions Hearth calls, forwarded;
// see util/lazy_library.h.
#include "util/lazy/git2.h"

#include <git2.h>

#include "util/lazy/forward.h"

namespace hearth::lazy {

HEARTH_LAZY_SONAME const char kSoname[] = "libgit2.so." LIBGIT2_SOVERSION;

LazyLibrary& git2_library() {
  static LazyLibrary library(kSoname, "a checkout (a step's workspace from a commit)");
  return library;
}

}  // namespace hearth::lazy

using hearth::lazy::git2_library;

HEARTH_LAZY_FORWARD(git2_library(), int, git_libgit2_init, (void), ())
HEARTH_LAZY_FORWARD(git2_library(), int, git_libgit2_shutdown, (void), ())
HEARTH_LAZY_FORWARD(git2_library(), const git_error*, git_error_last, (void), ())
HEARTH_LAZY_FORWARD(git2_library(), int, git_branch_create,
                    (git_reference * *out, git_repository* repo, const char* name, const git_commit* target, int force),
                    (out, repo, name, target, force))
HEARTH_LAZY_FORWARD(git2_library(), int, git_branch_name, (const char** out, const git_reference* ref), (out, ref))
HEARTH_LAZY_FORWARD(git2_library(), int, git_checkout_tree,
                    (git_repository * repo, const git_object* treeish, const git_checkout_options* opts),
                    (repo, treeish, opts))
HEARTH_LAZY_FORWARD(git2_library(), void, git_commit_free, (git_commit * commit), (commit))
HEARTH_LAZY_FORWARD(git2_library(), const git_oid*, git_commit_id, (const git_commit* commit), (commit))
HEARTH_LAZY_FORWARD(git2_library(), void, git_object_free, (git_object * object), (object))
HEARTH_LAZY_FORWARD(git2_library(), int, git_object_lookup,
                    (git_object * *out, git_repository* repo, const git_oid* id, git_object_t type),
                    (out, repo, id, type))
HEARTH_LAZY_FORWARD(git2_library(), int, git_object_peel, (git_object * *out, const git_object* object, git_object_t type),
                    (out, object, type))
HEARTH_LAZY_FORWARD(git2_library(), char*, git_oid_tostr, (char* out, size_t n, const git_oid* id), (out, n, id))
HEARTH_LAZY_FORWARD(git2_library(), int, git_reference_dwim, (git_reference * *out, git_repository* repo, const char* name),
                    (out, repo, name))
HEARTH_LAZY_FORWARD(git2_library(), void, git_reference_free, (git_reference * ref), (ref))
HEARTH_LAZY_FORWARD(git2_library(), int, git_reference_is_branch, (const git_reference* ref), (ref))
HEARTH_LAZY_FORWARD(git2_library(), int, git_reference_resolve, (git_reference * *out, const git_reference* ref), (out, ref))
HEARTH_LAZY_FORWARD(git2_library(), int, git_remote_create,
                    (git_remote * *out, git_repository* repo, const char* name, const char* url), (out, repo, name, url))
HEARTH_LAZY_FORWARD(git2_library(), void, git_remote_free, (git_remote * remote), (remote))
HEARTH_LAZY_FORWARD(git2_library(), int, git_remote_lookup, (git_remote * *out, git_repository* repo, const char* name),
                    (out, repo, name))
HEARTH_LAZY_FORWARD(git2_library(), const char*, git_remote_url, (const git_remote* remote), (remote))
HEARTH_LAZY_FORWARD(git2_library(), void, git_repository_free, (git_repository * repo), (repo))
HEARTH_LAZY_FORWARD(git2_library(), int, git_repository_init_ext,
                    (git_repository * *out, const char* path, git_repository_init_options* opts), (out, path, opts))
HEARTH_LAZY_FORWARD(git2_library(), int, git_repository_open_ext,
                    (git_repository * *out, const char* path, unsigned int flags, const char* ceiling),
                    (out, path, flags, ceiling))
HEARTH_LAZY_FORWARD(git2_library(), const char*, git_repository_path, (const git_repository* repo), (repo))
HEARTH_LAZY_FORWARD(git2_library(), int, git_repository_set_head, (git_repository * repo, const char* ref), (repo, ref))
HEARTH_LAZY_FORWARD(git2_library(), int, git_repository_set_head_detached, (git_repository * repo, const git_oid* id),
                    (repo, id))
HEARTH_LAZY_FORWARD(git2_library(), int, git_revparse_single, (git_object * *out, git_repository* repo, const char* spec),
                    (out, repo, spec))
