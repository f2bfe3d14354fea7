// Symbol visibility of libhearth. libhearth is built with hidden visibility;
// only declarations marked HEARTH_API are exported.
#pragma once

#if defined(HEARTH_BUILDING_LIBRARY)
#define HEARTH_API __attribute__((visibility("default")))
#else
#define HEARTH_API
#endif
