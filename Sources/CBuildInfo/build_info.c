#include "build_info.h"

#ifndef SECURECHAT_COMMIT
#define SECURECHAT_COMMIT "unknown"
#endif

const char *securechat_build_commit(void) { return SECURECHAT_COMMIT; }
