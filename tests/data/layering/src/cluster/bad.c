#include "query.h"
#include "../server/server.h"
