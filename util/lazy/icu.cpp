// ICU's common library (and its 30 MB data library), opened when the first
// skill name is checked (workflows/skill.cpp). Only ICU's C API is used, so
// that the functions can be forwarded by their (version-renamed) names; see
// util/lazy_library.h.
#include "util/lazy/icu.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/uvernum.h>

#include "util/lazy/forward.h"

namespace hearth::lazy {

HEARTH_LAZY_SONAME const char kSoname[] = "libicuuc.so." HEARTH_LAZY_STRING(U_ICU_VERSION_MAJOR_NUM);

LazyLibrary& icu_library() {
  static LazyLibrary library(kSoname, "reading a skill (SKILL.md)");
  return library;
}

}  // namespace hearth::lazy

using hearth::lazy::icu_library;

HEARTH_LAZY_FORWARD(icu_library(), UBool, u_isalnum, (UChar32 c), (c))
HEARTH_LAZY_FORWARD(icu_library(), int32_t, u_countChar32, (const UChar* s, int32_t length), (s, length))
HEARTH_LAZY_FORWARD(icu_library(), UChar*, u_strFromUTF8WithSub,
                    (UChar * dest, int32_t capacity, int32_t* length, const char* src, int32_t src_length,
                     UChar32 sub, int32_t* substitutions, UErrorCode* err),
                    (dest, capacity, length, src, src_length, sub, substitutions, err))
HEARTH_LAZY_FORWARD(icu_library(), char*, u_strToUTF8WithSub,
                    (char* dest, int32_t capacity, int32_t* length, const UChar* src, int32_t src_length, UChar32 sub,
                     int32_t* substitutions, UErrorCode* err),
                    (dest, capacity, length, src, src_length, sub, substitutions, err))
HEARTH_LAZY_FORWARD(icu_library(), int32_t, u_strToLower,
                    (UChar * dest, int32_t capacity, const UChar* src, int32_t src_length, const char* locale,
                     UErrorCode* err),
                    (dest, capacity, src, src_length, locale, err))
HEARTH_LAZY_FORWARD(icu_library(), const UNormalizer2*, unorm2_getNFKCInstance, (UErrorCode * err), (err))
HEARTH_LAZY_FORWARD(icu_library(), int32_t, unorm2_normalize,
                    (const UNormalizer2* n, const UChar* src, int32_t length, UChar* dest, int32_t capacity,
                     UErrorCode* err),
                    (n, src, length, dest, capacity, err))
