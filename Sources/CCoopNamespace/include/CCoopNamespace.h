#include "coop_namespace.h"
#include "coop_runtime.h"
