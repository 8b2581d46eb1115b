/* Compiles include/embergpt.h alone, as C99 and as C++11 (see Makefile): every
 * declaration must be valid, warning-free, pedantic C and C++. */
#include "embergpt.h"

#ifdef __cplusplus
static_assert(EGPT_OK == 0, "EGPT_OK is 0");
#endif

/* Use a few declarations so that unused-type warnings cannot hide problems. */
int embergpt_header_only(void);
int embergpt_header_only(void) {
    egpt_context_params p = egpt_context_default_params();
    egpt_model_info info;
    egpt_token_callback cb = 0;
    egpt_parallel_for_fn pf = 0;
    info.struct_size = sizeof info;
    (void)cb;
    (void)pf;
    return (int)(p.struct_size + info.struct_size + EGPT_ABI_VERSION + EGPT_VERSION_MAJOR) +
           (int)sizeof(EGPT_VERSION);
}
