// Where an error message sends a user to read more. A user who meets the
// error has the binary, not necessarily Hearth's source, so the link is a URL
// when the build was given one (meson option docs_url, set by the release
// workflow), else the installed copy of the page beside the binary
// (share/doc/hearth/ of an installed tree or a release tarball), else the
// page's name in the source tree.
#pragma once

#include <string>
#include <string_view>

namespace hearth {

/// `page` (e.g. "sandbox.md") at the section titled `heading` (may be
/// empty), as the best link this build can give: a URL with the heading's
/// anchor, or a path followed by the heading in quotes.
std::string docs_link(std::string_view page, std::string_view heading = {});

}  // namespace hearth
