// No image: a new store is made by SQL. Linked into the image's generator
// (which makes the image that way) and into cross builds.
#include "engine/store_image.h"

namespace hearth::engine {

std::string_view fresh_store_image() { return {}; }

}  // namespace hearth::engine
