// Errors as values: the public types of include/hearth/status.h, used
// everywhere inside Hearth too.
#pragma once

#include "hearth/status.h"
