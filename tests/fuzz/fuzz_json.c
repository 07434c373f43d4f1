/* fuzz_json.c - libFuzzer target: the CLI's JSON -> MessagePack -> JSON conversion. */
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>

#include "client/json_msgpack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    msgpack_sbuffer packed;
    msgpack_sbuffer_init(&packed);
    char error[JSON_MSGPACK_ERROR_BYTES];
    if (json_msgpack_from_text((const char *)data, size, &packed, error, sizeof(error)) == 0) {
        msgpack_unpacked unpacked;
        msgpack_unpacked_init(&unpacked);
        if (msgpack_unpack_next(&unpacked, packed.data, packed.size, NULL) ==
            MSGPACK_UNPACK_SUCCESS) {
            for (unsigned flags = 0; flags < 2; flags++) {
                char *text = NULL;
                size_t text_bytes = 0;
                if (json_msgpack_to_text(&unpacked.data, flags, &text, &text_bytes, error,
                                         sizeof(error)) == 0)
                    free(text);
            }
        }
        msgpack_unpacked_destroy(&unpacked);
    }
    msgpack_sbuffer_destroy(&packed);
    return 0;
}
