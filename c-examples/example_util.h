/* Small helpers shared by the C examples (not part of the library). */
#ifndef EMBERGPT_EXAMPLE_UTIL_H
#define EMBERGPT_EXAMPLE_UTIL_H

#include <stdio.h>
#include <stdlib.h>

/* Read a whole file into a malloc'd buffer; NULL on failure (message printed). */
static unsigned char *read_file(const char *path, size_t *out_len) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "cannot size %s\n", path);
        fclose(f);
        return NULL;
    }
    buf = (unsigned char *)malloc(n > 0 ? (size_t)n : 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot read %s\n", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *out_len = (size_t)n;
    return buf;
}

/* First path of `candidates` (NULL-terminated) that can be opened, or NULL. */
static const char *first_existing(const char *const *candidates) {
    for (; *candidates != NULL; candidates++) {
        FILE *f = fopen(*candidates, "rb");
        if (f != NULL) {
            fclose(f);
            return *candidates;
        }
    }
    return NULL;
}

#endif
