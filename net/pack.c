/* pack.c - the reply packers' buffer callback, defined once (see pack.h). */
#include "pack.h"

int pack_sbuffer_write(void *data, const char *buf, size_t len)
{
    return pack_sbuffer_append(data, buf, len);
}
