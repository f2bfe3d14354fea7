// A SQLite VFS that passes everything to the default VFS but fails the n-th
// xSync (SQLITE_IOERR_FSYNC) or the n-th xWrite (SQLITE_FULL), the way a
// dying disk or a full one would. SQLite's own fault-injection seam: the
// engine sees exactly the errors the real thing produces.
#pragma once

#include <sqlite3.h>

#include <cstring>

namespace hearth::testing {

class FaultyVfs {
 public:
  static constexpr const char* kName = "hearth-faulty";

  /// Registers the VFS (once per process) and resets its counters.
  static void install() {
    static bool registered = false;
    if (!registered) {
      base_ = sqlite3_vfs_find(nullptr);
      vfs_ = *base_;
      vfs_.zName = kName;
      vfs_.szOsFile = static_cast<int>(sizeof(File)) + base_->szOsFile;
      vfs_.xOpen = &FaultyVfs::open;
      sqlite3_vfs_register(&vfs_, 0);
      registered = true;
    }
    syncs_ = writes_ = 0;
    fail_sync_at_ = fail_write_at_ = 0;
  }
  /// 0 turns a fault off. Counting starts at install().
  static void fail_sync_at(int n) { fail_sync_at_ = n; }
  static void fail_write_at(int n) { fail_write_at_ = n; }
  static int syncs() { return syncs_; }

 private:
  struct File {
    sqlite3_file base;  // must come first
    sqlite3_file* real;  // the default VFS's file, allocated right after this struct
  };

  static int open(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags, int* out_flags) {
    auto* f = reinterpret_cast<File*>(file);
    f->real = reinterpret_cast<sqlite3_file*>(f + 1);
    int rc = base_->xOpen(base_, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK) {
      f->base.pMethods = nullptr;
      return rc;
    }
    static sqlite3_io_methods methods = make_methods(f->real->pMethods);
    f->base.pMethods = &methods;
    return SQLITE_OK;
  }

  static sqlite3_io_methods make_methods(const sqlite3_io_methods* real) {
    sqlite3_io_methods m = *real;
    m.xClose = [](sqlite3_file* f) { return real_of(f)->pMethods->xClose(real_of(f)); };
    m.xRead = [](sqlite3_file* f, void* b, int n, sqlite3_int64 o) { return real_of(f)->pMethods->xRead(real_of(f), b, n, o); };
    m.xWrite = [](sqlite3_file* f, const void* b, int n, sqlite3_int64 o) {
      if (fail_write_at_ && ++writes_ == fail_write_at_) return SQLITE_FULL;
      return real_of(f)->pMethods->xWrite(real_of(f), b, n, o);
    };
    m.xTruncate = [](sqlite3_file* f, sqlite3_int64 s) { return real_of(f)->pMethods->xTruncate(real_of(f), s); };
    m.xSync = [](sqlite3_file* f, int flags) {
      ++syncs_;
      if (fail_sync_at_ && syncs_ == fail_sync_at_) return SQLITE_IOERR_FSYNC;
      return real_of(f)->pMethods->xSync(real_of(f), flags);
    };
    m.xFileSize = [](sqlite3_file* f, sqlite3_int64* s) { return real_of(f)->pMethods->xFileSize(real_of(f), s); };
    m.xLock = [](sqlite3_file* f, int l) { return real_of(f)->pMethods->xLock(real_of(f), l); };
    m.xUnlock = [](sqlite3_file* f, int l) { return real_of(f)->pMethods->xUnlock(real_of(f), l); };
    m.xCheckReservedLock = [](sqlite3_file* f, int* r) { return real_of(f)->pMethods->xCheckReservedLock(real_of(f), r); };
    m.xFileControl = [](sqlite3_file* f, int op, void* a) { return real_of(f)->pMethods->xFileControl(real_of(f), op, a); };
    m.xSectorSize = [](sqlite3_file* f) { return real_of(f)->pMethods->xSectorSize(real_of(f)); };
    m.xDeviceCharacteristics = [](sqlite3_file* f) { return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f)); };
    m.xShmMap = [](sqlite3_file* f, int p, int s, int e, void volatile** pp) { return real_of(f)->pMethods->xShmMap(real_of(f), p, s, e, pp); };
    m.xShmLock = [](sqlite3_file* f, int o, int n, int fl) { return real_of(f)->pMethods->xShmLock(real_of(f), o, n, fl); };
    m.xShmBarrier = [](sqlite3_file* f) { real_of(f)->pMethods->xShmBarrier(real_of(f)); };
    m.xShmUnmap = [](sqlite3_file* f, int d) { return real_of(f)->pMethods->xShmUnmap(real_of(f), d); };
    m.xFetch = [](sqlite3_file* f, sqlite3_int64 o, int n, void** pp) { return real_of(f)->pMethods->xFetch(real_of(f), o, n, pp); };
    m.xUnfetch = [](sqlite3_file* f, sqlite3_int64 o, void* p) { return real_of(f)->pMethods->xUnfetch(real_of(f), o, p); };
    return m;
  }

  static sqlite3_file* real_of(sqlite3_file* f) { return reinterpret_cast<File*>(f)->real; }

  static inline sqlite3_vfs* base_ = nullptr;
  static inline sqlite3_vfs vfs_{};
  static inline int syncs_ = 0, writes_ = 0, fail_sync_at_ = 0, fail_write_at_ = 0;
};

}  // namespace hearth::testing
