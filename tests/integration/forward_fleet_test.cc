#include "tests/support/forward_fleet.h"
