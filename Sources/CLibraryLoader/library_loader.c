#include "coop_library.h"

#include <dlfcn.h>

int coop_library_open(const char *file, const coop_symbol *symbols, size_t count, char *error, size_t size) {
    void *library = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        snprintf(error, size, "%s", dlerror());
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        *symbols[i].slot = dlsym(library, symbols[i].name);
        if (*symbols[i].slot == NULL) {
            snprintf(error, size, "%s has no %s", file, symbols[i].name);
            return -1;
        }
    }
    return 0;
}
