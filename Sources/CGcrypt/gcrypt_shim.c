#include "securechat_gcrypt.h"
#include <pthread.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *wanted_version;
static int initialize_result = -1;

static void initialize_once(void) {
    if (!gcry_check_version(wanted_version)) {
        initialize_result = -1;
        return;
    }
    gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
    gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
    initialize_result = 0;
}

int securechat_gcrypt_initialize(const char *minimum_version) {
    wanted_version = minimum_version;
    pthread_once(&once, initialize_once);
    return initialize_result;
}
