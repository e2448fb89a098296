/*
 * pbmutate.h — a structure-aware mutator for libFuzzer: the input is decoded
 * as a protobuf message (by its descriptor), one to three of its fields are
 * changed to values that mean something to casebus's rules (organisation ids
 * from the sample county, case ids that exist, matter and township codes,
 * times around now, every enum value, lengths at and past each limit, NaN,
 * bytes that are not UTF-8), a sub-message or a oneof branch may be created,
 * a list grown or shrunk, and it is encoded again. Mutated inputs stay valid
 * protobuf, so the fuzzer spends its time in the rules, not in the decoder.
 */
#ifndef PBMUTATE_H
#define PBMUTATE_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pbm_dict {
    const char *const *strings; /* NULL-terminated */
    int64_t now_ms;
} pbm_dict_t;

/* Mutates data[0..size) in place as a message of desc (at most max bytes);
 * returns the new size. Falls back to byte mutation when data does not decode. */
size_t pbm_mutate(const ProtobufCMessageDescriptor *desc, uint8_t *data, size_t size, size_t max,
                  unsigned seed, const pbm_dict_t *dict);

#endif
