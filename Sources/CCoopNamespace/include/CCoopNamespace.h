#include "coop_namespace.h"
#include "coop_runtime.h"
#include "coop_protocol.h"
#include "coop_fleet.h"
