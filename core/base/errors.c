/* errors.c - wire code strings and messages generated from ALLOT_ERROR_TABLE. */
#include "core/errors.h"

const char *allot_error_code(int error)
{
    switch (error) {
#define ALLOT_ERROR_CODE_CASE(name, number, wire, message)                                        \
    case (number):                                                                                \
        return wire;
        ALLOT_ERROR_TABLE(ALLOT_ERROR_CODE_CASE)
#undef ALLOT_ERROR_CODE_CASE
    default:
        return "INTERNAL";
    }
}

const char *allot_error_message(int error)
{
    switch (error) {
#define ALLOT_ERROR_MESSAGE_CASE(name, number, wire, message)                                     \
    case (number):                                                                                \
        return message;
        ALLOT_ERROR_TABLE(ALLOT_ERROR_MESSAGE_CASE)
#undef ALLOT_ERROR_MESSAGE_CASE
    default:
        return "unknown error";
    }
}
