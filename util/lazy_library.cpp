#include "util/lazy_library.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>

namespace hearth {

Status LazyLibrary::open() {
  std::call_once(once_, [this] {
    handle_ = ::dlopen(soname_, RTLD_NOW | RTLD_LOCAL);
    if (!handle_) {
      const char* why = ::dlerror();
      open_error_ = std::string("cannot load ") + soname_ + ", which " + needed_for_ + " needs: " +
                    (why ? why : "unknown dynamic loader error") + " (install the package that provides " +
                    soname_ + ")";
    }
  });
  if (!handle_) return Error{open_error_};
  return {};
}

Result<void*> LazyLibrary::symbol(const char* symbol) {
  if (Status s = open(); !s) return s.error();
  ::dlerror();  // clear: a null symbol value is legal, a set dlerror is the failure
  void* address = ::dlsym(handle_, symbol);
  if (!address) {
    const char* why = ::dlerror();
    return Error{std::string(soname_) + " has no symbol " + symbol + ", which " + needed_for_ +
                 " needs (an older version of the library?)" + (why ? std::string(": ") + why : std::string())};
  }
  return address;
}

void* LazyLibrary::require(const char* name) noexcept {
  Result<void*> address = symbol(name);
  if (address) return *address;
  std::string line = "hearth: " + address.message() + "\n";
  // write(2), not iostreams: this may run in any thread, mid-callback.
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
  std::_Exit(127);
}

}  // namespace hearth
